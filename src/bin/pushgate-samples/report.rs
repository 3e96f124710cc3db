//! Basic Text SR radiology report for the CT study (TID 2000 "Basic
//! Diagnostic Imaging Report" structure), in Dutch, UTF-8 (ISO_IR 192).

use std::path::Path;

use anyhow::Result;
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::ct;
use crate::ds::{Ds, code_item, sop_ref, write_part10};
use crate::modules::{self, INSTITUTION, Patient, Series, Study};
use crate::uid::from_name;

type Code = (&'static str, &'static str, &'static str);

const REPORT: Code = ("18748-4", "LN", "Diagnostic Imaging Report");
const LANGUAGE: Code = ("121049", "DCM", "Language of Content Item and Descendants");
const DUTCH: Code = ("nl", "RFC5646", "Dutch");
const OBSERVER: Code = ("121008", "DCM", "Person Observer Name");
const FINDINGS: Code = ("121070", "DCM", "Findings");
const FINDING: Code = ("121071", "DCM", "Finding");
const IMPRESSIONS: Code = ("121072", "DCM", "Impressions");
const IMPRESSION: Code = ("121073", "DCM", "Impression");

const RADIOLOGIST: &str = "de Vries^Pieter";

const FINDING_TEXT: &str = "Scherp begrensde, hyperdense extra-axiale laesie rechts frontaal \
van circa 18 mm (serie 1, beeld 11), zonder perifeer oedeem. Geen intracraniële bloeding. \
Ventrikels van normale wijdte en symmetrisch. Geen middenlijnverschuiving.";
const IMPRESSION_TEXT: &str = "Laesie rechts frontaal, meest passend bij een meningeoom. \
Aanvullende MRI met gadolinium geadviseerd.";

fn concept(item: &mut Ds, c: Code) {
    item.code(tags::CONCEPT_NAME_CODE_SEQUENCE, c.0, c.1, c.2);
}

fn content(relationship: &str, value_type: &str, name: Option<Code>) -> Ds {
    let mut item = Ds::new();
    item.s(tags::RELATIONSHIP_TYPE, VR::CS, relationship)
        .s(tags::VALUE_TYPE, VR::CS, value_type);
    if let Some(c) = name {
        concept(&mut item, c);
    }
    item
}

fn text(relationship: &str, name: Code, value: &str) -> Ds {
    let mut item = content(relationship, "TEXT", Some(name));
    item.s(tags::TEXT_VALUE, VR::UT, value);
    item
}

fn container(name: Code, children: Vec<Ds>) -> Ds {
    let mut item = content("CONTAINS", "CONTAINER", Some(name));
    item.s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE")
        .seq(tags::CONTENT_SEQUENCE, children);
    item
}

pub fn write(dir: &Path, p: &Patient, st: &Study) -> Result<()> {
    let se = Series {
        uid: from_name("ct-phantom/series/902"),
        number: 902,
        modality: "SR",
        description: "Verslag radiologie",
        time: "113000",
        body_part: "",
        protocol: "",
        patient_position: None,
        station: "RIS",
        model: "Synthetic reporting",
    };
    let ct_series = ct::series();
    let lesion_ref = sop_ref(
        uids::CT_IMAGE_STORAGE,
        &ct::instance_uid(ct::lesion_slice()),
    );

    let mut ds = Ds::new();
    modules::patient(&mut ds, p)?;
    modules::study(&mut ds, st);
    modules::series(&mut ds, st, &se);
    modules::sop_common(
        &mut ds,
        uids::BASIC_TEXT_SR_STORAGE,
        &from_name("ct-phantom/sr/1"),
        Some("ISO_IR 192"),
        (st.date, se.time),
    );
    ds.empty(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, VR::SQ);

    // SR Document General (C.17.2)
    let mut verifier = Ds::new();
    verifier
        .s(tags::VERIFYING_OBSERVER_NAME, VR::PN, RADIOLOGIST)
        .empty(
            tags::VERIFYING_OBSERVER_IDENTIFICATION_CODE_SEQUENCE,
            VR::SQ,
        )
        .s(tags::VERIFYING_ORGANIZATION, VR::LO, INSTITUTION)
        .s(tags::VERIFICATION_DATE_TIME, VR::DT, "20240312113000+0100");
    let evidence_sops = (0..ct::SLICES)
        .map(|k| sop_ref(uids::CT_IMAGE_STORAGE, &ct::instance_uid(k)))
        .collect();
    let mut evidence_series = Ds::new();
    evidence_series
        .s(tags::SERIES_INSTANCE_UID, VR::UI, &ct_series.uid)
        .seq(tags::REFERENCED_SOP_SEQUENCE, evidence_sops);
    let mut evidence = Ds::new();
    evidence
        .s(tags::STUDY_INSTANCE_UID, VR::UI, &st.uid)
        .seq(tags::REFERENCED_SERIES_SEQUENCE, vec![evidence_series]);
    ds.is(tags::INSTANCE_NUMBER, 1)
        .s(tags::COMPLETION_FLAG, VR::CS, "COMPLETE")
        .s(tags::VERIFICATION_FLAG, VR::CS, "VERIFIED")
        .s(tags::CONTENT_DATE, VR::DA, st.date)
        .s(tags::CONTENT_TIME, VR::TM, "112845")
        .seq(tags::VERIFYING_OBSERVER_SEQUENCE, vec![verifier])
        .empty(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, VR::SQ)
        .seq(
            tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
            vec![evidence],
        );

    // SR Document Content (C.17.3): the root container and its tree
    let mut language = content("HAS CONCEPT MOD", "CODE", Some(LANGUAGE));
    language.seq(
        tags::CONCEPT_CODE_SEQUENCE,
        vec![code_item(DUTCH.0, DUTCH.1, DUTCH.2)],
    );
    let mut observer = content("HAS OBS CONTEXT", "PNAME", Some(OBSERVER));
    observer.s(tags::PERSON_NAME, VR::PN, RADIOLOGIST);
    let mut image = content("INFERRED FROM", "IMAGE", None);
    image.seq(tags::REFERENCED_SOP_SEQUENCE, vec![lesion_ref]);
    let mut finding = text("CONTAINS", FINDING, FINDING_TEXT);
    finding.seq(tags::CONTENT_SEQUENCE, vec![image]);
    let findings = container(FINDINGS, vec![finding]);
    let impressions = container(
        IMPRESSIONS,
        vec![text("CONTAINS", IMPRESSION, IMPRESSION_TEXT)],
    );

    let mut template = Ds::new();
    template
        .s(tags::MAPPING_RESOURCE, VR::CS, "DCMR")
        .s(tags::TEMPLATE_IDENTIFIER, VR::CS, "2000");
    ds.s(tags::VALUE_TYPE, VR::CS, "CONTAINER")
        .s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE")
        .seq(tags::CONTENT_TEMPLATE_SEQUENCE, vec![template])
        .seq(
            tags::CONTENT_SEQUENCE,
            vec![language, observer, findings, impressions],
        );
    concept(&mut ds, REPORT);

    write_part10(
        ds,
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        &dir.join("SR000001.dcm"),
    )
}
