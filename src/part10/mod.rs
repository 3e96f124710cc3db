//! DICOM Part 10 files (PS3.10): the preamble and file meta group, and the
//! data set read in one pass into its small values and the byte ranges of
//! its large ones. Used by intake, the SCU, packages, pixels and retrieval;
//! what intake then checks and keeps of a data set stays in `ingest`.

mod header;
mod layout;
mod read;
mod unknown_vr;

pub use header::{Part10Header, read_part10_header, write_part10_header};
pub use layout::{BulkLayout, BulkValue, PixelLayout};
pub use read::{ParseError, Parsed, parse_dataset};
