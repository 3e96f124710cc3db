//! CT head phantom study (`ct-phantom/`) and the RLE Lossless follow-up
//! study of the same patient (`rle/`).

use std::path::Path;

use anyhow::Result;
use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, Length, VR};
use dicom_dictionary_std::{tags, uids};

use crate::ds::{Ds, i16_bytes, into_file_object, write_file, write_part10};
use crate::modules::{self, Axial, Mono, Patient, Series, Study};
use crate::phantom::{self, ct_hu, noise, sample_2x2};
use crate::rle::{self, FrameLayout};
use crate::uid::from_name;
use crate::{presentation, report};

pub const SLICES: usize = 16;
/// 256 x 256 pixels over a 240 mm field of view, 5 mm slices.
pub const GEOMETRY: Axial = Axial {
    size: 256,
    spacing: 0.9375,
    thickness: 5.0,
};
/// Stored value outside the reconstruction circle (HU -3024).
const PADDING: i16 = -2000;
const INTERCEPT: f64 = -1024.0;

/// Table position of slice `k` (0-based): -37.5 .. +37.5 mm.
pub fn slice_z(k: usize) -> f64 {
    -37.5 + GEOMETRY.thickness * k as f64
}

/// Index of the slice closest to the lesion centre.
pub fn lesion_slice() -> usize {
    let ([_, _, z], _) = phantom::lesion_mm();
    (0..SLICES)
        .min_by(|&a, &b| (slice_z(a) - z).abs().total_cmp(&(slice_z(b) - z).abs()))
        .unwrap_or(0)
}

pub fn jansen() -> Patient {
    Patient {
        name: "Jansen^Anna",
        bsn: "999912343",
        local_id: None,
        birth_date: "19580614",
        sex: "F",
        age: "065Y",
        weight_kg: 68.0,
    }
}

pub fn study() -> Study {
    Study {
        uid: from_name("ct-phantom/study"),
        id: "CT24031201",
        date: "20240312",
        time: "094107",
        accession: "ZKHA24031201",
        referring: "de Vries^Pieter",
        description: "CT hersenen zonder contrast",
    }
}

pub fn series() -> Series {
    Series {
        uid: from_name("ct-phantom/series/1"),
        number: 1,
        modality: "CT",
        description: "Hersenen 5mm axiaal",
        time: "094212",
        body_part: "HEAD",
        protocol: "Hersenen blanco",
        patient_position: Some("HFS"),
        station: "CT1",
        model: "Synthetic CT",
    }
}

pub fn instance_uid(k: usize) -> String {
    from_name(&format!("ct-phantom/series/1/instance/{}", k + 1))
}

/// Stored pixel values (HU + 1024) of the phantom at table position `z`.
pub fn pixels(z: f64) -> Vec<i16> {
    let n = usize::from(GEOMETRY.size);
    let radius = f64::from(GEOMETRY.size) / 2.0 * GEOMETRY.spacing;
    let zkey = ((z + 1000.0) * 10.0).round() as u32;
    let mut px = Vec::with_capacity(n * n);
    for r in 0..n {
        let y = GEOMETRY.centre(r);
        for c in 0..n {
            let x = GEOMETRY.centre(c);
            if x * x + y * y > radius * radius {
                px.push(PADDING);
                continue;
            }
            let hu = sample_2x2(x, y, z, GEOMETRY.spacing, ct_hu)
                + 5.0 * noise(c as u32, r as u32, zkey, 0xC7);
            px.push((hu - INTERCEPT).round().clamp(-1024.0, 4095.0) as i16);
        }
    }
    px
}

/// A complete CT Image Storage instance for slice `k` (without transfer
/// syntax specifics; Pixel Data native).
pub fn image(
    p: &Patient,
    st: &Study,
    se: &Series,
    frame_of_reference: &str,
    sop_uid: &str,
    k: usize,
) -> Result<Ds> {
    let z = slice_z(k);
    let mut ds = Ds::new();
    modules::patient(&mut ds, p)?;
    modules::study(&mut ds, st);
    modules::series(&mut ds, st, se);
    modules::frame_of_reference(&mut ds, frame_of_reference);
    modules::sop_common(
        &mut ds,
        uids::CT_IMAGE_STORAGE,
        sop_uid,
        None,
        (st.date, se.time),
    );
    let acq_time = format!("{}.{:03}", se.time, 250 * (k % 4));
    ds.m(tags::IMAGE_TYPE, VR::CS, &["ORIGINAL", "PRIMARY", "AXIAL"])
        .is(tags::INSTANCE_NUMBER, k as i64 + 1)
        .is(tags::ACQUISITION_NUMBER, 1)
        .s(tags::ACQUISITION_DATE, VR::DA, st.date)
        .s(tags::ACQUISITION_TIME, VR::TM, &acq_time)
        .s(tags::CONTENT_DATE, VR::DA, st.date)
        .s(tags::CONTENT_TIME, VR::TM, &acq_time)
        .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO")
        .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    modules::axial_plane(&mut ds, GEOMETRY, z);
    ds.ds(tags::SPACING_BETWEEN_SLICES, &[GEOMETRY.thickness]);
    modules::image_pixel(
        &mut ds,
        Mono {
            rows: GEOMETRY.size,
            cols: GEOMETRY.size,
            bits_allocated: 16,
            bits_stored: 16,
            signed: true,
        },
    );
    // CT Image Module (C.8.2.1)
    ds.ds(tags::KVP, &[120.0])
        .s(tags::SCAN_OPTIONS, VR::CS, "HELICAL MODE")
        .ds(tags::DATA_COLLECTION_DIAMETER, &[250.0])
        .ds(tags::RECONSTRUCTION_DIAMETER, &[240.0])
        .ds(tags::GANTRY_DETECTOR_TILT, &[0.0])
        .ds(tags::TABLE_HEIGHT, &[142.5])
        .s(tags::ROTATION_DIRECTION, VR::CS, "CW")
        .is(tags::EXPOSURE_TIME, 1000)
        .is(tags::X_RAY_TUBE_CURRENT, 280)
        .is(tags::EXPOSURE, 280)
        .s(tags::FILTER_TYPE, VR::SH, "HEAD")
        .s(tags::CONVOLUTION_KERNEL, VR::SH, "H30s")
        .ds(tags::RESCALE_INTERCEPT, &[INTERCEPT])
        .ds(tags::RESCALE_SLOPE, &[1.0])
        .s(tags::RESCALE_TYPE, VR::LO, "HU")
        .ss(tags::PIXEL_PADDING_VALUE, PADDING)
        .ds(tags::WINDOW_CENTER, &[40.0, 600.0])
        .ds(tags::WINDOW_WIDTH, &[80.0, 2800.0])
        .m(
            tags::WINDOW_CENTER_WIDTH_EXPLANATION,
            VR::LO,
            &["HERSENEN", "BOT"],
        )
        .bytes(tags::PIXEL_DATA, VR::OW, i16_bytes(&pixels(z)));
    Ok(ds)
}

/// Write `ct-phantom/`: the CT series, a GSPS and an SR report.
pub fn write_study(dir: &Path) -> Result<usize> {
    let (p, st, se) = (jansen(), study(), series());
    let for_uid = from_name("ct-phantom/frame-of-reference");
    for k in 0..SLICES {
        let ds = image(&p, &st, &se, &for_uid, &instance_uid(k), k)?;
        let path = dir.join(format!("CT{:06}.dcm", k + 1));
        write_part10(ds, uids::EXPLICIT_VR_LITTLE_ENDIAN, &path)?;
    }
    presentation::write(dir, &p, &st)?;
    report::write(dir, &p, &st)?;
    Ok(SLICES + 2)
}

/// Write `rle/`: one slice of a follow-up CT study of the same patient, in
/// RLE Lossless. Its pixels equal those of the lesion slice in `ct-phantom/`.
pub fn write_rle(dir: &Path) -> Result<usize> {
    let p = jansen();
    let st = Study {
        uid: from_name("rle/study"),
        id: "CT24091702",
        date: "20240917",
        time: "141530",
        accession: "ZKHA24091702",
        referring: "de Vries^Pieter",
        description: "CT hersenen controle",
    };
    let se = Series {
        uid: from_name("rle/series/1"),
        description: "Hersenen 5mm controle RLE",
        time: "141602",
        ..series()
    };
    let k = lesion_slice();
    let mut ds = image(
        &p,
        &st,
        &se,
        &from_name("rle/frame-of-reference"),
        &from_name("rle/instance/1"),
        k,
    )?;
    ds.is(tags::INSTANCE_NUMBER, 1);
    let native = i16_bytes(&pixels(slice_z(k)));
    let layout = FrameLayout {
        rows: usize::from(GEOMETRY.size),
        cols: usize::from(GEOMETRY.size),
        samples_per_pixel: 1,
        bytes_per_sample: 2,
    };
    let frame = rle::encode_frame(&native, layout)?;
    ds.0.put(DataElement::new_with_len(
        tags::PIXEL_DATA,
        VR::OB,
        Length::UNDEFINED,
        PixelFragmentSequence::new(Vec::<u32>::new(), vec![frame]),
    ));
    let obj = into_file_object(ds, uids::RLE_LOSSLESS)?;
    write_file(&obj, &dir.join("CT000001.dcm"))?;
    Ok(1)
}
