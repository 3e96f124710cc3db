//! Benchmark data: a many-slice CT series (`bench`) and one huge multi-frame
//! instance streamed to disk without holding its pixel data (`large`).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::ds::{Ds, into_file_object, write_file};
use crate::modules::{self, Axial, Mono, Patient, Series, Study};
use crate::uid::from_name;

fn bench_patient() -> Patient {
    Patient {
        name: "Benchmark^Patient",
        bsn: "999950022",
        local_id: None,
        birth_date: "19800101",
        sex: "O",
        age: "044Y",
        weight_kg: 75.0,
    }
}

fn bench_study(key: &str, description: &'static str) -> Study {
    Study {
        uid: from_name(&format!("{key}/study")),
        id: "BENCH1",
        date: "20240401",
        time: "120000",
        accession: "BENCH0001",
        referring: "",
        description,
    }
}

fn bench_series(key: &str, modality: &'static str, description: &'static str) -> Series {
    Series {
        uid: from_name(&format!("{key}/series/1")),
        number: 1,
        modality,
        description,
        time: "120100",
        body_part: "",
        protocol: "",
        patient_position: None,
        station: "BENCH",
        model: "Synthetic benchmark",
    }
}

/// Cheap deterministic 12-bit pattern for frame/slice `k` into `out`
/// (little endian 16-bit).
fn pattern(out: &mut Vec<u8>, rows: usize, cols: usize, k: usize) {
    out.clear();
    for r in 0..rows {
        for c in 0..cols {
            let v = ((c + 2 * r + 5 * k) & 0x3FF) + (((c ^ r) >> 3) & 0x3F) * 8 + 16;
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
    }
}

/// `bench DIR --count N --size S`: N CT slices of S x S, one file each.
pub fn bench(dir: &Path, count: u32, size: u16, salt: &str) -> Result<()> {
    ensure!(count > 0 && size > 0, "count and size must be positive");
    ensure!(
        count <= 999_999,
        "at most 999999 slices (file names CT000001..)"
    );
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = Instant::now();
    let key = format!("bench/{salt}/{count}x{size}");
    let (p, st) = (bench_patient(), bench_study(&key, "Benchmark CT"));
    let mut se = bench_series(&key, "CT", "Benchmark axiaal");
    se.patient_position = Some("HFS");
    let g = Axial {
        size,
        spacing: 400.0 / f64::from(size),
        thickness: 1.0,
    };

    let mut template = Ds::new();
    modules::patient(&mut template, &p)?;
    modules::study(&mut template, &st);
    modules::series(&mut template, &st, &se);
    modules::frame_of_reference(
        &mut template,
        &from_name(&format!("{key}/frame-of-reference")),
    );
    template
        .m(tags::IMAGE_TYPE, VR::CS, &["ORIGINAL", "PRIMARY", "AXIAL"])
        .is(tags::ACQUISITION_NUMBER, 1)
        .s(tags::CONTENT_DATE, VR::DA, st.date)
        .s(tags::CONTENT_TIME, VR::TM, se.time)
        .ds(tags::KVP, &[120.0])
        .ds(tags::RESCALE_INTERCEPT, &[-1024.0])
        .ds(tags::RESCALE_SLOPE, &[1.0])
        .s(tags::RESCALE_TYPE, VR::LO, "HU")
        .ds(tags::WINDOW_CENTER, &[40.0])
        .ds(tags::WINDOW_WIDTH, &[400.0]);
    let mono = Mono {
        rows: size,
        cols: size,
        bits_allocated: 16,
        bits_stored: 12,
        signed: false,
    };
    modules::image_pixel(&mut template, mono);

    let n = usize::from(size);
    for k in 0..count as usize {
        let mut ds = template.clone();
        let sop_uid = from_name(&format!("{key}/instance/{}", k + 1));
        modules::sop_common(
            &mut ds,
            uids::CT_IMAGE_STORAGE,
            &sop_uid,
            None,
            (st.date, se.time),
        );
        let z = -(f64::from(count) / 2.0) + k as f64 * g.thickness;
        modules::axial_plane(&mut ds, g, z);
        let mut pixels = Vec::with_capacity(n * n * 2);
        pattern(&mut pixels, n, n, k);
        ds.is(tags::INSTANCE_NUMBER, k as i64 + 1)
            .bytes(tags::PIXEL_DATA, VR::OW, pixels);
        let obj = into_file_object(ds, uids::EXPLICIT_VR_LITTLE_ENDIAN)?;
        write_file(&obj, &dir.join(format!("CT{:06}.dcm", k + 1)))?;
    }
    let bytes = u64::from(count) * (n * n * 2) as u64;
    eprintln!(
        "wrote {count} slices ({} MB pixel data) to {} in {:.2?}",
        bytes / 1_000_000,
        dir.display(),
        started.elapsed()
    );
    Ok(())
}

/// `large FILE --frames N`: one Multi-frame Grayscale Word Secondary
/// Capture instance. The header is produced by dicom-object; the Pixel Data
/// element (OW, defined length) is then appended and its frames streamed.
pub fn large(file: &Path, frames: u32, rows: u16, cols: u16) -> Result<()> {
    ensure!(
        frames > 0 && rows > 0 && cols > 0,
        "frames, rows and cols must be positive"
    );
    let frame_bytes = usize::from(rows) * usize::from(cols) * 2;
    let total = frame_bytes as u64 * u64::from(frames);
    if total > 0xFFFF_FFFE {
        bail!(
            "{total} bytes of pixel data exceed the 32-bit defined length of native Pixel Data; \
             use fewer than {} frames",
            0xFFFF_FFFE / frame_bytes as u64 + 1
        );
    }
    let started = Instant::now();
    let key = format!("large/{frames}x{rows}x{cols}");
    let (p, st) = (
        bench_patient(),
        bench_study(&key, "Benchmark groot multi-frame object"),
    );
    let se = bench_series(&key, "OT", "Groot multi-frame object");

    let mut ds = Ds::new();
    modules::patient(&mut ds, &p)?;
    modules::study(&mut ds, &st);
    modules::series(&mut ds, &st, &se);
    let sop_uid = from_name(&format!("{key}/instance/1"));
    modules::sop_common(
        &mut ds,
        uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
        &sop_uid,
        None,
        (st.date, se.time),
    );
    modules::image_pixel(
        &mut ds,
        Mono {
            rows,
            cols,
            bits_allocated: 16,
            bits_stored: 12,
            signed: false,
        },
    );
    ds.m(tags::IMAGE_TYPE, VR::CS, &["DERIVED", "SECONDARY"])
        .is(tags::INSTANCE_NUMBER, 1)
        .empty(tags::PATIENT_ORIENTATION, VR::CS)
        .s(tags::CONTENT_DATE, VR::DA, st.date)
        .s(tags::CONTENT_TIME, VR::TM, se.time)
        // SC Equipment (C.8.6.1), SC Image (C.8.6.2), SC Multi-frame Image (C.8.6.3)
        .s(tags::CONVERSION_TYPE, VR::CS, "SYN")
        .s(tags::DATE_OF_SECONDARY_CAPTURE, VR::DA, st.date)
        .s(tags::TIME_OF_SECONDARY_CAPTURE, VR::TM, se.time)
        .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO")
        .s(tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY")
        .ds(tags::RESCALE_INTERCEPT, &[0.0])
        .ds(tags::RESCALE_SLOPE, &[1.0])
        .s(tags::RESCALE_TYPE, VR::LO, "US")
        .ds(tags::WINDOW_CENTER, &[800.0])
        .ds(tags::WINDOW_WIDTH, &[1600.0])
        // Multi-frame (C.7.6.6) and Cine (C.7.6.5)
        .is(tags::NUMBER_OF_FRAMES, i64::from(frames))
        .at(tags::FRAME_INCREMENT_POINTER, tags::FRAME_TIME)
        .ds(tags::FRAME_TIME, &[40.0])
        .is(tags::CINE_RATE, 25);

    let obj = into_file_object(ds, uids::EXPLICIT_VR_LITTLE_ENDIAN)?;
    let mut header = Vec::new();
    obj.write_all(&mut header).context("encoding header")?;

    let out = File::create(file).with_context(|| format!("creating {}", file.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    w.write_all(&header)?;
    // (7FE0,0010) OW, reserved 2 bytes, 32-bit length (PS3.5 7.1.2)
    w.write_all(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0])?;
    w.write_all(&(total as u32).to_le_bytes())?;
    let mut buf = Vec::with_capacity(frame_bytes);
    for f in 0..frames as usize {
        pattern(&mut buf, usize::from(rows), usize::from(cols), f);
        w.write_all(&buf)
            .with_context(|| format!("writing frame {f} to {}", file.display()))?;
    }
    w.flush()
        .with_context(|| format!("flushing {}", file.display()))?;
    eprintln!(
        "wrote {frames} frames of {rows}x{cols} ({} MiB) to {} in {:.2?}",
        total >> 20,
        file.display(),
        started.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_object::open_file;
    use dicom_pixeldata::PixelDecoder;

    #[test]
    fn large_file_is_readable_and_complete() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("large.dcm");
        large(&path, 3, 16, 24)?;
        let obj = open_file(&path)?;
        assert_eq!(
            obj.meta().transfer_syntax(),
            uids::EXPLICIT_VR_LITTLE_ENDIAN
        );
        assert_eq!(obj.element(tags::NUMBER_OF_FRAMES)?.to_int::<u32>()?, 3);
        let decoded = obj.decode_pixel_data()?;
        let mut expected = Vec::new();
        for f in 0..3 {
            let mut frame = Vec::new();
            pattern(&mut frame, 16, 24, f);
            expected.extend(frame);
        }
        assert_eq!(decoded.data(), &expected[..]);
        // nothing after the pixel data
        let len = fs::metadata(&path)?.len() as usize;
        let bytes = fs::read(&path)?;
        assert_eq!(&bytes[len - expected.len()..], &expected[..]);
        Ok(())
    }

    #[test]
    fn large_rejects_oversized_pixel_data() {
        let path = Path::new("/nonexistent/never-written.dcm");
        assert!(large(path, 8192, 512, 512).is_err());
    }

    #[test]
    fn bench_writes_distinct_slices() -> Result<()> {
        let dir = tempfile::tempdir()?;
        bench(dir.path(), 3, 32, "test")?;
        let a = open_file(dir.path().join("CT000001.dcm"))?;
        let c = open_file(dir.path().join("CT000003.dcm"))?;
        let uid = |o: &dicom_object::DefaultDicomObject, t| -> Result<String> {
            Ok(o.element(t)?.to_str()?.into_owned())
        };
        assert_eq!(
            uid(&a, tags::SERIES_INSTANCE_UID)?,
            uid(&c, tags::SERIES_INSTANCE_UID)?
        );
        assert_ne!(
            uid(&a, tags::SOP_INSTANCE_UID)?,
            uid(&c, tags::SOP_INSTANCE_UID)?
        );
        let pa = a.element(tags::PIXEL_DATA)?.to_bytes()?.into_owned();
        assert_eq!(pa.len(), 32 * 32 * 2);
        assert!(pa.iter().any(|&b| b != 0));
        assert_ne!(pa, c.element(tags::PIXEL_DATA)?.to_bytes()?.into_owned());
        Ok(())
    }
}
