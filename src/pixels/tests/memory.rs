//! Transcoding a large multi-frame instance needs one frame of memory, not
//! the instance: measured as the peak resident set of a child process (this
//! test binary, running only `child`).

use std::io::{self, Write};
use std::path::Path;
use std::process::Command;

use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, DicomValue, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use super::record;
use crate::pixels::{decode_frame, write_explicit_le};

const FRAMES: u32 = 500;
const SIDE: u16 = 512;
const CHILD: &str = "PUSHGATE_PIXELS_MEMORY_CHILD";

/// An RLE frame of 512×512 16-bit samples all equal to `value`: two
/// segments (high bytes, low bytes) of PackBits runs of 128.
fn rle_frame(value: u16) -> Vec<u8> {
    let plane = usize::from(SIDE) * usize::from(SIDE);
    let segment = |byte: u8| -> Vec<u8> { (0..plane / 128).flat_map(|_| [0x81, byte]).collect() };
    let (high, low) = (segment((value >> 8) as u8), segment(value as u8));
    let mut header = [0u32; 16];
    header[0] = 2;
    header[1] = 64;
    header[2] = 64 + high.len() as u32;
    let mut frame: Vec<u8> = header.iter().flat_map(|w| w.to_le_bytes()).collect();
    frame.extend(high);
    frame.extend(low);
    frame
}

fn write_large_rle(path: &Path) {
    let sop = "2.25.1000000000000000000000000000000001";
    let mut object = InMemDicomObject::new_empty();
    let text = [
        (
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
        ),
        (tags::SOP_INSTANCE_UID, VR::UI, sop),
        (
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            "2.25.1000000000000000000000000000000002",
        ),
        (
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            "2.25.1000000000000000000000000000000003",
        ),
        (tags::MODALITY, VR::CS, "OT"),
        (tags::PATIENT_ID, VR::LO, "MEMORY"),
        (tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        (tags::NUMBER_OF_FRAMES, VR::IS, "500"),
    ];
    for (tag, vr, value) in text {
        object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    }
    for (tag, value) in [
        (tags::SAMPLES_PER_PIXEL, 1),
        (tags::ROWS, SIDE),
        (tags::COLUMNS, SIDE),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 16),
        (tags::HIGH_BIT, 15),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    let fragments: Vec<Vec<u8>> = (1..=FRAMES).map(|f| rle_frame(f as u16)).collect();
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        DicomValue::PixelSequence(PixelFragmentSequence::new_fragments(fragments)),
    ));
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax("1.2.840.10008.1.2.5")
        .media_storage_sop_class_uid(
            uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
        )
        .media_storage_sop_instance_uid(sop);
    object
        .with_meta(meta)
        .expect("meta")
        .write_to_file(path)
        .expect("write");
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn transcoding_needs_one_frame_of_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("large-rle.dcm");
    write_large_rle(&path);
    let record = record(&path);
    let frame = decode_frame(&path, &record, 250).expect("frame 250");
    assert!(frame.chunks_exact(2).all(|s| s == 250u16.to_le_bytes()));

    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "pixels::tests::memory::child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, &path)
        .output()
        .expect("child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    let decoded = u64::from(FRAMES) * u64::from(SIDE) * u64::from(SIDE) * 2;
    assert!(
        field("written=") > decoded,
        "the whole pixel data was written"
    );
    let peak = field("peak_rss_kb=") * 1024;
    eprintln!(
        "{} MB decoded, peak resident {} MB",
        decoded >> 20,
        peak >> 20
    );
    assert!(peak < 64 << 20, "peak resident set {} MB", peak >> 20);
}

/// Run by `transcoding_needs_one_frame_of_memory` in its own process.
#[test]
#[ignore]
fn child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let path = Path::new(&path);
    let record = record(path);
    let mut sink = Sink(0);
    write_explicit_le(path, &record, &mut sink).expect("transcode");
    println!("written={}", sink.0);
    println!("peak_rss_kb={}", peak_rss_kb());
}
