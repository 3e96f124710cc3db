//! Intake shared by every way an instance arrives (C-STORE, drop folder,
//! relay): check the data set, make the file durable, index it, tell
//! subscribers. Also the drop-folder watcher, study stability, and the
//! rebuilding of the index from the files.

pub(crate) mod attrs;
mod describe;
pub mod dropfolder;
mod events;
mod metadata;
pub mod reindex;
pub mod sop_classes;
pub mod stability;
mod storage_classes;

use std::hash::{Hash, Hasher};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use attrs::{BSN_ISSUER_OID, normalize_bsn};
use describe::Provenance;
pub use describe::describe_file;
pub use events::{Events, StudyEvent};
pub use metadata::{BULK_URI_PREFIX, value_at as metadata_value_at};
// Part 10 file I/O moved to `crate::part10`; re-exported while callers move.
pub use crate::part10::{ParseError, Part10Header, read_part10_header, write_part10_header};

use crate::capacity::Disk;
use crate::store::{
    FileStore, Index, InstanceKey, PutOutcome, Source, StoreError, TempFile, Timestamp, Uid,
    UidError,
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
    /// Set when the index may no longer match the files; the store then
    /// checks them against each other at the next start.
    dirty: Arc<AtomicBool>,
    /// Stores of the same SOP Instance UID (a modality re-sending after a
    /// timeout) take turns, so that file and index always describe the same
    /// bytes.
    stripes: Arc<[Mutex<()>; 64]>,
    /// Whether there is room for more (the DICOM listener and the drop
    /// folder ask before they take anything in).
    disk: Disk,
}

/// What became of a file found in the store by reconcile or reindex.
#[derive(Debug, PartialEq)]
pub enum Existing {
    Indexed,
    /// Another file holds the same SOP Instance UID and is newer: this one
    /// was moved aside to `orphaned/`.
    Orphaned(PathBuf),
}

impl Ingestor {
    pub fn new(
        files: FileStore,
        index: Arc<dyn Index>,
        events: Events,
        dirty: Arc<AtomicBool>,
    ) -> Ingestor {
        Ingestor {
            files,
            index,
            events,
            dirty,
            stripes: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
            disk: Disk::unlimited(),
        }
    }

    /// Intake through this ingestor stops while `disk` is over its mark.
    pub fn with_disk(mut self, disk: Disk) -> Ingestor {
        self.disk = disk;
        self
    }

    pub fn disk(&self) -> &Disk {
        &self.disk
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

    fn stripe(&self, sop: &Uid) -> MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        sop.hash(&mut hasher);
        let stripe = &self.stripes[(hasher.finish() % 64) as usize];
        stripe
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn mark_dirty(&self, key: &InstanceKey, what: &str, e: &dyn std::fmt::Display) {
        self.dirty.store(true, Ordering::SeqCst);
        tracing::error!(instance = %key, "{what} ({e}); the index will be checked against the files at the next start");
    }

    /// Checks, installs and indexes one instance. Blocking: call from a
    /// blocking thread. On error nothing new is visible; if the file was
    /// replaced but the index could not follow, the store is marked for a
    /// check at the next start.
    pub fn ingest(&self, received: Received) -> Result<Stored, IngestError> {
        let Received {
            mut temp,
            dataset_offset,
            transfer_syntax,
            declared,
            source,
        } = received;
        temp.flush().map_err(IngestError::io)?;
        let parsed = crate::part10::parse_dataset(temp.file(), dataset_offset, &transfer_syntax)?;
        let provenance = Provenance {
            source,
            received_at: Timestamp::now(),
            size: temp.len(),
            mtime_ns: describe::mtime_ns(temp.file()).map_err(IngestError::io)?,
            crc32: Some(temp.crc32()),
        };
        let entry = describe::entry_from(
            parsed,
            dataset_offset,
            &transfer_syntax,
            declared.as_ref(),
            provenance,
        )?;
        let _turn = self.stripe(&entry.key.sop);
        if let Err(e) = self.files.install(temp, &entry.key) {
            if self.files.path_of(&entry.key).exists() {
                self.mark_dirty(&entry.key, "file may be replaced but not indexed", &e);
            }
            return Err(IngestError::io(e));
        }
        let outcome = self.index.put_instance(&entry).inspect_err(|e| {
            self.mark_dirty(&entry.key, "file stored but not indexed", e);
        })?;
        self.after_put(
            &entry.key,
            entry.record.received_at,
            &outcome,
            Replaced::Remove,
        );
        crate::metrics::METRICS.instances_received.inc();
        crate::metrics::METRICS
            .bytes_received
            .inc_by(entry.record.size);
        Ok(Stored {
            key: entry.key,
            outcome,
            size: entry.record.size,
        })
    }

    /// Indexes a file that is already in place (reconcile, reindex). Of two
    /// files with one SOP Instance UID the newer wins; the other is moved
    /// aside, never deleted.
    pub fn index_existing(&self, key: &InstanceKey) -> Result<Existing, IngestError> {
        let path = self.files.path_of(key);
        let entry = describe::describe_file(&path)?;
        if &entry.key != key {
            return Err(IngestError::SopInstanceMismatch {
                declared: key.to_string(),
                found: entry.key.to_string(),
            });
        }
        let _turn = self.stripe(&key.sop);
        if let Some(other) = self.index.locate(&key.sop)?.filter(|other| other != key)
            && let Some(record) = self.index.instance(&other)?
            && record.mtime_ns >= entry.record.mtime_ns
        {
            return Ok(Existing::Orphaned(
                self.files.orphan(key).map_err(IngestError::io)?,
            ));
        }
        let outcome = self.index.put_instance(&entry)?;
        self.after_put(key, entry.record.received_at, &outcome, Replaced::Orphan);
        Ok(Existing::Indexed)
    }

    fn after_put(
        &self,
        key: &InstanceKey,
        received_at: Timestamp,
        outcome: &PutOutcome,
        replaced: Replaced,
    ) {
        if let Some(old) = &outcome.moved_from {
            let done = match replaced {
                Replaced::Remove => self.files.remove(old),
                Replaced::Orphan => self.files.orphan(old).map(|_| ()),
            };
            if let Err(e) = done {
                tracing::warn!(instance = %old, "could not move the replaced file out of the store: {e}");
            }
        }
        if outcome.reopened {
            self.events.publish(StudyEvent::Reopened {
                study: key.study.clone(),
            });
        }
        if outcome.new_study {
            self.events.publish(StudyEvent::NewStudy {
                study: key.study.clone(),
            });
        }
        self.events.publish(StudyEvent::InstanceStored {
            key: key.clone(),
            received_at,
        });
    }
}

impl Ingestor {
    /// Deletes an instance (retention), file first, then its index entry,
    /// in turn with any store of the same SOP Instance UID — unless it was
    /// received after `not_after` (sent again since the deletion was
    /// decided: that copy is new and stays). Returns whether it went.
    /// Blocking.
    pub fn delete_instance(
        &self,
        key: &InstanceKey,
        not_after: Timestamp,
    ) -> Result<bool, IngestError> {
        let _turn = self.stripe(&key.sop);
        if let Some(record) = self.index.instance(key)?
            && record.received_at > not_after
        {
            return Ok(false);
        }
        self.files.remove(key).map_err(IngestError::io)?;
        self.index.remove_instance(key)?;
        Ok(true)
    }
}

/// What happens to the file of an instance that moved to another
/// study/series: at intake it is removed; when rebuilding it is kept aside.
#[derive(Clone, Copy)]
enum Replaced {
    Remove,
    Orphan,
}

/// Ingests a file of `sample-dicom/` as intake would (tests of the modules
/// that need stored instances).
#[cfg(test)]
pub(crate) fn ingest_sample(
    ingestor: &Ingestor,
    rel: &str,
    source: crate::store::Source,
) -> crate::store::InstanceKey {
    use std::io::Write;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-dicom")
        .join(rel);
    let header = read_part10_header(&std::fs::File::open(&path).unwrap()).unwrap();
    let mut temp = ingestor.files().create_temp().unwrap();
    temp.write_all(&std::fs::read(&path).unwrap()).unwrap();
    ingestor
        .ingest(Received {
            temp,
            dataset_offset: header.dataset_offset,
            transfer_syntax: header.transfer_syntax,
            declared: Some(Declared {
                sop_class: header.sop_class,
                sop_instance: header.sop_instance,
            }),
            source,
        })
        .unwrap()
        .key
}
