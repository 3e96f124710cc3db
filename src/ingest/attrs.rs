//! The attributes the index keeps, read from a parsed data set, and the
//! patient's BSN per the Dutch guideline.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::store::{InstanceAttrs, PatientAttrs, SeriesAttrs, StudyAttrs};

/// Assigning authority of the BSN (Burgerservicenummer).
pub const BSN_ISSUER_OID: &str = "2.16.840.1.113883.2.4.6.3";

/// A value as text, without padding; empty when absent or not text.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches([' ', '\0']).to_string())
        .unwrap_or_default()
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    obj.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

pub fn patient(obj: &InMemDicomObject) -> PatientAttrs {
    PatientAttrs {
        name: text(obj, tags::PATIENT_NAME),
        id: text(obj, tags::PATIENT_ID),
        issuer: text(obj, tags::ISSUER_OF_PATIENT_ID),
        birth_date: text(obj, tags::PATIENT_BIRTH_DATE),
        sex: text(obj, tags::PATIENT_SEX),
        bsn: bsn(obj),
    }
}

pub fn study(obj: &InMemDicomObject) -> StudyAttrs {
    StudyAttrs {
        study_date: text(obj, tags::STUDY_DATE),
        study_time: text(obj, tags::STUDY_TIME),
        accession_number: text(obj, tags::ACCESSION_NUMBER),
        referring_physician: text(obj, tags::REFERRING_PHYSICIAN_NAME),
        study_id: text(obj, tags::STUDY_ID),
        study_description: text(obj, tags::STUDY_DESCRIPTION),
        timezone_offset: text(obj, tags::TIMEZONE_OFFSET_FROM_UTC),
        institution_name: text(obj, tags::INSTITUTION_NAME),
    }
}

pub fn series(obj: &InMemDicomObject) -> SeriesAttrs {
    SeriesAttrs {
        modality: text(obj, tags::MODALITY),
        series_number: int(obj, tags::SERIES_NUMBER),
        series_description: text(obj, tags::SERIES_DESCRIPTION),
        body_part: text(obj, tags::BODY_PART_EXAMINED),
        performed_start_date: text(obj, tags::PERFORMED_PROCEDURE_STEP_START_DATE),
        performed_start_time: text(obj, tags::PERFORMED_PROCEDURE_STEP_START_TIME),
        request_attributes: items(obj, tags::REQUEST_ATTRIBUTES_SEQUENCE)
            .iter()
            .map(|item| {
                (
                    text(item, tags::SCHEDULED_PROCEDURE_STEP_ID),
                    text(item, tags::REQUESTED_PROCEDURE_ID),
                )
            })
            .collect(),
    }
}

pub fn instance(obj: &InMemDicomObject) -> InstanceAttrs {
    let u16_of = |tag| int(obj, tag).and_then(|v| u16::try_from(v).ok());
    InstanceAttrs {
        sop_class_uid: text(obj, tags::SOP_CLASS_UID),
        instance_number: int(obj, tags::INSTANCE_NUMBER),
        rows: u16_of(tags::ROWS),
        columns: u16_of(tags::COLUMNS),
        bits_allocated: u16_of(tags::BITS_ALLOCATED),
        number_of_frames: int(obj, tags::NUMBER_OF_FRAMES).and_then(|v| u32::try_from(v).ok()),
    }
}

/// Whether `item` (the data set, or an Other Patient IDs item) names the
/// BSN authority as issuer of its Patient ID.
fn issued_by_bsn_authority(item: &InMemDicomObject) -> bool {
    text(item, tags::ISSUER_OF_PATIENT_ID) == BSN_ISSUER_OID
        || items(item, tags::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE)
            .iter()
            .any(|q| text(q, tags::UNIVERSAL_ENTITY_ID) == BSN_ISSUER_OID)
}

/// The BSN: the Patient ID if its issuer is the BSN authority, else the
/// Patient ID of the first Other Patient IDs item that is. A value that
/// fails the 11-proof is not taken for a BSN (and is logged).
pub fn bsn(obj: &InMemDicomObject) -> Option<String> {
    let candidate = std::iter::once(obj)
        .chain(items(obj, tags::OTHER_PATIENT_I_DS_SEQUENCE))
        .filter(|item| issued_by_bsn_authority(item))
        .map(|item| text(item, tags::PATIENT_ID))
        .find(|id| !id.is_empty())?;
    let normalized = normalize_bsn(&candidate);
    if normalized.is_none() {
        tracing::warn!(
            "a Patient ID issued by the BSN authority fails the 11-proof; not used as BSN"
        );
    }
    normalized
}

/// Nine digits (an eight-digit BSN gets its leading zero back) passing the
/// 11-proof: 9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 (mod 11).
pub fn normalize_bsn(value: &str) -> Option<String> {
    let digits: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(8..=9).contains(&digits.len()) {
        return None;
    }
    let digits = format!("{digits:0>9}");
    let sum: i64 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = i64::from(b - b'0');
            if i == 8 { -d } else { d * (9 - i as i64) }
        })
        .sum();
    (sum % 11 == 0 && digits != "000000000").then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, Length, VR};

    fn item(pairs: &[(Tag, VR, &str)]) -> InMemDicomObject {
        InMemDicomObject::from_element_iter(
            pairs.iter().map(|(t, vr, v)| DataElement::new(*t, *vr, *v)),
        )
    }

    fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
    }

    #[test]
    fn eleven_proof() {
        assert_eq!(normalize_bsn("999999990").as_deref(), Some("999999990"));
        assert_eq!(normalize_bsn("111222333").as_deref(), Some("111222333"));
        assert_eq!(normalize_bsn("12345672").as_deref(), Some("012345672"));
        assert_eq!(normalize_bsn("999999991"), None);
        assert_eq!(normalize_bsn("99999999a"), None);
        assert_eq!(normalize_bsn("1234"), None);
        assert_eq!(normalize_bsn("000000000"), None);
    }

    #[test]
    fn bsn_from_patient_id_with_issuer_qualifiers() {
        let mut obj = item(&[(tags::PATIENT_ID, VR::LO, "999999990")]);
        obj.put(seq(
            tags::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE,
            vec![item(&[
                (tags::UNIVERSAL_ENTITY_ID, VR::UT, BSN_ISSUER_OID),
                (tags::UNIVERSAL_ENTITY_ID_TYPE, VR::CS, "ISO"),
            ])],
        ));
        assert_eq!(bsn(&obj).as_deref(), Some("999999990"));
    }

    #[test]
    fn bsn_from_other_patient_ids_not_from_local_id() {
        let mut obj = item(&[
            (tags::PATIENT_ID, VR::LO, "ZKH123456"),
            (tags::ISSUER_OF_PATIENT_ID, VR::LO, "ZKHA"),
        ]);
        obj.put(seq(
            tags::OTHER_PATIENT_I_DS_SEQUENCE,
            vec![
                item(&[
                    (tags::PATIENT_ID, VR::LO, "777"),
                    (tags::ISSUER_OF_PATIENT_ID, VR::LO, "X"),
                ]),
                item(&[
                    (tags::PATIENT_ID, VR::LO, "111222333"),
                    (tags::ISSUER_OF_PATIENT_ID, VR::LO, BSN_ISSUER_OID),
                ]),
            ],
        ));
        assert_eq!(bsn(&obj).as_deref(), Some("111222333"));
        assert_eq!(patient(&obj).id, "ZKH123456");
    }

    #[test]
    fn no_bsn_without_the_issuer_or_with_a_bad_checksum() {
        let obj = item(&[(tags::PATIENT_ID, VR::LO, "999999990")]);
        assert_eq!(bsn(&obj), None);
        let obj = item(&[
            (tags::PATIENT_ID, VR::LO, "999999991"),
            (tags::ISSUER_OF_PATIENT_ID, VR::LO, BSN_ISSUER_OID),
        ]);
        assert_eq!(bsn(&obj), None);
    }
}
