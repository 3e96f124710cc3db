//! Ultrasound study (`jpeg/`): one synthetic upper-abdomen B-mode image,
//! 8-bit MONOCHROME2, compressed to JPEG Baseline by dicom-pixeldata's
//! transcoder (jpeg-encoder underneath).

use std::path::Path;

use anyhow::{Context, Result};
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::entries::JPEG_BASELINE;

use crate::ds::{Ds, ds_str, into_file_object, write_file};
use crate::modules::{self, Mono, Patient, Series, Study};
use crate::phantom::uniform;
use crate::uid::from_name;

const ROWS: u16 = 480;
const COLS: u16 = 640;

pub fn de_boer() -> Patient {
    Patient {
        name: "de Boer^Sanne",
        bsn: "999930023",
        local_id: None,
        birth_date: "19890930",
        sex: "F",
        age: "034Y",
        weight_kg: 61.0,
    }
}

fn in_ellipse(x: f64, y: f64, cx: f64, cy: f64, a: f64, b: f64, rot_deg: f64) -> f64 {
    let (s, c) = rot_deg.to_radians().sin_cos();
    let (dx, dy) = (x - cx, y - cy);
    let u = (c * dx + s * dy) / a;
    let v = (-s * dx + c * dy) / b;
    u * u + v * v
}

/// Curvilinear-probe sector: liver parenchyma with speckle, an anechoic
/// gallbladder with posterior acoustic enhancement, a portal vein and the
/// bright diaphragm.
fn pixels() -> Vec<u8> {
    let (apex_r, apex_c) = (-80.0, f64::from(COLS) / 2.0);
    let (r_min, r_max) = (100.0, 545.0);
    let half_angle = 36f64.to_radians();
    let (gb_r, gb_c) = (265.0, 395.0);
    let gb_angle = (gb_c - apex_c).atan2(gb_r - apex_r);
    let gb_range = ((gb_r - apex_r).powi(2) + (gb_c - apex_c).powi(2)).sqrt();
    let mut px = Vec::with_capacity(usize::from(ROWS) * usize::from(COLS));
    for r in 0..ROWS {
        for c in 0..COLS {
            let (y, x) = (f64::from(r), f64::from(c));
            let range = ((y - apex_r).powi(2) + (x - apex_c).powi(2)).sqrt();
            let angle = (x - apex_c).atan2(y - apex_r);
            if range < r_min || range > r_max || angle.abs() > half_angle {
                px.push(0);
                continue;
            }
            let depth = (range - r_min) / (r_max - r_min);
            let mut echo = match depth {
                d if d < 0.06 => 0.45, // subcutaneous fat
                d if d < 0.11 => 0.9,  // abdominal wall muscle/fascia
                _ => 0.62,             // liver
            };
            let diaphragm = r_max - 55.0 + 18.0 * (angle * 4.0 + 0.6).sin();
            if (range - diaphragm).abs() < 3.5 {
                echo = 1.8;
            } else if range > diaphragm {
                echo = 0.25;
            }
            if in_ellipse(x, y, 255.0, 205.0, 16.0, 12.0, 0.0) <= 1.0 {
                echo = 0.06; // portal vein
            }
            let gb = in_ellipse(x, y, gb_c, gb_r, 72.0, 34.0, 18.0);
            if gb <= 1.0 {
                echo = 0.02;
            } else if gb < 1.25 {
                echo = 1.1; // gallbladder wall
            } else if range > gb_range + 15.0
                && (angle - gb_angle).abs() < 0.16
                && range < diaphragm
            {
                echo *= 1.45; // posterior acoustic enhancement
            }
            // Rayleigh speckle, grains elongated laterally
            let u = uniform(c as u32 / 3, r as u32 / 2, 1, 0x55);
            let speckle = (-2.0 * (1.0 - u).ln()).sqrt();
            let edge = ((half_angle - angle.abs()) / 0.03).min(1.0);
            let intensity = echo * speckle * (1.0 - 0.25 * depth) * edge;
            let v = 255.0 * (1.0 + 8.0 * intensity).ln() / 21f64.ln();
            px.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    px
}

pub fn write_study(dir: &Path) -> Result<usize> {
    let p = de_boer();
    let st = Study {
        uid: from_name("jpeg/study"),
        id: "US24060301",
        date: "20240603",
        time: "103015",
        accession: "ZKHA24060301",
        referring: "Visser^Maarten",
        description: "Echo bovenbuik",
    };
    let se = Series {
        uid: from_name("jpeg/series/1"),
        number: 1,
        modality: "US",
        description: "Lever en galblaas",
        time: "103210",
        body_part: "ABDOMEN",
        protocol: "Bovenbuik",
        patient_position: None,
        station: "ECHO3",
        model: "Synthetic US C5-1",
    };
    let mut ds = Ds::new();
    modules::patient(&mut ds, &p)?;
    modules::study(&mut ds, &st);
    modules::series(&mut ds, &st, &se);
    modules::sop_common(
        &mut ds,
        uids::ULTRASOUND_IMAGE_STORAGE,
        &from_name("jpeg/instance/1"),
        None,
        (st.date, se.time),
    );
    ds.m(
        tags::IMAGE_TYPE,
        VR::CS,
        &["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"],
    )
    .is(tags::INSTANCE_NUMBER, 1)
    .empty(tags::PATIENT_ORIENTATION, VR::CS)
    .s(tags::CONTENT_DATE, VR::DA, st.date)
    .s(tags::CONTENT_TIME, VR::TM, se.time)
    .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
    modules::image_pixel(
        &mut ds,
        Mono {
            rows: ROWS,
            cols: COLS,
            bits_allocated: 8,
            bits_stored: 8,
            signed: false,
        },
    );
    let native = pixels();
    let native_len = native.len();
    ds.bytes(tags::PIXEL_DATA, VR::OB, native);

    let mut obj = into_file_object(ds, uids::EXPLICIT_VR_LITTLE_ENDIAN)?;
    obj.transcode(&JPEG_BASELINE.erased())
        .context("JPEG Baseline encoding")?;
    let compressed: usize = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.fragments())
        .context("encapsulated pixel data missing after transcoding")?
        .iter()
        .map(Vec::len)
        .sum();
    // The US Image IOD is single-frame: no Multi-frame Module. The optional
    // Encapsulated Pixel Data Value Total Length (7FE0,0003, VR UV) is
    // dropped too: many deployed toolkits (e.g. DCMTK 3.6.7) do not know it.
    obj.remove_element(tags::NUMBER_OF_FRAMES);
    obj.remove_element(tags::ENCAPSULATED_PIXEL_DATA_VALUE_TOTAL_LENGTH);
    obj.put_str(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "01");
    obj.put_str(
        tags::LOSSY_IMAGE_COMPRESSION_RATIO,
        VR::DS,
        ds_str((native_len as f64 / compressed as f64 * 100.0).round() / 100.0),
    );
    obj.put_str(tags::LOSSY_IMAGE_COMPRESSION_METHOD, VR::CS, "ISO_10918_1");
    write_file(&obj, &dir.join("US000001.dcm"))?;
    Ok(1)
}
