//! Instance files (the source of truth for images) and the sled index (a
//! view that `pushgate reindex` can always rebuild from the files).

mod account_file;
pub(crate) mod files;
mod index;
mod key;
mod lock;
pub mod queue;
mod records;
pub mod relations;
mod sled_trees;
pub mod trees;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use files::{FileStore, ParkedTemp, TempFile, private_dir, sync_dir};
pub use index::{INDEX_VERSION, Index, PutOutcome, SledIndex, StudyChanges};
pub use lock::DataDirLock;
pub use queue::{QueueStore, SledQueue};
pub use records::{
    BulkLayout, BulkValue, IndexEntry, InstanceAttrs, InstanceRecord, PatientAttrs, PatientRecord,
    PixelLayout, SeriesAttrs, SeriesRecord, Source, StudyAttrs, StudyRecord,
};
pub use relations::{AccountStore, GrantStore, InboxStore};
pub use sled_trees::grant_store;
// The shared values, re-exported while their users move to `crate::base`.
pub use crate::base::{Timestamp, Uid, UidError};
pub use key::InstanceKey;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("index: {0}")]
    Index(#[from] sled::Error),
    #[error("index is inconsistent: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error(
        "cannot open the index at {dir}: {reason}. The instance files are intact; \
         stop the daemon and run `pushgate reindex` (with the same --config) to rebuild it"
    )]
    IndexUnavailable { dir: PathBuf, reason: String },
    #[error("{path} is locked: another pushgate (daemon or reindex) is running with this data_dir")]
    Locked { path: PathBuf },
    #[error(
        "the index at {dir} is missing but {instances} holds instance files; \
         refusing to start with an empty index. Run `pushgate reindex` (with the same \
         --config) to rebuild it from the files"
    )]
    IndexMissing { dir: PathBuf, instances: PathBuf },
}

/// Files plus index, opened together.
pub struct Store {
    _lock: DataDirLock,
    pub files: FileStore,
    pub index: Arc<dyn Index>,
    /// authz's grant mirror.
    pub grants: Arc<dyn GrantStore>,
    /// What the relay inbox remembers.
    pub inbox: Arc<dyn InboxStore>,
    /// The console's local accounts (a file beside the index).
    pub accounts: Arc<dyn AccountStore>,
    /// The one work queue (outbox, forwarding). Concrete, not the trait:
    /// its owners adopt their pre-queue sled trees through it on open.
    pub queue: Arc<SledQueue>,
    /// For the test that lists every tree the store opens.
    #[cfg(test)]
    db: sled::Db,
    running_marker: PathBuf,
    /// The previous run did not shut down cleanly (or met an index error):
    /// the index may lag the files.
    pub needs_reconcile: bool,
    /// Set during this run when file and index may disagree; the running
    /// marker then stays, so the next start reconciles.
    pub dirty: Arc<AtomicBool>,
}

impl Store {
    /// Opens the store for the daemon. Refuses a missing or broken index when
    /// instance files exist, naming the fix.
    pub fn open(config: &Config) -> Result<Store, StoreError> {
        private_dir(&config.data_dir)?;
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let files = FileStore::open(config.instances_dir(), config.tmp_dir())?;
        let index_dir = config.index_dir().join(INDEX_VERSION);
        if !index_dir.exists() && files.has_instances()? {
            return Err(StoreError::IndexMissing {
                dir: index_dir,
                instances: files.instances_dir().to_path_buf(),
            });
        }
        let index = open_index(&index_dir)?;
        // sled makes a fresh database where its files are gone: an index
        // that knows nothing beside instance files is a lost index.
        if index.instance_count()? == 0 && files.has_instances()? {
            return Err(StoreError::IndexMissing {
                dir: index_dir,
                instances: files.instances_dir().to_path_buf(),
            });
        }
        let running_marker = config.data_dir.join("pushgate.running");
        let needs_reconcile = running_marker.exists();
        fs::write(&running_marker, std::process::id().to_string())?;
        sync_dir(&config.data_dir)?;
        Ok(Store {
            _lock: lock,
            files,
            grants: grant_store(&index)?,
            inbox: sled_trees::inbox_store(&index)?,
            accounts: Arc::new(account_file::FileAccounts::new(
                config.data_dir.join("accounts.json"),
            )),
            queue: SledQueue::open(index.db())?,
            #[cfg(test)]
            db: index.db().clone(),
            index: Arc::new(index),
            running_marker,
            needs_reconcile,
            dirty: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Flushes the index and records a clean shutdown (unless file and
    /// index may disagree: then the next start checks them).
    pub fn close(&self) -> Result<(), StoreError> {
        self.index.flush()?;
        if self.dirty.load(Ordering::SeqCst) {
            return Ok(());
        }
        match fs::remove_file(&self.running_marker) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A store in a temporary directory with an in-memory index (tests).
    pub fn temporary(dir: &Path) -> Result<Store, StoreError> {
        let index = SledIndex::temporary()?;
        Ok(Store {
            _lock: DataDirLock::acquire(dir)?,
            files: FileStore::open(dir.join("instances"), dir.join("tmp"))?,
            grants: grant_store(&index)?,
            inbox: sled_trees::inbox_store(&index)?,
            accounts: Arc::new(account_file::FileAccounts::new(dir.join("accounts.json"))),
            queue: SledQueue::open(index.db())?,
            #[cfg(test)]
            db: index.db().clone(),
            index: Arc::new(index),
            running_marker: dir.join("pushgate.running"),
            needs_reconcile: false,
            dirty: Arc::new(AtomicBool::new(false)),
        })
    }
}

pub fn open_index(dir: &Path) -> Result<SledIndex, StoreError> {
    SledIndex::open(dir).map_err(|e| StoreError::IndexUnavailable {
        dir: dir.to_path_buf(),
        reason: e.to_string(),
    })
}
