//! The storage presentation contexts a C-GET proposes, for the C-STORE
//! sub-operations the PACS sends back on the same association.
//!
//! One A-ASSOCIATE-RQ holds at most 128 presentation contexts (odd IDs);
//! we propose at most 127, some acceptors being off by one at the end of
//! the range. With the C-GET context that leaves [`MAX_STORAGE_CONTEXTS`], far fewer than the
//! SOP classes pushgate keeps (`ingest::sop_classes::kept()`, some 150), so
//! the choice is by how common a class is in a hospital PACS:
//!
//! - [`IMAGES`], the image classes most studies consist of (CT, MR, CR, DX
//!   and MG for presentation, breast tomosynthesis, US single and
//!   multi-frame, SC, XA, RF, PET, NM), get one context with the
//!   uncompressed syntaxes and one context of its own per compressed
//!   syntax pushgate stores as received ([`COMPRESSED`]). One syntax per
//!   context because the acceptor picks a single syntax per context: in a
//!   context listing JPEG Baseline beside the lossless ones it could pick
//!   JPEG Baseline, and the PACS would then compress lossless images lossily
//!   to send them. This way it sends each instance in the syntax it has
//!   when that context was accepted, else decompressed.
//! - [`OTHERS`], the rarer images (enhanced and multi-frame classes,
//!   photographs, RT) and the non-image objects of a study (SR, key
//!   objects, encapsulated PDF/CDA, presentation states, segmentation,
//!   registration, raw data), get the uncompressed context only: they are
//!   rarely stored compressed, and a PACS decompresses those that are.
//!
//! A class outside both lists cannot be retrieved by C-GET; C-MOVE to
//! pushgate's own SCP takes every kept class.

use dicom_dictionary_std::uids;

use crate::dimse::scu::{EXPLICIT_VR_LE, IMPLICIT_VR_LE};

/// Presentation contexts left for storage beside the C-GET context.
pub(super) const MAX_STORAGE_CONTEXTS: usize = 126;

/// Uncompressed syntaxes in our order of preference; deflate last, so
/// that an acceptor picking by our order does not deflate everything.
const UNCOMPRESSED: [&str; 3] = [
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
];

/// The compressed syntaxes pushgate stores and serves as received.
pub(super) const COMPRESSED: [&str; 5] = [
    uids::JPEG_BASELINE8_BIT,
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEGLS_LOSSLESS,
    uids::JPEG2000_LOSSLESS,
    uids::RLE_LOSSLESS,
];

pub(super) const IMAGES: [&str; 14] = [
    uids::CT_IMAGE_STORAGE,
    uids::MR_IMAGE_STORAGE,
    uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::BREAST_TOMOSYNTHESIS_IMAGE_STORAGE,
    uids::ULTRASOUND_IMAGE_STORAGE,
    uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
    uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE,
    uids::X_RAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE,
    uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
    uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
    uids::ENHANCED_CT_IMAGE_STORAGE,
];

pub(super) const OTHERS: [&str; 42] = [
    // images
    uids::ENHANCED_MR_IMAGE_STORAGE,
    uids::ENHANCED_PET_IMAGE_STORAGE,
    uids::ENHANCED_XA_IMAGE_STORAGE,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::DIGITAL_INTRA_ORAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::X_RAY3_D_ANGIOGRAPHIC_IMAGE_STORAGE,
    uids::MULTI_FRAME_SINGLE_BIT_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_BYTE_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::VL_ENDOSCOPIC_IMAGE_STORAGE,
    uids::VL_PHOTOGRAPHIC_IMAGE_STORAGE,
    uids::VL_MICROSCOPIC_IMAGE_STORAGE,
    uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
    uids::OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE,
    uids::PARAMETRIC_MAP_STORAGE,
    uids::RT_IMAGE_STORAGE,
    uids::RT_DOSE_STORAGE,
    uids::RT_STRUCTURE_SET_STORAGE,
    uids::RT_PLAN_STORAGE,
    uids::RT_ION_PLAN_STORAGE,
    // structured reports, key objects, documents
    uids::BASIC_TEXT_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::COMPREHENSIVE3_DSR_STORAGE,
    uids::KEY_OBJECT_SELECTION_DOCUMENT_STORAGE,
    uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
    uids::RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE,
    uids::MAMMOGRAPHY_CADSR_STORAGE,
    uids::CHEST_CADSR_STORAGE,
    uids::ENCAPSULATED_PDF_STORAGE,
    uids::ENCAPSULATED_CDA_STORAGE,
    // presentation states
    uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::PSEUDO_COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::BLENDING_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::XAXRF_GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    // derived objects
    uids::SEGMENTATION_STORAGE,
    uids::SPATIAL_REGISTRATION_STORAGE,
    uids::DEFORMABLE_SPATIAL_REGISTRATION_STORAGE,
    uids::RAW_DATA_STORAGE,
];

/// The storage presentation contexts to propose, in order: (SOP class,
/// transfer syntaxes). Only classes pushgate keeps.
pub(super) fn contexts() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out = Vec::with_capacity(MAX_STORAGE_CONTEXTS);
    let kept = |c: &&str| crate::ingest::sop_classes::is_kept(c);
    for class in IMAGES.into_iter().filter(kept) {
        out.push((class, UNCOMPRESSED.to_vec()));
        out.extend(COMPRESSED.iter().map(|ts| (class, vec![*ts])));
    }
    for class in OTHERS.into_iter().filter(kept) {
        out.push((class, UNCOMPRESSED.to_vec()));
    }
    out.truncate(MAX_STORAGE_CONTEXTS);
    out
}

/// The SOP classes of [`contexts`], each once (one SCP/SCU Role
/// Selection sub-item each).
pub(super) fn classes() -> impl Iterator<Item = &'static str> {
    IMAGES
        .into_iter()
        .chain(OTHERS)
        .filter(|c| crate::ingest::sop_classes::is_kept(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_kept_named_and_fits() {
        let all: Vec<&str> = IMAGES.iter().chain(OTHERS.iter()).copied().collect();
        for class in &all {
            assert!(
                crate::ingest::sop_classes::is_kept(class),
                "{class} not kept"
            );
            assert!(crate::ingest::sop_classes::name(class).is_some(), "{class}");
        }
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "a class listed twice");
        let contexts = contexts();
        // nothing was cut off: every listed class has its contexts
        assert_eq!(contexts.len(), IMAGES.len() * 6 + OTHERS.len());
        assert!(contexts.len() <= MAX_STORAGE_CONTEXTS);
        assert_eq!(classes().count(), all.len());
    }
}
