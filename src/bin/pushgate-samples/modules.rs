//! Common IOD modules shared by all generated instances: Patient, Patient
//! Study, General Study, General Series, General Equipment, SOP Common,
//! Frame of Reference and the Image Pixel module.

use anyhow::{Result, ensure};
use dicom_core::VR;
use dicom_dictionary_std::tags;

use crate::bsn::{BSN_ISSUER, BSN_OID, is_valid_bsn};
use crate::ds::Ds;

pub const MANUFACTURER: &str = "pushgate-samples";
pub const INSTITUTION: &str = "Ziekenhuis Amstelveld (fictief)";
pub const INSTITUTION_ADDRESS: &str = "Voorbeeldlaan 1, 1000 AA Amsterdam";
pub const SOFTWARE_VERSION: &str = "pushgate-samples 1";
/// Instances are "created" in Central European Time.
pub const TIMEZONE: &str = "+0100";

/// Patient demographics. When `local_id` is `None` the BSN is the primary
/// Patient ID; otherwise the local hospital number is primary and the BSN
/// is carried only in Other Patient IDs Sequence.
#[derive(Debug, Clone)]
pub struct Patient {
    pub name: &'static str,
    pub bsn: &'static str,
    pub local_id: Option<(&'static str, &'static str)>,
    pub birth_date: &'static str,
    pub sex: &'static str,
    pub age: &'static str,
    pub weight_kg: f64,
}

#[derive(Debug, Clone)]
pub struct Study {
    pub uid: String,
    pub id: &'static str,
    pub date: &'static str,
    pub time: &'static str,
    pub accession: &'static str,
    pub referring: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub uid: String,
    pub number: i64,
    pub modality: &'static str,
    pub description: &'static str,
    pub time: &'static str,
    pub body_part: &'static str,
    pub protocol: &'static str,
    /// Patient Position (Type 2C: present for CT and MR).
    pub patient_position: Option<&'static str>,
    pub station: &'static str,
    pub model: &'static str,
}

/// Issuer of Patient ID Qualifiers Sequence pointing at the BSN OID.
fn bsn_qualifiers() -> Vec<Ds> {
    let mut q = Ds::new();
    q.s(tags::UNIVERSAL_ENTITY_ID, VR::UT, BSN_OID).s(
        tags::UNIVERSAL_ENTITY_ID_TYPE,
        VR::CS,
        "ISO",
    );
    vec![q]
}

/// Patient Module (C.7.1.1) and Patient Study Module (C.7.2.2).
pub fn patient(ds: &mut Ds, p: &Patient) -> Result<()> {
    ensure!(is_valid_bsn(p.bsn), "{} is not a valid BSN", p.bsn);
    ds.s(tags::PATIENT_NAME, VR::PN, p.name)
        .s(tags::PATIENT_BIRTH_DATE, VR::DA, p.birth_date)
        .s(tags::PATIENT_SEX, VR::CS, p.sex)
        .s(tags::PATIENT_AGE, VR::AS, p.age)
        .ds(tags::PATIENT_WEIGHT, &[p.weight_kg]);
    match p.local_id {
        None => {
            ds.s(tags::PATIENT_ID, VR::LO, p.bsn)
                .s(tags::ISSUER_OF_PATIENT_ID, VR::LO, BSN_ISSUER)
                .seq(
                    tags::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE,
                    bsn_qualifiers(),
                );
        }
        Some((id, issuer)) => {
            let mut other = Ds::new();
            other
                .s(tags::PATIENT_ID, VR::LO, p.bsn)
                .s(tags::ISSUER_OF_PATIENT_ID, VR::LO, BSN_ISSUER)
                .s(tags::TYPE_OF_PATIENT_ID, VR::CS, "TEXT")
                .seq(
                    tags::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE,
                    bsn_qualifiers(),
                );
            ds.s(tags::PATIENT_ID, VR::LO, id)
                .s(tags::ISSUER_OF_PATIENT_ID, VR::LO, issuer)
                .seq(tags::OTHER_PATIENT_I_DS_SEQUENCE, vec![other]);
        }
    }
    Ok(())
}

/// General Study Module (C.7.2.1).
pub fn study(ds: &mut Ds, s: &Study) {
    ds.s(tags::STUDY_INSTANCE_UID, VR::UI, &s.uid)
        .s(tags::STUDY_DATE, VR::DA, s.date)
        .s(tags::STUDY_TIME, VR::TM, s.time)
        .s(tags::REFERRING_PHYSICIAN_NAME, VR::PN, s.referring)
        .s(tags::STUDY_ID, VR::SH, s.id)
        .s(tags::ACCESSION_NUMBER, VR::SH, s.accession)
        .s(tags::STUDY_DESCRIPTION, VR::LO, s.description);
}

/// General Series Module (C.7.3.1) and General Equipment Module (C.7.5.1).
/// Series Date is the study date.
pub fn series(ds: &mut Ds, st: &Study, s: &Series) {
    ds.s(tags::MODALITY, VR::CS, s.modality)
        .s(tags::SERIES_INSTANCE_UID, VR::UI, &s.uid)
        .is(tags::SERIES_NUMBER, s.number)
        .s(tags::SERIES_DATE, VR::DA, st.date)
        .s(tags::SERIES_TIME, VR::TM, s.time)
        .s(tags::SERIES_DESCRIPTION, VR::LO, s.description)
        .s(tags::OPERATORS_NAME, VR::PN, "Smit^Lotte");
    if !s.body_part.is_empty() {
        ds.s(tags::BODY_PART_EXAMINED, VR::CS, s.body_part);
    }
    if !s.protocol.is_empty() {
        ds.s(tags::PROTOCOL_NAME, VR::LO, s.protocol);
    }
    if let Some(pos) = s.patient_position {
        ds.s(tags::PATIENT_POSITION, VR::CS, pos);
    }
    ds.s(tags::MANUFACTURER, VR::LO, MANUFACTURER)
        .s(tags::INSTITUTION_NAME, VR::LO, INSTITUTION)
        .s(tags::INSTITUTION_ADDRESS, VR::ST, INSTITUTION_ADDRESS)
        .s(tags::STATION_NAME, VR::SH, s.station)
        .s(tags::MANUFACTURER_MODEL_NAME, VR::LO, s.model)
        .s(tags::DEVICE_SERIAL_NUMBER, VR::LO, "SYN-0001")
        .s(tags::SOFTWARE_VERSIONS, VR::LO, SOFTWARE_VERSION);
}

/// SOP Common Module (C.12.1). `charset` is the Specific Character Set, if
/// any non-default repertoire is used.
pub fn sop_common(
    ds: &mut Ds,
    class: &str,
    instance: &str,
    charset: Option<&str>,
    created: (&str, &str),
) {
    ds.s(tags::SOP_CLASS_UID, VR::UI, class)
        .s(tags::SOP_INSTANCE_UID, VR::UI, instance)
        .s(tags::INSTANCE_CREATION_DATE, VR::DA, created.0)
        .s(tags::INSTANCE_CREATION_TIME, VR::TM, created.1)
        .s(tags::TIMEZONE_OFFSET_FROM_UTC, VR::SH, TIMEZONE);
    if let Some(cs) = charset {
        ds.s(tags::SPECIFIC_CHARACTER_SET, VR::CS, cs);
    }
}

/// Frame of Reference Module (C.7.4.1).
pub fn frame_of_reference(ds: &mut Ds, uid: &str) {
    ds.s(tags::FRAME_OF_REFERENCE_UID, VR::UI, uid)
        .empty(tags::POSITION_REFERENCE_INDICATOR, VR::LO);
}

/// Geometry of a monochrome image for the Image Pixel Module (C.7.6.3).
#[derive(Debug, Clone, Copy)]
pub struct Mono {
    pub rows: u16,
    pub cols: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
}

/// Image Pixel Module attributes except Pixel Data.
pub fn image_pixel(ds: &mut Ds, m: Mono) {
    ds.us(tags::SAMPLES_PER_PIXEL, 1)
        .s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2")
        .us(tags::ROWS, m.rows)
        .us(tags::COLUMNS, m.cols)
        .us(tags::BITS_ALLOCATED, m.bits_allocated)
        .us(tags::BITS_STORED, m.bits_stored)
        .us(tags::HIGH_BIT, m.bits_stored - 1)
        .us(tags::PIXEL_REPRESENTATION, u16::from(m.signed));
}

/// Axial slice geometry: a square image of `size` pixels centred on the
/// z axis, patient left to the right of the image, anterior at the top.
#[derive(Debug, Clone, Copy)]
pub struct Axial {
    pub size: u16,
    pub spacing: f64,
    pub thickness: f64,
}

impl Axial {
    /// Patient x (or y) coordinate of the centre of pixel column (or row) `i`.
    pub fn centre(&self, i: usize) -> f64 {
        (i as f64 + 0.5 - f64::from(self.size) / 2.0) * self.spacing
    }

    /// Sub-pixel image coordinate (PS3.3 C.10.5: origin at the top left
    /// corner of the first pixel) of a patient x or y coordinate.
    pub fn to_image(self, mm: f64) -> f64 {
        mm / self.spacing + f64::from(self.size) / 2.0
    }
}

/// Image Plane Module (C.7.6.2) for an axial slice at `z`.
pub fn axial_plane(ds: &mut Ds, g: Axial, z: f64) {
    let (spacing, thickness) = (g.spacing, g.thickness);
    let x0 = g.centre(0);
    let y0 = x0;
    ds.ds(tags::PIXEL_SPACING, &[spacing, spacing])
        .ds(
            tags::IMAGE_ORIENTATION_PATIENT,
            &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        )
        .ds(tags::IMAGE_POSITION_PATIENT, &[x0, y0, z])
        .ds(tags::SLICE_THICKNESS, &[thickness])
        .ds(tags::SLICE_LOCATION, &[z]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::Tag;

    fn patient_ds(local_id: Option<(&'static str, &'static str)>, bsn: &'static str) -> Result<Ds> {
        let p = Patient {
            name: "Test^Patiënt",
            bsn,
            local_id,
            birth_date: "20000101",
            sex: "F",
            age: "024Y",
            weight_kg: 60.0,
        };
        let mut ds = Ds::new();
        patient(&mut ds, &p)?;
        Ok(ds)
    }

    fn text(ds: &Ds, tag: Tag) -> String {
        ds.0.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.into_owned())
            .unwrap_or_default()
    }

    fn items(ds: &Ds, tag: Tag) -> Vec<Ds> {
        ds.0.get(tag)
            .and_then(|e| e.items())
            .map(|items| items.iter().cloned().map(Ds).collect())
            .unwrap_or_default()
    }

    fn assert_bsn_qualifier(item: &Ds) {
        let q = items(item, tags::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE);
        assert_eq!(q.len(), 1);
        assert_eq!(text(&q[0], tags::UNIVERSAL_ENTITY_ID), BSN_OID);
        assert_eq!(text(&q[0], tags::UNIVERSAL_ENTITY_ID_TYPE), "ISO");
    }

    #[test]
    fn bsn_as_primary_patient_id() -> Result<()> {
        let ds = patient_ds(None, "999912343")?;
        assert_eq!(text(&ds, tags::PATIENT_ID), "999912343");
        assert_eq!(text(&ds, tags::ISSUER_OF_PATIENT_ID), BSN_ISSUER);
        assert_bsn_qualifier(&ds);
        assert!(ds.0.get(tags::OTHER_PATIENT_I_DS_SEQUENCE).is_none());
        Ok(())
    }

    #[test]
    fn bsn_only_in_other_patient_ids() -> Result<()> {
        let ds = patient_ds(Some(("ZKH1", "ZKHA")), "999920017")?;
        assert_eq!(text(&ds, tags::PATIENT_ID), "ZKH1");
        assert_eq!(text(&ds, tags::ISSUER_OF_PATIENT_ID), "ZKHA");
        assert!(
            ds.0.get(tags::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE)
                .is_none()
        );
        let other = items(&ds, tags::OTHER_PATIENT_I_DS_SEQUENCE);
        assert_eq!(other.len(), 1);
        assert_eq!(text(&other[0], tags::PATIENT_ID), "999920017");
        assert_eq!(text(&other[0], tags::ISSUER_OF_PATIENT_ID), BSN_ISSUER);
        assert_eq!(text(&other[0], tags::TYPE_OF_PATIENT_ID), "TEXT");
        assert_bsn_qualifier(&other[0]);
        Ok(())
    }

    #[test]
    fn invalid_bsn_is_refused() {
        assert!(patient_ds(None, "999912344").is_err());
    }
}
