//! One frame to native little-endian pixels.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use dicom_core::value::C;
use dicom_encoding::adapters::{PixelDataObject, PixelDataReader, RawPixelData};
use dicom_encoding::transfer_syntax::Codec;

use super::codestream;
use super::frames::{FrameRanges, append_range, frame_ranges};
use super::header::ImageHeader;
use super::syntax::{self, EXPLICIT_VR_BIG_ENDIAN, trim};
use super::{PixelError, check_frame};
use super::{jpeg, rle};
use crate::store::{InstanceRecord, PixelLayout};

/// One frame (numbered from 1) decoded to native little-endian bytes, as
/// Explicit VR Little Endian stores them after decompression: the same Bits
/// Allocated; colour as the decoder hands it back (interleaved, planar
/// configuration 0; JPEG lossy YCbCr and JPEG 2000 YBR_ICT/RCT become RGB,
/// see [`photometric_after_decoding`]). Native frames come back as stored,
/// byte-swapped from big endian, inflated from deflate. 1-bit frames that
/// do not start on a byte boundary are shifted to start on one.
pub fn decode_frame(
    path: &Path,
    record: &InstanceRecord,
    frame: u32,
) -> Result<Vec<u8>, PixelError> {
    if record.layout.pixel.is_none() {
        return Err(PixelError::NoPixelData);
    }
    let header = ImageHeader::read(path)?;
    check_frame(frame, header.frames)?;
    let mut frames = FrameSource::open(path, record, &header)?;
    frames.decode(frame)
}

/// Decodes `frames` (numbered from 1) of one instance in turn, reading its
/// header and locating its frames once, and hands each to `each` as soon as
/// it is decoded: a response streams frame by frame, holding one at a time.
/// Every frame number is checked before the first is decoded.
pub fn decode_frames(
    path: &Path,
    record: &InstanceRecord,
    frames: &[u32],
    mut each: impl FnMut(u32, Vec<u8>) -> Result<(), PixelError>,
) -> Result<(), PixelError> {
    if record.layout.pixel.is_none() {
        return Err(PixelError::NoPixelData);
    }
    let header = ImageHeader::read(path)?;
    for &frame in frames {
        check_frame(frame, header.frames)?;
    }
    let mut source = FrameSource::open(path, record, &header)?;
    for &frame in frames {
        let bytes = source.decode(frame)?;
        each(frame, bytes)?;
    }
    Ok(())
}

/// Decodes the frames of one instance, reusing its header, open file and
/// frame ranges.
pub(crate) struct FrameSource<'a> {
    header: &'a ImageHeader,
    record: &'a InstanceRecord,
    path: &'a Path,
    file: File,
    encapsulated: Option<Encapsulated>,
}

struct Encapsulated {
    decoder: &'static (dyn PixelDataReader + Send + Sync),
    ranges: Vec<FrameRanges>,
}

impl<'a> FrameSource<'a> {
    pub fn open(
        path: &'a Path,
        record: &'a InstanceRecord,
        header: &'a ImageHeader,
    ) -> Result<FrameSource<'a>, PixelError> {
        let encapsulated = match &record.layout.pixel {
            None => return Err(PixelError::NoPixelData),
            Some(PixelLayout::Native { .. }) => None,
            Some(PixelLayout::Encapsulated { .. }) => Some(Encapsulated {
                decoder: syntax::decoder(&record.transfer_syntax)?,
                ranges: frame_ranges(path, record)?,
            }),
        };
        Ok(FrameSource {
            header,
            record,
            path,
            file: File::open(path)?,
            encapsulated,
        })
    }

    pub fn decode(&mut self, frame: u32) -> Result<Vec<u8>, PixelError> {
        check_frame(frame, self.header.frames)?;
        match (&self.encapsulated, &self.record.layout.pixel) {
            (Some(enc), _) => {
                let ranges = enc.ranges.get(frame as usize - 1).ok_or_else(|| {
                    PixelError::FramesNotLocated(format!(
                        "{} frames located, frame {frame} asked",
                        enc.ranges.len()
                    ))
                })?;
                let mut data = Vec::new();
                for &(offset, len) in ranges {
                    append_range(&mut self.file, offset, len, &mut data)?;
                }
                decode_encapsulated(self.header, &self.record.transfer_syntax, enc.decoder, data)
            }
            (None, Some(PixelLayout::Native { offset, length })) => {
                self.native(frame, *offset, *length)
            }
            (None, _) => Err(PixelError::NoPixelData),
        }
    }

    fn native(&mut self, frame: u32, offset: u64, length: u64) -> Result<Vec<u8>, PixelError> {
        let bits = self.header.bits_per_frame();
        let needed = (bits * u64::from(self.header.frames)).div_ceil(8);
        if needed > length {
            return Err(PixelError::InvalidImage(format!(
                "{} frames need {needed} bytes of Pixel Data; it has {length}",
                self.header.frames
            )));
        }
        let first_bit = bits * u64::from(frame - 1);
        let start = offset + first_bit / 8;
        let shift = (first_bit % 8) as u32;
        let len = (bits + u64::from(shift)).div_ceil(8);
        let mut bytes = if self.record.layout.deflated {
            let mut inflated = inflated_dataset(self.path, self.record)?;
            io::copy(&mut (&mut inflated).take(start), &mut io::sink())?;
            let mut bytes = vec![0; len as usize];
            inflated.read_exact(&mut bytes)?;
            bytes
        } else {
            let mut bytes = Vec::new();
            append_range(&mut self.file, start, len, &mut bytes)?;
            bytes
        };
        if shift != 0 {
            bytes = shift_bits(&bytes, shift, bits);
        }
        if big_endian_words(&mut self.file, self.record, offset)? {
            swap_words(&mut bytes);
        }
        Ok(bytes)
    }
}

/// The data set of a deflated file, inflated (offsets in its layout count
/// from the start of this stream).
pub(crate) fn inflated_dataset(
    path: &Path,
    record: &InstanceRecord,
) -> Result<Box<dyn Read>, PixelError> {
    let ts = syntax::registered(&record.transfer_syntax)?;
    let Codec::Dataset(Some(adapter)) = ts.codec() else {
        return Err(PixelError::UnsupportedTransferSyntax(format!(
            "{} is not a deflated transfer syntax",
            ts.uid()
        )));
    };
    let mut file = BufReader::new(File::open(path)?);
    file.seek(SeekFrom::Start(record.dataset_offset))?;
    Ok(adapter.adapt_reader(Box::new(file)))
}

/// Whether native pixel data is big-endian OW, whose 16-bit words need
/// swapping (OB has no byte order, whatever Bits Allocated says). Its VR
/// lies 8 bytes before the value (tag, VR, reserved, length).
pub(crate) fn big_endian_words(
    file: &mut File,
    record: &InstanceRecord,
    value_offset: u64,
) -> Result<bool, PixelError> {
    if trim(&record.transfer_syntax) != EXPLICIT_VR_BIG_ENDIAN || value_offset < 8 {
        return Ok(false);
    }
    let mut vr = Vec::new();
    append_range(file, value_offset - 8, 2, &mut vr)?;
    Ok(vr == b"OW")
}

pub(crate) fn swap_words(bytes: &mut [u8]) {
    for pair in bytes.chunks_exact_mut(2) {
        pair.swap(0, 1);
    }
}

/// `bits` bits starting `shift` bits into `bytes` (DICOM packs bits from
/// the least significant), moved to start at bit 0.
fn shift_bits(bytes: &[u8], shift: u32, bits: u64) -> Vec<u8> {
    let out_len = bits.div_ceil(8) as usize;
    let mut out: Vec<u8> = (0..out_len)
        .map(|i| {
            let low = bytes[i] >> shift;
            let high = bytes.get(i + 1).map_or(0, |b| b << (8 - shift));
            low | high
        })
        .collect();
    let tail = (bits % 8) as u32;
    if let (Some(last), true) = (out.last_mut(), tail != 0) {
        *last &= (1u8 << tail) - 1;
    }
    out
}

/// Decodes one frame's codestream with dicom-rs's adapter for its
/// transfer syntax, seen as a single-frame object of one fragment.
pub(crate) fn decode_encapsulated(
    header: &ImageHeader,
    transfer_syntax: &str,
    decoder: &(dyn PixelDataReader + Send + Sync),
    data: Vec<u8>,
) -> Result<Vec<u8>, PixelError> {
    let declared = codestream::check(transfer_syntax, &data, header)?;
    // CharLS returns the planes one after the other when the components
    // were coded in separate scans
    let planar_jpegls = is_jpegls(transfer_syntax) && declared.is_some_and(|d| d.separate_scans);
    // Some decoders index or unwrap on malformed input; a corrupt frame must
    // be an error for its request, never a dead worker.
    let result = catch_unwind(AssertUnwindSafe(|| {
        match syntax::own_codec(transfer_syntax) {
            Some(syntax::OwnCodec::Jpeg) => jpeg::decode(header, &data),
            Some(syntax::OwnCodec::Rle) => rle::decode(header, &data),
            None => {
                let frame = OneFrame {
                    header,
                    transfer_syntax: trim(transfer_syntax),
                    data,
                };
                let mut out = Vec::new();
                decoder
                    .decode_frame(&frame, 0, &mut out)
                    .map_err(|e| PixelError::Decode(crate::base::error_chain(&e)))?;
                Ok(out)
            }
        }
    }));
    let mut out = match result {
        Ok(result) => result?,
        Err(_) => {
            return Err(PixelError::Decode(
                "the decoder failed on this frame".into(),
            ));
        }
    };
    let expected = header.frame_bytes();
    if out.len() as u64 != expected {
        return Err(PixelError::Decode(format!(
            "decoded {} bytes, but {}x{}x{} samples of {} bits need {expected}",
            out.len(),
            header.columns,
            header.rows,
            header.samples_per_pixel,
            header.bits_allocated
        )));
    }
    if planar_jpegls {
        out = interleave(&out, header.samples_per_pixel, header.bits_allocated);
    }
    Ok(out)
}

fn is_jpegls(transfer_syntax: &str) -> bool {
    matches!(
        trim(transfer_syntax),
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81"
    )
}

fn interleave(planes: &[u8], samples: u16, bits_allocated: u16) -> Vec<u8> {
    let width = usize::from(bits_allocated / 8).max(1);
    let samples = usize::from(samples);
    let plane = planes.len() / samples;
    let mut out = vec![0; planes.len()];
    for (s, src) in planes.chunks_exact(plane).enumerate() {
        for (p, value) in src.chunks_exact(width).enumerate() {
            let at = (p * samples + s) * width;
            out[at..at + width].copy_from_slice(value);
        }
    }
    out
}

/// The Photometric Interpretation of decoded pixels: the JPEG DCT decoder
/// turns YCbCr into RGB, and JPEG 2000's inverse component transforms turn
/// YBR_ICT/YBR_RCT into RGB; other codecs return the samples as coded.
pub(crate) fn photometric_after_decoding(header: &ImageHeader, transfer_syntax: &str) -> String {
    let pi = header.photometric_interpretation.as_str();
    if header.samples_per_pixel == 3 {
        let ybr = pi.starts_with("YBR_");
        if matches!(pi, "YBR_ICT" | "YBR_RCT")
            || (ybr && syntax::decoder_converts_ybr(transfer_syntax))
        {
            return "RGB".into();
        }
    }
    pi.to_string()
}

/// One frame's codestream as a single-frame, single-fragment object.
struct OneFrame<'a> {
    header: &'a ImageHeader,
    transfer_syntax: &'a str,
    data: Vec<u8>,
}

impl PixelDataObject for OneFrame<'_> {
    fn transfer_syntax_uid(&self) -> &str {
        self.transfer_syntax
    }
    fn rows(&self) -> Option<u16> {
        Some(self.header.rows)
    }
    fn cols(&self) -> Option<u16> {
        Some(self.header.columns)
    }
    fn samples_per_pixel(&self) -> Option<u16> {
        Some(self.header.samples_per_pixel)
    }
    fn bits_allocated(&self) -> Option<u16> {
        Some(self.header.bits_allocated)
    }
    fn bits_stored(&self) -> Option<u16> {
        Some(self.header.bits_stored)
    }
    fn photometric_interpretation(&self) -> Option<&str> {
        Some(&self.header.photometric_interpretation)
    }
    fn number_of_frames(&self) -> Option<u32> {
        Some(1)
    }
    fn number_of_fragments(&self) -> Option<u32> {
        Some(1)
    }
    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        (fragment == 0).then_some(Cow::Borrowed(&self.data))
    }
    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        None
    }
    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        Some(RawPixelData {
            fragments: C::from(vec![self.data.clone()]),
            offset_table: C::new(),
        })
    }
}
