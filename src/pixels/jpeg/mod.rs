//! JPEG frames (DICOM JPEG baseline, extended, lossless): 8-bit DCT and
//! lossless by jpeg-decoder, 12-bit DCT by [`dct12`]; the colour transform
//! decided here, from the codestream and the data set, not by the decoder's
//! own guess (which takes component IDs 0,1,2 without markers for YCbCr).

mod dct12;
pub(crate) mod markers;

use jpeg_decoder::{ColorTransform, Decoder};

use super::PixelError;
use super::header::ImageHeader;

/// One frame's codestream to native little-endian samples of the data
/// set's Bits Allocated, interleaved; YCbCr becomes RGB where
/// [`markers::Markers::ycbcr_to_rgb`] says the samples are YCbCr.
pub(crate) fn decode(header: &ImageHeader, data: &[u8]) -> Result<Vec<u8>, PixelError> {
    let markers = markers::read(data)?;
    if let Some(why) = markers.unsupported() {
        return Err(PixelError::Unsupported(why));
    }
    let to_rgb = markers.ycbcr_to_rgb(&header.photometric_interpretation);
    let wide = markers.precision > 8;
    if wide && header.bits_allocated != 16 {
        return Err(PixelError::InvalidImage(format!(
            "{}-bit JPEG samples in Bits Allocated {}",
            markers.precision, header.bits_allocated
        )));
    }
    if markers.is_sequential_huffman() && markers.precision == 12 {
        return dct12::decode(data, &markers, to_rgb);
    }
    let mut decoder = Decoder::new(data);
    decoder
        .set_max_decoding_buffer_size(usize::try_from(header.frame_bytes()).unwrap_or(usize::MAX));
    decoder.set_color_transform(match markers.components.len() {
        1 => ColorTransform::Grayscale,
        3 if to_rgb => ColorTransform::YCbCr,
        3 => ColorTransform::RGB,
        // four components: CMYK or YCCK, as the decoder reads the markers
        _ if markers.adobe_transform == Some(2) => ColorTransform::YCCK,
        _ => ColorTransform::CMYK,
    });
    let decoded = decoder
        .decode()
        .map_err(|e| PixelError::Decode(format!("JPEG: {e}")))?;
    Ok(match (wide, header.bits_allocated) {
        // jpeg-decoder hands back 16-bit samples in native byte order
        (true, _) => decoded
            .chunks_exact(2)
            .flat_map(|s| u16::from_ne_bytes([s[0], s[1]]).to_le_bytes())
            .collect(),
        // 8-bit samples in a 16-bit data set (as DCMTK widens them)
        (false, 16) => decoded
            .iter()
            .flat_map(|&s| u16::from(s).to_le_bytes())
            .collect(),
        (false, _) => decoded,
    })
}
