//! What the index keeps per patient, study, series and instance.
//!
//! Study and series attributes are those QIDO-RS returns by default
//! (PS3.18 Table 10.6.3-3 and its series counterpart); the study record
//! embeds its series so that counts and modalities never need a scan.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::key::InstanceKey;
use crate::base::{Timestamp, Uid};
// Where a file keeps its large values is the file format's: re-exported here
// because the instance record keeps it.
pub use crate::part10::{BulkLayout, BulkValue, PixelLayout};

/// Patient attributes as received; the BSN is kept apart from Patient ID.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientAttrs {
    pub name: String,
    pub id: String,
    pub issuer: String,
    pub birth_date: String,
    pub sex: String,
    /// Burgerservicenummer, from Patient ID or Other Patient IDs Sequence when
    /// its issuer is 2.16.840.1.113883.2.4.6.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bsn: Option<String>,
}

impl PatientAttrs {
    /// Identity of a patient across studies: issuer and ID, or failing an ID,
    /// name and birth date.
    pub fn index_key(&self) -> String {
        if self.id.is_empty() {
            format!("~{}~{}", self.name, self.birth_date)
        } else {
            format!("{}~{}", self.issuer, self.id)
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyAttrs {
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub referring_physician: String,
    pub study_id: String,
    pub study_description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timezone_offset: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub institution_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesAttrs {
    pub modality: String,
    pub series_number: Option<i64>,
    pub series_description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body_part: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub performed_start_date: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub performed_start_time: String,
    /// (Scheduled Procedure Step ID, Requested Procedure ID) per item of the
    /// Request Attributes Sequence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_attributes: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceAttrs {
    pub sop_class_uid: String,
    pub instance_number: Option<i64>,
    pub rows: Option<u16>,
    pub columns: Option<u16>,
    pub bits_allocated: Option<u16>,
    pub number_of_frames: Option<u32>,
}

/// How an instance reached us.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Source {
    Dimse { calling_ae: String, peer: String },
    DropFolder { file: String },
    Relay { sender: String },
    Reindex,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    #[serde(flatten)]
    pub attrs: InstanceAttrs,
    pub transfer_syntax: String,
    /// Size of the Part 10 file.
    pub size: u64,
    /// Its modification time (ns since the epoch): with the size, how
    /// reconcile tells a changed file from the indexed one.
    pub mtime_ns: u64,
    /// Where the data set starts in the file (after the meta group).
    pub dataset_offset: u64,
    /// CRC-32 of the whole file (ZIP's), computed as it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<u32>,
    pub received_at: Timestamp,
    pub source: Source,
    pub layout: BulkLayout,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesRecord {
    #[serde(flatten)]
    pub attrs: SeriesAttrs,
    pub num_instances: u64,
    pub bytes: u64,
    /// SOP classes present, with instance counts (to show and to filter).
    pub sop_classes: BTreeMap<String, u64>,
    pub last_arrival: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyRecord {
    pub study_uid: Uid,
    pub patient: PatientAttrs,
    #[serde(flatten)]
    pub attrs: StudyAttrs,
    pub series: BTreeMap<Uid, SeriesRecord>,
    pub first_arrival: Timestamp,
    pub last_arrival: Timestamp,
    /// Set once `dicom.stable_after` passed without a new instance; a late
    /// instance clears it.
    pub completed_at: Option<Timestamp>,
    /// Calling AEs, drop folder, relay senders that contributed.
    pub sources: BTreeSet<String>,
}

impl StudyRecord {
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    pub fn num_instances(&self) -> u64 {
        self.series.values().map(|s| s.num_instances).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.series.values().map(|s| s.bytes).sum()
    }

    pub fn modalities(&self) -> BTreeSet<&str> {
        self.series
            .values()
            .map(|s| s.attrs.modality.as_str())
            .filter(|m| !m.is_empty())
            .collect()
    }

    pub fn is_complete(&self) -> bool {
        self.completed_at.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatientRecord {
    #[serde(flatten)]
    pub attrs: PatientAttrs,
    pub studies: BTreeSet<Uid>,
}

/// Everything intake learned about one instance, ready to be indexed.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub key: InstanceKey,
    pub patient: PatientAttrs,
    pub study: StudyAttrs,
    pub series: SeriesAttrs,
    pub record: InstanceRecord,
    /// DICOM JSON of the data set with bulk values as `BulkDataURI`
    /// placeholders (see `ingest::metadata`).
    pub metadata_json: Vec<u8>,
}
