//! The outbox: packages to deliver to peer gateways, entries of kind
//! `push` in the one work queue (`crate::queue`). Durable before `pushgate
//! send` hears "queued"; survives restarts; what was delivered or finally
//! failed stays listed with its receipt or reason. `Waiting`: the study is
//! still arriving; `Cancelled`: its grant was revoked or expired.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::RelayError;
use super::manifest::Priority;
pub use crate::queue::State;
use crate::queue::{Entry, Job, Policy, Queue, QueueError, Updated};
use crate::store::{QueueStore, SledQueue, Timestamp, Uid};

/// The sled tree of the outbox before it became queue entries (adopted
/// on open).
const OLD_TREE: &str = crate::store::trees::RELAY_OUTBOX;

/// Retries: 5 s after the first failed attempt, doubling up to 15 min;
/// given up 72 h after the first failed attempt.
pub const POLICY: Policy = Policy {
    base: Duration::from_secs(5),
    cap: Duration::from_secs(15 * 60),
    give_up_after: Duration::from_secs(72 * 3600),
};

/// The package made for a push (kept until delivered, so that a resend
/// after a lost answer is the same package and the peer recognises it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageInfo {
    pub id: String,
    pub sha256: String,
    pub size: u64,
    pub instances: u32,
    pub sealed_at: Timestamp,
}

/// The peer's signed receipt, as it sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedReceipt {
    /// The receipt (JSON text, exactly the bytes signed).
    pub receipt: String,
    /// ASCII-armored detached OpenPGP signature over `receipt`.
    pub signature: String,
}

/// A push: what the queue entry carries (`target` is the peer's URA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    pub study: Uid,
    pub to_ura: String,
    #[serde(default)]
    pub to_name: String,
    #[serde(default)]
    pub message: String,
    pub priority: Priority,
    /// The grant the push is made for: it carries that grant's scope, and
    /// only while the grant is live. `None`: a push of the whole study,
    /// asked for as such (`pushgate send`, the admin API without a grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Who asked: "cli", "admin-api", "grant", "console".
    pub by: String,
    /// The member of staff who asked in the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<crate::journal::ActorRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedReceipt>,
}

impl Job for Push {
    const KIND: &'static str = "push";
}

/// A push in its queue entry.
pub type Item = Entry<Push>;

/// Next in line: spoed before routine, then oldest first.
fn order(item: &Item) -> (Priority, Timestamp) {
    (item.job.priority, item.created_at)
}

#[derive(Clone)]
pub struct Outbox {
    queue: Queue<Push>,
}

fn store_err(e: impl std::fmt::Display) -> RelayError {
    RelayError::Store(e.to_string())
}

impl From<QueueError> for RelayError {
    fn from(e: QueueError) -> RelayError {
        store_err(e)
    }
}

impl Outbox {
    /// The outbox on the store's queue, adopting the pushes of the tree
    /// the outbox had before. Blocking.
    pub fn open(store: &Arc<SledQueue>) -> Result<Outbox, RelayError> {
        store.adopt(OLD_TREE, upgrade)?;
        Ok(Outbox::on(store.clone()))
    }

    /// The outbox in `store`.
    pub fn on(store: Arc<dyn QueueStore>) -> Outbox {
        Outbox {
            queue: Queue::new(store, POLICY),
        }
    }

    pub fn queue(&self) -> &Queue<Push> {
        &self.queue
    }

    /// Writes `item` and waits until it is on disk. Blocking.
    pub fn put(&self, item: &Item) -> Result<(), RelayError> {
        Ok(self.queue.put(item)?)
    }

    /// Takes back a push that was never journaled as queued. Blocking.
    pub fn remove(&self, id: &str) -> Result<(), RelayError> {
        Ok(self.queue.remove(id)?)
    }

    pub fn get(&self, id: &str) -> Result<Option<Item>, RelayError> {
        Ok(self.queue.get(id)?)
    }

    /// Every push, newest first.
    pub fn list(&self) -> Result<Vec<Item>, RelayError> {
        let mut items = self.queue.entries()?;
        items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(items)
    }

    /// The open push to work on now, or when the next one is due.
    pub fn next_due(&self, now: Timestamp) -> Result<Due, RelayError> {
        let due = self.queue.due(now)?;
        if let Some(item) = due.now.into_iter().min_by_key(order) {
            return Ok(Due::Now(Box::new(item)));
        }
        Ok(match due.next {
            Some(at) => Due::At(at),
            None => Due::Idle,
        })
    }

    /// Records what the worker did with a push, unless someone cancelled
    /// it meanwhile (`Cancelled` stays, unless the push was in fact
    /// delivered: then `Sent` is the truth). Whether it was written.
    /// Blocking.
    pub fn record_progress(&self, item: &Item) -> Result<bool, RelayError> {
        if item.state != State::Sent
            && self
                .get(&item.id)?
                .is_some_and(|now| now.state == State::Cancelled)
        {
            return Ok(false);
        }
        self.put(item)?;
        Ok(true)
    }

    /// Makes a push due now: an open one skips the rest of its wait, a
    /// failed one is tried again (its give-up time counted afresh).
    /// Returns it as it is now. Blocking.
    pub fn retry_now(&self, id: &str) -> Result<Item, OutboxChange> {
        let seq = self.queue.next_seq()?;
        let now = Timestamp::now();
        let changed = self.queue.update(id, |item| {
            match item.state {
                State::Waiting | State::Pending => {}
                State::Failed => {
                    item.state = State::Pending;
                    item.first_failure = None;
                    item.seq = seq;
                }
                State::Sent | State::Cancelled => return false,
            }
            item.next_attempt = now;
            true
        })?;
        self.queue.flush()?;
        match changed {
            Updated::Missing => Err(OutboxChange::NotFound),
            Updated::Written(item) => Ok(item),
            Updated::Refused(item) => Err(OutboxChange::Settled(item.state)),
        }
    }

    /// Stops a push for good: `Cancelled`, with `reason`. Returns it as
    /// it is now. Blocking.
    pub fn cancel(&self, id: &str, reason: &str) -> Result<Item, OutboxChange> {
        let seq = self.queue.next_seq()?;
        let changed = self.queue.update(id, |item| {
            if !item.is_open() && item.state != State::Failed {
                return false;
            }
            item.state = State::Cancelled;
            item.last_error = reason.to_string();
            item.seq = seq;
            true
        })?;
        self.queue.flush()?;
        match changed {
            Updated::Missing => Err(OutboxChange::NotFound),
            Updated::Written(item) => Ok(item),
            Updated::Refused(item) => Err(OutboxChange::Settled(item.state)),
        }
    }

    /// Whether a push of `study` to `ura` is open already (a grant made
    /// twice does not send twice).
    pub fn has_open(&self, study: &Uid, ura: &str) -> Result<bool, RelayError> {
        Ok(self
            .queue
            .entries()?
            .iter()
            .any(|i| i.is_open() && &i.job.study == study && i.job.to_ura == ura))
    }
}

/// Why a push could not be retried or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum OutboxChange {
    #[error("no such push")]
    NotFound,
    #[error("this push is {0:?} already: nothing to retry or cancel")]
    Settled(State),
    #[error(transparent)]
    Relay(#[from] RelayError),
}

impl From<QueueError> for OutboxChange {
    fn from(e: QueueError) -> OutboxChange {
        OutboxChange::Relay(e.into())
    }
}

pub enum Due {
    Now(Box<Item>),
    At(Timestamp),
    Idle,
}

/// A record of the old outbox tree as a queue entry: the envelope's
/// fields were the record's already; `target` is the peer's URA, and a
/// push already failing counts its give-up time from its creation, as
/// the old outbox did.
fn upgrade(key: &[u8], value: &[u8]) -> Result<(String, Vec<u8>), String> {
    let mut record: serde_json::Value = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    let fields = record.as_object_mut().ok_or("not a JSON object")?;
    let ura = fields.get("to_ura").cloned().ok_or("no to_ura")?;
    fields.insert("target".into(), ura);
    let open = matches!(
        fields.get("state").and_then(|s| s.as_str()),
        Some("pending" | "waiting")
    );
    let failing = open && fields.get("attempts").and_then(|a| a.as_u64()).unwrap_or(0) > 0;
    if failing
        && !fields.contains_key("first_failure")
        && let Some(created) = fields.get("created_at").cloned()
    {
        fields.insert("first_failure".into(), created);
    }
    let item: Item = serde_json::from_value(record).map_err(|e| e.to_string())?;
    if item.id.as_bytes() != key {
        return Err(format!("its id {} is not its key", item.id));
    }
    let bytes = serde_json::to_vec(&item).map_err(|e| e.to_string())?;
    Ok((crate::queue::key_of::<Push>(&item.id), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record exactly as the outbox before the queue wrote it.
    const OLD: &str = r#"{"id":"0a1b","study":"1.2.3","to_ura":"12345678","to_name":"B","message":"m","priority":"spoed","grant":"g1","by":"grant","created_at":"2026-01-02T03:04:05.000Z","state":"pending","attempts":2,"next_attempt":"2026-01-02T03:05:05.000Z","last_error":"cannot connect"}"#;
    const SENT: &str = r#"{"id":"0c0d","study":"1.2.4","to_ura":"87654321","priority":"routine","by":"cli","created_at":"2026-01-02T03:04:05.000Z","state":"sent","attempts":1,"next_attempt":"2026-01-02T03:04:05.000Z","sent_at":"2026-01-02T03:04:09.000Z","receipt":{"receipt":"{}","signature":"sig"}}"#;

    #[test]
    fn staff_retry_and_cancel_and_the_worker_does_not_undo_a_cancel() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let outbox = Outbox::open(&SledQueue::open(&db).unwrap()).unwrap();
        let push = Push {
            study: Uid::parse("1.2.3").unwrap(),
            to_ura: "12345678".into(),
            to_name: "B".into(),
            message: String::new(),
            priority: Priority::Routine,
            grant: None,
            by: "console".into(),
            actor: None,
            package: None,
            sent_at: None,
            receipt: None,
        };
        let mut item = Item::new("0a1b".into(), "12345678".into(), State::Pending, 1, push);
        item.next_attempt = Timestamp::now().saturating_add(Duration::from_secs(600));
        outbox.put(&item).unwrap();
        let retried = outbox.retry_now("0a1b").unwrap();
        assert!(retried.next_attempt <= Timestamp::now());
        assert!(matches!(
            outbox.next_due(Timestamp::now()).unwrap(),
            Due::Now(i) if i.id == "0a1b"
        ));
        // the worker took it up before the cancel; its outcome comes after
        let taken = outbox.get("0a1b").unwrap().unwrap();
        let cancelled = outbox.cancel("0a1b", "cancelled by beheer").unwrap();
        assert_eq!(cancelled.state, State::Cancelled);
        let mut failed_again = taken.clone();
        failed_again.attempts += 1;
        assert!(!outbox.record_progress(&failed_again).unwrap());
        assert_eq!(outbox.get("0a1b").unwrap().unwrap().state, State::Cancelled);
        assert!(matches!(
            outbox.retry_now("0a1b"),
            Err(OutboxChange::Settled(State::Cancelled))
        ));
        assert!(matches!(
            outbox.cancel("0a1b", "x"),
            Err(OutboxChange::Settled(_))
        ));
        assert!(matches!(
            outbox.retry_now("nope"),
            Err(OutboxChange::NotFound)
        ));
        // delivered after all: that is the truth, and it is recorded
        let mut sent = taken;
        sent.state = State::Sent;
        assert!(outbox.record_progress(&sent).unwrap());
        assert_eq!(outbox.get("0a1b").unwrap().unwrap().state, State::Sent);
        // a failed push is tried again, its give-up time afresh
        let mut gave_up = item.clone();
        gave_up.id = "0e0f".into();
        gave_up.state = State::Failed;
        gave_up.first_failure = Some(Timestamp::now());
        outbox.put(&gave_up).unwrap();
        let again = outbox.retry_now("0e0f").unwrap();
        assert_eq!((again.state, again.first_failure), (State::Pending, None));
    }

    #[test]
    fn open_moves_the_old_outbox_into_the_queue_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = db.open_tree(OLD_TREE).unwrap();
        old.insert("0a1b", OLD).unwrap();
        old.insert("0c0d", SENT).unwrap();
        let outbox = Outbox::open(&SledQueue::open(&db).unwrap()).unwrap();
        let items = outbox.list().unwrap();
        assert_eq!(items.len(), 2);
        let pending = outbox.get("0a1b").unwrap().unwrap();
        assert_eq!(pending.state, State::Pending);
        assert_eq!((pending.attempts, pending.target.as_str()), (2, "12345678"));
        assert_eq!(pending.last_error, "cannot connect");
        assert_eq!(pending.first_failure, Some(pending.created_at));
        assert_eq!(pending.job.priority, Priority::Spoed);
        assert_eq!(pending.job.grant.as_deref(), Some("g1"));
        let sent = outbox.get("0c0d").unwrap().unwrap();
        assert_eq!(sent.state, State::Sent);
        assert!(sent.job.receipt.is_some() && sent.job.sent_at.is_some());
        assert_eq!(sent.first_failure, None);
        // the old tree is gone; opening again changes nothing
        assert!(
            !db.tree_names()
                .iter()
                .any(|n| n.as_ref() == OLD_TREE.as_bytes())
        );
        let again = Outbox::open(&SledQueue::open(&db).unwrap()).unwrap();
        assert_eq!(again.list().unwrap(), items);
        match again.next_due(Timestamp::now()).unwrap() {
            Due::Now(item) => assert_eq!(item.id, "0a1b"),
            _ => panic!("the adopted pending push is due"),
        }
    }
}
