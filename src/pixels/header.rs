//! The attributes before the pixel data, and the image attributes among
//! them that decoding needs.

use std::path::Path;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use super::PixelError;

/// A stored instance read up to (not including) its Pixel Data.
pub(crate) struct ImageHeader {
    pub object: DefaultDicomObject,
    pub rows: u16,
    pub columns: u16,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub photometric_interpretation: String,
    pub frames: u32,
}

impl ImageHeader {
    pub fn read(path: &Path) -> Result<ImageHeader, PixelError> {
        let object = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| PixelError::Dataset(crate::base::error_chain(&e)))?;
        ImageHeader::from_object(object)
    }

    pub fn from_object(object: DefaultDicomObject) -> Result<ImageHeader, PixelError> {
        let required = |tag: Tag, name: &str| {
            uint(&object, tag)
                .ok_or_else(|| PixelError::InvalidImage(format!("{name} missing or invalid")))
        };
        let rows = required(tags::ROWS, "Rows")?;
        let columns = required(tags::COLUMNS, "Columns")?;
        let bits_allocated = required(tags::BITS_ALLOCATED, "Bits Allocated")?;
        let samples_per_pixel = uint(&object, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
        let bits_stored = uint(&object, tags::BITS_STORED).unwrap_or(bits_allocated);
        if rows == 0 || columns == 0 || samples_per_pixel == 0 {
            return Err(PixelError::InvalidImage(format!(
                "{rows} rows, {columns} columns, {samples_per_pixel} samples per pixel"
            )));
        }
        if !matches!(bits_allocated, 1 | 8 | 16 | 32 | 64) {
            return Err(PixelError::InvalidImage(format!(
                "Bits Allocated {bits_allocated}"
            )));
        }
        let photometric_interpretation = text(&object, tags::PHOTOMETRIC_INTERPRETATION);
        let frames = object
            .element(tags::NUMBER_OF_FRAMES)
            .ok()
            .and_then(|e| e.to_int::<i64>().ok())
            .map_or(1, |n| n.clamp(1, i64::from(u32::MAX)) as u32);
        Ok(ImageHeader {
            object,
            rows,
            columns,
            samples_per_pixel,
            bits_allocated,
            bits_stored,
            photometric_interpretation,
            frames,
        })
    }

    pub fn pixels_per_frame(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.columns)
    }

    /// Bits of one frame stored natively (all samples).
    pub fn bits_per_frame(&self) -> u64 {
        self.pixels_per_frame() * u64::from(self.samples_per_pixel) * u64::from(self.bits_allocated)
    }

    /// Bytes of one decoded frame; 1-bit frames are rounded up to whole
    /// bytes.
    pub fn frame_bytes(&self) -> u64 {
        self.bits_per_frame().div_ceil(8)
    }
}

pub(crate) fn uint(object: &DefaultDicomObject, tag: Tag) -> Option<u16> {
    object.element(tag).ok()?.to_int::<u16>().ok()
}

pub(crate) fn text(object: &DefaultDicomObject, tag: Tag) -> String {
    object
        .element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_string())
        .unwrap_or_default()
}
