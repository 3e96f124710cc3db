//! Whether an instance's pixel data can be decoded, told from its header
//! and the start of its first frame without decoding it: a response that
//! streams many instances decides what to leave out before its first byte.
//! A frame that passes and then fails to decode is corrupt, not of a kind
//! pushgate lacks a decoder for.

use std::fs::File;
use std::path::Path;

use super::frames::{append_range, frame_ranges};
use super::header::ImageHeader;
use super::jpeg::markers;
use super::syntax::{self, OwnCodec};
use super::{PixelError, codestream, rle};
use crate::store::{InstanceRecord, PixelLayout};

/// How much of the first frame is read: marker segments before the first
/// JPEG scan are small (tables, an ICC profile at most).
const PROBE_BYTES: u64 = 64 * 1024;

/// `Ok` when every frame's coding is one pushgate decodes (native data
/// always is); otherwise the reason, as decoding would give it.
pub fn check_decodable(path: &Path, record: &InstanceRecord) -> Result<(), PixelError> {
    let Some(PixelLayout::Encapsulated { .. }) = &record.layout.pixel else {
        return Ok(());
    };
    let ts = &record.transfer_syntax;
    syntax::decoder(ts)?;
    let header = ImageHeader::read(path)?;
    let ranges = frame_ranges(path, record)?;
    let first = ranges
        .first()
        .ok_or_else(|| PixelError::FramesNotLocated("no frames".into()))?;
    let mut file = File::open(path)?;
    let mut head = Vec::new();
    for &(offset, len) in first {
        let left = PROBE_BYTES - head.len() as u64;
        append_range(&mut file, offset, len.min(left), &mut head)?;
        if head.len() as u64 >= PROBE_BYTES {
            break;
        }
    }
    let whole = first.iter().map(|(_, l)| l).sum::<u64>() <= PROBE_BYTES;
    match syntax::own_codec(ts) {
        Some(OwnCodec::Rle) => {
            let segments = rle::segment_offsets(&head)?.len();
            if !header.bits_allocated.is_multiple_of(8) {
                return Err(PixelError::Unsupported(format!(
                    "RLE with Bits Allocated {}",
                    header.bits_allocated
                )));
            }
            let needed =
                usize::from(header.bits_allocated / 8) * usize::from(header.samples_per_pixel);
            if segments != needed {
                return Err(PixelError::Decode(format!(
                    "RLE frame has {segments} segments; the image needs {needed}"
                )));
            }
        }
        Some(OwnCodec::Jpeg) => match markers::read(&head) {
            Ok(m) => {
                if let Some(why) = m.unsupported() {
                    return Err(PixelError::Unsupported(why));
                }
                codestream::check(ts, &head, &header)?;
            }
            // the marker segments go on past what was read
            Err(_) if !whole => {}
            Err(e) => return Err(e),
        },
        None => {
            // JPEG-LS and JPEG 2000: their headers, where within reach
            if let Err(e) = codestream::check(ts, &head, &header)
                && whole
            {
                return Err(e);
            }
        }
    }
    Ok(())
}
