//! Rebuilding the index from the instance files (`pushgate reindex`), and
//! catching it up after an unclean stop (reconcile at start-up).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Events, Ingestor};
use crate::config::Config;
use crate::store::{
    DataDirLock, FileStore, INDEX_VERSION, Index, InstanceKey, SledIndex, Source, StoreError,
    sync_dir,
};

#[derive(Debug, Default)]
pub struct Report {
    pub indexed: usize,
    pub removed: usize,
    /// Files that could not be indexed, with the reason.
    pub problems: Vec<(PathBuf, String)>,
}

/// Builds a new index from every instance file, then swaps it in; the old
/// index (readable or not) is kept as `<version>.previous` until the next
/// rebuild. The daemon must be stopped: the data directory lock says so.
pub fn rebuild(config: &Config) -> Result<Report, StoreError> {
    fs::create_dir_all(&config.data_dir)?;
    let _lock = DataDirLock::acquire(&config.data_dir)??;
    let index_root = config.index_dir();
    let live = index_root.join(INDEX_VERSION);
    fs::create_dir_all(&index_root)?;
    let building = index_root.join(format!("{INDEX_VERSION}.rebuild"));
    if building.exists() {
        fs::remove_dir_all(&building)?;
    }
    let files = FileStore::open(config.instances_dir(), config.tmp_dir())?;
    let index: Arc<dyn Index> = Arc::new(SledIndex::open(&building)?);
    let ingestor = Ingestor::new(files, index.clone(), Events::new());
    let mut report = Report::default();
    for found in ingestor.files().walk()? {
        index_one(&ingestor, found, &mut report);
    }
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
        Ok((key, path)) => match ingestor.index_existing(&key, Source::Reindex) {
            Ok(_) => report.indexed += 1,
            Err(e) => report.problems.push((path, e.to_string())),
        },
        Err(path) => report
            .problems
            .push((path, "not an instance file (name is not <uid>.dcm)".into())),
    }
}

/// After an unclean stop: index files the index lacks (or has with another
/// size), drop index entries whose file is gone.
pub fn reconcile(ingestor: &Ingestor) -> Result<Report, StoreError> {
    let index = ingestor.index();
    let mut report = Report::default();
    let mut on_disk = HashSet::new();
    for found in ingestor.files().walk()? {
        let Ok((key, path)) = &found else {
            continue;
        };
        on_disk.insert(key.clone());
        let size = fs::metadata(path).map(|m| m.len()).ok();
        let indexed = index.instance(key)?;
        if indexed.is_some_and(|r| Some(r.size) == size) {
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
