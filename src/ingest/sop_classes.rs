//! Which SOP classes pushgate stores: every storage SOP class of the
//! standard (retired ones included) that belongs to a patient's study.
//! Non-patient objects (Media Storage Directory, hanging protocols, colour
//! palettes, implant templates, CT/XA defined procedure protocols, protocol
//! approvals, inventories) have no study to share and are declined at
//! negotiation. The table is generated: see `storage_classes.rs`.

use dicom_core::dictionary::UidDictionary;
use dicom_dictionary_std::StandardSopClassDictionary;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::storage_classes::STORAGE_SOP_CLASSES;
use crate::store::BulkLayout;

/// The storage SOP classes pushgate accepts, sorted by UID.
pub fn kept() -> impl Iterator<Item = &'static str> {
    STORAGE_SOP_CLASSES.iter().map(|(uid, _)| *uid)
}

pub fn is_kept(sop_class: &str) -> bool {
    let uid = sop_class.trim_end_matches(['\0', ' ']);
    STORAGE_SOP_CLASSES
        .binary_search_by(|(u, _)| (*u).cmp(uid))
        .is_ok()
}

/// The standard's name of a SOP class, for messages.
pub fn name(sop_class: &str) -> Option<&'static str> {
    StandardSopClassDictionary.by_uid(sop_class).map(|e| e.name)
}

/// The checks a gateway can make cheaply that a data set is the kind of
/// object its SOP class says: an image has pixel data and a matrix size.
pub fn check_iod(
    sop_class: &str,
    obj: &InMemDicomObject,
    layout: &BulkLayout,
) -> Result<(), String> {
    let Some(name) = name(sop_class) else {
        return Ok(());
    };
    if name.contains("Image Storage") && !name.contains("Raw Data") {
        if layout.pixel.is_none() {
            return Err(format!("{name} without Pixel Data"));
        }
        for (tag, what) in [(tags::ROWS, "Rows"), (tags::COLUMNS, "Columns")] {
            if obj
                .get(tag)
                .and_then(|e| e.to_int::<u32>().ok())
                .unwrap_or(0)
                == 0
            {
                return Err(format!("{name} without {what}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::uids;

    #[test]
    fn the_table_is_sorted_and_agrees_with_the_dictionary() {
        assert!(STORAGE_SOP_CLASSES.windows(2).all(|w| w[0].0 < w[1].0));
        for (uid, table_name) in STORAGE_SOP_CLASSES {
            let name = name(uid).unwrap_or_else(|| panic!("{uid} unknown to dicom-rs"));
            assert_eq!(name, *table_name);
            assert!(name.contains("Storage"), "{name}");
        }
    }

    #[test]
    fn the_usual_classes_are_kept_and_non_study_objects_are_not() {
        for uid in [
            uids::CT_IMAGE_STORAGE,
            uids::MR_IMAGE_STORAGE,
            uids::ENHANCED_CT_IMAGE_STORAGE,
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
            uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
            uids::BASIC_TEXT_SR_STORAGE,
            uids::ENCAPSULATED_PDF_STORAGE,
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
            uids::KEY_OBJECT_SELECTION_DOCUMENT_STORAGE,
            uids::RT_DOSE_STORAGE,
        ] {
            assert!(is_kept(uid), "{uid} not kept");
        }
        for uid in [
            uids::VERIFICATION,
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            uids::HANGING_PROTOCOL_STORAGE,
            uids::MEDIA_STORAGE_DIRECTORY_STORAGE,
            "1.2.3.4.5",
        ] {
            assert!(!is_kept(uid), "{uid} kept");
        }
        assert!(kept().count() > 150, "{}", kept().count());
    }
}
