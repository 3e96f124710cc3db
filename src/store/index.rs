//! The sled index: one tree per relation; all changes for one instance in
//! one multi-tree transaction. The index is a view: `reindex` rebuilds it
//! from the instance files.

use std::path::Path;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::StoreError;
use super::key::InstanceKey;
use super::records::{
    IndexEntry, InstanceRecord, PatientRecord, SeriesRecord, Source, StudyRecord,
};
use super::trees;
use crate::base::{Timestamp, Uid};

/// Bump when the on-disk shape changes; the directory is versioned so an old
/// index is never misread.
pub const INDEX_VERSION: &str = "v1";

/// What `put_instance` changed besides adding the instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutOutcome {
    /// The same SOP Instance UID was already stored (and was replaced).
    pub replaced: bool,
    /// It was stored under another study or series; that file must go.
    pub moved_from: Option<InstanceKey>,
    /// The study had been complete; this instance reopened it.
    pub reopened: bool,
    /// First instance of a new study.
    pub new_study: bool,
}

/// Which studies changed since a point in the index's change count: what
/// a cache of study summaries (the console's list) needs to stay current
/// without reading every study again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StudyChanges {
    /// `now`: the count to ask from next time; `studies`: changed since
    /// (added, grown, completed, emptied, removed), each once.
    Since { now: u64, studies: Vec<Uid> },
    /// More changed than the index remembers (or `since` is from another
    /// run): read them all.
    All { now: u64 },
}

/// How many study changes the index remembers for [`Index::study_changes`].
const CHANGES_KEPT: usize = 8192;

/// The recent study changes, in memory only: a restart starts a new count
/// (a cache built before it reads everything again).
#[derive(Default)]
struct ChangeLog {
    /// Changes made so far, this run.
    count: u64,
    /// The last [`CHANGES_KEPT`] of them: (its count, the study).
    recent: std::collections::VecDeque<(u64, Uid)>,
}

impl ChangeLog {
    fn note(&mut self, study: &Uid) {
        self.count += 1;
        if self.recent.len() == CHANGES_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back((self.count, study.clone()));
    }

    fn since(&self, since: u64) -> StudyChanges {
        let now = self.count;
        let oldest_kept = self.recent.front().map_or(now + 1, |(n, _)| *n);
        if since > now || since + 1 < oldest_kept {
            return StudyChanges::All { now };
        }
        let mut studies: Vec<Uid> = Vec::new();
        for (_, study) in self.recent.iter().filter(|(n, _)| *n > since) {
            if !studies.contains(study) {
                studies.push(study.clone());
            }
        }
        StudyChanges::Since { now, studies }
    }
}

/// The index operations intake, retrieval and administration need.
pub trait Index: Send + Sync + 'static {
    fn put_instance(&self, entry: &IndexEntry) -> Result<PutOutcome, StoreError>;
    fn remove_instance(&self, key: &InstanceKey) -> Result<bool, StoreError>;
    fn study(&self, study: &Uid) -> Result<Option<StudyRecord>, StoreError>;
    fn studies(&self) -> Result<Vec<StudyRecord>, StoreError>;
    fn instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>, StoreError>;
    /// Instances of a study (or of one series), in key order.
    fn instances(
        &self,
        study: &Uid,
        series: Option<&Uid>,
    ) -> Result<Vec<(InstanceKey, InstanceRecord)>, StoreError>;
    fn locate(&self, sop: &Uid) -> Result<Option<InstanceKey>, StoreError>;
    /// Studies whose Accession Number is `accession`.
    fn studies_by_accession(&self, accession: &str) -> Result<Vec<Uid>, StoreError>;
    fn metadata(&self, key: &InstanceKey) -> Result<Option<Vec<u8>>, StoreError>;
    /// Marks a study complete if nothing arrived since `last_arrival`.
    fn mark_complete(
        &self,
        study: &Uid,
        last_arrival: Timestamp,
        at: Timestamp,
    ) -> Result<bool, StoreError>;
    fn instance_count(&self) -> Result<usize, StoreError>;
    fn instance_keys(&self) -> Result<Vec<InstanceKey>, StoreError>;
    fn flush(&self) -> Result<(), StoreError>;
    /// The studies changed after change `since` (0: from the start).
    fn study_changes(&self, since: u64) -> StudyChanges;
}

pub struct SledIndex {
    db: sled::Db,
    accessions: sled::Tree,
    studies: sled::Tree,
    instances: sled::Tree,
    locations: sled::Tree,
    metadata: sled::Tree,
    patients: sled::Tree,
    changes: std::sync::Mutex<ChangeLog>,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("{what} record does not decode: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

impl SledIndex {
    pub fn open(dir: &Path) -> Result<SledIndex, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(32 * 1024 * 1024)
            .flush_every_ms(Some(500))
            .open()?;
        Self::with_db(db)
    }

    /// The database, for the other trees kept beside the index (grants).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// An index in memory only, for tests.
    pub fn temporary() -> Result<SledIndex, StoreError> {
        Self::with_db(sled::Config::new().temporary(true).open()?)
    }

    fn with_db(db: sled::Db) -> Result<SledIndex, StoreError> {
        Ok(SledIndex {
            accessions: db.open_tree(trees::ACCESSIONS)?,
            studies: db.open_tree(trees::STUDIES)?,
            instances: db.open_tree(trees::INSTANCES)?,
            locations: db.open_tree(trees::LOCATIONS)?,
            metadata: db.open_tree(trees::METADATA)?,
            patients: db.open_tree(trees::PATIENTS)?,
            changes: Default::default(),
            db,
        })
    }

    /// Notes changed studies (after their transaction committed).
    fn changed<'a>(&self, studies: impl IntoIterator<Item = &'a Uid>) {
        let mut log = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        for study in studies {
            log.note(study);
        }
    }
}

fn source_label(source: &Source) -> String {
    match source {
        Source::Dimse { calling_ae, .. } => format!("dicom:{calling_ae}"),
        Source::DropFolder { .. } => "drop-folder".to_string(),
        Source::Relay { sender } => format!("relay:{sender}"),
        Source::Reindex => "reindex".to_string(),
    }
}

/// Takes one instance's contribution out of its study (and the study out of
/// its patient when it becomes empty, unless `refilling`: the instance comes
/// straight back into the same study, which keeps its state).
fn subtract(
    studies: &TransactionalTree,
    patients: &TransactionalTree,
    accessions: &TransactionalTree,
    key: &InstanceKey,
    old: &InstanceRecord,
    refilling: bool,
) -> TxResult<()> {
    let Some(bytes) = studies.get(key.study.as_str())? else {
        return Ok(());
    };
    let mut study: StudyRecord = decode("study", &bytes).map_err(abort)?;
    if let Some(series) = study.series.get_mut(&key.series) {
        series.num_instances = series.num_instances.saturating_sub(1);
        series.bytes = series.bytes.saturating_sub(old.size);
        if let Some(n) = series.sop_classes.get_mut(&old.attrs.sop_class_uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                series.sop_classes.remove(&old.attrs.sop_class_uid);
            }
        }
        if series.num_instances == 0 {
            study.series.remove(&key.series);
        }
    }
    if study.series.is_empty() && !refilling {
        studies.remove(key.study.as_str())?;
        accessions.remove(accession_key(
            &study.attrs.accession_number,
            key.study.as_str(),
        ))?;
        unlink_patient(patients, &study.patient.index_key(), &key.study)?;
    } else {
        studies.insert(key.study.as_str(), encode(&study).map_err(abort)?)?;
    }
    Ok(())
}

fn unlink_patient(patients: &TransactionalTree, patient_key: &str, study: &Uid) -> TxResult<()> {
    if let Some(bytes) = patients.get(patient_key)? {
        let mut patient: PatientRecord = decode("patient", &bytes).map_err(abort)?;
        patient.studies.remove(study);
        if patient.studies.is_empty() {
            patients.remove(patient_key)?;
        } else {
            patients.insert(patient_key, encode(&patient).map_err(abort)?)?;
        }
    }
    Ok(())
}

/// Adds one instance to its study and series records, creating them as
/// needed; the newest instance's descriptive attributes win.
fn add(
    studies: &TransactionalTree,
    patients: &TransactionalTree,
    accessions: &TransactionalTree,
    entry: &IndexEntry,
    outcome: &mut PutOutcome,
) -> TxResult<()> {
    let key = &entry.key;
    let record = &entry.record;
    let mut study = match studies.get(key.study.as_str())? {
        Some(bytes) => decode::<StudyRecord>("study", &bytes).map_err(abort)?,
        None => {
            outcome.new_study = true;
            StudyRecord {
                study_uid: key.study.clone(),
                patient: entry.patient.clone(),
                attrs: entry.study.clone(),
                series: Default::default(),
                first_arrival: record.received_at,
                last_arrival: record.received_at,
                completed_at: None,
                sources: Default::default(),
            }
        }
    };
    let old_patient_key = study.patient.index_key();
    if study.attrs.accession_number != entry.study.accession_number {
        accessions.remove(accession_key(
            &study.attrs.accession_number,
            key.study.as_str(),
        ))?;
    }
    if !entry.study.accession_number.is_empty() {
        accessions.insert(
            accession_key(&entry.study.accession_number, key.study.as_str()),
            b"",
        )?;
    }
    study.patient = entry.patient.clone();
    study.attrs = entry.study.clone();
    if study.completed_at.take().is_some() {
        outcome.reopened = true;
    }
    study.last_arrival = study.last_arrival.max(record.received_at);
    study.sources.insert(source_label(&record.source));
    let series = study
        .series
        .entry(key.series.clone())
        .or_insert_with(|| SeriesRecord {
            attrs: entry.series.clone(),
            num_instances: 0,
            bytes: 0,
            sop_classes: Default::default(),
            last_arrival: record.received_at,
        });
    series.attrs = entry.series.clone();
    series.num_instances += 1;
    series.bytes += record.size;
    *series
        .sop_classes
        .entry(record.attrs.sop_class_uid.clone())
        .or_default() += 1;
    series.last_arrival = series.last_arrival.max(record.received_at);
    studies.insert(key.study.as_str(), encode(&study).map_err(abort)?)?;

    let patient_key = study.patient.index_key();
    if patient_key != old_patient_key && !outcome.new_study {
        unlink_patient(patients, &old_patient_key, &key.study)?;
    }
    let mut patient = match patients.get(patient_key.as_str())? {
        Some(bytes) => decode::<PatientRecord>("patient", &bytes).map_err(abort)?,
        None => PatientRecord {
            attrs: entry.patient.clone(),
            studies: Default::default(),
        },
    };
    patient.attrs = entry.patient.clone();
    patient.studies.insert(key.study.clone());
    patients.insert(patient_key.as_str(), encode(&patient).map_err(abort)?)?;
    Ok(())
}

fn accession_key(accession: &str, study: &str) -> Vec<u8> {
    format!("{accession}\0{study}").into_bytes()
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Index(e),
    }
}

impl Index for SledIndex {
    fn put_instance(&self, entry: &IndexEntry) -> Result<PutOutcome, StoreError> {
        let index_key = entry.key.index_key();
        let record = encode(&entry.record)?;
        (
            &self.studies,
            &self.instances,
            &self.locations,
            &self.metadata,
            &self.patients,
            &self.accessions,
        )
            .transaction(
                |(studies, instances, locations, metadata, patients, accessions)| {
                    let mut outcome = PutOutcome::default();
                    if let Some(old) = locations.get(entry.key.sop.as_str())? {
                        let old_key = InstanceKey::from_index_key(&old).ok_or_else(|| {
                            abort(StoreError::Corrupt("bad location record".into()))
                        })?;
                        if let Some(bytes) = instances.get(old.as_ref())? {
                            let old_record: InstanceRecord =
                                decode("instance", &bytes).map_err(abort)?;
                            let refilling = old_key.study == entry.key.study;
                            subtract(
                                studies,
                                patients,
                                accessions,
                                &old_key,
                                &old_record,
                                refilling,
                            )?;
                            outcome.replaced = true;
                        }
                        instances.remove(old.as_ref())?;
                        metadata.remove(old.as_ref())?;
                        if old_key != entry.key {
                            outcome.moved_from = Some(old_key);
                        }
                    }
                    add(studies, patients, accessions, entry, &mut outcome)?;
                    instances.insert(index_key.as_slice(), record.as_slice())?;
                    metadata.insert(index_key.as_slice(), entry.metadata_json.as_slice())?;
                    locations.insert(entry.key.sop.as_str(), index_key.as_slice())?;
                    Ok(outcome)
                },
            )
            .map_err(tx_error)
            .inspect(|outcome| {
                let moved = outcome.moved_from.as_ref().map(|k| &k.study);
                self.changed(std::iter::once(&entry.key.study).chain(moved));
            })
    }

    fn remove_instance(&self, key: &InstanceKey) -> Result<bool, StoreError> {
        let index_key = key.index_key();
        (
            &self.studies,
            &self.instances,
            &self.locations,
            &self.metadata,
            &self.patients,
            &self.accessions,
        )
            .transaction(
                |(studies, instances, locations, metadata, patients, accessions)| {
                    let Some(bytes) = instances.remove(index_key.as_slice())? else {
                        return Ok(false);
                    };
                    let old: InstanceRecord = decode("instance", &bytes).map_err(abort)?;
                    subtract(studies, patients, accessions, key, &old, false)?;
                    metadata.remove(index_key.as_slice())?;
                    if locations.get(key.sop.as_str())?.as_deref() == Some(index_key.as_slice()) {
                        locations.remove(key.sop.as_str())?;
                    }
                    Ok(true)
                },
            )
            .map_err(tx_error)
            .inspect(|removed| {
                if *removed {
                    self.changed([&key.study]);
                }
            })
    }

    fn study(&self, study: &Uid) -> Result<Option<StudyRecord>, StoreError> {
        self.studies
            .get(study.as_str())?
            .map(|b| decode("study", &b))
            .transpose()
    }

    fn studies(&self) -> Result<Vec<StudyRecord>, StoreError> {
        self.studies
            .iter()
            .values()
            .map(|v| decode("study", &v?))
            .collect()
    }

    fn instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>, StoreError> {
        self.instances
            .get(key.index_key())?
            .map(|b| decode("instance", &b))
            .transpose()
    }

    fn instances(
        &self,
        study: &Uid,
        series: Option<&Uid>,
    ) -> Result<Vec<(InstanceKey, InstanceRecord)>, StoreError> {
        let prefix = match series {
            Some(series) => format!("{study}/{series}/"),
            None => format!("{study}/"),
        };
        self.instances
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                let key = InstanceKey::from_index_key(&k)
                    .ok_or_else(|| StoreError::Corrupt("bad instance key".into()))?;
                Ok((key, decode("instance", &v)?))
            })
            .collect()
    }

    fn locate(&self, sop: &Uid) -> Result<Option<InstanceKey>, StoreError> {
        Ok(self
            .locations
            .get(sop.as_str())?
            .and_then(|k| InstanceKey::from_index_key(&k)))
    }

    fn metadata(&self, key: &InstanceKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.metadata.get(key.index_key())?.map(|v| v.to_vec()))
    }

    fn mark_complete(
        &self,
        study: &Uid,
        last_arrival: Timestamp,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.studies
            .transaction(|studies| {
                let Some(bytes) = studies.get(study.as_str())? else {
                    return Ok(false);
                };
                let mut record: StudyRecord = decode("study", &bytes).map_err(abort)?;
                if record.last_arrival != last_arrival || record.completed_at.is_some() {
                    return Ok(false);
                }
                record.completed_at = Some(at);
                studies.insert(study.as_str(), encode(&record).map_err(abort)?)?;
                Ok(true)
            })
            .map_err(tx_error)
            .inspect(|marked| {
                if *marked {
                    self.changed([study]);
                }
            })
    }

    fn studies_by_accession(&self, accession: &str) -> Result<Vec<Uid>, StoreError> {
        self.accessions
            .scan_prefix(accession_key(accession, ""))
            .keys()
            .map(|k| {
                let k = k?;
                let uid = std::str::from_utf8(&k[accession.len() + 1..])
                    .ok()
                    .and_then(|u| Uid::parse(u).ok())
                    .ok_or_else(|| StoreError::Corrupt("bad accession key".into()))?;
                Ok(uid)
            })
            .collect()
    }

    fn instance_count(&self) -> Result<usize, StoreError> {
        Ok(self.instances.len())
    }

    fn instance_keys(&self) -> Result<Vec<InstanceKey>, StoreError> {
        self.instances
            .iter()
            .keys()
            .map(|k| {
                InstanceKey::from_index_key(&k?)
                    .ok_or_else(|| StoreError::Corrupt("bad instance key".into()))
            })
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn study_changes(&self, since: u64) -> StudyChanges {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .since(since)
    }
}

#[cfg(test)]
mod tests;
