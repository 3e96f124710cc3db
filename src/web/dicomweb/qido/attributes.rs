//! The attributes the index records keep, by level: which can be matched,
//! which each level returns by default (PS3.18 Tables 10.6.3-3 to -5), and
//! how a query names an attribute.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};

use super::{Level, PathScope};

pub(super) struct Known {
    pub tag: Tag,
    pub vr: VR,
    /// The level the value belongs to; `None`: every result has one (the
    /// character set, availability, its retrieve URL).
    pub level: Option<Level>,
    /// Counts, URLs and the character set are return keys only; the
    /// Request Attributes Sequence is matched by its item keys.
    pub matchable: bool,
}

const fn known(tag: Tag, vr: VR, level: Option<Level>, matchable: bool) -> Known {
    Known {
        tag,
        vr,
        level,
        matchable,
    }
}

const STUDY: Option<Level> = Some(Level::Studies);
const SERIES: Option<Level> = Some(Level::Series);
const INSTANCE: Option<Level> = Some(Level::Instances);

pub(super) const KNOWN: &[Known] = &[
    known(tags::SPECIFIC_CHARACTER_SET, VR::CS, None, false),
    known(tags::INSTANCE_AVAILABILITY, VR::CS, None, true),
    known(tags::RETRIEVE_URL, VR::UR, None, false),
    // study (with the patient: Study Root)
    known(tags::STUDY_DATE, VR::DA, STUDY, true),
    known(tags::STUDY_TIME, VR::TM, STUDY, true),
    known(tags::ACCESSION_NUMBER, VR::SH, STUDY, true),
    known(tags::MODALITIES_IN_STUDY, VR::CS, STUDY, true),
    known(tags::SOP_CLASSES_IN_STUDY, VR::UI, STUDY, true),
    known(tags::INSTITUTION_NAME, VR::LO, STUDY, true),
    known(tags::REFERRING_PHYSICIAN_NAME, VR::PN, STUDY, true),
    known(tags::TIMEZONE_OFFSET_FROM_UTC, VR::SH, STUDY, true),
    known(tags::STUDY_DESCRIPTION, VR::LO, STUDY, true),
    known(tags::PATIENT_NAME, VR::PN, STUDY, true),
    known(tags::PATIENT_ID, VR::LO, STUDY, true),
    known(tags::ISSUER_OF_PATIENT_ID, VR::LO, STUDY, true),
    known(tags::PATIENT_BIRTH_DATE, VR::DA, STUDY, true),
    known(tags::PATIENT_SEX, VR::CS, STUDY, true),
    known(tags::STUDY_INSTANCE_UID, VR::UI, STUDY, true),
    known(tags::STUDY_ID, VR::SH, STUDY, true),
    known(tags::NUMBER_OF_STUDY_RELATED_SERIES, VR::IS, STUDY, false),
    known(
        tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
        VR::IS,
        STUDY,
        false,
    ),
    // series
    known(tags::MODALITY, VR::CS, SERIES, true),
    known(tags::SERIES_DESCRIPTION, VR::LO, SERIES, true),
    known(tags::BODY_PART_EXAMINED, VR::CS, SERIES, true),
    known(tags::SERIES_INSTANCE_UID, VR::UI, SERIES, true),
    known(tags::SERIES_NUMBER, VR::IS, SERIES, true),
    known(
        tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
        VR::IS,
        SERIES,
        false,
    ),
    known(
        tags::PERFORMED_PROCEDURE_STEP_START_DATE,
        VR::DA,
        SERIES,
        true,
    ),
    known(
        tags::PERFORMED_PROCEDURE_STEP_START_TIME,
        VR::TM,
        SERIES,
        true,
    ),
    known(tags::REQUEST_ATTRIBUTES_SEQUENCE, VR::SQ, SERIES, false),
    // instance
    known(tags::SOP_CLASS_UID, VR::UI, INSTANCE, true),
    known(tags::SOP_INSTANCE_UID, VR::UI, INSTANCE, true),
    known(tags::INSTANCE_NUMBER, VR::IS, INSTANCE, true),
    known(tags::NUMBER_OF_FRAMES, VR::IS, INSTANCE, true),
    known(tags::ROWS, VR::US, INSTANCE, true),
    known(tags::COLUMNS, VR::US, INSTANCE, true),
    known(tags::BITS_ALLOCATED, VR::US, INSTANCE, true),
];

/// The keys of a Request Attributes Sequence item the records keep.
pub(super) const REQUEST_ITEM_KEYS: [(Tag, VR); 2] = [
    (tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH),
    (tags::REQUESTED_PROCEDURE_ID, VR::SH),
];

pub(super) fn known_attribute(tag: Tag) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.tag == tag)
}

const STUDY_DEFAULTS: &[Tag] = &[
    tags::SPECIFIC_CHARACTER_SET,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::ACCESSION_NUMBER,
    tags::INSTANCE_AVAILABILITY,
    tags::MODALITIES_IN_STUDY,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::RETRIEVE_URL,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_ID,
    tags::NUMBER_OF_STUDY_RELATED_SERIES,
    tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
];

/// Study Instance UID is not in Table 10.6.3-4, but a series without it
/// cannot be retrieved by a client that searched `/series`.
const SERIES_DEFAULTS: &[Tag] = &[
    tags::SPECIFIC_CHARACTER_SET,
    tags::MODALITY,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::SERIES_DESCRIPTION,
    tags::RETRIEVE_URL,
    tags::STUDY_INSTANCE_UID,
    tags::SERIES_INSTANCE_UID,
    tags::SERIES_NUMBER,
    tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
    tags::PERFORMED_PROCEDURE_STEP_START_DATE,
    tags::PERFORMED_PROCEDURE_STEP_START_TIME,
    tags::REQUEST_ATTRIBUTES_SEQUENCE,
];

const INSTANCE_DEFAULTS: &[Tag] = &[
    tags::SPECIFIC_CHARACTER_SET,
    tags::SOP_CLASS_UID,
    tags::SOP_INSTANCE_UID,
    tags::INSTANCE_AVAILABILITY,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::RETRIEVE_URL,
    tags::STUDY_INSTANCE_UID,
    tags::SERIES_INSTANCE_UID,
    tags::INSTANCE_NUMBER,
    tags::ROWS,
    tags::COLUMNS,
    tags::BITS_ALLOCATED,
    tags::NUMBER_OF_FRAMES,
];

/// Defaults returned only when they have a value ("if set").
pub(super) const OPTIONAL_DEFAULTS: &[Tag] = &[tags::TIMEZONE_OFFSET_FROM_UTC];

/// The default attributes of a result: those of its level, and of each
/// upper level the path does not name (PS3.18 §10.6.3.3).
pub(super) fn defaults(level: Level, path: &PathScope) -> Vec<Tag> {
    let mut out = Vec::new();
    let study_named = path.study.is_some();
    let series_named = path.series.is_some();
    match level {
        Level::Studies => out.extend_from_slice(STUDY_DEFAULTS),
        Level::Series => {
            out.extend_from_slice(SERIES_DEFAULTS);
            if !study_named {
                out.extend_from_slice(STUDY_DEFAULTS);
            }
        }
        Level::Instances => {
            out.extend_from_slice(INSTANCE_DEFAULTS);
            if !series_named {
                out.extend_from_slice(SERIES_DEFAULTS);
            }
            if !study_named {
                out.extend_from_slice(STUDY_DEFAULTS);
            }
        }
    }
    out
}

/// An attribute named in a query: its keyword (`PatientName`, exact case)
/// or its tag (`00100010`, `0010,0010`, `(0010,0010)`).
pub(super) fn attribute(name: &str) -> Option<Tag> {
    name.parse::<Tag>()
        .ok()
        .or_else(|| StandardDataDictionary.by_name(name).map(|e| e.tag()))
}

/// The VR of an attribute, if the records or the dictionary know it.
pub(super) fn vr_of(tag: Tag) -> Option<VR> {
    known_attribute(tag)
        .map(|k| k.vr)
        .or_else(|| StandardDataDictionary.by_tag(tag).map(|e| e.vr().relaxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_the_dictionary() {
        for k in KNOWN {
            assert_eq!(
                StandardDataDictionary
                    .by_tag(k.tag)
                    .map(|e| e.vr().relaxed()),
                Some(k.vr),
                "{}",
                k.tag
            );
        }
        for (tag, vr) in REQUEST_ITEM_KEYS {
            assert_eq!(vr_of(tag), Some(vr));
        }
    }

    #[test]
    fn names_by_keyword_or_tag() {
        assert_eq!(attribute("PatientName"), Some(tags::PATIENT_NAME));
        assert_eq!(attribute("00100010"), Some(tags::PATIENT_NAME));
        assert_eq!(attribute("0020000d"), Some(tags::STUDY_INSTANCE_UID));
        assert_eq!(attribute("(0008,0060)"), Some(tags::MODALITY));
        assert_eq!(attribute("patientname"), None);
        assert_eq!(attribute("Nonsense"), None);
        assert_eq!(attribute("0010001G"), None);
    }

    #[test]
    fn defaults_add_the_levels_the_path_leaves_open() {
        let none = PathScope::default();
        let study = PathScope {
            study: Some(crate::store::Uid::parse("1.2").unwrap()),
            series: None,
        };
        assert!(!defaults(Level::Series, &study).contains(&tags::PATIENT_NAME));
        assert!(defaults(Level::Series, &none).contains(&tags::PATIENT_NAME));
        assert!(defaults(Level::Instances, &study).contains(&tags::MODALITY));
        assert!(!defaults(Level::Instances, &study).contains(&tags::PATIENT_NAME));
    }
}
