//! Retention (`[retention]`): pushgate is a gateway, not an archive. A
//! study goes once nobody needs it any more: `keep_after_last_grant` after
//! every grant on it ended, `max_age` after it last received an instance if
//! it was never shared. A study still arriving, waiting in the outbox for a
//! gateway push, or queued for the local PACS stays until that is done.
//!
//! A deletion is done in this order, each step durable before the next:
//!
//! 1. the journal records it (`study_deleted`), under the grant change lock
//!    so that no grant is issued in between. Recording first means no
//!    patient data ever disappears unaccounted for; a crash after this step
//!    leaves the study whole, and the next sweep records it again (a second
//!    line for one deletion is the cheaper failure).
//! 2. a marker `deleting/<study>.json` says which instances go (those
//!    received up to the study's last arrival when it was decided): the
//!    store's own note that the deletion is under way, readable at start
//!    and by `reindex` without scanning the whole journal.
//! 3. per instance, the file, then its index entry. The other order would
//!    leave files without entries after a crash, which reconcile and
//!    reindex index again: the study would come back. An entry without its
//!    file only makes a request for it fail, and the marker finishes it.
//! 4. the marker goes.
//!
//! Every sweep (the first right at start) first finishes what a marker
//! names; `reindex` does too, so a rebuilt index never shows a study whose
//! deletion was begun.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::authz::{Authz, AuthzError, Share};
use crate::config::{Config, RetentionConfig};
use crate::ingest::{IngestError, Ingestor};
use crate::journal::Event;
use crate::relay::Relay;
use crate::relay::forward::{ForwardState, Forwarder};
use crate::relay::outbox::Outbox;
use crate::store::{StoreError, StudyRecord, Timestamp, Uid, sync_dir};
use crate::worker::{Progress, Stop, Worker, WorkerError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("deleting an instance: {0}")]
    Ingest(#[from] IngestError),
    #[error("journaling a deletion: {0}")]
    Authz(#[from] AuthzError),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error("cannot tell whether a study is still to be sent: {0}")]
    Relay(String),
    /// The daemon is stopping: the marker finishes the deletion at the
    /// next start, so a large study does not hold up the stop.
    #[error("stopped half-way; the marker finishes it at the next start")]
    Stopped,
}

/// Which rule a deletion followed; its text is what the journal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    KeepAfterLastGrant,
    MaxAge,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::KeepAfterLastGrant => "retention.keep_after_last_grant",
            Reason::MaxAge => "retention.max_age",
        }
    }
}

/// Whether `study` is due for deletion at `now`. `share`: how its grants
/// stand (`None`: never shared); `busy`: a push or a forward of it is still
/// pending.
///
/// A study shared and then sent again counts from the later of its last
/// grant's end and its last arrival: what was just received is not deleted
/// on the strength of an old grant.
pub fn due(
    policy: &RetentionConfig,
    study: &StudyRecord,
    share: Option<Share>,
    busy: bool,
    now: Timestamp,
) -> Option<Reason> {
    if !study.is_complete() || busy {
        return None;
    }
    let (since, keep, reason) = match share {
        Some(Share::Active) => return None,
        Some(Share::Ended(end)) => (
            end.max(study.last_arrival),
            policy.keep_after_last_grant?,
            Reason::KeepAfterLastGrant,
        ),
        None => (study.last_arrival, policy.max_age?, Reason::MaxAge),
    };
    (now >= since.saturating_add(keep)).then_some(reason)
}

/// A deletion under way (the marker's content).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    study: Uid,
    reason: String,
    /// Instances received after this are not part of it.
    not_after: Timestamp,
}

/// What one deletion removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Deleted {
    pub study: Uid,
    pub reason: &'static str,
    pub instances: u64,
    pub bytes: u64,
}

fn pending_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("deleting")
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RetentionError + '_ {
    move |cause| RetentionError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Writes the marker durably (temporary file, fsync, rename, fsync dir).
fn write_pending(data_dir: &Path, pending: &Pending) -> Result<PathBuf, RetentionError> {
    let dir = pending_dir(data_dir);
    crate::store::private_dir(&dir).map_err(io_at(&dir))?;
    let path = dir.join(format!("{}.json", pending.study));
    let temp = dir.join(format!("{}.json.part", pending.study));
    let json = serde_json::to_vec(pending).map_err(|e| RetentionError::Io {
        path: path.clone(),
        cause: io::Error::other(e),
    })?;
    let mut file = fs::File::create(&temp).map_err(io_at(&temp))?;
    file.write_all(&json).map_err(io_at(&temp))?;
    file.sync_all().map_err(io_at(&temp))?;
    fs::rename(&temp, &path).map_err(io_at(&path))?;
    sync_dir(&dir).map_err(io_at(&dir))?;
    Ok(path)
}

fn remove_pending(path: &Path) -> Result<(), RetentionError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_at(path)(e)),
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(io_at(dir))?;
    }
    Ok(())
}

/// Markers of deletions begun and not finished. An unreadable marker is
/// reported and left for the operator: guessing what it meant could delete
/// the wrong thing.
fn load_pending(data_dir: &Path) -> Result<Vec<(PathBuf, Pending)>, RetentionError> {
    let dir = pending_dir(data_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_at(&dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_at(&dir))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        match fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Pending>(&b).map_err(|e| e.to_string()))
        {
            Ok(pending) => out.push((path, pending)),
            Err(e) => {
                tracing::error!(marker = %path.display(), "unreadable deletion marker left alone: {e}")
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Deletes the instances a marker names: file first, then index entry.
fn purge(
    ingestor: &Ingestor,
    pending: &Pending,
    go_on: &dyn Fn() -> bool,
) -> Result<(u64, u64), RetentionError> {
    let (mut instances, mut bytes) = (0, 0);
    for (key, record) in ingestor.index().instances(&pending.study, None)? {
        if !go_on() {
            return Err(RetentionError::Stopped);
        }
        if ingestor.delete_instance(&key, pending.not_after)? {
            instances += 1;
            bytes += record.size;
        }
    }
    Ok((instances, bytes))
}

/// Finishes deletions a crash interrupted; returns how many. With `keep`,
/// the markers stay (reindex: the daemon's first sweep removes them once
/// the index it serves is the one purged). Blocking.
pub fn finish_pending(
    data_dir: &Path,
    ingestor: &Ingestor,
    keep: bool,
) -> Result<usize, RetentionError> {
    let pending = load_pending(data_dir)?;
    let mut finished = 0;
    // One marker that cannot be finished (a file the daemon may not
    // remove) must not stop the others, nor every later sweep: it is
    // logged and tried again next time.
    for (marker, deletion) in &pending {
        let done = purge(ingestor, deletion, &|| true).and_then(|(instances, _)| {
            if !keep {
                remove_pending(marker)?;
            }
            Ok(instances)
        });
        match done {
            Ok(instances) => {
                finished += 1;
                if instances > 0 {
                    tracing::info!(study = %deletion.study, reason = deletion.reason, instances, "interrupted study deletion finished");
                }
            }
            Err(e) => tracing::error!(
                study = %deletion.study,
                marker = %marker.display(),
                "retention: cannot finish an interrupted deletion (tried again next sweep): {}",
                crate::base::error_chain(&e)
            ),
        }
    }
    Ok(finished)
}

/// The sweeper: what it needs to decide and to delete.
pub struct Retention {
    policy: RetentionConfig,
    data_dir: PathBuf,
    ingestor: Ingestor,
    authz: Arc<Authz>,
    outbox: Option<Outbox>,
    forwarder: Option<Forwarder>,
}

impl Retention {
    pub fn new(config: &Config, ingestor: Ingestor, authz: Arc<Authz>, relay: &Relay) -> Retention {
        Retention {
            policy: config.retention.clone(),
            data_dir: config.data_dir.clone(),
            ingestor,
            authz,
            outbox: Some(relay.outbox.clone()),
            forwarder: relay.forwarder.clone(),
        }
    }

    /// Studies with a push or a forward still to do.
    fn busy(&self) -> Result<HashSet<Uid>, RetentionError> {
        let mut busy = HashSet::new();
        if let Some(outbox) = &self.outbox {
            let items = outbox
                .list()
                .map_err(|e| RetentionError::Relay(e.to_string()))?;
            busy.extend(
                items
                    .into_iter()
                    .filter(|i| i.is_open())
                    .map(|i| i.job.study),
            );
        }
        if let Some(forwarder) = &self.forwarder {
            let items = forwarder
                .status()
                .map_err(|e| RetentionError::Relay(e.to_string()))?;
            // A forward that failed for good keeps the study too: received
            // from a peer gateway, this may be the only copy there is, and
            // the PACS does not have it.
            busy.extend(
                items
                    .into_iter()
                    .filter(|i| {
                        matches!(i.state, ForwardState::Pending | ForwardState::Failed { .. })
                    })
                    .map(|i| i.key.study),
            );
        }
        Ok(busy)
    }

    /// One sweep at `now`: finishes interrupted deletions, then deletes
    /// every study that is due, while `go_on` says so. Blocking.
    pub fn sweep(
        &self,
        now: Timestamp,
        go_on: impl Fn() -> bool,
    ) -> Result<Vec<Deleted>, RetentionError> {
        finish_pending(&self.data_dir, &self.ingestor, false)?;
        let shares = self.authz.shares(now);
        let busy = self.busy()?;
        let mut deleted = Vec::new();
        for study in self.ingestor.index().studies()? {
            if !go_on() {
                break;
            }
            let share = shares.of(&study);
            let Some(reason) = due(
                &self.policy,
                &study,
                share,
                busy.contains(&study.study_uid),
                now,
            ) else {
                continue;
            };
            // One study that cannot go (a file the daemon may not remove)
            // must not keep the others; it is tried again next sweep, and a
            // marker it left is finished first.
            match self.delete(&study, reason, &go_on) {
                Ok(Some(done)) => deleted.push(done),
                Ok(None) => {}
                Err(RetentionError::Stopped) => {
                    tracing::info!(study = %study.study_uid, "stopping: this deletion is finished at the next start");
                    break;
                }
                Err(e) => tracing::error!(
                    study = %study.study_uid,
                    "retention: cannot delete: {}",
                    crate::base::error_chain(&e)
                ),
            }
        }
        Ok(deleted)
    }

    fn delete(
        &self,
        seen: &StudyRecord,
        reason: Reason,
        go_on: &dyn Fn() -> bool,
    ) -> Result<Option<Deleted>, RetentionError> {
        let started = std::time::Instant::now();
        // Something may have arrived since the sweep listed the studies.
        let Some(study) = self.ingestor.index().study(&seen.study_uid)? else {
            return Ok(None);
        };
        if study.last_arrival != seen.last_arrival || !study.is_complete() {
            return Ok(None);
        }
        let event = Event::StudyDeleted {
            study: study.study_uid.clone(),
            reason: reason.as_str().to_string(),
            instances: study.num_instances(),
            bytes: study.bytes(),
        };
        // The busy set was read at the start of the sweep; a push queued
        // since then is looked for again once the study is marked.
        let still_idle = || match self.busy() {
            Ok(busy) => !busy.contains(&study.study_uid),
            Err(e) => {
                tracing::warn!(study = %study.study_uid, "retention: cannot check the outbox again, keeping the study: {e}");
                false
            }
        };
        if !self.authz.record_deletion(&study, event, still_idle)? {
            return Ok(None);
        }
        let result = self.purge_marked(&study, reason, go_on);
        self.authz.deletion_done(&study.study_uid);
        let (instances, bytes) = result?;
        crate::metrics::METRICS
            .studies_deleted
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
        let micros = started.elapsed().as_micros() as u64;
        tracing::info!(study = %study.study_uid, reason = reason.as_str(), instances, bytes, micros, "study deleted");
        Ok(Some(Deleted {
            study: study.study_uid,
            reason: reason.as_str(),
            instances,
            bytes,
        }))
    }
}

impl Retention {
    /// Marker, files and index entries, marker gone: (instances, bytes).
    fn purge_marked(
        &self,
        study: &StudyRecord,
        reason: Reason,
        go_on: &dyn Fn() -> bool,
    ) -> Result<(u64, u64), RetentionError> {
        let pending = Pending {
            study: study.study_uid.clone(),
            reason: reason.as_str().to_string(),
            not_after: study.last_arrival,
        };
        let marker = write_pending(&self.data_dir, &pending)?;
        let done = purge(&self.ingestor, &pending, go_on)?;
        remove_pending(&marker)?;
        Ok(done)
    }
}

/// Sweeps every `retention.sweep_every` (the first time at once, which
/// also finishes a deletion a crash interrupted). A sweep that fails (a
/// file busy, the disk) is logged and tried again next time: never a
/// failure; a panic in it is.
pub struct RetentionWorker {
    retention: Arc<Retention>,
}

impl RetentionWorker {
    pub fn new(retention: Retention) -> RetentionWorker {
        RetentionWorker {
            retention: Arc::new(retention),
        }
    }
}

impl Worker for RetentionWorker {
    fn name(&self) -> &'static str {
        "retention"
    }

    async fn work(&mut self, stop: &Stop) -> Result<Progress, WorkerError> {
        let (sweeper, halt) = (self.retention.clone(), stop.clone());
        let swept =
            tokio::task::spawn_blocking(move || sweeper.sweep(Timestamp::now(), || !halt.is_set()))
                .await
                .map_err(|e| WorkerError::new(format!("sweep: {e}")))?;
        if let Err(e) = swept {
            tracing::error!("retention: {}", crate::base::error_chain(&e));
        }
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.retention.policy.sweep_every).await;
    }
}

#[cfg(test)]
mod tests;
