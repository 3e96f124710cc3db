//! Pixel data of stored instances: where each frame lies in its file, frames
//! decoded to native pixels, whole instances transcoded to Explicit VR
//! Little Endian, and 8-bit renderings (DICOMweb WADO-RS `/frames`, default
//! instance retrieval, `/rendered`, `/thumbnail`).
//!
//! Everything here is blocking file I/O and CPU work: call it from a
//! blocking thread. Memory stays bounded by one frame (compressed and
//! decoded) plus the attributes before the pixel data, whatever the size of
//! the instance.
//!
//! The codecs are dicom-rs's (dicom-transfer-syntax-registry adapters); this
//! module feeds them one frame at a time, read from the file ranges intake
//! recorded (`BulkLayout`), instead of the whole object.

use std::io;

mod codestream;
mod decode;
mod frames;
mod header;
mod jpeg;
mod probe;
mod render;
mod rle;
mod syntax;
mod transcode;

#[cfg(test)]
mod tests;

pub use decode::{decode_frame, decode_frames};
pub use frames::{FrameRanges, frame_ranges};
pub use probe::check_decodable;
pub use render::{ImageFormat, RenderOptions, VoiFunction, Window, render};
pub(crate) use syntax::trim;
pub use syntax::{can_decode, frame_media_type};
pub use transcode::{Transcode, write_explicit_le};

use crate::store::InstanceRecord;

/// Explicit VR Little Endian, the DICOMweb default transfer syntax.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PixelError {
    #[error("the instance has no pixel data")]
    NoPixelData,
    /// No decoder for this transfer syntax (DICOMweb: 406 with this reason).
    #[error("cannot decode transfer syntax {0}")]
    UnsupportedTransferSyntax(String),
    /// Frames are numbered from 1.
    #[error("frame {frame} does not exist (the instance has {frames})")]
    FrameOutOfRange { frame: u32, frames: u32 },
    /// The encapsulated fragments cannot be attributed to frames (no offset
    /// table, more fragments than frames, no codestream markers to go by),
    /// or the data set is deflated and has no file ranges to point at.
    #[error("cannot locate the frames: {0}")]
    FramesNotLocated(String),
    /// Image attributes missing or inconsistent with the pixel data.
    #[error("invalid image attributes: {0}")]
    InvalidImage(String),
    /// A coding feature no decoder here has (12-bit progressive or
    /// arithmetic-coded JPEG, RLE of 1-bit samples …): DICOMweb 406.
    #[error("cannot decode the pixel data: {0}")]
    Unsupported(String),
    #[error("cannot decode the pixel data: {0}")]
    Decode(String),
    /// Native pixel data would exceed the 32-bit value length of Explicit
    /// VR Little Endian.
    #[error("decoded pixel data of {bytes} bytes does not fit in one native value")]
    TooLarge { bytes: u64 },
    #[error("cannot encode the rendered image: {0}")]
    Encode(String),
    #[error("cannot read or write the data set: {0}")]
    Dataset(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Number of Frames as intake recorded it; 1 for single-frame images.
pub fn number_of_frames(record: &InstanceRecord) -> u32 {
    record.attrs.number_of_frames.unwrap_or(1).max(1)
}

/// Frames are numbered from 1, as in DICOMweb.
fn check_frame(frame: u32, frames: u32) -> Result<(), PixelError> {
    if frame == 0 || frame > frames {
        return Err(PixelError::FrameOutOfRange { frame, frames });
    }
    Ok(())
}
