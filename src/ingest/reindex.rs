//! Rebuilding the index from the instance files (`pushgate reindex`), and
//! catching it up after an unclean stop (reconcile at start-up).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::{Events, Existing, Ingestor, describe};
use crate::config::Config;
use crate::store::{
    DataDirLock, FileStore, GrantStore, INDEX_VERSION, Index, InstanceKey, SledIndex, StoreError,
    Timestamp, grant_store, private_dir, sync_dir,
};

#[derive(Debug, Default)]
pub struct Report {
    pub indexed: usize,
    /// What the extra step (grants from the journal) reported.
    pub extra: String,
    pub removed: usize,
    /// Older duplicates moved to `orphaned/`.
    pub orphaned: Vec<PathBuf>,
    /// Files that could not be indexed, with the reason.
    pub problems: Vec<(PathBuf, String)>,
}

/// Builds a new index from every instance file, then swaps it in; the old
/// index (readable or not) is kept as `<version>.previous` until the next
/// rebuild. Studies whose last instance is older than `dicom.stable_after`
/// come back complete, so nothing is announced twice. `extra` runs on the
/// new database before it is swapped in (the grants are rebuilt there from
/// the journal); if it fails, the old index stays. `pending` runs first, on
/// the new index: what a layer above must finish there (retention's
/// interrupted deletions), handed in because intake sits below it. The
/// daemon must be stopped: the data directory lock says so.
pub fn rebuild(
    config: &Config,
    pending: impl FnOnce(&Ingestor) -> Result<(), String>,
    extra: impl FnOnce(Arc<dyn GrantStore>) -> Result<String, String>,
) -> Result<Report, StoreError> {
    private_dir(&config.data_dir)?;
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    let index_root = config.index_dir();
    let live = index_root.join(INDEX_VERSION);
    private_dir(&index_root)?;
    let building = index_root.join(format!("{INDEX_VERSION}.rebuild"));
    if building.exists() {
        fs::remove_dir_all(&building)?;
    }
    let files = FileStore::open(config.instances_dir(), config.tmp_dir())?;
    let sled_index = SledIndex::open(&building)?;
    let grants = grant_store(&sled_index)?;
    let index: Arc<dyn Index> = Arc::new(sled_index);
    let ingestor = Ingestor::new(
        files,
        index.clone(),
        Events::new(),
        Arc::new(AtomicBool::new(false)),
    );
    let mut report = Report::default();
    for found in ingestor.files().walk()? {
        index_one(&ingestor, found, &mut report);
    }
    pending(&ingestor).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
    let now = Timestamp::now();
    for study in index.studies()? {
        let due = study.last_arrival.saturating_add(config.dicom.stable_after);
        if due <= now {
            index.mark_complete(&study.study_uid, study.last_arrival, due)?;
        }
    }
    report.extra = extra(grants).map_err(StoreError::Corrupt)?;
    index.flush()?;
    drop(ingestor);
    drop(index);
    swap_in(&index_root, &building, &live)?;
    Ok(report)
}

fn swap_in(index_root: &Path, building: &Path, live: &Path) -> Result<(), StoreError> {
    let previous = index_root.join(format!("{INDEX_VERSION}.previous"));
    if previous.exists() {
        fs::remove_dir_all(&previous)?;
    }
    if live.exists() {
        fs::rename(live, &previous)?;
    }
    fs::rename(building, live)?;
    sync_dir(index_root)?;
    Ok(())
}

fn index_one(
    ingestor: &Ingestor,
    found: Result<(InstanceKey, PathBuf), PathBuf>,
    report: &mut Report,
) {
    match found {
        Ok((key, path)) => match ingestor.index_existing(&key) {
            Ok(Existing::Indexed) => report.indexed += 1,
            Ok(Existing::Orphaned(to)) => report.orphaned.push(to),
            Err(e) => report.problems.push((path, e.to_string())),
        },
        Err(path) => report
            .problems
            .push((path, "not an instance file (name is not <uid>.dcm)".into())),
    }
}

/// After an unclean stop: index files the index lacks or has in another
/// version (size or modification time differ), drop entries whose file is
/// gone.
pub fn reconcile(ingestor: &Ingestor) -> Result<Report, StoreError> {
    let index = ingestor.index();
    let mut report = Report::default();
    let mut on_disk = HashSet::new();
    for found in ingestor.files().walk()? {
        let Ok((key, path)) = &found else {
            continue;
        };
        on_disk.insert(key.clone());
        let current = fs::File::open(path)
            .and_then(|f| Ok((f.metadata()?.len(), describe::mtime_ns(&f)?)))
            .ok();
        let indexed = index.instance(key)?;
        if indexed.is_some_and(|r| Some((r.size, r.mtime_ns)) == current) {
            continue;
        }
        index_one(ingestor, found, &mut report);
    }
    for key in index.instance_keys()? {
        if !on_disk.contains(&key) && index.remove_instance(&key)? {
            report.removed += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::store::{Source, Store, Uid};

    fn ingest_sample(ingestor: &Ingestor, rel: &str) -> InstanceKey {
        crate::ingest::ingest_sample(ingestor, rel, Source::Reindex)
    }

    /// A file replaced by one of the same size (a corrected name) before
    /// the crash is re-read: size alone would keep stale attributes and
    /// offsets.
    #[test]
    fn reconcile_notices_a_same_size_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::temporary(dir.path()).unwrap();
        let ingestor = Ingestor::new(
            store.files.clone(),
            store.index.clone(),
            Events::new(),
            Arc::new(AtomicBool::new(false)),
        );
        let key = ingest_sample(&ingestor, "ct-phantom/CT000001.dcm");
        assert!(
            reconcile(&ingestor).unwrap().indexed == 0,
            "nothing to do when nothing changed"
        );
        let path = ingestor.files().path_of(&key);
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.windows(11).position(|w| w == b"Jansen^Anna").unwrap();
        bytes[at..at + 11].copy_from_slice(b"Jansen^Anne");
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&path, &bytes).unwrap();
        let report = reconcile(&ingestor).unwrap();
        assert_eq!(report.indexed, 1, "{report:?}");
        let study = ingestor.index().study(&key.study).unwrap().unwrap();
        assert_eq!(study.patient.name, "Jansen^Anne");
    }

    /// Two files with one SOP Instance UID (a crash while an instance moved
    /// to another series): the newer is indexed, the older set aside.
    #[test]
    fn duplicates_keep_the_newer_file_and_set_the_older_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::temporary(dir.path()).unwrap();
        let ingestor = Ingestor::new(
            store.files.clone(),
            store.index.clone(),
            Events::new(),
            Arc::new(AtomicBool::new(false)),
        );
        let key = ingest_sample(&ingestor, "ct-phantom/CT000001.dcm");
        let old_home = InstanceKey {
            series: Uid::parse("1.2.3.4").unwrap(),
            ..key.clone()
        };
        let old_path = ingestor.files().path_of(&old_home);
        fs::create_dir_all(old_path.parent().unwrap()).unwrap();
        let mut old = dicom_object::open_file(ingestor.files().path_of(&key)).unwrap();
        old.put(dicom_core::DataElement::new(
            dicom_dictionary_std::tags::SERIES_INSTANCE_UID,
            dicom_core::VR::UI,
            dicom_core::PrimitiveValue::from("1.2.3.4"),
        ));
        old.write_to_file(&old_path).unwrap();
        // make the copy older than the original
        let f = fs::File::options().write(true).open(&old_path).unwrap();
        f.set_modified(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000),
        )
        .unwrap();
        drop(f);
        let report = reconcile(&ingestor).unwrap();
        assert_eq!(report.orphaned.len(), 1, "{report:?}");
        assert!(report.problems.is_empty(), "{report:?}");
        assert!(!old_path.exists());
        assert!(report.orphaned[0].exists(), "set aside, not deleted");
        assert_eq!(
            ingestor.index().locate(&key.sop).unwrap(),
            Some(key.clone())
        );
        assert!(ingestor.files().path_of(&key).exists());
    }
}
