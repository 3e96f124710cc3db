//! Whole instances to Explicit VR Little Endian, frame by frame.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use dicom_core::value::Value;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

use super::PixelError;
use super::decode::{
    FrameSource, big_endian_words, inflated_dataset, photometric_after_decoding, swap_words,
};
use super::header::{ImageHeader, text};
use super::syntax;
use crate::store::{InstanceRecord, PixelLayout};

/// Largest value a defined 32-bit length can carry (0xFFFFFFFF means
/// undefined length).
const MAX_VALUE_LENGTH: u64 = 0xFFFF_FFFE;
const COPY_BUFFER: usize = 1 << 20;

/// The whole instance as a Part 10 file in Explicit VR Little Endian: a
/// file meta group naming that transfer syntax, the data set re-encoded,
/// encapsulated pixel data decoded frame by frame into one native value of
/// defined length (OW above 8 bits allocated, else OB), with Photometric
/// Interpretation, Planar Configuration and Lossy Image Compression set as
/// decompression requires (PS3.5 8.2, PS3.3 C.7.6.3.1.2, C.7.6.1.1.5), the
/// Extended Offset Table dropped, and an Icon Image Sequence with
/// compressed pixel data dropped. Native pixel data in another syntax is
/// copied, byte-swapped from big endian, inflated from deflate.
///
/// Memory: the attributes before the pixel data, one compressed frame and
/// one decoded frame. Returns the number of bytes written. Blocking.
pub fn write_explicit_le(
    path: &Path,
    record: &InstanceRecord,
    out: &mut dyn Write,
) -> Result<u64, PixelError> {
    Transcode::prepare(path, record)?.write(out)
}

/// A transcoding to Explicit VR Little Endian whose first frame is already
/// decoded: a response learns that an instance cannot be decoded before it
/// writes anything for it (a status line, a part head).
pub struct Transcode {
    path: PathBuf,
    record: InstanceRecord,
    prepared: Prepared,
}

// one per instance being sent, short-lived: boxing buys nothing
#[allow(clippy::large_enum_variant)]
enum Prepared {
    NoPixels,
    Native(ImageHeader),
    Encapsulated {
        header: ImageHeader,
        decoded: DefaultDicomObject,
        first: Vec<u8>,
    },
}

impl Transcode {
    /// Reads the attributes and decodes the first frame. Blocking.
    pub fn prepare(path: &Path, record: &InstanceRecord) -> Result<Transcode, PixelError> {
        let prepared = match &record.layout.pixel {
            None => Prepared::NoPixels,
            Some(pixel) => {
                let object = OpenFileOptions::new()
                    .read_until(tags::PIXEL_DATA)
                    .open_file(path)
                    .map_err(|e| PixelError::Dataset(crate::base::error_chain(&e)))?;
                let header = ImageHeader::from_object(object)?;
                match pixel {
                    PixelLayout::Native { .. } => Prepared::Native(header),
                    PixelLayout::Encapsulated { .. } => {
                        let total = header.frame_bytes() * u64::from(header.frames);
                        if total + total % 2 > MAX_VALUE_LENGTH {
                            return Err(PixelError::TooLarge { bytes: total });
                        }
                        let decoded = decompressed_attributes(&header, &record.transfer_syntax);
                        let first = FrameSource::open(path, record, &header)?.decode(1)?;
                        Prepared::Encapsulated {
                            header,
                            decoded,
                            first,
                        }
                    }
                }
            }
        };
        Ok(Transcode {
            path: path.to_path_buf(),
            record: record.clone(),
            prepared,
        })
    }

    /// Writes the whole instance. Blocking.
    pub fn write(self, out: &mut dyn Write) -> Result<u64, PixelError> {
        let mut out = Counting {
            inner: out,
            bytes: 0,
        };
        let (path, record) = (self.path.as_path(), &self.record);
        match (self.prepared, &record.layout.pixel) {
            (Prepared::NoPixels, _) | (_, None) => {
                let mut object = OpenFileOptions::new()
                    .open_file(path)
                    .map_err(|e| PixelError::Dataset(crate::base::error_chain(&e)))?;
                write_head(&mut object, &mut out)?;
            }
            (Prepared::Native(header), Some(PixelLayout::Native { offset, length })) => {
                write_native(path, record, header, *offset, *length, &mut out)?;
            }
            (
                Prepared::Encapsulated {
                    header,
                    mut decoded,
                    first,
                },
                Some(PixelLayout::Encapsulated { fragments, .. }),
            ) => {
                let frames = header.frames;
                let total = header.frame_bytes() * u64::from(frames);
                write_head(&mut decoded, &mut out)?;
                write_pixel_header(&mut out, pixel_vr(&header), total + total % 2)?;
                out.write_all(&first)?;
                drop(first);
                if frames > 1 {
                    let mut source = FrameSource::open(path, record, &header)?;
                    for frame in 2..=frames {
                        out.write_all(&source.decode(frame)?)?;
                    }
                }
                if total % 2 == 1 {
                    out.write_all(&[0])?;
                }
                // after the last fragment: its value, then the sequence
                // delimitation item (8 bytes)
                if let Some(&(offset, len)) = fragments.last() {
                    let mut file = BufReader::new(File::open(path)?);
                    file.seek(SeekFrom::Start(offset + u64::from(len) + 8))?;
                    write_tail(
                        Box::new(file),
                        syntax::registered(&record.transfer_syntax)?,
                        &mut out,
                    )?;
                }
            }
            _ => {
                return Err(PixelError::Dataset(
                    "the pixel layout changed while transcoding".into(),
                ));
            }
        }
        out.flush()?;
        Ok(out.bytes)
    }
}

fn pixel_vr(header: &ImageHeader) -> VR {
    if header.bits_allocated > 8 {
        VR::OW
    } else {
        VR::OB
    }
}

/// Native pixel data: copied, byte-swapped from big endian, inflated from
/// deflate.
fn write_native(
    path: &Path,
    record: &InstanceRecord,
    mut header: ImageHeader,
    offset: u64,
    length: u64,
    out: &mut dyn Write,
) -> Result<(), PixelError> {
    let mut reader: Box<dyn Read> = if record.layout.deflated {
        inflated_dataset(path, record)?
    } else {
        Box::new(BufReader::new(File::open(path)?))
    };
    io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
    let vr = pixel_vr(&header);
    write_head(&mut header.object, out)?;
    write_pixel_header(out, vr, length)?;
    let swap = big_endian_words(&mut File::open(path)?, record, offset)?;
    copy_native(&mut reader, out, length, swap)?;
    write_tail(reader, syntax::registered(&record.transfer_syntax)?, out)
}

/// The attributes before the pixel data as decompression leaves them.
fn decompressed_attributes(header: &ImageHeader, transfer_syntax: &str) -> DefaultDicomObject {
    let mut object = header.object.clone();
    let pi = photometric_after_decoding(header, transfer_syntax);
    if pi != header.photometric_interpretation {
        object.put(DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from(pi),
        ));
    }
    if header.samples_per_pixel > 1 {
        object.put(DataElement::new(
            tags::PLANAR_CONFIGURATION,
            VR::US,
            PrimitiveValue::from(0_u16),
        ));
    }
    if let Some(method) = syntax::lossy_method(transfer_syntax) {
        if text(&object, tags::LOSSY_IMAGE_COMPRESSION) != "01" {
            object.put(DataElement::new(
                tags::LOSSY_IMAGE_COMPRESSION,
                VR::CS,
                PrimitiveValue::from("01"),
            ));
        }
        if object.get(tags::LOSSY_IMAGE_COMPRESSION_METHOD).is_none() {
            object.put(DataElement::new(
                tags::LOSSY_IMAGE_COMPRESSION_METHOD,
                VR::CS,
                PrimitiveValue::from(method),
            ));
        }
    }
    object.remove_element(tags::EXTENDED_OFFSET_TABLE);
    object.remove_element(tags::EXTENDED_OFFSET_TABLE_LENGTHS);
    if icon_is_encapsulated(&object) {
        object.remove_element(tags::ICON_IMAGE_SEQUENCE);
    }
    object
}

fn icon_is_encapsulated(object: &DefaultDicomObject) -> bool {
    object
        .get(tags::ICON_IMAGE_SEQUENCE)
        .and_then(|e| e.items())
        .is_some_and(|items| {
            items.iter().any(|item| {
                item.get(tags::PIXEL_DATA)
                    .is_some_and(|p| matches!(p.value(), Value::PixelSequence(_)))
            })
        })
}

fn explicit_le() -> TransferSyntax {
    EXPLICIT_VR_LITTLE_ENDIAN.erased()
}

/// Preamble, file meta group (now naming Explicit VR Little Endian) and
/// the data set `object` holds.
fn write_head(object: &mut DefaultDicomObject, out: &mut dyn Write) -> Result<(), PixelError> {
    let ts = explicit_le();
    object.meta_mut().set_transfer_syntax(&ts);
    out.write_all(&[0; 128])?;
    out.write_all(b"DICM")?;
    object
        .meta()
        .write(&mut *out)
        .map_err(|e| PixelError::Dataset(crate::base::error_chain(&e)))?;
    let dataset: &InMemDicomObject = object;
    dataset
        .write_dataset_with_ts(&mut *out, &ts)
        .map_err(|e| PixelError::Dataset(crate::base::error_chain(&e)))
}

/// (7FE0,0010) in Explicit VR Little Endian: tag, VR, reserved, length.
fn write_pixel_header(out: &mut dyn Write, vr: VR, length: u64) -> Result<(), PixelError> {
    let length = u32::try_from(length)
        .ok()
        .filter(|&l| u64::from(l) <= MAX_VALUE_LENGTH)
        .ok_or(PixelError::TooLarge { bytes: length })?;
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
    head[4..6].copy_from_slice(vr.to_string().as_bytes());
    head[8..].copy_from_slice(&length.to_le_bytes());
    out.write_all(&head)?;
    Ok(())
}

/// Copies `length` bytes of native pixel data, swapping the 16-bit words
/// of big-endian OW.
fn copy_native(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    length: u64,
    swap: bool,
) -> Result<(), PixelError> {
    let mut buffer = vec![0; COPY_BUFFER];
    let mut left = length;
    while left > 0 {
        let n = left.min(COPY_BUFFER as u64) as usize;
        reader
            .read_exact(&mut buffer[..n])
            .map_err(|e| PixelError::Decode(format!("pixel data ends {left} bytes early: {e}")))?;
        if swap {
            swap_words(&mut buffer[..n]);
        }
        out.write_all(&buffer[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Elements after the pixel data (rare: digital signatures, padding,
/// private groups above 7FE0), re-encoded.
fn write_tail(
    mut reader: Box<dyn Read>,
    source_ts: &TransferSyntax,
    out: &mut dyn Write,
) -> Result<(), PixelError> {
    let mut first = [0u8; 1];
    if reader.read(&mut first)? == 0 {
        return Ok(());
    }
    let tail = io::Cursor::new(first).chain(reader);
    let object = InMemDicomObject::read_dataset_with_ts(tail, source_ts)
        .map_err(|e| PixelError::Dataset(crate::base::error_chain(&e)))?;
    object
        .write_dataset_with_ts(out, &explicit_le())
        .map_err(|e| PixelError::Dataset(crate::base::error_chain(&e)))
}

struct Counting<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
