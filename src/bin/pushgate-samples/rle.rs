//! DICOM RLE Lossless encoder (PS3.5 Annex G).
//!
//! A frame is split into byte segments (per sample, most significant byte
//! first), each segment is PackBits-compressed row by row (runs never cross
//! a row boundary, G.3.1), padded with a zero byte to even length, and the
//! segments are prefixed with the 64-byte RLE header (segment count plus
//! fifteen little-endian offsets relative to the start of the header).

use anyhow::{Result, ensure};

/// Layout of one native frame (little endian, interleaved samples).
#[derive(Debug, Clone, Copy)]
pub struct FrameLayout {
    pub rows: usize,
    pub cols: usize,
    pub samples_per_pixel: usize,
    pub bytes_per_sample: usize,
}

/// Encode one native frame into an RLE frame (header + segments).
pub fn encode_frame(native: &[u8], layout: FrameLayout) -> Result<Vec<u8>> {
    let FrameLayout {
        rows,
        cols,
        samples_per_pixel: spp,
        bytes_per_sample: bps,
    } = layout;
    let segments = spp * bps;
    ensure!(
        (1..=15).contains(&segments),
        "RLE allows 1..=15 segments, not {segments}"
    );
    ensure!(rows > 0 && cols > 0, "empty frame");
    let pixels = rows * cols;
    ensure!(
        native.len() == pixels * segments,
        "frame has {} bytes, expected {}",
        native.len(),
        pixels * segments
    );

    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(&(segments as u32).to_le_bytes());
    let mut plane = vec![0u8; pixels];
    for seg in 0..segments {
        let (sample, byte_from_msb) = (seg / bps, seg % bps);
        // little endian storage: the most significant byte is the last one
        let byte_index = sample * bps + (bps - 1 - byte_from_msb);
        for (p, b) in plane.iter_mut().enumerate() {
            *b = native[p * segments + byte_index];
        }
        let offset = u32::try_from(out.len())?;
        out[4 + 4 * seg..8 + 4 * seg].copy_from_slice(&offset.to_le_bytes());
        for row in plane.chunks(cols) {
            packbits_row(row, &mut out);
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
    }
    Ok(out)
}

/// Length of the run of identical bytes at the start of `s`, at most 128.
fn run_length(s: &[u8]) -> usize {
    match s.first() {
        None => 0,
        Some(&b) => s.iter().take(128).take_while(|&&x| x == b).count(),
    }
}

fn push_literal(lit: &[u8], out: &mut Vec<u8>) {
    for chunk in lit.chunks(128) {
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
}

/// PackBits-encode one row: header n in 0..=127 copies the next n+1 bytes,
/// n in -127..=-1 repeats the next byte 1-n times; -128 is never written.
/// Runs of three or more are always replicate runs; a two-byte run is a
/// replicate run unless it sits between two literal runs.
pub fn packbits_row(row: &[u8], out: &mut Vec<u8>) {
    let mut lit_start = 0;
    let mut i = 0;
    while i < row.len() {
        let run = run_length(&row[i..]);
        let inside_literal =
            i > lit_start && i + run < row.len() && run_length(&row[i + run..]) == 1;
        if run >= 3 || (run == 2 && !inside_literal) {
            push_literal(&row[lit_start..i], out);
            out.push((1i16 - run as i16) as i8 as u8);
            out.push(row[i]);
            i += run;
            lit_start = i;
        } else {
            i += run;
            while i - lit_start >= 128 {
                push_literal(&row[lit_start..lit_start + 128], out);
                lit_start += 128;
            }
        }
    }
    push_literal(&row[lit_start..], out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::PixelFragmentSequence;
    use dicom_core::{DataElement, Length, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_pixeldata::PixelDecoder;

    use crate::ds::{Ds, into_file_object};

    /// Reference PackBits decoder for one segment.
    fn unpack(seg: &[u8], expected: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < expected {
            let n = seg[i] as i8;
            i += 1;
            if n >= 0 {
                let len = n as usize + 1;
                let lit = &seg[i..i + len];
                assert!(
                    !lit.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]),
                    "three-byte repeat inside a literal run"
                );
                out.extend_from_slice(lit);
                i += len;
            } else {
                assert_ne!(n, -128, "-128 must not be emitted");
                out.extend(std::iter::repeat_n(seg[i], (1 - n as isize) as usize));
                i += 1;
            }
        }
        assert_eq!(out.len(), expected, "run crossed the end");
        out
    }

    fn pack(row: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        packbits_row(row, &mut out);
        out
    }

    #[test]
    fn packbits_edge_cases() {
        assert_eq!(pack(&[7; 3]), [0xFE, 7]); // -2
        assert_eq!(pack(&[7; 128]), [0x81, 7]); // -127: 128 copies
        assert_eq!(pack(&[7; 129]), [0x81, 7, 0, 7]); // 128 + literal 1
        assert_eq!(pack(&[7; 130]), [0x81, 7, 0xFF, 7]); // 128 + replicate 2
        assert_eq!(pack(&[7; 131]), [0x81, 7, 0xFE, 7]);
        assert_eq!(pack(&[1, 2, 3]), [2, 1, 2, 3]);
        assert_eq!(pack(&[5]), [0, 5]);
        assert_eq!(pack(&[5, 5]), [0xFF, 5]);
        // a 2-run between literals is merged into the literal
        assert_eq!(pack(&[1, 2, 2, 3]), [3, 1, 2, 2, 3]);
        // a 2-run at the start is a replicate run
        assert_eq!(pack(&[2, 2, 3]), [0xFF, 2, 0, 3]);
        // three-byte repeats are always replicate runs
        assert_eq!(pack(&[1, 4, 4, 4, 2]), [0, 1, 0xFE, 4, 0, 2]);
        // literal longer than 128 is split
        let lit: Vec<u8> = (0..300u32).map(|i| (i * 37 % 251) as u8).collect();
        let enc = pack(&lit);
        assert_eq!(enc[0], 127);
        assert_eq!(enc[129], 127);
        assert_eq!(enc[258], 43);
        assert_eq!(enc.len(), 303);
        assert_eq!(unpack(&enc, lit.len()), lit);
    }

    #[test]
    fn packbits_round_trip_patterns() {
        let mut seed = 1u64;
        for len in [1usize, 2, 3, 127, 128, 129, 255, 256, 257, 1000] {
            for variant in 0..6u64 {
                let row: Vec<u8> = (0..len)
                    .map(|i| {
                        seed = crate::phantom::mix64(seed);
                        match variant {
                            0 => 0,
                            1 => (seed % 3) as u8,
                            2 => (i / 50) as u8,
                            3 => (seed >> 8) as u8,
                            4 => ((i / 2) % 2) as u8,
                            _ => (i % 200 / 130) as u8,
                        }
                    })
                    .collect();
                assert_eq!(unpack(&pack(&row), len), row, "len {len} variant {variant}");
            }
        }
    }

    fn header(frame: &[u8]) -> Vec<u32> {
        frame[..64]
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn frame_layout_and_padding() -> Result<()> {
        // 3 x 3, 16-bit: odd segment lengths get padded
        let px: Vec<u16> = vec![0x1234; 9];
        let native = crate::ds::u16_bytes(&px);
        let layout = FrameLayout {
            rows: 3,
            cols: 3,
            samples_per_pixel: 1,
            bytes_per_sample: 2,
        };
        let f = encode_frame(&native, layout)?;
        let h = header(&f);
        assert_eq!(h[0], 2);
        assert_eq!(h[1], 64);
        assert!(h[2..].iter().skip(1).all(|&o| o == 0));
        // each row "aaa" -> 2 bytes, 3 rows -> 6 bytes per segment (rows not merged)
        assert_eq!(&f[64..70], &[0xFE, 0x12, 0xFE, 0x12, 0xFE, 0x12]);
        assert_eq!(h[2], 70);
        assert_eq!(&f[70..], &[0xFE, 0x34, 0xFE, 0x34, 0xFE, 0x34]);

        // 1 x 3 8-bit: a 2-byte segment "02 a b c" is 4 bytes, 1 x 1: 2 bytes
        let layout = FrameLayout {
            rows: 1,
            cols: 1,
            samples_per_pixel: 1,
            bytes_per_sample: 1,
        };
        let f = encode_frame(&[9], layout)?;
        assert_eq!(&f[64..], &[0, 9]);
        let layout = FrameLayout {
            rows: 1,
            cols: 2,
            samples_per_pixel: 1,
            bytes_per_sample: 1,
        };
        let f = encode_frame(&[1, 2], layout)?;
        assert_eq!(&f[64..], &[1, 1, 2, 0]); // 3 bytes + zero pad
        assert_eq!(f.len() % 2, 0);
        Ok(())
    }

    /// Decode our RLE frame with dicom-rs (dicom-pixeldata's RLE decoder).
    fn dicom_rs_decode(
        frame: Vec<u8>,
        rows: u16,
        cols: u16,
        spp: u16,
        bits: u16,
    ) -> Result<Vec<u8>> {
        let mut ds = Ds::new();
        ds.s(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE)
            .s(tags::SOP_INSTANCE_UID, VR::UI, "2.25.1")
            .us(tags::SAMPLES_PER_PIXEL, spp)
            .s(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                if spp == 3 { "RGB" } else { "MONOCHROME2" },
            )
            .us(tags::ROWS, rows)
            .us(tags::COLUMNS, cols)
            .us(tags::BITS_ALLOCATED, bits)
            .us(tags::BITS_STORED, bits)
            .us(tags::HIGH_BIT, bits - 1)
            .us(tags::PIXEL_REPRESENTATION, 0);
        if spp == 3 {
            ds.us(tags::PLANAR_CONFIGURATION, 0);
        }
        ds.0.put(DataElement::new_with_len(
            tags::PIXEL_DATA,
            VR::OB,
            Length::UNDEFINED,
            PixelFragmentSequence::new(Vec::<u32>::new(), vec![frame]),
        ));
        let obj = into_file_object(ds, uids::RLE_LOSSLESS)?;
        Ok(obj.decode_pixel_data()?.data().to_vec())
    }

    #[test]
    fn round_trip_with_dicom_rs_16bit() -> Result<()> {
        let (rows, cols) = (37usize, 301usize); // odd sizes, rows > 128 bytes
        let px: Vec<i16> = (0..rows * cols)
            .map(|i| {
                let (r, c) = (i / cols, i % cols);
                match r % 4 {
                    0 => -2000,                  // long runs, MSB 0xF8
                    1 => (c as i16 * 13) - 1500, // literals
                    2 => {
                        if c < 140 {
                            24
                        } else {
                            1100
                        }
                    } // 128+ runs
                    _ => (crate::phantom::mix64(i as u64) & 0xFFF) as i16,
                }
            })
            .collect();
        let native = crate::ds::i16_bytes(&px);
        let layout = FrameLayout {
            rows,
            cols,
            samples_per_pixel: 1,
            bytes_per_sample: 2,
        };
        let frame = encode_frame(&native, layout)?;
        assert_eq!(frame.len() % 2, 0);
        let decoded = dicom_rs_decode(frame, rows as u16, cols as u16, 1, 16)?;
        assert_eq!(decoded, native);
        Ok(())
    }

    #[test]
    fn round_trip_with_dicom_rs_8bit_rgb() -> Result<()> {
        let (rows, cols) = (5usize, 257usize);
        let native: Vec<u8> = (0..rows * cols * 3)
            .map(|i| if i % 3 == 0 { 200 } else { (i / 7 % 256) as u8 })
            .collect();
        let layout = FrameLayout {
            rows,
            cols,
            samples_per_pixel: 3,
            bytes_per_sample: 1,
        };
        let frame = encode_frame(&native, layout)?;
        assert_eq!(header(&frame)[0], 3);
        let decoded = dicom_rs_decode(frame, rows as u16, cols as u16, 3, 8)?;
        assert_eq!(decoded, native);
        Ok(())
    }

    #[test]
    fn rejects_bad_layouts() {
        let l = FrameLayout {
            rows: 2,
            cols: 2,
            samples_per_pixel: 1,
            bytes_per_sample: 2,
        };
        assert!(encode_frame(&[0; 7], l).is_err());
        let l = FrameLayout {
            rows: 1,
            cols: 1,
            samples_per_pixel: 4,
            bytes_per_sample: 4,
        };
        assert!(encode_frame(&[0; 16], l).is_err());
    }
}
