//! MR brain study (`mr-brain/`): T2-weighted axial slices of the phantom,
//! Implicit VR Little Endian, ISO_IR 100 patient name, BSN only in Other
//! Patient IDs Sequence.

use std::path::Path;

use anyhow::Result;
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::ds::{Ds, u16_bytes, write_part10};
use crate::modules::{self, Axial, Mono, Patient, Series, Study};
use crate::phantom::{mr_t2, noise, sample_2x2};
use crate::uid::from_name;

pub const SLICES: usize = 10;
const GEOMETRY: Axial = Axial {
    size: 256,
    spacing: 0.8984375, // 230 mm field of view
    thickness: 5.0,
};
const SLICE_GAP: f64 = 6.0;

fn slice_z(k: usize) -> f64 {
    -27.0 + SLICE_GAP * k as f64
}

pub fn muller() -> Patient {
    Patient {
        name: "Müller^Jörg",
        bsn: "999920017",
        local_id: Some(("ZKH123456", "ZKHA")),
        birth_date: "19710203",
        sex: "M",
        age: "053Y",
        weight_kg: 84.0,
    }
}

/// T2 signal with Rician noise and a gentle receive-coil bias field.
fn pixels(z: f64) -> Vec<u16> {
    let n = usize::from(GEOMETRY.size);
    let zkey = ((z + 1000.0) * 10.0).round() as u32;
    let sigma = 12.0;
    let mut px = Vec::with_capacity(n * n);
    for r in 0..n {
        let y = GEOMETRY.centre(r);
        for c in 0..n {
            let x = GEOMETRY.centre(c);
            let bias = 1.0 - 0.12 * (y / 115.0) + 0.04 * (x / 115.0);
            let s = sample_2x2(x, y, z, GEOMETRY.spacing, mr_t2) * bias;
            let (n1, n2) = (
                noise(c as u32, r as u32, zkey, 0x11),
                noise(c as u32, r as u32, zkey, 0x12),
            );
            let v = ((s + sigma * n1).powi(2) + (sigma * n2).powi(2)).sqrt();
            px.push(v.round().clamp(0.0, 4095.0) as u16);
        }
    }
    px
}

pub fn write_study(dir: &Path) -> Result<usize> {
    let p = muller();
    let st = Study {
        uid: from_name("mr-brain/study"),
        id: "MR24052103",
        date: "20240521",
        time: "160512",
        accession: "ZKHA24052103",
        referring: "Bakker^Eva",
        description: "MRI hersenen",
    };
    let se = Series {
        uid: from_name("mr-brain/series/3"),
        number: 3,
        modality: "MR",
        description: "T2 TSE axiaal",
        time: "161230",
        body_part: "HEAD",
        protocol: "Hersenen routine",
        patient_position: Some("HFS"),
        station: "MR2",
        model: "Synthetic MR 1.5T",
    };
    let for_uid = from_name("mr-brain/frame-of-reference");
    for k in 0..SLICES {
        let z = slice_z(k);
        let mut ds = Ds::new();
        modules::patient(&mut ds, &p)?;
        modules::study(&mut ds, &st);
        modules::series(&mut ds, &st, &se);
        modules::frame_of_reference(&mut ds, &for_uid);
        let sop_uid = from_name(&format!("mr-brain/series/3/instance/{}", k + 1));
        modules::sop_common(
            &mut ds,
            uids::MR_IMAGE_STORAGE,
            &sop_uid,
            Some("ISO_IR 100"),
            (st.date, se.time),
        );
        let time = format!("{}.{:03}", se.time, 100 * k);
        ds.m(
            tags::IMAGE_TYPE,
            VR::CS,
            &["ORIGINAL", "PRIMARY", "M", "ND"],
        )
        .is(tags::INSTANCE_NUMBER, k as i64 + 1)
        .is(tags::ACQUISITION_NUMBER, 1)
        .s(tags::ACQUISITION_DATE, VR::DA, st.date)
        .s(tags::ACQUISITION_TIME, VR::TM, &time)
        .s(tags::CONTENT_DATE, VR::DA, st.date)
        .s(tags::CONTENT_TIME, VR::TM, &time)
        .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO")
        .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
        modules::axial_plane(&mut ds, GEOMETRY, z);
        modules::image_pixel(
            &mut ds,
            Mono {
                rows: GEOMETRY.size,
                cols: GEOMETRY.size,
                bits_allocated: 16,
                bits_stored: 12,
                signed: false,
            },
        );
        // MR Image Module (C.8.3.1)
        ds.m(tags::SCANNING_SEQUENCE, VR::CS, &["SE"])
            .m(tags::SEQUENCE_VARIANT, VR::CS, &["SK", "SP"])
            .m(tags::SCAN_OPTIONS, VR::CS, &["SAT1"])
            .s(tags::MR_ACQUISITION_TYPE, VR::CS, "2D")
            .s(tags::SEQUENCE_NAME, VR::SH, "*tse2d1_15")
            .s(tags::ANGIO_FLAG, VR::CS, "N")
            .ds(tags::REPETITION_TIME, &[4000.0])
            .ds(tags::ECHO_TIME, &[102.0])
            .is(tags::ECHO_TRAIN_LENGTH, 15)
            .ds(tags::NUMBER_OF_AVERAGES, &[2.0])
            .ds(tags::IMAGING_FREQUENCY, &[63.676])
            .s(tags::IMAGED_NUCLEUS, VR::SH, "1H")
            .is(tags::ECHO_NUMBERS, 1)
            .ds(tags::MAGNETIC_FIELD_STRENGTH, &[1.5])
            .ds(tags::SPACING_BETWEEN_SLICES, &[SLICE_GAP])
            .is(tags::NUMBER_OF_PHASE_ENCODING_STEPS, 230)
            .ds(tags::PERCENT_SAMPLING, &[100.0])
            .ds(tags::PERCENT_PHASE_FIELD_OF_VIEW, &[100.0])
            .ds(tags::PIXEL_BANDWIDTH, &[190.0])
            .s(tags::RECEIVE_COIL_NAME, VR::SH, "Head 20")
            .s(tags::TRANSMIT_COIL_NAME, VR::SH, "Body")
            .ds(tags::FLIP_ANGLE, &[150.0])
            .us_list(tags::ACQUISITION_MATRIX, &[0, 256, 230, 0])
            .s(tags::IN_PLANE_PHASE_ENCODING_DIRECTION, VR::CS, "ROW")
            .ds(tags::WINDOW_CENTER, &[700.0])
            .ds(tags::WINDOW_WIDTH, &[1600.0])
            .bytes(tags::PIXEL_DATA, VR::OW, u16_bytes(&pixels(z)));
        let path = dir.join(format!("MR{:06}.dcm", k + 1));
        write_part10(ds, uids::IMPLICIT_VR_LITTLE_ENDIAN, &path)?;
    }
    Ok(SLICES)
}
