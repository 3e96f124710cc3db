//! X-Ray Angiographic multi-frame study (`multiframe/`): a synthetic left
//! coronary run, contrast arriving, filling and washing out over the frames,
//! with cardiac motion. 8-bit, Explicit VR Little Endian.

use std::f64::consts::TAU;
use std::path::Path;

use anyhow::Result;
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::ds::{Ds, write_part10};
use crate::modules::{self, Mono, Patient, Series, Study};
use crate::phantom::noise;
use crate::uid::from_name;

pub const FRAMES: usize = 20;
const SIZE: usize = 256;
const FRAME_TIME_MS: f64 = 66.67; // 15 frames/s

pub fn visser() -> Patient {
    Patient {
        name: "Visser^Hendrik",
        bsn: "999940016",
        local_id: Some(("ZKH654321", "ZKHA")),
        birth_date: "19500422",
        sex: "M",
        age: "073Y",
        weight_kg: 91.0,
    }
}

type Pt = (f64, f64);

/// A vessel: cubic Bezier (column, row), start radius, and the contrast
/// arrival delay in frames relative to the ostium.
struct Vessel {
    ctrl: [Pt; 4],
    radius: f64,
    delay: f64,
}

const VESSELS: [Vessel; 4] = [
    // left main + LAD
    Vessel {
        ctrl: [(78.0, 62.0), (118.0, 78.0), (150.0, 140.0), (196.0, 224.0)],
        radius: 3.2,
        delay: 0.0,
    },
    // circumflex
    Vessel {
        ctrl: [(84.0, 66.0), (58.0, 112.0), (66.0, 176.0), (104.0, 232.0)],
        radius: 2.6,
        delay: 0.5,
    },
    // diagonal
    Vessel {
        ctrl: [
            (124.0, 96.0),
            (150.0, 100.0),
            (178.0, 112.0),
            (214.0, 128.0),
        ],
        radius: 1.8,
        delay: 1.5,
    },
    // obtuse marginal
    Vessel {
        ctrl: [(69.0, 128.0), (88.0, 146.0), (104.0, 168.0), (122.0, 196.0)],
        radius: 1.6,
        delay: 2.0,
    },
];

const CATHETER: [Pt; 4] = [(20.0, 256.0), (30.0, 150.0), (50.0, 70.0), (78.0, 62.0)];

fn bezier(p: &[Pt; 4], t: f64) -> Pt {
    let u = 1.0 - t;
    let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
    (
        a * p[0].0 + b * p[1].0 + c * p[2].0 + d * p[3].0,
        a * p[0].1 + b * p[1].1 + c * p[2].1 + d * p[3].1,
    )
}

/// Add a tube of radius `r` at `centre` with peak attenuation `dark`.
fn stamp(buf: &mut [f64], centre: Pt, r: f64, dark: f64) {
    let lo = |v: f64| (v - r).floor().max(0.0) as usize;
    let hi = |v: f64| ((v + r).ceil().max(0.0) as usize).min(SIZE - 1);
    for row in lo(centre.1)..=hi(centre.1) {
        for col in lo(centre.0)..=hi(centre.0) {
            let dx = col as f64 + 0.5 - centre.0;
            let dy = row as f64 + 0.5 - centre.1;
            let d2 = (dx * dx + dy * dy) / (r * r);
            if d2 < 1.0 {
                let i = row * SIZE + col;
                buf[i] = buf[i].max(dark * (1.0 - d2).sqrt());
            }
        }
    }
}

/// Draw a curve from t = 0 to `t_end` with a radius tapering by 45 %.
fn draw(buf: &mut [f64], ctrl: &[Pt; 4], shift: Pt, radius: f64, t_end: f64, dark: f64) {
    let steps = 400;
    for i in 0..=steps {
        let t = f64::from(i) / f64::from(steps);
        if t > t_end {
            break;
        }
        let (x, y) = bezier(ctrl, t);
        stamp(
            buf,
            (x + shift.0, y + shift.1),
            radius * (1.0 - 0.45 * t),
            dark,
        );
    }
}

/// Contrast fraction of a vessel (0..1 along its length) and density.
fn contrast(frame: f64, delay: f64) -> (f64, f64) {
    let arrival = 3.0 + delay;
    let fill = ((frame - arrival) / 5.0).clamp(0.0, 1.0);
    let washout = 1.0 - ((frame - 15.0) / 6.0).clamp(0.0, 0.8);
    (fill, 95.0 * washout)
}

fn frame_pixels(f: usize) -> Vec<u8> {
    let fr = f as f64;
    let phase = TAU * fr / 8.0; // ~113 beats/min at 15 fps
    let shift = (3.0 * phase.sin(), 2.0 * (phase + 1.0).sin());
    let mut dark = vec![0.0; SIZE * SIZE];
    draw(
        &mut dark,
        &CATHETER,
        (shift.0 * 0.3, shift.1 * 0.3),
        1.6,
        1.0,
        55.0,
    );
    for v in &VESSELS {
        let (fill, density) = contrast(fr, v.delay);
        if fill > 0.0 {
            draw(&mut dark, &v.ctrl, shift, v.radius, fill, density);
        }
    }
    let mut px = Vec::with_capacity(SIZE * SIZE);
    for r in 0..SIZE {
        for c in 0..SIZE {
            let (x, y) = (c as f64, r as f64);
            let spine = 28.0 * (-((x - 150.0) / 20.0).powi(2)).exp();
            let r_heart = ((x - 118.0).powi(2) + (y - 150.0).powi(2)).sqrt();
            let heart = 22.0 / (1.0 + ((r_heart - 88.0) / 8.0).exp());
            let lung = 12.0 * (x / 45.0 + 0.4).sin() * (y / 60.0).cos();
            let bg = 168.0 + lung - spine - heart - 0.08 * y;
            let v = bg - dark[r * SIZE + c] + 3.0 * noise(c as u32, r as u32, f as u32, 0xA7);
            px.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    px
}

pub fn write_study(dir: &Path) -> Result<usize> {
    let p = visser();
    let st = Study {
        uid: from_name("multiframe/study"),
        id: "XA24022801",
        date: "20240228",
        time: "081955",
        accession: "ZKHA24022801",
        referring: "Mulder^Johan",
        description: "Coronairangiografie",
    };
    let se = Series {
        uid: from_name("multiframe/series/1"),
        number: 1,
        modality: "XA",
        description: "LCA RAO 30 CRAN 20",
        time: "083412",
        body_part: "HEART",
        protocol: "Coronair links",
        patient_position: None,
        station: "CATHLAB1",
        model: "Synthetic XA",
    };
    let mut ds = Ds::new();
    modules::patient(&mut ds, &p)?;
    modules::study(&mut ds, &st);
    modules::series(&mut ds, &st, &se);
    modules::sop_common(
        &mut ds,
        uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE,
        &from_name("multiframe/instance/1"),
        None,
        (st.date, se.time),
    );
    ds.m(
        tags::IMAGE_TYPE,
        VR::CS,
        &["ORIGINAL", "PRIMARY", "SINGLE PLANE"],
    )
    .is(tags::INSTANCE_NUMBER, 1)
    .empty(tags::PATIENT_ORIENTATION, VR::CS)
    .s(tags::CONTENT_DATE, VR::DA, st.date)
    .s(tags::CONTENT_TIME, VR::TM, se.time)
    .s(
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        "20240228083412.000000+0100",
    )
    .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO")
    .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00")
    .s(tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, "LIN");
    modules::image_pixel(
        &mut ds,
        Mono {
            rows: SIZE as u16,
            cols: SIZE as u16,
            bits_allocated: 8,
            bits_stored: 8,
            signed: false,
        },
    );
    // Multi-frame (C.7.6.6) and Cine (C.7.6.5)
    ds.is(tags::NUMBER_OF_FRAMES, FRAMES as i64)
        .at(tags::FRAME_INCREMENT_POINTER, tags::FRAME_TIME)
        .ds(tags::FRAME_TIME, &[FRAME_TIME_MS])
        .is(tags::CINE_RATE, 15)
        .is(tags::RECOMMENDED_DISPLAY_FRAME_RATE, 15)
        .is(tags::START_TRIM, 1)
        .is(tags::STOP_TRIM, FRAMES as i64);
    // Contrast/Bolus (C.7.6.4)
    ds.s(tags::CONTRAST_BOLUS_AGENT, VR::LO, "Iodixanol 320")
        .s(tags::CONTRAST_BOLUS_ROUTE, VR::LO, "Intra-arterieel")
        .ds(tags::CONTRAST_BOLUS_VOLUME, &[8.0]);
    // X-Ray Acquisition (C.8.7.2) and XA Positioner (C.8.7.5)
    ds.ds(tags::KVP, &[78.0])
        .s(tags::RADIATION_SETTING, VR::CS, "GR")
        .is(tags::X_RAY_TUBE_CURRENT, 620)
        .is(tags::EXPOSURE_TIME, 7)
        .is(tags::EXPOSURE, 4)
        .ds(tags::INTENSIFIER_SIZE, &[230.0])
        .s(tags::FIELD_OF_VIEW_SHAPE, VR::CS, "ROUND")
        .ds(tags::IMAGER_PIXEL_SPACING, &[0.9, 0.9])
        .ds(tags::DISTANCE_SOURCE_TO_DETECTOR, &[1100.0])
        .ds(tags::DISTANCE_SOURCE_TO_PATIENT, &[760.0])
        .s(tags::POSITIONER_MOTION, VR::CS, "STATIC")
        .ds(tags::POSITIONER_PRIMARY_ANGLE, &[-30.0])
        .ds(tags::POSITIONER_SECONDARY_ANGLE, &[20.0])
        .ds(tags::WINDOW_CENTER, &[128.0])
        .ds(tags::WINDOW_WIDTH, &[256.0]);
    let mut pixels = Vec::with_capacity(FRAMES * SIZE * SIZE);
    for f in 0..FRAMES {
        pixels.extend(frame_pixels(f));
    }
    ds.bytes(tags::PIXEL_DATA, VR::OB, pixels);
    write_part10(
        ds,
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        &dir.join("XA000001.dcm"),
    )?;
    Ok(1)
}
