//! Intake shared by every way an instance arrives (C-STORE, drop folder,
//! relay): check the data set, make the file durable, index it, tell
//! subscribers. Also the drop-folder watcher, study stability, and the
//! rebuilding of the index from the files.

mod attrs;
pub mod dropfolder;
mod events;
mod metadata;
pub mod parse;
mod part10;
pub mod reindex;
pub mod sop_classes;
pub mod stability;
mod storage_classes;

use std::io;
use std::sync::Arc;

use dicom_dictionary_std::tags;

pub use attrs::{BSN_ISSUER_OID, normalize_bsn};
pub use events::{Events, StudyEvent};
pub use metadata::BULK_URI_PREFIX;
pub use parse::ParseError;
pub use part10::{Part10Header, read_part10_header, write_part10_header};

use crate::store::{
    FileStore, Index, IndexEntry, InstanceKey, InstanceRecord, PutOutcome, Source, StoreError,
    TempFile, Timestamp, Uid, UidError,
};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error("{0}")]
    Unparsable(#[from] ParseError),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{attribute}: {cause}")]
    InvalidUid {
        attribute: &'static str,
        cause: UidError,
    },
    #[error("SOP Class UID in data set differs from request: {found}")]
    SopClassMismatch { declared: String, found: String },
    #[error("SOP Instance UID in data set differs from request: {found}")]
    SopInstanceMismatch { declared: String, found: String },
    #[error("SOP Class {0} is not a storage SOP class that pushgate keeps")]
    UnsupportedSopClass(String),
    #[error("{reason} (data set does not match SOP Class {sop_class})")]
    IodMismatch { sop_class: String, reason: String },
    #[error("disk full: {0}")]
    DiskFull(io::Error),
    #[error("cannot write: {0}")]
    Io(io::Error),
    #[error("cannot index: {0}")]
    Index(#[from] StoreError),
}

impl IngestError {
    /// Classifies an I/O error: a full disk is the operator's to fix, and the
    /// sender may retry later.
    pub fn io(e: io::Error) -> IngestError {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => IngestError::DiskFull(e),
            _ => IngestError::Io(e),
        }
    }
}

/// What the sender claimed in its request (C-STORE command or file meta).
#[derive(Debug, Clone)]
pub struct Declared {
    pub sop_class: String,
    pub sop_instance: String,
}

/// A received file waiting to be checked and stored.
pub struct Received {
    pub temp: TempFile,
    pub dataset_offset: u64,
    pub transfer_syntax: String,
    pub declared: Option<Declared>,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub key: InstanceKey,
    pub outcome: PutOutcome,
    pub size: u64,
}

/// The one path by which an instance enters the store.
#[derive(Clone)]
pub struct Ingestor {
    files: FileStore,
    index: Arc<dyn Index>,
    events: Events,
}

fn uid(attribute: &'static str, value: &str) -> Result<Uid, IngestError> {
    if value.is_empty() {
        return Err(IngestError::Missing(attribute));
    }
    Uid::parse(value).map_err(|cause| IngestError::InvalidUid { attribute, cause })
}

impl Ingestor {
    pub fn new(files: FileStore, index: Arc<dyn Index>, events: Events) -> Ingestor {
        Ingestor {
            files,
            index,
            events,
        }
    }

    pub fn files(&self) -> &FileStore {
        &self.files
    }

    pub fn index(&self) -> &Arc<dyn Index> {
        &self.index
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Checks, installs and indexes one instance. Blocking: call from a
    /// blocking thread. On error nothing of it is visible.
    pub fn ingest(&self, received: Received) -> Result<Stored, IngestError> {
        let Received {
            mut temp,
            dataset_offset,
            transfer_syntax,
            declared,
            source,
        } = received;
        temp.flush().map_err(IngestError::io)?;
        let received_at = Timestamp::now();
        let entry = describe(&temp, dataset_offset, &transfer_syntax, declared.as_ref())?;
        let entry = IndexEntry {
            record: InstanceRecord {
                size: temp.len(),
                received_at,
                source,
                ..entry.record
            },
            ..entry
        };
        self.files
            .install(temp, &entry.key)
            .map_err(IngestError::io)?;
        let outcome = self.index.put_instance(&entry).inspect_err(|e| {
            tracing::error!(instance = %entry.key, "file stored but not indexed ({e}); `pushgate reindex` will pick it up");
        })?;
        self.after_put(&entry.key, received_at, &outcome);
        Ok(Stored {
            key: entry.key,
            outcome,
            size: entry.record.size,
        })
    }

    /// Indexes a file that is already in place (reconcile, reindex).
    pub fn index_existing(
        &self,
        key: &InstanceKey,
        source: Source,
    ) -> Result<PutOutcome, IngestError> {
        let entry = describe_file(&self.files.path_of(key), source)?;
        if &entry.key != key {
            return Err(IngestError::SopInstanceMismatch {
                declared: key.to_string(),
                found: entry.key.to_string(),
            });
        }
        let outcome = self.index.put_instance(&entry)?;
        self.after_put(key, entry.record.received_at, &outcome);
        Ok(outcome)
    }

    fn after_put(&self, key: &InstanceKey, received_at: Timestamp, outcome: &PutOutcome) {
        if let Some(old) = &outcome.moved_from
            && let Err(e) = self.files.remove(old)
        {
            tracing::warn!(instance = %old, "could not remove the replaced file: {e}");
        }
        if outcome.reopened {
            self.events.publish(StudyEvent::Reopened {
                study: key.study.clone(),
            });
        }
        self.events.publish(StudyEvent::InstanceStored {
            key: key.clone(),
            received_at,
        });
    }
}

/// Parses and checks the data set in `temp`; the record's size, time and
/// source are left for the caller.
fn describe(
    temp: &TempFile,
    dataset_offset: u64,
    transfer_syntax: &str,
    declared: Option<&Declared>,
) -> Result<IndexEntry, IngestError> {
    let parsed = parse::parse_dataset(temp.file(), dataset_offset, transfer_syntax)?;
    entry_from(
        parsed,
        dataset_offset,
        transfer_syntax,
        declared,
        Source::Reindex,
        Timestamp(0),
        0,
    )
}

/// Parses a Part 10 file on disk into an index entry (time: its mtime).
pub fn describe_file(path: &std::path::Path, source: Source) -> Result<IndexEntry, IngestError> {
    let file = std::fs::File::open(path).map_err(IngestError::io)?;
    let meta = file.metadata().map_err(IngestError::io)?;
    let header = read_part10_header(&file)?;
    let parsed = parse::parse_dataset(&file, header.dataset_offset, &header.transfer_syntax)?;
    let declared = Declared {
        sop_class: header.sop_class.clone(),
        sop_instance: header.sop_instance.clone(),
    };
    let received_at = meta
        .modified()
        .map(Timestamp::from)
        .unwrap_or_else(|_| Timestamp::now());
    entry_from(
        parsed,
        header.dataset_offset,
        &header.transfer_syntax,
        Some(&declared),
        source,
        received_at,
        meta.len(),
    )
}

fn entry_from(
    parsed: parse::Parsed,
    dataset_offset: u64,
    transfer_syntax: &str,
    declared: Option<&Declared>,
    source: Source,
    received_at: Timestamp,
    size: u64,
) -> Result<IndexEntry, IngestError> {
    let obj = &parsed.object;
    let sop_class = attrs::text(obj, tags::SOP_CLASS_UID);
    let sop_instance = attrs::text(obj, tags::SOP_INSTANCE_UID);
    if sop_class.is_empty() {
        return Err(IngestError::Missing("SOP Class UID"));
    }
    let sop = uid("SOP Instance UID", &sop_instance)?;
    if let Some(declared) = declared {
        if declared.sop_class.trim_end_matches(['\0', ' ']) != sop_class {
            return Err(IngestError::SopClassMismatch {
                declared: declared.sop_class.clone(),
                found: sop_class,
            });
        }
        if declared.sop_instance.trim_end_matches(['\0', ' ']) != sop_instance {
            return Err(IngestError::SopInstanceMismatch {
                declared: declared.sop_instance.clone(),
                found: sop_instance,
            });
        }
    }
    if !sop_classes::is_kept(&sop_class) {
        return Err(IngestError::UnsupportedSopClass(sop_class));
    }
    sop_classes::check_iod(&sop_class, obj, &parsed.layout).map_err(|reason| {
        IngestError::IodMismatch {
            sop_class: sop_class.clone(),
            reason,
        }
    })?;
    let key = InstanceKey {
        study: uid(
            "Study Instance UID",
            &attrs::text(obj, tags::STUDY_INSTANCE_UID),
        )?,
        series: uid(
            "Series Instance UID",
            &attrs::text(obj, tags::SERIES_INSTANCE_UID),
        )?,
        sop,
    };
    let metadata_json = metadata::to_json(obj, &parsed.layout).map_err(|e| {
        IngestError::Unparsable(ParseError::Malformed {
            offset: 0,
            reason: format!("cannot express as DICOM JSON: {e}"),
        })
    })?;
    Ok(IndexEntry {
        patient: attrs::patient(obj),
        study: attrs::study(obj),
        series: attrs::series(obj),
        record: InstanceRecord {
            attrs: attrs::instance(obj),
            transfer_syntax: transfer_syntax.to_string(),
            size,
            dataset_offset,
            received_at,
            source,
            layout: parsed.layout,
        },
        metadata_json,
        key,
    })
}
