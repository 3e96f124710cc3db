//! Where the stored bytes of each frame lie in the file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use dicom_dictionary_std::tags;

use super::header::ImageHeader;
use super::syntax::trim;
use super::{PixelError, number_of_frames};
use crate::store::{InstanceRecord, PixelLayout};

/// A frame's stored bytes: file ranges `(offset, length)` to concatenate.
pub type FrameRanges = Vec<(u64, u64)>;

/// The stored bytes of every frame (index 0 is frame 1), as file ranges
/// `(offset, length)` to concatenate.
///
/// Native pixel data gives one range per frame, in the file's byte order
/// (big endian stays big endian: see [`super::decode_frame`] for native
/// little-endian bytes). Encapsulated pixel data gives a frame's fragments,
/// attributed by the Basic Offset Table, else the Extended Offset Table,
/// else one fragment per frame when there are as many fragments as frames,
/// else all fragments when there is one frame, else by the codestream start
/// markers (JPEG SOI, JPEG 2000 SOC, JPEG XL signature) that begin a frame's
/// first fragment. When none of these attributes every fragment, this is
/// an error rather than a guess. A deflated data set has no file ranges.
///
/// Reads the file only for an Extended Offset Table not kept in the record
/// and for the marker scan.
pub fn frame_ranges(path: &Path, record: &InstanceRecord) -> Result<Vec<FrameRanges>, PixelError> {
    let Some(pixel) = &record.layout.pixel else {
        return Err(PixelError::NoPixelData);
    };
    if record.layout.deflated {
        return Err(PixelError::FramesNotLocated(
            "the data set is deflated: its frames have no file ranges".into(),
        ));
    }
    let frames = number_of_frames(record);
    match pixel {
        PixelLayout::Native { offset, length } => {
            let header = ImageHeader::read(path)?;
            native_ranges(&header, frames, *offset, *length)
        }
        PixelLayout::Encapsulated {
            offset_table,
            fragments,
        } => encapsulated_ranges(path, record, frames, offset_table, fragments),
    }
}

fn native_ranges(
    header: &ImageHeader,
    frames: u32,
    offset: u64,
    length: u64,
) -> Result<Vec<FrameRanges>, PixelError> {
    if !header.bits_per_frame().is_multiple_of(8) && frames > 1 {
        return Err(PixelError::FramesNotLocated(
            "1-bit frames do not start on byte boundaries".into(),
        ));
    }
    let size = header.frame_bytes();
    let needed = size * u64::from(frames);
    if needed > length {
        return Err(PixelError::InvalidImage(format!(
            "{frames} frames of {size} bytes need {needed} bytes; Pixel Data has {length}"
        )));
    }
    Ok((0..u64::from(frames))
        .map(|i| vec![(offset + i * size, size)])
        .collect())
}

fn encapsulated_ranges(
    path: &Path,
    record: &InstanceRecord,
    frames: u32,
    offset_table: &[u32],
    fragments: &[(u64, u32)],
) -> Result<Vec<FrameRanges>, PixelError> {
    if fragments.is_empty() {
        return Err(PixelError::Decode(
            "encapsulated pixel data without fragments".into(),
        ));
    }
    let frames = frames as usize;
    let range = |&(offset, len): &(u64, u32)| (offset, u64::from(len));
    if frames == 1 {
        return Ok(vec![fragments.iter().map(range).collect()]);
    }
    let starts = if !offset_table.is_empty() {
        let offsets: Vec<u64> = offset_table.iter().map(|&o| u64::from(o)).collect();
        starts_from_offsets(&offsets, fragments, frames, "Basic Offset Table")?
    } else if let Some(offsets) = extended_offset_table(path, record)? {
        starts_from_offsets(&offsets, fragments, frames, "Extended Offset Table")?
    } else if fragments.len() == frames {
        (0..frames).collect()
    } else {
        starts_from_markers(path, &record.transfer_syntax, fragments, frames)?
    };
    let mut ranges = Vec::with_capacity(frames);
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(fragments.len());
        ranges.push(fragments[start..end].iter().map(range).collect());
    }
    Ok(ranges)
}

/// The index of each frame's first fragment from an offset table, whose
/// offsets count from the first fragment's item tag.
fn starts_from_offsets(
    offsets: &[u64],
    fragments: &[(u64, u32)],
    frames: usize,
    table: &str,
) -> Result<Vec<usize>, PixelError> {
    let mismatch = |why: String| PixelError::FramesNotLocated(format!("{table}: {why}"));
    if offsets.len() != frames {
        return Err(mismatch(format!(
            "{} offsets for {frames} frames",
            offsets.len()
        )));
    }
    let first = fragments[0].0;
    let mut starts = Vec::with_capacity(frames);
    let mut next = 0;
    for &offset in offsets {
        let found = (next..fragments.len()).find(|&i| fragments[i].0 - first == offset);
        match found {
            Some(i) if i >= next && (starts.is_empty() == (i == 0)) => {
                starts.push(i);
                next = i + 1;
            }
            _ => {
                return Err(mismatch(format!(
                    "offset {offset} is not the start of a later fragment"
                )));
            }
        }
    }
    Ok(starts)
}

/// The Extended Offset Table (7FE0,0001), from the record when intake kept
/// it as a bulk value, else from the data set.
fn extended_offset_table(
    path: &Path,
    record: &InstanceRecord,
) -> Result<Option<Vec<u64>>, PixelError> {
    let bytes = match record.layout.values.iter().find(|v| v.path == "7FE00001") {
        Some(value) => read_range(&mut File::open(path)?, value.offset, value.length)?,
        None => {
            let header = ImageHeader::read(path)?;
            match header.object.element(tags::EXTENDED_OFFSET_TABLE) {
                Ok(element) => element
                    .to_bytes()
                    .map_err(|e| PixelError::InvalidImage(format!("Extended Offset Table: {e}")))?
                    .into_owned(),
                Err(_) => return Ok(None),
            }
        }
    };
    Ok(Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    ))
}

/// Frames found by the codestream signature each frame's first fragment
/// starts with; the count must match exactly.
fn starts_from_markers(
    path: &Path,
    transfer_syntax: &str,
    fragments: &[(u64, u32)],
    frames: usize,
) -> Result<Vec<usize>, PixelError> {
    let unlocated = |found: String| {
        PixelError::FramesNotLocated(format!(
            "{} fragments for {frames} frames without an offset table{found}",
            fragments.len()
        ))
    };
    let Some(is_start) = codestream_start(transfer_syntax) else {
        return Err(unlocated(String::new()));
    };
    let mut file = File::open(path)?;
    let mut starts = Vec::new();
    for (i, &(offset, len)) in fragments.iter().enumerate() {
        let head = read_range(&mut file, offset, u64::from(len.min(12)))?;
        if is_start(&head) {
            starts.push(i);
        }
    }
    if starts.len() != frames || starts.first() != Some(&0) {
        return Err(unlocated(format!(
            ", and {} fragments begin a codestream",
            starts.len()
        )));
    }
    Ok(starts)
}

type StartTest = fn(&[u8]) -> bool;

fn codestream_start(transfer_syntax: &str) -> Option<StartTest> {
    let uid = trim(transfer_syntax);
    let suffix = uid.strip_prefix("1.2.840.10008.1.2.4.")?;
    match suffix {
        "50" | "51" | "57" | "70" | "80" | "81" => Some(|h| h.starts_with(&[0xFF, 0xD8])),
        "90" | "91" | "92" | "93" | "201" | "202" | "203" => Some(|h| {
            h.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
                || h.starts_with(&[0, 0, 0, 0x0C, b'j', b'P', b' ', b' '])
        }),
        "110" | "111" | "112" => Some(|h| {
            h.starts_with(&[0xFF, 0x0A]) || h.starts_with(&[0, 0, 0, 0x0C, b'J', b'X', b'L', b' '])
        }),
        _ => None,
    }
}

pub(crate) fn read_range(file: &mut File, offset: u64, length: u64) -> Result<Vec<u8>, PixelError> {
    let mut bytes = Vec::new();
    append_range(file, offset, length, &mut bytes)?;
    Ok(bytes)
}

/// Appends a file range to `out`; a range beyond the end of the file is an
/// error, not a short read.
pub(crate) fn append_range(
    file: &mut File,
    offset: u64,
    length: u64,
    out: &mut Vec<u8>,
) -> Result<(), PixelError> {
    let size = file.metadata()?.len();
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(PixelError::Decode(format!(
            "{length} bytes at offset {offset} lie beyond the end of the file ({size} bytes)"
        )));
    }
    file.seek(SeekFrom::Start(offset))?;
    let start = out.len();
    out.resize(start + length as usize, 0);
    file.read_exact(&mut out[start..])?;
    Ok(())
}
