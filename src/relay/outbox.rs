//! The outbox: packages to deliver to peer gateways, one sled tree, one
//! JSON record per push. Durable before `pushgate send` hears "queued";
//! survives restarts; what was delivered or finally failed stays listed
//! with its receipt or reason.

use serde::{Deserialize, Serialize};

use super::RelayError;
use super::manifest::Priority;
use crate::store::{Timestamp, Uid};

const TREE: &str = "relay_outbox";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The study is still arriving: sent once it is complete.
    Waiting,
    Pending,
    Sent,
    Failed,
    /// Withdrawn before delivery: its grant was revoked or expired
    /// (`last_error` says which).
    Cancelled,
}

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
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
    /// Who asked: "cli", "admin-api", "grant".
    pub by: String,
    pub created_at: Timestamp,
    pub state: State,
    pub attempts: u32,
    pub next_attempt: Timestamp,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedReceipt>,
}

impl Item {
    /// Next in line: spoed before routine, then oldest first.
    fn order(&self) -> (Priority, Timestamp) {
        (self.priority, self.created_at)
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Waiting | State::Pending)
    }
}

#[derive(Clone)]
pub struct Outbox {
    tree: sled::Tree,
    db: sled::Db,
}

fn store_err(e: impl std::fmt::Display) -> RelayError {
    RelayError::Store(e.to_string())
}

impl Outbox {
    pub fn open(db: &sled::Db) -> Result<Outbox, RelayError> {
        Ok(Outbox {
            tree: db.open_tree(TREE).map_err(store_err)?,
            db: db.clone(),
        })
    }

    /// Writes `item` and waits until it is on disk. Blocking.
    pub fn put(&self, item: &Item) -> Result<(), RelayError> {
        let bytes = serde_json::to_vec(item).map_err(store_err)?;
        self.tree
            .insert(item.id.as_bytes(), bytes)
            .map_err(store_err)?;
        self.db.flush().map_err(store_err)?;
        Ok(())
    }

    /// Takes back a push that was never journaled as queued. Blocking.
    pub fn remove(&self, id: &str) -> Result<(), RelayError> {
        self.tree.remove(id.as_bytes()).map_err(store_err)?;
        self.db.flush().map_err(store_err)?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<Item>, RelayError> {
        self.tree
            .get(id.as_bytes())
            .map_err(store_err)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(store_err))
            .transpose()
    }

    /// Every push, newest first.
    pub fn list(&self) -> Result<Vec<Item>, RelayError> {
        let mut items = Vec::new();
        for entry in self.tree.iter() {
            let (_, bytes) = entry.map_err(store_err)?;
            match serde_json::from_slice::<Item>(&bytes) {
                Ok(item) => items.push(item),
                Err(e) => tracing::error!("outbox: unreadable record skipped: {e}"),
            }
        }
        items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(items)
    }

    /// The open push to work on now, or when the next one is due.
    pub fn next_due(&self, now: Timestamp) -> Result<Due, RelayError> {
        let mut open: Vec<Item> = self.list()?.into_iter().filter(Item::is_open).collect();
        open.sort_by_key(Item::order);
        if let Some(item) = open.iter().find(|i| i.next_attempt <= now) {
            return Ok(Due::Now(Box::new(item.clone())));
        }
        Ok(match open.iter().map(|i| i.next_attempt).min() {
            Some(at) => Due::At(at),
            None => Due::Idle,
        })
    }

    /// Whether a push of `study` to `ura` is open already (a grant made
    /// twice does not send twice).
    pub fn has_open(&self, study: &Uid, ura: &str) -> Result<bool, RelayError> {
        Ok(self
            .list()?
            .iter()
            .any(|i| i.is_open() && &i.study == study && i.to_ura == ura))
    }
}

pub enum Due {
    Now(Box<Item>),
    At(Timestamp),
    Idle,
}
