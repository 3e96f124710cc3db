//! Tests against real peers: DCMTK compresses, decompresses and renders;
//! OpenJPEG and OpenJPH encode JPEG 2000 and HTJ2K. A test whose tool is
//! missing skips with its reason, unless PUSHGATE_CI is set: then it fails.

mod codecs;
mod errors;
mod jpeg2000;
mod memory;
mod rendering;
mod speed;
mod transcoding;

use std::path::{Path, PathBuf};
use std::process::Command;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;

use crate::base::Timestamp;
use crate::part10::{parse_dataset, read_part10_header};
use crate::store::{InstanceAttrs, InstanceRecord, Source};

pub(super) fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-dicom")
        .join(rel)
}

/// What the index would keep of a file, read with `part10` alone (pixels
/// sits beside intake and does not import it).
pub(super) fn record(path: &Path) -> InstanceRecord {
    let file = std::fs::File::open(path).unwrap_or_else(|e| fail(path, e));
    let header = read_part10_header(&file).unwrap_or_else(|e| fail(path, e));
    let parsed = parse_dataset(&file, header.dataset_offset, &header.transfer_syntax)
        .unwrap_or_else(|e| fail(path, e));
    let obj = &parsed.object;
    let int = |tag| obj.get(tag).and_then(|e| e.to_int::<i64>().ok());
    let u16_of = |tag| int(tag).and_then(|v| u16::try_from(v).ok());
    InstanceRecord {
        attrs: InstanceAttrs {
            sop_class_uid: header.sop_class.trim_end_matches(['\0', ' ']).to_string(),
            instance_number: int(tags::INSTANCE_NUMBER),
            rows: u16_of(tags::ROWS),
            columns: u16_of(tags::COLUMNS),
            bits_allocated: u16_of(tags::BITS_ALLOCATED),
            number_of_frames: int(tags::NUMBER_OF_FRAMES).and_then(|v| u32::try_from(v).ok()),
        },
        transfer_syntax: header.transfer_syntax,
        size: file.metadata().unwrap_or_else(|e| fail(path, e)).len(),
        mtime_ns: 0,
        dataset_offset: header.dataset_offset,
        crc32: None,
        received_at: Timestamp(0),
        source: Source::Reindex,
        layout: parsed.layout,
    }
}

fn fail<T>(path: &Path, e: impl std::fmt::Display) -> T {
    panic!("{}: {e}", path.display())
}

/// The tool by its full path (pip packages put other `storescu`s and the
/// like earlier on PATH).
pub(super) fn tool(name: &str) -> Option<PathBuf> {
    let path = Path::new("/usr/bin").join(name);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("PUSHGATE_CI").is_none(),
        "{name} is missing under PUSHGATE_CI (make deps installs it)"
    );
    eprintln!("skipped: {} not installed (make deps)", path.display());
    None
}

/// Every tool a test needs, or `None` (after saying which is missing).
pub(super) fn tools<const N: usize>(names: [&str; N]) -> Option<[PathBuf; N]> {
    let found: Vec<PathBuf> = names.iter().filter_map(|n| tool(n)).collect();
    found.try_into().ok()
}

pub(super) fn run(program: &Path, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(super) fn run_output(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(super) fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A native file's frames as stored, read by dicom-object (not by the
/// code under test), colour by pixel.
pub(super) fn native_frames(path: &Path) -> Vec<Vec<u8>> {
    let object = OpenFileOptions::new().open_file(path).expect("readable");
    let number = |tag| {
        object
            .element(tag)
            .ok()
            .and_then(|e| e.to_int::<usize>().ok())
    };
    let rows = number(tags::ROWS).expect("Rows");
    let columns = number(tags::COLUMNS).expect("Columns");
    let samples = number(tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let bits = number(tags::BITS_ALLOCATED).expect("Bits Allocated");
    let frames = number(tags::NUMBER_OF_FRAMES).unwrap_or(1);
    let planar = number(tags::PLANAR_CONFIGURATION).unwrap_or(0);
    let bytes = object
        .element(tags::PIXEL_DATA)
        .expect("Pixel Data")
        .to_bytes()
        .expect("native")
        .into_owned();
    let size = rows * columns * samples * bits / 8;
    assert!(
        bytes.len() >= size * frames,
        "{}: short pixel data",
        path.display()
    );
    bytes
        .chunks_exact(size)
        .take(frames)
        .map(|frame| {
            if planar == 1 && samples > 1 {
                by_pixel(frame, samples)
            } else {
                frame.to_vec()
            }
        })
        .collect()
}

fn by_pixel(planes: &[u8], samples: usize) -> Vec<u8> {
    let plane = planes.len() / samples;
    (0..planes.len())
        .map(|i| planes[(i % samples) * plane + i / samples])
        .collect()
}

pub(super) fn attribute(path: &Path, tag: dicom_core::Tag) -> String {
    let object = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .expect("readable");
    super::header::text(&object, tag)
}

/// A 96×64 RGB gradient with a few hard edges, written as a 24-bit BMP and
/// made into a Secondary Capture instance by DCMTK's img2dcm.
pub(super) fn colour_instance(dir: &Path) -> Option<PathBuf> {
    let img2dcm = tool("img2dcm")?;
    let (width, height) = (96u32, 64u32);
    let row = width * 3; // a multiple of 4: no row padding
    let size = 54 + row * height;
    let mut bmp = Vec::with_capacity(size as usize);
    bmp.extend_from_slice(b"BM");
    for v in [size, 0, 54, 40] {
        bmp.extend_from_slice(&v.to_le_bytes());
    }
    bmp.extend_from_slice(&width.to_le_bytes());
    bmp.extend_from_slice(&height.to_le_bytes());
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    for v in [0u32, row * height, 2835, 2835, 0, 0] {
        bmp.extend_from_slice(&v.to_le_bytes());
    }
    for y in 0..height {
        for x in 0..width {
            let (r, g, b) = if (x / 16 + y / 16) % 3 == 0 {
                (230, 30, 40)
            } else {
                (
                    (x * 255 / width) as u8,
                    (y * 255 / height) as u8,
                    ((x + y) % 256) as u8,
                )
            };
            bmp.extend_from_slice(&[b, g, r]);
        }
    }
    let bmp_path = dir.join("colour.bmp");
    std::fs::write(&bmp_path, bmp).expect("write bmp");
    let dcm = dir.join("colour.dcm");
    run(
        &img2dcm,
        &["-i", "BMP", path_str(&bmp_path), path_str(&dcm)],
    );
    Some(dcm)
}

/// Largest absolute difference between samples and the mean of the
/// absolute differences.
pub(super) fn difference(a: &[u8], b: &[u8], bits_allocated: u16) -> (u32, f64) {
    assert_eq!(a.len(), b.len(), "frame sizes differ");
    let samples: Vec<(i64, i64)> = if bits_allocated == 16 {
        a.chunks_exact(2)
            .zip(b.chunks_exact(2))
            .map(|(x, y)| {
                (
                    i64::from(u16::from_le_bytes([x[0], x[1]])),
                    i64::from(u16::from_le_bytes([y[0], y[1]])),
                )
            })
            .collect()
    } else {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (i64::from(x), i64::from(y)))
            .collect()
    };
    let diffs: Vec<u64> = samples.iter().map(|(x, y)| x.abs_diff(*y)).collect();
    let max = diffs.iter().copied().max().unwrap_or(0) as u32;
    let mean = diffs.iter().sum::<u64>() as f64 / diffs.len().max(1) as f64;
    (max, mean)
}
