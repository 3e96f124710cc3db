//! Forwarding received studies to the local PACS (`forward.pacs`):
//! entries of kind `forward` in the one work queue (`crate::queue`), one
//! per instance, and a [`Worker`] that sends what is due, a study at a
//! time, with the C-STORE SCU.
//!
//! Delivery is at least once: an instance is marked sent only after the
//! PACS answered, so a crash or shutdown mid-association sends it again
//! (PACSes take a repeated SOP Instance UID as a replacement).
//!
//! Per instance: `Pending` until the PACS answers; success or warning →
//! `Sent`; a failure status (or an instance we cannot send: SOP class not
//! accepted, unreadable, not re-encodable) → `Failed` at once, since
//! sending it again would fail again; the association failing (PACS down,
//! rejected, aborted, timed out) → still `Pending`, tried again as
//! [`POLICY`] says, and `Failed` once its give-up time has passed since
//! its first failed attempt.

#[cfg(test)]
mod tests;
mod upgrade;
mod worker;

pub use worker::ForwardWorker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::dimse::scu::{self, InstanceResult, Outcome, Outgoing, PacsAddress};
use crate::journal::{Event, Journal};
use crate::queue::{self, Entry, Job, Policy, Queue, QueueError};
use crate::store::{FileStore, Index, InstanceKey, QueueStore, SledQueue, Timestamp, Uid};
use crate::worker::Stop;

/// Instances per association (one study per batch).
pub const BATCH_MAX: usize = 256;
/// Retries: 5 s after the first failed association, doubling up to
/// 10 min; an instance whose association keeps failing is given up
/// (`Failed`) two days after its first failed attempt — that covers a
/// PACS down over a weekend night without retrying forever.
pub const POLICY: Policy = Policy {
    base: Duration::from_secs(5),
    cap: Duration::from_secs(10 * 60),
    give_up_after: Duration::from_secs(48 * 3600),
};
/// Bounds each step of an association (see `scu::store_all`).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    #[error("forward queue: {0}")]
    Queue(#[from] QueueError),
    #[error("forward queue: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("forward queue: unreadable record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("forward queue: {0}")]
    Task(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ForwardState {
    Pending,
    /// The PACS answered success (0x0000) or a warning.
    Sent {
        status: u16,
        at: Timestamp,
    },
    /// The PACS answered a failure status, the instance could not be sent,
    /// or retries were given up.
    Failed {
        reason: String,
        attempts: u32,
        at: Timestamp,
    },
}

/// An instance's forwarding, as `GET /admin/v1/forward` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardItem {
    pub key: InstanceKey,
    #[serde(flatten)]
    pub state: ForwardState,
    /// Associations tried for it.
    pub attempts: u32,
    /// When a pending item is due.
    pub next_attempt: Option<Timestamp>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// What a forward entry carries beside the envelope (its id is the
/// instance, `study/series/sop`; its target the PACS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// The PACS's status, once it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// When it was sent or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Timestamp>,
}

impl Job for Forward {
    const KIND: &'static str = "forward";
}

type Record = Entry<Forward>;

fn id_of(key: &InstanceKey) -> String {
    format!("{}/{}/{}", key.study, key.series, key.sop)
}

fn parse_id(id: &str) -> Result<InstanceKey, ForwardError> {
    let corrupt = |reason: &str| ForwardError::Corrupt {
        key: id.to_string(),
        reason: reason.to_string(),
    };
    let mut parts = id.split('/');
    let (Some(study), Some(series), Some(sop), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt("not study/series/sop"));
    };
    let uid = |s: &str| Uid::parse(s).map_err(|e| corrupt(&e.to_string()));
    Ok(InstanceKey {
        study: uid(study)?,
        series: uid(series)?,
        sop: uid(sop)?,
    })
}

fn item_of(record: Record) -> Result<ForwardItem, ForwardError> {
    let at = record.job.settled_at.unwrap_or(record.next_attempt);
    let state = match record.state {
        queue::State::Waiting | queue::State::Pending => ForwardState::Pending,
        queue::State::Sent => ForwardState::Sent {
            status: record.job.status.unwrap_or(0),
            at,
        },
        queue::State::Failed | queue::State::Cancelled => ForwardState::Failed {
            reason: record.last_error.clone(),
            attempts: record.attempts,
            at,
        },
    };
    Ok(ForwardItem {
        key: parse_id(&record.id)?,
        next_attempt: record.is_open().then_some(record.next_attempt),
        state,
        attempts: record.attempts,
        last_error: (!record.last_error.is_empty()).then_some(record.last_error),
    })
}

/// A queued instance with the `seq` it was read with.
type Queued = (InstanceKey, u64);

/// What is due now: batches (one study each), and when the next pending
/// item that is not yet due comes up.
struct Due {
    batches: Vec<Vec<Queued>>,
    next: Option<Timestamp>,
}

/// The queue; cheap to clone (enqueue from intake, the worker on its own
/// task).
#[derive(Clone)]
pub struct Forwarder {
    queue: Queue<Forward>,
    notify: Arc<Notify>,
    /// What the entries name as their target: the PACS.
    target: String,
    timeout: Duration,
    journal: Option<Journal>,
}

impl Forwarder {
    /// Forwarding on the store's queue (adopting the entries of the tree
    /// forwarding had before). Blocking.
    pub fn open(store: &Arc<SledQueue>) -> Result<Forwarder, ForwardError> {
        store.adopt(upgrade::OLD_TREE, upgrade::upgrade)?;
        Ok(Forwarder::on(store.clone(), "pacs"))
    }

    /// The forwarding queue in `store`, to the PACS named `target`.
    pub fn on(store: Arc<dyn QueueStore>, target: &str) -> Forwarder {
        Forwarder {
            queue: Queue::new(store, POLICY),
            notify: Arc::new(Notify::new()),
            target: target.to_string(),
            timeout: STEP_TIMEOUT,
            journal: None,
        }
    }

    /// Another PACS name for the entries' target; set before cloning.
    pub fn with_target(mut self, target: &str) -> Forwarder {
        self.target = target.to_string();
        self
    }

    /// Another first retry delay (tests); set before cloning.
    pub fn with_backoff(mut self, base: Duration) -> Forwarder {
        let policy = Policy {
            base,
            ..*self.queue.policy()
        };
        self.queue = self.queue.with_policy(policy);
        self
    }

    /// Another give-up time (tests); set before cloning.
    pub fn with_give_up_after(mut self, after: Duration) -> Forwarder {
        let policy = Policy {
            give_up_after: after,
            ..*self.queue.policy()
        };
        self.queue = self.queue.with_policy(policy);
        self
    }

    /// Journals each instance's final status (`forwarded`); set before
    /// cloning.
    pub fn with_journal(mut self, journal: Journal) -> Forwarder {
        self.journal = Some(journal);
        self
    }

    /// Journals a final status, if a journal was given.
    fn journal_final(&self, key: &InstanceKey, pacs: &str, status: Option<u16>, reason: &str) {
        if let Some(journal) = &self.journal {
            journal.append(Event::Forwarded {
                study: key.study.clone(),
                sop: key.sop.clone(),
                pacs: pacs.to_string(),
                status,
                reason: reason.to_string(),
            });
        }
    }

    /// Another bound on each association step; set before cloning.
    pub fn with_timeout(mut self, timeout: Duration) -> Forwarder {
        self.timeout = timeout;
        self
    }

    /// Queues instances (again: a sent or failed instance becomes pending
    /// with no attempts), durable when this returns, and wakes the worker.
    /// Blocking.
    pub fn enqueue(&self, keys: &[InstanceKey]) -> Result<(), ForwardError> {
        let entries = keys
            .iter()
            .map(|key| {
                Ok(Entry::new(
                    id_of(key),
                    self.target.clone(),
                    queue::State::Pending,
                    self.queue.next_seq()?,
                    Forward::default(),
                ))
            })
            .collect::<Result<Vec<_>, ForwardError>>()?;
        self.queue.put_all(&entries)?;
        self.notify.notify_one();
        Ok(())
    }

    /// Every queued instance with its state, in key order (by study).
    /// Blocking.
    pub fn status(&self) -> Result<Vec<ForwardItem>, ForwardError> {
        self.queue.entries()?.into_iter().map(item_of).collect()
    }

    /// Pending items due at `now`, by study, in batches. Blocking.
    fn due(&self, now: Timestamp) -> Result<Due, ForwardError> {
        let due = self.queue.due(now)?;
        let mut by_study: BTreeMap<Uid, Vec<Queued>> = BTreeMap::new();
        for record in due.now {
            match parse_id(&record.id) {
                Ok(key) => by_study
                    .entry(key.study.clone())
                    .or_default()
                    .push((key, record.seq)),
                Err(e) => tracing::error!("skipping: {e}"),
            }
        }
        let batches = by_study
            .into_values()
            .flat_map(|items| {
                items
                    .chunks(BATCH_MAX)
                    .map(<[_]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(Due {
            batches,
            next: due.next,
        })
    }

    /// Changes the record of `key` unless it was enqueued again since
    /// `seq` was read (false then). Blocking.
    fn settle(
        &self,
        key: &InstanceKey,
        seq: u64,
        change: impl FnMut(&mut Record),
    ) -> Result<bool, ForwardError> {
        Ok(self.queue.settle(&id_of(key), seq, change)?)
    }

    /// Records the outcome of one association. Blocking.
    fn record(
        &self,
        pacs: &str,
        batch: &[Queued],
        results: &[Option<InstanceResult>],
        error: Option<&str>,
    ) -> Result<Tally, ForwardError> {
        let now = Timestamp::now();
        let mut tally = Tally::default();
        for ((key, seq), result) in batch.iter().zip(results) {
            match result {
                Some(r) if r.is_stored() => {
                    tally.sent += 1;
                    let settled = self.settle(key, *seq, |rec| {
                        rec.attempts += 1;
                        rec.state = queue::State::Sent;
                        rec.job.status = Some(r.status);
                        rec.job.settled_at = Some(now);
                        rec.last_error.clear();
                    })?;
                    if settled {
                        self.journal_final(key, pacs, Some(r.status), "");
                    }
                }
                Some(r) => {
                    tally.failed += 1;
                    let reason = match &r.outcome {
                        Outcome::Failure(reason) => reason.clone(),
                        _ => format!("status {:#06X}", r.status),
                    };
                    tracing::warn!(instance = %key.sop, status = r.status, "{reason}");
                    let settled = self.settle(key, *seq, |rec| {
                        rec.attempts += 1;
                        rec.last_error = reason.clone();
                        rec.state = queue::State::Failed;
                        rec.job.status = Some(r.status);
                        rec.job.settled_at = Some(now);
                    })?;
                    if settled {
                        self.journal_final(key, pacs, Some(r.status), &reason);
                    }
                }
                None => {
                    let error = error.unwrap_or("the association ended before this instance");
                    let policy = *self.queue.policy();
                    let mut gave_up = None;
                    self.settle(key, *seq, |rec| {
                        rec.attempts += 1;
                        if rec.retry_later(error, now, &policy) {
                            let first = rec.first_failure.unwrap_or(now);
                            let reason = format!(
                                "gave up after {} attempts over {}: {error}",
                                rec.attempts,
                                humantime::format_duration(Duration::from_secs(
                                    now.0.saturating_sub(first.0) / 1000
                                ))
                            );
                            rec.last_error = reason.clone();
                            rec.job.settled_at = Some(now);
                            gave_up = Some(reason);
                        }
                    })?;
                    if let Some(reason) = gave_up {
                        self.journal_final(key, pacs, None, &reason);
                        tally.given_up += 1;
                    } else {
                        tally.retry += 1;
                    }
                }
            }
        }
        // one sync for the association's outcomes, as before the queue: a
        // crash before it forwards those instances again (the PACS keeps one)
        self.queue.flush()?;
        Ok(tally)
    }

    /// Instances as the SCU takes them; those gone from the store fail
    /// at once. Blocking.
    fn outgoing(
        &self,
        pacs: &str,
        batch: &[Queued],
        index: &dyn Index,
        files: &FileStore,
    ) -> Result<(Vec<Queued>, Vec<Outgoing>), ForwardError> {
        let mut keep = Vec::with_capacity(batch.len());
        let mut items = Vec::with_capacity(batch.len());
        let now = Timestamp::now();
        for (key, seq) in batch {
            let record = match index.instance(key) {
                Ok(Some(record)) => record,
                Ok(None) => {
                    tracing::warn!(instance = %key.sop, "queued for the PACS but no longer stored");
                    let settled = self.settle(key, *seq, |rec| {
                        rec.state = queue::State::Failed;
                        rec.last_error = "no longer in the store".into();
                        rec.job.settled_at = Some(now);
                    })?;
                    if settled {
                        self.journal_final(key, pacs, None, "no longer in the store");
                    }
                    continue;
                }
                Err(e) => return Err(ForwardError::Task(format!("index: {e}"))),
            };
            items.push(Outgoing {
                path: files.path_of(key),
                sop_class: record.attrs.sop_class_uid.clone(),
                sop_instance: key.sop.to_string(),
                transfer_syntax: record.transfer_syntax.clone(),
                dataset_offset: record.dataset_offset,
            });
            keep.push((key.clone(), *seq));
        }
        Ok((keep, items))
    }

    /// Off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Forwarder) -> Result<T, ForwardError> + Send + 'static,
    ) -> Result<T, ForwardError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| ForwardError::Task(e.to_string()))?
    }

    /// One study's batch over one association (or a few, see
    /// `scu::MAX_CONTEXTS`).
    async fn deliver(
        &self,
        batch: Vec<Queued>,
        pacs: &PacsAddress,
        calling_ae: &str,
        index: &Arc<dyn Index>,
        files: &FileStore,
        stop: &Stop,
    ) -> Result<(), ForwardError> {
        let Some(study) = batch.first().map(|(k, _)| k.study.clone()) else {
            return Ok(());
        };
        let (index, files, label) = (index.clone(), files.clone(), pacs.to_string());
        let (batch, items) = self
            .blocking(move |f| f.outgoing(&label, &batch, index.as_ref(), &files))
            .await?;
        if items.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let (results, error) = tokio::select! {
            done = scu::store_all_partial(pacs, calling_ae, &items, self.timeout) => done,
            // dropping the association mid-way: those not yet answered stay
            // pending and go again at the next start
            () = stop.wait() => {
                tracing::info!(%study, "shutting down mid-batch; unanswered instances stay queued");
                return Ok(());
            }
        };
        let error = error.map(|e| e.to_string());
        let secs = started.elapsed().as_secs_f64();
        let (reason, label) = (error.clone(), pacs.to_string());
        let tally = self
            .blocking(move |f| f.record(&label, &batch, &results, reason.as_deref()))
            .await?;
        match &error {
            None => tracing::info!(
                %study, %pacs, sent = tally.sent, failed = tally.failed, secs,
                "forwarded to the PACS"
            ),
            Some(e) => tracing::warn!(
                %study, %pacs, sent = tally.sent, failed = tally.failed,
                retry = tally.retry, given_up = tally.given_up, secs,
                "association failed: {e}"
            ),
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    failed: usize,
    retry: usize,
    given_up: usize,
}
