//! Errors, never panics or wrong pixels: missing pixel data, frames out of
//! range, syntaxes without a decoder, corrupt and truncated fragments,
//! fragments that cannot be attributed to frames.

use std::io::Cursor;
use std::path::Path;

use super::{path_str, record, run, sample, tools};
use crate::pixels::{
    ImageFormat, PixelError, RenderOptions, can_decode, decode_frame, frame_media_type,
    frame_ranges, render, write_explicit_le,
};
use crate::store::PixelLayout;

fn options(frame: u32) -> RenderOptions {
    RenderOptions {
        frame,
        window: None,
        format: ImageFormat::Png,
        fit: None,
    }
}

#[test]
fn no_pixel_data() {
    let sr = sample("ct-phantom/SR000001.dcm");
    let record = record(&sr);
    assert!(matches!(
        decode_frame(&sr, &record, 1),
        Err(PixelError::NoPixelData)
    ));
    assert!(matches!(
        frame_ranges(&sr, &record),
        Err(PixelError::NoPixelData)
    ));
    assert!(matches!(
        render(&sr, &record, &options(1)),
        Err(PixelError::NoPixelData)
    ));
}

#[test]
fn frames_out_of_range() {
    let xa = sample("multiframe/XA000001.dcm");
    let record = record(&xa);
    for frame in [0, 21, u32::MAX] {
        assert!(
            matches!(
                decode_frame(&xa, &record, frame),
                Err(PixelError::FrameOutOfRange { frames: 20, .. })
            ),
            "frame {frame}"
        );
        assert!(matches!(
            render(&xa, &record, &options(frame)),
            Err(PixelError::FrameOutOfRange { frames: 20, .. })
        ));
    }
    assert_eq!(
        decode_frame(&xa, &record, 20).expect("last frame").len(),
        256 * 256
    );
    let rle = sample("rle/CT000001.dcm");
    assert!(matches!(
        decode_frame(&rle, &super::record(&rle), 2),
        Err(PixelError::FrameOutOfRange {
            frame: 2,
            frames: 1
        })
    ));
}

#[test]
fn unsupported_transfer_syntax() {
    let rle = sample("rle/CT000001.dcm");
    let mut record = record(&rle);
    // MPEG-2: known, but pushgate has no decoder
    record.transfer_syntax = "1.2.840.10008.1.2.4.100".into();
    assert!(!can_decode(&record.transfer_syntax));
    assert!(matches!(
        decode_frame(&rle, &record, 1),
        Err(PixelError::UnsupportedTransferSyntax(_))
    ));
    assert!(matches!(
        render(&rle, &record, &options(1)),
        Err(PixelError::UnsupportedTransferSyntax(_))
    ));
    let mut out = Vec::new();
    assert!(matches!(
        write_explicit_le(&rle, &record, &mut out),
        Err(PixelError::UnsupportedTransferSyntax(_))
    ));
    assert!(
        out.is_empty(),
        "nothing is written before the syntax is known to decode"
    );
    record.transfer_syntax = "1.2.3.4.5".into();
    assert!(matches!(
        decode_frame(&rle, &record, 1),
        Err(PixelError::UnsupportedTransferSyntax(_))
    ));
}

#[test]
fn media_types_and_decoders() {
    let cases = [
        ("1.2.840.10008.1.2.4.50", Some("image/jpeg"), true),
        ("1.2.840.10008.1.2.4.51", Some("image/jpeg"), true),
        ("1.2.840.10008.1.2.4.57", Some("image/jpeg"), true),
        ("1.2.840.10008.1.2.4.70", Some("image/jpeg"), true),
        ("1.2.840.10008.1.2.4.80", Some("image/jls"), true),
        ("1.2.840.10008.1.2.4.81", Some("image/jls"), true),
        ("1.2.840.10008.1.2.4.90", Some("image/jp2"), true),
        ("1.2.840.10008.1.2.4.91", Some("image/jp2"), true),
        ("1.2.840.10008.1.2.4.201", Some("image/jphc"), true),
        ("1.2.840.10008.1.2.4.202", Some("image/jphc"), true),
        ("1.2.840.10008.1.2.4.203", Some("image/jphc"), true),
        ("1.2.840.10008.1.2.4.110", Some("image/jxl"), false),
        ("1.2.840.10008.1.2.5", Some("image/dicom-rle"), true),
        ("1.2.840.10008.1.2", None, true),
        ("1.2.840.10008.1.2.1", None, true),
        ("1.2.840.10008.1.2.1\0", None, true),
        ("1.2.840.10008.1.2.2", None, true),
        ("1.2.840.10008.1.2.1.99", None, true),
        ("1.2.840.10008.1.2.4.100", None, false),
    ];
    for (uid, media_type, decodes) in cases {
        assert_eq!(frame_media_type(uid), media_type, "{uid}");
        assert_eq!(can_decode(uid), decodes, "{uid}");
    }
}

/// A copy of `input` with `patch` applied to its first fragment's bytes.
fn corrupted(input: &Path, dir: &Path, patch: impl FnOnce(&mut [u8])) -> std::path::PathBuf {
    let record = record(input);
    let Some(PixelLayout::Encapsulated { fragments, .. }) = &record.layout.pixel else {
        panic!("{} is not encapsulated", input.display());
    };
    let (offset, len) = fragments[0];
    let mut bytes = std::fs::read(input).expect("read");
    patch(&mut bytes[offset as usize..offset as usize + len as usize]);
    let path = dir.join("corrupt.dcm");
    std::fs::write(&path, bytes).expect("write");
    path
}

fn decode_error(path: &Path, record: &crate::store::InstanceRecord) -> String {
    match decode_frame(path, record, 1) {
        Err(PixelError::Decode(reason)) => reason,
        other => panic!("corrupt frame gave {:?}", other.map(|p| p.len())),
    }
}

#[test]
fn corrupt_rle_and_jpeg_fragments_are_decode_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rle = sample("rle/CT000001.dcm");
    let record = record(&rle);
    for patch in [
        (|b: &mut [u8]| b[..4].copy_from_slice(&200u32.to_le_bytes())) as fn(&mut [u8]),
        |b| b[8..12].copy_from_slice(&u32::MAX.to_le_bytes()),
        |b| b.iter_mut().for_each(|x| *x = 0xFF),
    ] {
        let path = corrupted(&rle, dir.path(), patch);
        decode_error(&path, &record);
        let mut out = Vec::new();
        assert!(write_explicit_le(&path, &record, &mut out).is_err());
        assert!(
            out.is_empty(),
            "the first frame is decoded before anything is written"
        );
    }

    // a JPEG whose frame header claims 65535×65535: refused before the
    // decoder allocates for it
    let us = sample("jpeg/US000001.dcm");
    let record = super::record(&us);
    let path = corrupted(&us, dir.path(), |b| {
        let sof = b.windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
        b[sof + 5..sof + 9].copy_from_slice(&[0xFF; 4]);
    });
    let reason = decode_error(&path, &record);
    assert!(reason.contains("65535x65535"), "{reason}");

    // bytes flipped all over the first frame: an error or some pixels,
    // never a panic
    let len = match &record.layout.pixel {
        Some(PixelLayout::Encapsulated { fragments, .. }) => fragments[0].1 as usize,
        _ => unreachable!(),
    };
    for at in (0..len).step_by(len / 47 + 1) {
        let path = corrupted(&us, dir.path(), |b| b[at] ^= 0xA5);
        let _ = decode_frame(&path, &record, 1);
        let _ = render(&path, &record, &options(1));
    }
}

#[test]
fn truncated_file_is_a_decode_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rle = sample("rle/CT000001.dcm");
    let record = record(&rle);
    let bytes = std::fs::read(&rle).expect("read");
    let path = dir.path().join("truncated.dcm");
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).expect("write");
    let reason = decode_error(&path, &record);
    assert!(reason.contains("beyond the end of the file"), "{reason}");
    let mut out = Cursor::new(Vec::new());
    assert!(write_explicit_le(&path, &record, &mut out).is_err());
}

/// DCMTK's 1 KiB fragments without an offset table: frames are found by
/// the SOI marker each starts with; without markers to go by (RLE has
/// none), it is an error, not a guess.
#[test]
fn fragments_without_offset_table() {
    let Some([dcmcjpeg]) = tools(["dcmcjpeg"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let encoded = dir.path().join("fragmented.dcm");
    let xa = sample("multiframe/XA000001.dcm");
    run(
        &dcmcjpeg,
        &["+e1", "+fs", "1", "-ot", path_str(&xa), path_str(&encoded)],
    );
    let mut record = record(&encoded);
    let Some(PixelLayout::Encapsulated {
        offset_table,
        fragments,
    }) = &record.layout.pixel
    else {
        panic!("not encapsulated");
    };
    assert!(offset_table.is_empty());
    assert!(fragments.len() > 40, "{} fragments", fragments.len());
    let ranges = frame_ranges(&encoded, &record).expect("frames located by SOI");
    assert_eq!(ranges.len(), 20);
    assert_eq!(ranges.iter().map(Vec::len).sum::<usize>(), fragments.len());
    let bytes = std::fs::read(&encoded).expect("read");
    for frame in &ranges {
        let (offset, _) = frame[0];
        assert_eq!(&bytes[offset as usize..offset as usize + 2], &[0xFF, 0xD8]);
    }
    record.transfer_syntax = "1.2.840.10008.1.2.5".into();
    assert!(matches!(
        frame_ranges(&encoded, &record),
        Err(PixelError::FramesNotLocated(_))
    ));
}

/// The Extended Offset Table attributes the fragments when the Basic
/// Offset Table is empty, even where no codestream marker could (the
/// record is made to claim RLE, which has none).
#[test]
fn extended_offset_table() {
    let Some([dcmcjpeg]) = tools(["dcmcjpeg"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let encoded = dir.path().join("fragmented.dcm");
    let xa = sample("multiframe/XA000001.dcm");
    run(
        &dcmcjpeg,
        &["+e1", "+fs", "1", "-ot", path_str(&xa), path_str(&encoded)],
    );
    let by_markers = frame_ranges(&encoded, &record(&encoded)).expect("located by SOI");
    let first = by_markers[0][0].0;
    let offsets: Vec<u64> = by_markers.iter().map(|f| f[0].0 - first).collect();
    let mut object = dicom_object::open_file(&encoded).expect("read");
    object.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::EXTENDED_OFFSET_TABLE,
        dicom_core::VR::OV,
        dicom_core::PrimitiveValue::U64(offsets.into()),
    ));
    let with_table = dir.path().join("extended.dcm");
    object.write_to_file(&with_table).expect("write");
    let mut record = record(&with_table);
    record.transfer_syntax = "1.2.840.10008.1.2.5".into();
    let by_table = frame_ranges(&with_table, &record).expect("located by the table");
    let shift = by_table[0][0].0 - first;
    let shifted: Vec<Vec<(u64, u64)>> = by_markers
        .iter()
        .map(|f| f.iter().map(|&(o, l)| (o + shift, l)).collect())
        .collect();
    assert_eq!(by_table, shifted);
}
