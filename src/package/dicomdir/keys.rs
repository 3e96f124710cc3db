//! Which directory record an instance gets (PS3.3 Table F.4-1) and the
//! keys each record type requires (PS3.3 F.5), taken from the instance's
//! DICOM JSON.
//!
//! Type 2 keys an instance lacks are written empty. Type 1 keys it lacks
//! get a stand-in, as DCMTK's dcmmkdir does: Study Date/Time from the
//! series, acquisition or content date/time, else the file's date; numbers
//! from the position in the directory; an invented Patient ID and Study ID
//! (`PUSHGATEnnnnnn`).

use serde_json::Value;

use super::Described;
use super::encode::{Element, from_json, from_json_dataset, tag_key};
use crate::ingest::sop_classes;
use crate::package::PackageError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Patient,
    Study,
    Series,
    Image,
    Presentation,
    SrDocument,
    KeyObjectDoc,
    EncapDoc,
    Waveform,
    RtDose,
    RtStructureSet,
    RtPlan,
    RtTreatRecord,
    Spectroscopy,
    RawData,
    Registration,
    Fiducial,
    ValueMap,
    Stereometric,
    Surface,
    Measurement,
    SurfaceScan,
    Tract,
    Radiotherapy,
    Plan,
}

impl RecordKind {
    /// The leaf record for an instance of `sop_class`, by the class's name
    /// in the standard; IMAGE for classes without a record of their own
    /// (and for private ones, as DCMTK does).
    pub fn of_sop_class(sop_class: &str) -> RecordKind {
        use RecordKind::*;
        let Some(name) = sop_classes::name(sop_class) else {
            return Image;
        };
        let has = |s: &str| name.contains(s);
        if name == "Key Object Selection Document Storage" {
            KeyObjectDoc
        } else if has("SR Storage")
            || has("SR Document Storage")
            || matches!(
                name,
                "Procedure Log Storage"
                    | "Spectacle Prescription Report Storage"
                    | "Macular Grid Thickness and Volume Report Storage"
            )
        {
            SrDocument
        } else if has("Presentation State Storage") || name == "Basic Structured Display Storage" {
            Presentation
        } else if has("Waveform Storage") {
            Waveform
        } else if name == "RT Dose Storage" {
            RtDose
        } else if name == "RT Structure Set Storage" {
            RtStructureSet
        } else if matches!(name, "RT Plan Storage" | "RT Ion Plan Storage") {
            RtPlan
        } else if has("Treatment Record Storage") || has("Treatment Summary Record Storage") {
            RtTreatRecord
        } else if has("Radiation")
            || matches!(
                name,
                "RT Physician Intent Storage"
                    | "RT Segment Annotation Storage"
                    | "RT Treatment Preparation Storage"
                    | "RT Patient Position Acquisition Instruction Storage"
            )
        {
            Radiotherapy
        } else if has("Delivery Instruction Storage") {
            Plan
        } else if has("Registration Storage") {
            Registration
        } else if name == "Spatial Fiducials Storage" {
            Fiducial
        } else if name == "Raw Data Storage" {
            RawData
        } else if name == "MR Spectroscopy Storage" {
            Spectroscopy
        } else if name.starts_with("Encapsulated ") {
            EncapDoc
        } else if name == "Real World Value Mapping Storage" {
            ValueMap
        } else if name == "Stereometric Relationship Storage" {
            Stereometric
        } else if name == "Surface Segmentation Storage" {
            Surface
        } else if has("Measurements Storage") || name == "Intraocular Lens Calculations Storage" {
            Measurement
        } else if has("Surface Scan") {
            SurfaceScan
        } else if name == "Tractography Results Storage" {
            Tract
        } else {
            Image
        }
    }

    /// Directory Record Type (0004,1430).
    pub fn name(self) -> &'static str {
        use RecordKind::*;
        match self {
            Patient => "PATIENT",
            Study => "STUDY",
            Series => "SERIES",
            Image => "IMAGE",
            Presentation => "PRESENTATION",
            SrDocument => "SR DOCUMENT",
            KeyObjectDoc => "KEY OBJECT DOC",
            EncapDoc => "ENCAP DOC",
            Waveform => "WAVEFORM",
            RtDose => "RT DOSE",
            RtStructureSet => "RT STRUCTURE SET",
            RtPlan => "RT PLAN",
            RtTreatRecord => "RT TREAT RECORD",
            Spectroscopy => "SPECTROSCOPY",
            RawData => "RAW DATA",
            Registration => "REGISTRATION",
            Fiducial => "FIDUCIAL",
            ValueMap => "VALUE MAP",
            Stereometric => "STEREOMETRIC",
            Surface => "SURFACE",
            Measurement => "MEASUREMENT",
            SurfaceScan => "SURFACE SCAN",
            Tract => "TRACT",
            Radiotherapy => "RADIOTHERAPY",
            Plan => "PLAN",
        }
    }

    const ALL: &'static [RecordKind] = &[
        RecordKind::Patient,
        RecordKind::Study,
        RecordKind::Series,
        RecordKind::Image,
        RecordKind::Presentation,
        RecordKind::SrDocument,
        RecordKind::KeyObjectDoc,
        RecordKind::EncapDoc,
        RecordKind::Waveform,
        RecordKind::RtDose,
        RecordKind::RtStructureSet,
        RecordKind::RtPlan,
        RecordKind::RtTreatRecord,
        RecordKind::Spectroscopy,
        RecordKind::RawData,
        RecordKind::Registration,
        RecordKind::Fiducial,
        RecordKind::ValueMap,
        RecordKind::Stereometric,
        RecordKind::Surface,
        RecordKind::Measurement,
        RecordKind::SurfaceScan,
        RecordKind::Tract,
        RecordKind::Radiotherapy,
        RecordKind::Plan,
    ];

    fn keys(self) -> &'static [Key] {
        use RecordKind::*;
        match self {
            Patient => PATIENT,
            Study => STUDY,
            Series => SERIES,
            Image => IMAGE,
            Presentation => PRESENTATION,
            SrDocument => SR_DOCUMENT,
            KeyObjectDoc => KEY_OBJECT_DOC,
            EncapDoc => ENCAP_DOC,
            Waveform => WAVEFORM,
            RtDose => RT_DOSE,
            RtStructureSet => RT_STRUCTURE_SET,
            RtPlan => RT_PLAN,
            RtTreatRecord => RT_TREAT_RECORD,
            Spectroscopy => SPECTROSCOPY,
            RawData => RAW_DATA,
            Registration | Fiducial | ValueMap | Surface | Measurement | SurfaceScan | Tract => {
                CONTENT_IDENTIFIED
            }
            Radiotherapy => RADIOTHERAPY,
            Stereometric => CONTENT_IDENTIFICATION,
            Plan => &[],
        }
    }
}

#[derive(Clone, Copy)]
enum Need {
    /// Type 1: a value, else the listed alternatives, else a stand-in.
    One(&'static [u32]),
    /// Type 2: the value, or empty.
    Two,
    /// Type 1C/3: the value if the instance has one.
    IfPresent,
}

struct Key {
    tag: u32,
    vr: [u8; 2],
    need: Need,
}

const fn one(tag: u32, vr: &[u8; 2]) -> Key {
    Key {
        tag,
        vr: *vr,
        need: Need::One(&[]),
    }
}

const fn two(tag: u32, vr: &[u8; 2]) -> Key {
    Key {
        tag,
        vr: *vr,
        need: Need::Two,
    }
}

const fn cond(tag: u32, vr: &[u8; 2]) -> Key {
    Key {
        tag,
        vr: *vr,
        need: Need::IfPresent,
    }
}

const INSTANCE_NUMBER: Key = one(0x0020_0013, b"IS");
const CONTENT_DATE: Key = Key {
    tag: 0x0008_0023,
    vr: *b"DA",
    need: Need::One(&[0x0008_0022, 0x0008_0012]),
};
const CONTENT_TIME: Key = Key {
    tag: 0x0008_0033,
    vr: *b"TM",
    need: Need::One(&[0x0008_0032, 0x0008_0013]),
};
const CONCEPT_NAME: Key = one(0x0040_A043, b"SQ");
const CONTENT_LABEL: Key = one(0x0070_0080, b"CS");
const CONTENT_DESCRIPTION: Key = two(0x0070_0081, b"LO");
const CONTENT_CREATOR: Key = two(0x0070_0084, b"PN");

// PS3.3 F.5.1
const PATIENT: &[Key] = &[two(0x0010_0010, b"PN"), one(0x0010_0020, b"LO")];
// F.5.2
const STUDY: &[Key] = &[
    Key {
        tag: 0x0008_0020,
        vr: *b"DA",
        need: Need::One(&[0x0008_0021, 0x0008_0022, 0x0008_0023]),
    },
    Key {
        tag: 0x0008_0030,
        vr: *b"TM",
        need: Need::One(&[0x0008_0031, 0x0008_0032, 0x0008_0033]),
    },
    two(0x0008_0050, b"SH"),
    two(0x0008_1030, b"LO"),
    one(0x0020_000D, b"UI"),
    one(0x0020_0010, b"SH"),
];
// F.5.3
const SERIES: &[Key] = &[
    one(0x0008_0060, b"CS"),
    one(0x0020_000E, b"UI"),
    one(0x0020_0011, b"IS"),
];
// F.5.4
const IMAGE: &[Key] = &[INSTANCE_NUMBER];
// F.5.23 (Blending Sequence: see `blending`)
const PRESENTATION: &[Key] = &[
    INSTANCE_NUMBER,
    CONTENT_LABEL,
    CONTENT_DESCRIPTION,
    one(0x0070_0082, b"DA"),
    one(0x0070_0083, b"TM"),
    CONTENT_CREATOR,
    cond(0x0008_1115, b"SQ"),
];
// F.5.25 (Verification DateTime and Content Sequence: see `record_keys`)
const SR_DOCUMENT: &[Key] = &[
    INSTANCE_NUMBER,
    one(0x0040_A491, b"CS"),
    one(0x0040_A493, b"CS"),
    CONTENT_DATE,
    CONTENT_TIME,
    CONCEPT_NAME,
];
// F.5.26
const KEY_OBJECT_DOC: &[Key] = &[INSTANCE_NUMBER, CONTENT_DATE, CONTENT_TIME, CONCEPT_NAME];
// F.5.32
const ENCAP_DOC: &[Key] = &[
    two(0x0008_0023, b"DA"),
    two(0x0008_0033, b"TM"),
    INSTANCE_NUMBER,
    two(0x0042_0010, b"ST"),
    cond(0x0040_E001, b"ST"),
    two(0x0040_A043, b"SQ"),
    one(0x0042_0012, b"LO"),
];
// F.5.24
const WAVEFORM: &[Key] = &[INSTANCE_NUMBER, CONTENT_DATE, CONTENT_TIME];
// F.5.19 to F.5.22
const RT_DOSE: &[Key] = &[INSTANCE_NUMBER, one(0x3004_000A, b"CS")];
const RT_STRUCTURE_SET: &[Key] = &[
    INSTANCE_NUMBER,
    one(0x3006_0002, b"SH"),
    two(0x3006_0008, b"DA"),
    two(0x3006_0009, b"TM"),
];
const RT_PLAN: &[Key] = &[
    INSTANCE_NUMBER,
    one(0x300A_0002, b"SH"),
    two(0x300A_0006, b"DA"),
    two(0x300A_0007, b"TM"),
];
const RT_TREAT_RECORD: &[Key] = &[
    INSTANCE_NUMBER,
    two(0x3008_0250, b"DA"),
    two(0x3008_0251, b"TM"),
];
// F.5.27
const SPECTROSCOPY: &[Key] = &[
    one(0x0008_0008, b"CS"),
    CONTENT_DATE,
    CONTENT_TIME,
    INSTANCE_NUMBER,
    cond(0x0008_9092, b"SQ"),
    one(0x0028_0008, b"IS"),
    one(0x0028_0010, b"US"),
    one(0x0028_0011, b"US"),
    one(0x0028_9001, b"UL"),
    one(0x0028_9002, b"UL"),
];
// F.5.28
const RAW_DATA: &[Key] = &[CONTENT_DATE, CONTENT_TIME, two(0x0020_0013, b"IS")];
// Content Date/Time and the Content Identification Macro: REGISTRATION,
// FIDUCIAL, VALUE MAP, SURFACE, MEASUREMENT, SURFACE SCAN, TRACT
const CONTENT_IDENTIFIED: &[Key] = &[
    CONTENT_DATE,
    CONTENT_TIME,
    INSTANCE_NUMBER,
    CONTENT_LABEL,
    CONTENT_DESCRIPTION,
    CONTENT_CREATOR,
];
// STEREOMETRIC: F.5.35 lists no keys of its own; dciodvfy (dicom3tools)
// requires the Content Identification Macro, which the IOD has
const CONTENT_IDENTIFICATION: &[Key] = &[
    INSTANCE_NUMBER,
    CONTENT_LABEL,
    CONTENT_DESCRIPTION,
    CONTENT_CREATOR,
];
// F.5.46
const RADIOTHERAPY: &[Key] = &[
    INSTANCE_NUMBER,
    cond(0x3010_0033, b"SH"),
    cond(0x3010_0034, b"LO"),
    CONTENT_DESCRIPTION,
    CONTENT_CREATOR,
];

/// Top-level elements read besides the record keys: identity and sort
/// keys, and what SR and presentation records take from sequences.
const ALSO_READ: &[u32] = &[
    0x0008_0016,
    0x0008_0018,
    0x0008_0020,
    0x0008_0030,
    0x0010_0010,
    0x0010_0020,
    0x0010_0021,
    0x0010_0030,
    0x0020_000D,
    0x0020_000E,
    0x0020_0011,
    0x0020_0013,
    0x0040_A073,
    0x0040_A493,
    0x0040_A730,
    0x0070_0402,
];

/// Whether the top-level element `tag` of an instance's metadata can
/// matter to the file-set's directory records.
pub fn read_by_directory(tag: u32) -> bool {
    ALSO_READ.contains(&tag)
        || RecordKind::ALL.iter().any(|kind| {
            kind.keys().iter().any(|key| {
                key.tag == tag
                    || matches!(key.need, Need::One(alternatives) if alternatives.contains(&tag))
            })
        })
}

/// The keys of a `kind` record for `d`; `ordinal` (from 1) is its place
/// among its siblings, the stand-in for a missing number.
pub fn record_keys(
    kind: RecordKind,
    d: &Described<'_>,
    ordinal: usize,
) -> Result<Vec<Element>, PackageError> {
    let invalid = |reason: String| PackageError::Metadata {
        path: d.path.to_path_buf(),
        reason,
    };
    let mut elements = Vec::new();
    for key in kind.keys() {
        let found = value(d, key.tag).map_err(invalid)?;
        let element = match (found, key.need) {
            (Some(e), _) => Some(e),
            (None, Need::Two) => Some(Element::empty(key.tag, key.vr)),
            (None, Need::IfPresent) => None,
            (None, Need::One(alternatives)) => {
                let mut alternative = None;
                for &tag in alternatives {
                    alternative = value(d, tag).map_err(invalid)?;
                    if alternative.is_some() {
                        break;
                    }
                }
                Some(alternative.unwrap_or_else(|| stand_in(key, d, ordinal)))
            }
        };
        if let Some(mut e) = element {
            e.tag = key.tag;
            e.vr = key.vr;
            elements.push(e);
        }
    }
    match kind {
        RecordKind::SrDocument => {
            elements.extend(verification_date_time(d));
            elements.extend(concept_modifiers(d).map_err(invalid)?);
        }
        RecordKind::KeyObjectDoc => elements.extend(concept_modifiers(d).map_err(invalid)?),
        RecordKind::Presentation => elements.extend(blending(d).map_err(invalid)?),
        _ => {}
    }
    Ok(elements)
}

/// The instance's element `tag` if it has a non-empty value.
fn value(d: &Described<'_>, tag: u32) -> Result<Option<Element>, String> {
    let Some(json) = d.meta.get(&tag_key(tag)) else {
        return Ok(None);
    };
    Ok(from_json(tag, json)?.filter(|e| !e.is_empty()))
}

fn stand_in(key: &Key, d: &Described<'_>, ordinal: usize) -> Element {
    let (date, time) = super::date_time(d.modified);
    let text = match (key.tag, &key.vr) {
        (_, b"DA") => date,
        (_, b"TM") => time,
        (_, b"IS") => ordinal.to_string(),
        (0x0010_0020 | 0x0020_0010, _) => format!("PUSHGATE{ordinal:06}"),
        (0x0008_0060, _) => "OT".to_string(),
        (0x0040_A491, _) => "PARTIAL".to_string(),
        (0x0040_A493, _) => "UNVERIFIED".to_string(),
        _ => {
            tracing::warn!(
                path = %d.path.display(),
                tag = %tag_key(key.tag),
                "a Type 1 directory record key is missing from the instance; written empty"
            );
            return Element::empty(key.tag, key.vr);
        }
    };
    Element::strings(key.tag, key.vr, &[text])
}

/// Verification DateTime: the latest of the Verifying Observer Sequence,
/// required when the document is VERIFIED.
fn verification_date_time(d: &Described<'_>) -> Option<Element> {
    if super::first_string(d.meta, 0x0040_A493).as_deref() != Some("VERIFIED") {
        return None;
    }
    let latest = items(d, 0x0040_A073)
        .filter_map(|item| {
            item.get(&tag_key(0x0040_A030))?
                .get("Value")?
                .get(0)?
                .as_str()
        })
        .map(str::trim)
        .max()?;
    Some(Element::strings(0x0040_A030, *b"DT", &[latest]))
}

/// Content Sequence: the root's HAS CONCEPT MOD content items, if any.
fn concept_modifiers(d: &Described<'_>) -> Result<Option<Element>, String> {
    let modifiers = items(d, 0x0040_A730)
        .filter(|item| {
            item.get(&tag_key(0x0040_A010))
                .and_then(|e| e.get("Value")?.get(0)?.as_str())
                .map(str::trim)
                == Some("HAS CONCEPT MOD")
        })
        .map(from_json_dataset)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!modifiers.is_empty()).then(|| Element::sequence(0x0040_A730, modifiers)))
}

/// Blending Sequence: per item, Study Instance UID and Referenced Series
/// Sequence, required when the presentation state blends.
fn blending(d: &Described<'_>) -> Result<Option<Element>, String> {
    let mut out = Vec::new();
    for item in items(d, 0x0070_0402) {
        let mut kept = Vec::new();
        for tag in [0x0020_000D, 0x0008_1115] {
            if let Some(json) = item.get(&tag_key(tag)) {
                kept.extend(from_json(tag, json)?);
            }
        }
        out.push(kept);
    }
    Ok((!out.is_empty()).then(|| Element::sequence(0x0070_0402, out)))
}

fn items<'a>(
    d: &'a Described<'_>,
    tag: u32,
) -> impl Iterator<Item = &'a serde_json::Map<String, Value>> + 'a {
    d.meta
        .get(&tag_key(tag))
        .and_then(|e| e.get("Value"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}
