//! Grayscale Softcopy Presentation State for the CT lesion slice: a lesion
//! window, a circle around the lesion and a text annotation.

use std::path::Path;

use anyhow::Result;
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::ct;
use crate::ds::{Ds, sop_ref, write_part10};
use crate::modules::{self, Patient, Series, Study};
use crate::phantom;
use crate::uid::from_name;

const LAYER: &str = "ANNOTATIE";

pub fn write(dir: &Path, p: &Patient, st: &Study) -> Result<()> {
    let se = Series {
        uid: from_name("ct-phantom/series/901"),
        number: 901,
        modality: "PR",
        description: "Presentatiestatus laesie",
        time: "112200",
        body_part: "HEAD",
        protocol: "",
        patient_position: None,
        station: "PACS-WS3",
        model: "Synthetic workstation",
    };
    let k = ct::lesion_slice();
    let image_ref = || vec![sop_ref(uids::CT_IMAGE_STORAGE, &ct::instance_uid(k))];
    let g = ct::GEOMETRY;
    let size = f32::from(g.size);

    let mut ds = Ds::new();
    modules::patient(&mut ds, p)?;
    modules::study(&mut ds, st);
    modules::series(&mut ds, st, &se);
    modules::sop_common(
        &mut ds,
        uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
        &from_name("ct-phantom/pr/1"),
        None,
        (st.date, se.time),
    );

    // Presentation State Identification (C.11.10)
    ds.is(tags::INSTANCE_NUMBER, 1)
        .s(tags::CONTENT_LABEL, VR::CS, "LAESIE_FRONTAAL")
        .s(
            tags::CONTENT_DESCRIPTION,
            VR::LO,
            "Laesie rechts frontaal, hersenvenster",
        )
        .s(tags::PRESENTATION_CREATION_DATE, VR::DA, st.date)
        .s(tags::PRESENTATION_CREATION_TIME, VR::TM, se.time)
        .s(tags::CONTENT_CREATOR_NAME, VR::PN, "de Vries^Pieter");

    // Presentation State Relationship (C.11.11)
    let mut series_ref = Ds::new();
    series_ref
        .s(tags::SERIES_INSTANCE_UID, VR::UI, &ct::series().uid)
        .seq(tags::REFERENCED_IMAGE_SEQUENCE, image_ref());
    ds.seq(tags::REFERENCED_SERIES_SEQUENCE, vec![series_ref]);

    // Displayed Area (C.10.4): whole image, scaled to fit
    let mut area = Ds::new();
    area.seq(tags::REFERENCED_IMAGE_SEQUENCE, image_ref())
        .sl(tags::DISPLAYED_AREA_TOP_LEFT_HAND_CORNER, &[1, 1])
        .sl(
            tags::DISPLAYED_AREA_BOTTOM_RIGHT_HAND_CORNER,
            &[i32::from(g.size), i32::from(g.size)],
        )
        .s(tags::PRESENTATION_SIZE_MODE, VR::CS, "SCALE TO FIT")
        .ds(tags::PRESENTATION_PIXEL_SPACING, &[g.spacing, g.spacing]);
    ds.seq(tags::DISPLAYED_AREA_SELECTION_SEQUENCE, vec![area]);

    // Graphic Annotation (C.10.5): circle around the lesion plus a label
    let ([lx, ly, _], radius_mm) = phantom::lesion_mm();
    // image coordinates rounded to 0.1 pixel
    let round = |v: f64| ((v * 10.0).round() / 10.0) as f32;
    let (cx, cy) = (round(g.to_image(lx)), round(g.to_image(ly)));
    let r = round(radius_mm / g.spacing + 4.0);
    let diag = round(f64::from(r) * std::f64::consts::FRAC_1_SQRT_2);
    let mut circle = Ds::new();
    circle
        .s(tags::GRAPHIC_ANNOTATION_UNITS, VR::CS, "PIXEL")
        .us(tags::GRAPHIC_DIMENSIONS, 2)
        .us(tags::NUMBER_OF_GRAPHIC_POINTS, 2)
        .fl(tags::GRAPHIC_DATA, &[cx, cy, cx + r, cy])
        .s(tags::GRAPHIC_TYPE, VR::CS, "CIRCLE")
        .s(tags::GRAPHIC_FILLED, VR::CS, "N");
    let (tx, ty) = (
        (cx + r + 8.0).min(size - 110.0).round(),
        (cy - r - 24.0).max(2.0).round(),
    );
    let mut text = Ds::new();
    text.s(tags::BOUNDING_BOX_ANNOTATION_UNITS, VR::CS, "PIXEL")
        .s(tags::ANCHOR_POINT_ANNOTATION_UNITS, VR::CS, "PIXEL")
        .s(tags::UNFORMATTED_TEXT_VALUE, VR::ST, "Laesie ca. 18 mm")
        .fl(tags::BOUNDING_BOX_TOP_LEFT_HAND_CORNER, &[tx, ty])
        .fl(
            tags::BOUNDING_BOX_BOTTOM_RIGHT_HAND_CORNER,
            &[tx + 100.0, ty + 14.0],
        )
        .s(
            tags::BOUNDING_BOX_TEXT_HORIZONTAL_JUSTIFICATION,
            VR::CS,
            "LEFT",
        )
        .fl(tags::ANCHOR_POINT, &[cx + diag, cy - diag])
        .s(tags::ANCHOR_POINT_VISIBILITY, VR::CS, "Y");
    let mut annotation = Ds::new();
    annotation
        .seq(tags::REFERENCED_IMAGE_SEQUENCE, image_ref())
        .s(tags::GRAPHIC_LAYER, VR::CS, LAYER)
        .seq(tags::TEXT_OBJECT_SEQUENCE, vec![text])
        .seq(tags::GRAPHIC_OBJECT_SEQUENCE, vec![circle]);
    ds.seq(tags::GRAPHIC_ANNOTATION_SEQUENCE, vec![annotation]);

    // Graphic Layer (C.10.7)
    let mut layer = Ds::new();
    layer
        .s(tags::GRAPHIC_LAYER, VR::CS, LAYER)
        .is(tags::GRAPHIC_LAYER_ORDER, 1)
        .us(
            tags::GRAPHIC_LAYER_RECOMMENDED_DISPLAY_GRAYSCALE_VALUE,
            0xFFFF,
        )
        .s(
            tags::GRAPHIC_LAYER_DESCRIPTION,
            VR::LO,
            "Annotaties radioloog",
        );
    ds.seq(tags::GRAPHIC_LAYER_SEQUENCE, vec![layer]);

    // Modality LUT (C.11.1), Softcopy VOI LUT (C.11.8), Presentation LUT (C.11.6)
    ds.ds(tags::RESCALE_INTERCEPT, &[-1024.0])
        .ds(tags::RESCALE_SLOPE, &[1.0])
        .s(tags::RESCALE_TYPE, VR::LO, "HU");
    let mut voi = Ds::new();
    voi.seq(tags::REFERENCED_IMAGE_SEQUENCE, image_ref())
        .ds(tags::WINDOW_CENTER, &[50.0])
        .ds(tags::WINDOW_WIDTH, &[120.0])
        .s(tags::WINDOW_CENTER_WIDTH_EXPLANATION, VR::LO, "LAESIE");
    ds.seq(tags::SOFTCOPY_VOILUT_SEQUENCE, vec![voi]).s(
        tags::PRESENTATION_LUT_SHAPE,
        VR::CS,
        "IDENTITY",
    );

    write_part10(
        ds,
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        &dir.join("PR000001.dcm"),
    )
}
