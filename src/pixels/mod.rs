//! Placeholder until the pixel module lands (branch `pixels`): nothing
//! decodes yet, so only stored bytes are served.

use std::io::{self, Write};
use std::path::Path;

use crate::store::InstanceRecord;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PixelError {
    #[error("the instance has no pixel data")]
    NoPixelData,
    #[error("cannot decode transfer syntax {0}")]
    UnsupportedTransferSyntax(String),
    #[error("frame {frame} does not exist (the instance has {frames})")]
    FrameOutOfRange { frame: u32, frames: u32 },
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub fn can_decode(_transfer_syntax: &str) -> bool {
    false
}

pub fn write_explicit_le(
    _path: &Path,
    record: &InstanceRecord,
    _out: &mut dyn Write,
) -> Result<u64, PixelError> {
    Err(PixelError::UnsupportedTransferSyntax(
        record.transfer_syntax.clone(),
    ))
}

pub fn frame_media_type(_transfer_syntax: &str) -> Option<&'static str> {
    None
}

pub fn frame_ranges(_record: &InstanceRecord) -> Result<Vec<Vec<(u64, u64)>>, PixelError> {
    Err(PixelError::NoPixelData)
}
