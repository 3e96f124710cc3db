//! One streaming ZIP writer for everything pushgate hands out as a file:
//! the recipient's `download.zip` and the gateway-to-gateway package.
//!
//! [`zip`] lays out a stored archive whose length and every byte are known
//! before the first is written, so any byte range can be produced on
//! demand. [`dicomdir`] turns a set of instances into a DICOM file-set
//! (PS3.10: `DICOMDIR` plus files under `DICOM/`) inside such an archive,
//! so that an unzipped download imports like a CD.

pub mod dicomdir;
mod instances;
pub mod zip;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use dicomdir::{
    Directory, FileSetInstance, dicomdir, directory_metadata, file_set, file_set_entries,
};
pub use instances::file_set_instances;
pub use zip::{Archive, ArchiveOut, Content, Entry, crc32_of_file};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Writing to the output failed (typically: the client went away).
    #[error("cannot write the archive: {0}")]
    Io(#[from] io::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{name} is now {found} bytes, the archive was laid out for {expected}")]
    SizeChanged {
        name: String,
        expected: u64,
        found: u64,
    },
    #[error(
        "{name} changed since the archive was laid out \
         (CRC-32 {found:08x}, expected {expected:08x})"
    )]
    ContentChanged {
        name: String,
        expected: u32,
        found: u32,
    },
    #[error("byte range {start}..{end} is outside the archive of {len} bytes")]
    RangeOutOfBounds { start: u64, end: u64, len: u64 },
    #[error("entry name {name:?} is not allowed: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("entry name {0:?} occurs twice")]
    DuplicateName(String),
    #[error("the archive would be larger than 2^64 bytes")]
    TooLarge,
    #[error(
        "file-set ID {0:?} is not allowed: at most 16 characters of A-Z, 0-9, \
         space and underscore (PS3.10 8.5)"
    )]
    InvalidFileSetId(String),
    #[error("{path}: {reason}")]
    Metadata { path: PathBuf, reason: String },
    #[error("more than {max} {what} in one file-set")]
    TooMany { what: &'static str, max: usize },
}
