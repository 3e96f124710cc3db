//! RLE Lossless frames (PS3.5 Annex G) for any whole-byte Bits Allocated:
//! dicom-rs's adapter decodes 8 and 16 bits only, so 32-bit RT Dose and
//! Secondary Capture images need this.

use super::PixelError;
use super::header::ImageHeader;

/// One frame to native little-endian samples, interleaved (planar
/// configuration 0). Segment order: for each sample, its bytes from the
/// most significant (G.2).
pub(crate) fn decode(header: &ImageHeader, data: &[u8]) -> Result<Vec<u8>, PixelError> {
    let offsets = segment_offsets(data)?;
    let width = usize::from(header.bits_allocated / 8);
    let samples = usize::from(header.samples_per_pixel);
    if !header.bits_allocated.is_multiple_of(8) || width == 0 {
        return Err(PixelError::Unsupported(format!(
            "RLE with Bits Allocated {}",
            header.bits_allocated
        )));
    }
    if offsets.len() != width * samples {
        return Err(PixelError::Decode(format!(
            "RLE frame has {} segments; {samples} samples of {} bits need {}",
            offsets.len(),
            header.bits_allocated,
            width * samples
        )));
    }
    let pixels = usize::try_from(header.pixels_per_frame()).map_err(|_| PixelError::TooLarge {
        bytes: header.frame_bytes(),
    })?;
    let mut out = vec![0u8; pixels * width * samples];
    let mut segment = Vec::with_capacity(pixels);
    for (i, &start) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(data.len());
        unpack_bits(&data[start..end], pixels, &mut segment)
            .map_err(|why| PixelError::Decode(format!("RLE segment {}: {why}", i + 1)))?;
        let (sample, byte) = (i / width, i % width);
        // segment 0 of a sample is its most significant byte
        let at = sample * width + (width - 1 - byte);
        for (p, &value) in segment.iter().enumerate() {
            out[p * width * samples + at] = value;
        }
    }
    Ok(out)
}

/// The RLE header (G.5): 16 little-endian words, the number of segments
/// (1 to 15) and their offsets, ascending, within the frame.
pub(crate) fn segment_offsets(data: &[u8]) -> Result<Vec<usize>, PixelError> {
    if data.len() < 64 {
        return Err(PixelError::Decode(format!(
            "RLE frame of {} bytes has no header",
            data.len()
        )));
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]) as usize
    };
    let segments = word(0);
    if !(1..=15).contains(&segments) {
        return Err(PixelError::Decode(format!(
            "RLE header declares {segments} segments"
        )));
    }
    let mut previous = 64;
    let mut offsets = Vec::with_capacity(segments);
    for i in 1..=segments {
        let offset = word(i);
        if offset < previous || offset > data.len() {
            return Err(PixelError::Decode(format!(
                "RLE segment {i} offset {offset} is invalid"
            )));
        }
        offsets.push(offset);
        previous = offset;
    }
    Ok(offsets)
}

/// PackBits (G.3.1) into exactly `len` bytes: a segment that decodes to
/// fewer is an error; bytes beyond `len` (padding some encoders add) are
/// dropped.
fn unpack_bits(mut input: &[u8], len: usize, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    while out.len() < len {
        let Some((&n, rest)) = input.split_first() else {
            return Err(format!("decodes to {} bytes of {len}", out.len()));
        };
        input = rest;
        let n = n as i8;
        if n >= 0 {
            let count = n as usize + 1;
            let literal = input
                .get(..count)
                .ok_or_else(|| "literal run beyond the segment".to_string())?;
            out.extend_from_slice(literal);
            input = &input[count..];
        } else if n != -128 {
            let (&value, rest) = input
                .split_first()
                .ok_or_else(|| "replicate run beyond the segment".to_string())?;
            out.resize(out.len() + (1 - n as isize) as usize, value);
            input = rest;
        }
    }
    out.truncate(len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_literal_replicate_and_no_op() {
        let mut out = Vec::new();
        // 3 literal bytes, no-op, 4 × 9
        unpack_bits(&[2, 1, 2, 3, 0x80, 0xFD, 9], 7, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 9, 9, 9, 9]);
        assert!(unpack_bits(&[2, 1, 2, 3], 5, &mut out).is_err());
        assert!(unpack_bits(&[5, 1], 6, &mut out).is_err());
    }
}
