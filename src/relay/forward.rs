//! Forwarding received studies to the local PACS (`forward.pacs`): a
//! durable queue in the sled tree `forward`, one record per instance, and
//! a worker that sends what is due, a study at a time, with the C-STORE SCU.
//!
//! Delivery is at least once: an instance is marked sent only after the
//! PACS answered, so a crash or shutdown mid-association sends it again
//! (PACSes take a repeated SOP Instance UID as a replacement).
//!
//! Per instance: `Pending` until the PACS answers; success or warning →
//! `Sent`; a failure status (or an instance we cannot send: SOP class not
//! accepted, unreadable, not re-encodable) → `Failed` at once, since
//! sending it again would fail again; the association failing (PACS down,
//! rejected, aborted, timed out) → still `Pending`, tried again after an
//! exponential backoff with jitter, and `Failed` once [`GIVE_UP_AFTER`]
//! has passed since its first failed attempt.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::dimse::scu::{self, InstanceResult, Outcome, Outgoing, PacsAddress};
use crate::journal::{Event, Journal};
use crate::store::{FileStore, Index, InstanceKey, Timestamp, Uid};

/// Name of the sled tree.
pub const TREE: &str = "forward";
/// Instances per association (one study per batch).
pub const BATCH_MAX: usize = 256;
/// First retry after this; doubles per attempt up to [`BACKOFF_CAP`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
pub const BACKOFF_CAP: Duration = Duration::from_secs(10 * 60);
/// Retries are spread by this fraction either way.
pub const JITTER: f64 = 0.2;
/// An instance whose association keeps failing is given up (`Failed`)
/// this long after its first failed attempt: two days cover a PACS down
/// over a weekend night without retrying forever.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(48 * 3600);
/// Bounds each step of an association (see `scu::store_all`).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    #[error("forward queue: {0}")]
    Sled(#[from] sled::Error),
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

/// The stored record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    state: ForwardState,
    attempts: u32,
    next_attempt: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_failure: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// Set anew by every `enqueue`: the worker records an outcome only if
    /// the instance was not enqueued again meanwhile.
    seq: u64,
}

fn tree_key(key: &InstanceKey) -> Vec<u8> {
    format!("{}/{}/{}", key.study, key.series, key.sop).into_bytes()
}

fn parse_key(bytes: &[u8]) -> Result<InstanceKey, ForwardError> {
    let corrupt = |reason: &str| ForwardError::Corrupt {
        key: String::from_utf8_lossy(bytes).into_owned(),
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not UTF-8"))?;
    let mut parts = text.split('/');
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

fn decode(key: &[u8], value: &[u8]) -> Result<Record, ForwardError> {
    serde_json::from_slice(value).map_err(|e| ForwardError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

fn encode(record: &Record) -> Vec<u8> {
    // a struct of strings and numbers always serializes
    serde_json::to_vec(record).unwrap_or_default()
}

/// Delay before attempt `attempts + 1`: base · 2^(attempts−1), capped,
/// ±[`JITTER`].
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let plain = base.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    plain.mul_f64(rand::random_range((1.0 - JITTER)..=(1.0 + JITTER)))
}

/// A queued instance with the `seq` it was read with.
type Queued = (InstanceKey, u64);

/// What is due now: batches (one study each), and when the next pending
/// item that is not yet due comes up.
struct Due {
    batches: Vec<Vec<Queued>>,
    next: Option<Timestamp>,
}

/// The queue; cheap to clone (enqueue from intake, `run` on its own task).
#[derive(Clone)]
pub struct Forwarder {
    db: sled::Db,
    tree: sled::Tree,
    notify: Arc<Notify>,
    backoff_base: Duration,
    give_up_after: Duration,
    timeout: Duration,
    journal: Option<Journal>,
}

impl Forwarder {
    /// Opens the tree `forward` of `db`. Blocking.
    pub fn open(db: &sled::Db) -> Result<Forwarder, ForwardError> {
        Ok(Forwarder {
            db: db.clone(),
            tree: db.open_tree(TREE)?,
            notify: Arc::new(Notify::new()),
            backoff_base: BACKOFF_BASE,
            give_up_after: GIVE_UP_AFTER,
            timeout: STEP_TIMEOUT,
            journal: None,
        })
    }

    /// Another first retry delay (tests); set before cloning.
    pub fn with_backoff(mut self, base: Duration) -> Forwarder {
        self.backoff_base = base;
        self
    }

    /// Another give-up time (tests); set before cloning.
    pub fn with_give_up_after(mut self, after: Duration) -> Forwarder {
        self.give_up_after = after;
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
        let now = Timestamp::now();
        let mut batch = sled::Batch::default();
        for key in keys {
            let record = Record {
                state: ForwardState::Pending,
                attempts: 0,
                next_attempt: now,
                first_failure: None,
                last_error: None,
                seq: self.db.generate_id()?,
            };
            batch.insert(tree_key(key), encode(&record));
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        self.notify.notify_one();
        Ok(())
    }

    /// Every queued instance with its state, in key order (by study).
    /// Blocking.
    pub fn status(&self) -> Result<Vec<ForwardItem>, ForwardError> {
        let mut out = Vec::new();
        for entry in self.tree.iter() {
            let (k, v) = entry?;
            let record = decode(&k, &v)?;
            out.push(ForwardItem {
                key: parse_key(&k)?,
                next_attempt: (record.state == ForwardState::Pending)
                    .then_some(record.next_attempt),
                state: record.state,
                attempts: record.attempts,
                last_error: record.last_error,
            });
        }
        Ok(out)
    }

    /// Pending items due at `now`, by study, in batches. Blocking.
    fn due(&self, now: Timestamp) -> Result<Due, ForwardError> {
        let mut by_study: BTreeMap<Uid, Vec<Queued>> = BTreeMap::new();
        let mut next: Option<Timestamp> = None;
        for entry in self.tree.iter() {
            let (k, v) = entry?;
            let (key, record) = match parse_key(&k).and_then(|key| Ok((key, decode(&k, &v)?))) {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!("skipping: {e}");
                    continue;
                }
            };
            if record.state != ForwardState::Pending {
                continue;
            }
            if record.next_attempt <= now {
                by_study
                    .entry(key.study.clone())
                    .or_default()
                    .push((key, record.seq));
            } else {
                next = Some(next.map_or(record.next_attempt, |n| n.min(record.next_attempt)));
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
        Ok(Due { batches, next })
    }

    /// Changes the record of `key` unless it was enqueued again since
    /// `seq` was read (false then). Blocking.
    fn settle(
        &self,
        key: &InstanceKey,
        seq: u64,
        change: impl Fn(&mut Record),
    ) -> Result<bool, ForwardError> {
        let k = tree_key(key);
        loop {
            let Some(old) = self.tree.get(&k)? else {
                return Ok(false);
            };
            let mut record = decode(&k, &old)?;
            if record.seq != seq || record.state != ForwardState::Pending {
                return Ok(false);
            }
            change(&mut record);
            if self
                .tree
                .compare_and_swap(&k, Some(&old), Some(encode(&record)))?
                .is_ok()
            {
                return Ok(true);
            }
        }
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
                        rec.state = ForwardState::Sent {
                            status: r.status,
                            at: now,
                        };
                        rec.last_error = None;
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
                        rec.last_error = Some(reason.clone());
                        rec.state = ForwardState::Failed {
                            reason: reason.clone(),
                            attempts: rec.attempts,
                            at: now,
                        };
                    })?;
                    if settled {
                        self.journal_final(key, pacs, Some(r.status), &reason);
                    }
                }
                None => {
                    let error = error.unwrap_or("the association ended before this instance");
                    let give_up_after = self.give_up_after;
                    let base = self.backoff_base;
                    let gave_up = std::cell::RefCell::new(None);
                    self.settle(key, *seq, |rec| {
                        rec.attempts += 1;
                        rec.last_error = Some(error.to_string());
                        let first = *rec.first_failure.get_or_insert(now);
                        if now.0.saturating_sub(first.0) >= give_up_after.as_millis() as u64 {
                            let reason = format!(
                                "gave up after {} attempts over {}: {error}",
                                rec.attempts,
                                humantime::format_duration(Duration::from_secs(
                                    now.0.saturating_sub(first.0) / 1000
                                ))
                            );
                            *gave_up.borrow_mut() = Some(reason.clone());
                            rec.state = ForwardState::Failed {
                                reason,
                                attempts: rec.attempts,
                                at: now,
                            };
                        } else {
                            rec.next_attempt = now.saturating_add(backoff(base, rec.attempts));
                        }
                    })?;
                    if let Some(reason) = gave_up.into_inner() {
                        self.journal_final(key, pacs, None, &reason);
                        tally.given_up += 1;
                    } else {
                        tally.retry += 1;
                    }
                }
            }
        }
        self.db.flush()?;
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
                        rec.state = ForwardState::Failed {
                            reason: "no longer in the store".into(),
                            attempts: rec.attempts,
                            at: now,
                        };
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

    /// The worker: sends what is due, then sleeps until `enqueue`, the
    /// next retry, or `stop`. Items left pending by an earlier run are
    /// due at once.
    pub async fn run(
        self,
        pacs: PacsAddress,
        calling_ae: String,
        index: Arc<dyn Index>,
        files: FileStore,
        mut stop: watch::Receiver<bool>,
    ) {
        tracing::info!(%pacs, "forwarding received studies to the PACS");
        loop {
            if *stop.borrow() {
                break;
            }
            let now = Timestamp::now();
            let due = match self.blocking(move |f| f.due(now)).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!("{e}; trying again in {:?}", self.backoff_base);
                    if sleep_or_stop(self.backoff_base, &mut stop).await {
                        break;
                    }
                    continue;
                }
            };
            if due.batches.is_empty() {
                let wait = due
                    .next
                    .map(|next| Duration::from_millis(next.0.saturating_sub(Timestamp::now().0)));
                tokio::select! {
                    _ = self.notify.notified() => {}
                    _ = async {
                        match wait {
                            Some(wait) => tokio::time::sleep(wait).await,
                            None => std::future::pending().await,
                        }
                    } => {}
                    changed = stop.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
                continue;
            }
            for batch in due.batches {
                if *stop.borrow() {
                    break;
                }
                if let Err(e) = self
                    .deliver(batch, &pacs, &calling_ae, &index, &files, &mut stop)
                    .await
                {
                    tracing::error!("{e}");
                    if sleep_or_stop(self.backoff_base, &mut stop).await {
                        break;
                    }
                }
            }
        }
        tracing::info!("forwarding stopped");
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
        stop: &mut watch::Receiver<bool>,
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
            _ = stop.changed() => {
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

/// Sleeps for `d`; true when told to stop meanwhile.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}
