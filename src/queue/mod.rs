//! The one durable work queue: pushes to peer gateways (the outbox) and
//! instances to forward to the local PACS are entries of it, and so will
//! be PACS retrievals and notifications.
//!
//! An [`Entry`] is the envelope every job shares — id, target, state,
//! attempts, when it is due, the last error, when it was made — around the
//! job's own payload `J` ([`Job`]). One codec (JSON, the payload's fields
//! beside the envelope's), one backoff ([`Policy::delay`]), one due rule
//! ([`Entry::is_due`]), one give-up rule ([`Entry::retry_later`]) and one
//! listing ([`list`], `GET /admin/v1/queue`, `pushgate queue`).
//!
//! Storage is `crate::store::QueueStore` (the sled tree `queue`); every
//! call here is blocking.

#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::{QueueStore, StoreError, Timestamp};

/// Retries are spread by this fraction either way, so that many gateways
/// recovering together do not retry in step.
pub const JITTER: f64 = 0.2;
/// Most entries [`list`] returns (newest first): the listing stays bounded
/// however many instances wait for the PACS.
pub const MAX_LISTED: usize = 1000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    #[error("queue: {0}")]
    Store(#[from] StoreError),
    #[error("queue: unreadable entry {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// What a kind of job carries beside the envelope.
pub trait Job: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The kind's name: the key prefix and the `kind` of the listing.
    const KIND: &'static str;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not ready yet (a push whose study is still arriving).
    Waiting,
    /// To do at `next_attempt`.
    Pending,
    /// Done: delivered, stored.
    Sent,
    /// Refused for good, or given up.
    Failed,
    /// Withdrawn before it was done (`last_error` says why).
    Cancelled,
}

impl State {
    pub fn is_open(self) -> bool {
        matches!(self, State::Waiting | State::Pending)
    }
}

/// How a kind of job retries: the first retry after `base`, doubling per
/// failed attempt up to `cap`, ±[`JITTER`]; given up `give_up_after` its
/// first failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub base: Duration,
    pub cap: Duration,
    pub give_up_after: Duration,
}

impl Policy {
    /// Delay after `attempts` failed attempts (1 or more):
    /// `min(base · 2^(attempts−1), cap)`, ±[`JITTER`].
    pub fn delay(&self, attempts: u32) -> Duration {
        self.plain_delay(attempts)
            .mul_f64(rand::random_range((1.0 - JITTER)..=(1.0 + JITTER)))
    }

    /// The delay without jitter.
    pub fn plain_delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }
}

/// A queued job in its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry<J> {
    pub id: String,
    /// Where it goes: a peer's URA, the PACS.
    pub target: String,
    pub state: State,
    /// Attempts made.
    pub attempts: u32,
    /// When an open entry is due.
    pub next_attempt: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    pub created_at: Timestamp,
    /// Set anew whenever the entry is (re)queued: an outcome is recorded
    /// only if it was not queued again meanwhile ([`Queue::settle`]).
    #[serde(default)]
    pub seq: u64,
    #[serde(flatten)]
    pub job: J,
}

impl<J> Entry<J> {
    /// A new entry, due now.
    pub fn new(id: String, target: String, state: State, seq: u64, job: J) -> Entry<J> {
        let now = Timestamp::now();
        Entry {
            id,
            target,
            state,
            attempts: 0,
            next_attempt: now,
            first_failure: None,
            last_error: String::new(),
            created_at: now,
            seq,
            job,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state.is_open()
    }

    /// The due rule: open, and its time has come.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.is_open() && self.next_attempt <= now
    }

    /// Records a failed attempt worth retrying: due again after the
    /// policy's delay, or `Failed` once `give_up_after` has passed since
    /// the first failed attempt (true then). Call after counting the
    /// attempt in `attempts`.
    pub fn retry_later(&mut self, reason: &str, now: Timestamp, policy: &Policy) -> bool {
        self.last_error = reason.to_string();
        let first = *self.first_failure.get_or_insert(now);
        if now.0.saturating_sub(first.0) >= policy.give_up_after.as_millis() as u64 {
            self.state = State::Failed;
            return true;
        }
        self.next_attempt = now.saturating_add(policy.delay(self.attempts.max(1)));
        false
    }
}

/// What is due: entries due now (in key order), and when the next open
/// entry not yet due comes up.
#[derive(Debug)]
pub struct Due<J> {
    pub now: Vec<Entry<J>>,
    pub next: Option<Timestamp>,
}

/// The entries of one kind of job.
pub struct Queue<J> {
    store: Arc<dyn QueueStore>,
    policy: Policy,
    kind: PhantomData<fn() -> J>,
}

impl<J> Clone for Queue<J> {
    fn clone(&self) -> Self {
        Queue {
            store: self.store.clone(),
            policy: self.policy,
            kind: PhantomData,
        }
    }
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, QueueError> {
    serde_json::from_slice(value).map_err(|e| QueueError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn encode<J: Job>(entry: &Entry<J>) -> Result<Vec<u8>, QueueError> {
    serde_json::to_vec(entry).map_err(|e| QueueError::Corrupt {
        key: key_of::<J>(&entry.id),
        reason: e.to_string(),
    })
}

/// The storage key of an entry.
pub fn key_of<J: Job>(id: &str) -> String {
    format!("{}/{id}", J::KIND)
}

impl<J: Job> Queue<J> {
    pub fn new(store: Arc<dyn QueueStore>, policy: Policy) -> Queue<J> {
        Queue {
            store,
            policy,
            kind: PhantomData,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Another policy (tests); set before cloning.
    pub fn with_policy(mut self, policy: Policy) -> Queue<J> {
        self.policy = policy;
        self
    }

    /// A fresh `seq` for an entry being (re)queued.
    pub fn next_seq(&self) -> Result<u64, QueueError> {
        Ok(self.store.next_seq()?)
    }

    /// Writes `entry`, durable when this returns.
    pub fn put(&self, entry: &Entry<J>) -> Result<(), QueueError> {
        Ok(self.store.put(&key_of::<J>(&entry.id), encode(entry)?)?)
    }

    /// Writes all of `entries` at once, durable when this returns.
    pub fn put_all(&self, entries: &[Entry<J>]) -> Result<(), QueueError> {
        let encoded = entries
            .iter()
            .map(|e| Ok((key_of::<J>(&e.id), encode(e)?)))
            .collect::<Result<Vec<_>, QueueError>>()?;
        Ok(self.store.put_all(encoded)?)
    }

    pub fn remove(&self, id: &str) -> Result<(), QueueError> {
        Ok(self.store.remove(&key_of::<J>(id))?)
    }

    pub fn get(&self, id: &str) -> Result<Option<Entry<J>>, QueueError> {
        let key = key_of::<J>(id);
        self.store.get(&key)?.map(|v| decode(&key, &v)).transpose()
    }

    /// Every entry of this kind, in id order; an unreadable one is logged
    /// and skipped (it cannot be worked on, and must not stop the rest).
    pub fn entries(&self) -> Result<Vec<Entry<J>>, QueueError> {
        let prefix = format!("{}/", J::KIND);
        let mut out = Vec::new();
        for (key, value) in self.store.scan(&prefix)? {
            match decode(&key, &value) {
                Ok(entry) => out.push(entry),
                Err(e) => tracing::error!("{e}; skipped"),
            }
        }
        Ok(out)
    }

    /// What is due at `now`.
    pub fn due(&self, now: Timestamp) -> Result<Due<J>, QueueError> {
        let mut due = Due {
            now: Vec::new(),
            next: None,
        };
        for entry in self.entries()? {
            if entry.is_due(now) {
                due.now.push(entry);
            } else if entry.is_open() {
                let at = entry.next_attempt;
                due.next = Some(due.next.map_or(at, |n| n.min(at)));
            }
        }
        Ok(due)
    }

    /// Puts every settled outcome on disk (one sync for a batch).
    pub fn flush(&self) -> Result<(), QueueError> {
        Ok(self.store.flush()?)
    }

    /// Changes the open entry `id` unless it was queued again since `seq`
    /// was read, or is no longer open (false then). On disk after
    /// [`Queue::flush`].
    pub fn settle(
        &self,
        id: &str,
        seq: u64,
        mut change: impl FnMut(&mut Entry<J>),
    ) -> Result<bool, QueueError> {
        let key = key_of::<J>(id);
        loop {
            let Some(old) = self.store.get(&key)? else {
                return Ok(false);
            };
            let mut entry: Entry<J> = decode(&key, &old)?;
            if entry.seq != seq || !entry.is_open() {
                return Ok(false);
            }
            change(&mut entry);
            if self.store.swap(&key, &old, encode(&entry)?)? {
                return Ok(true);
            }
        }
    }
}

/// What [`Queue::update`] did.
#[derive(Debug)]
pub enum Updated<J> {
    /// No such entry.
    Missing,
    /// The change refused it, as it was.
    Refused(Entry<J>),
    /// Written, as it is now.
    Written(Entry<J>),
}

impl<J: Job> Queue<J> {
    /// Changes entry `id` atomically (compare and swap: a write by someone
    /// else in between makes it read and judge again); `change` may refuse
    /// by returning false. On disk after [`Queue::flush`]. For staff's retry and cancel, which
    /// must not undo what the worker recorded meanwhile.
    pub fn update(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Entry<J>) -> bool,
    ) -> Result<Updated<J>, QueueError> {
        let key = key_of::<J>(id);
        loop {
            let Some(old) = self.store.get(&key)? else {
                return Ok(Updated::Missing);
            };
            let mut entry: Entry<J> = decode(&key, &old)?;
            let unchanged = entry.clone();
            if !change(&mut entry) {
                return Ok(Updated::Refused(unchanged));
            }
            if self.store.swap(&key, &old, encode(&entry)?)? {
                return Ok(Updated::Written(entry));
            }
        }
    }
}

/// One line of the listing: the envelope of any kind of job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    #[serde(default)]
    pub kind: String,
    pub target: String,
    pub state: State,
    pub attempts: u32,
    /// When it is due, if it is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    pub created_at: Timestamp,
}

/// Every kind's entries, newest first, at most `limit`; unreadable ones
/// are logged and skipped.
pub fn list(store: &dyn QueueStore, limit: usize) -> Result<Vec<Row>, QueueError> {
    let mut rows = Vec::new();
    for (key, value) in store.scan("")? {
        let mut row: Row = match decode(&key, &value) {
            Ok(row) => row,
            Err(e) => {
                tracing::error!("{e}; not listed");
                continue;
            }
        };
        row.kind = key.split('/').next().unwrap_or_default().to_string();
        if !row.state.is_open() {
            row.next_attempt = None;
        }
        rows.push(row);
    }
    rows.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.id.cmp(&b.id))
    });
    rows.truncate(limit);
    Ok(rows)
}
