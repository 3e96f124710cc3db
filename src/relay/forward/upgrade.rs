//! The forwarding records of the sled tree `forward` (before the one work
//! queue) as queue entries; `SledQueue::adopt` moves them on open.

use serde::Deserialize;

use super::{Forward, ForwardState, Record, parse_id};
use crate::queue::{self, Entry, Job};
use crate::store::Timestamp;

/// The tree forwarding kept its records in.
pub const OLD_TREE: &str = crate::store::trees::FORWARD;

/// A record exactly as it was stored there.
#[derive(Deserialize)]
struct Old {
    state: ForwardState,
    attempts: u32,
    next_attempt: Timestamp,
    #[serde(default)]
    first_failure: Option<Timestamp>,
    #[serde(default)]
    last_error: Option<String>,
    seq: u64,
}

pub fn upgrade(key: &[u8], value: &[u8]) -> Result<(String, Vec<u8>), String> {
    let id = std::str::from_utf8(key).map_err(|_| "key not UTF-8".to_string())?;
    parse_id(id).map_err(|e| e.to_string())?;
    let old: Old = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    let (state, status, settled_at, reason) = match old.state {
        ForwardState::Pending => (queue::State::Pending, None, None, None),
        ForwardState::Sent { status, at } => (queue::State::Sent, Some(status), Some(at), None),
        ForwardState::Failed { reason, at, .. } => {
            (queue::State::Failed, None, Some(at), Some(reason))
        }
    };
    let record: Record = Entry {
        id: id.to_string(),
        target: "pacs".into(),
        state,
        attempts: old.attempts,
        next_attempt: old.next_attempt,
        first_failure: old.first_failure,
        last_error: reason.or(old.last_error).unwrap_or_default(),
        // the old records did not keep it; their due time is the nearest
        created_at: old.first_failure.unwrap_or(old.next_attempt),
        seq: old.seq,
        job: Forward { status, settled_at },
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    Ok((format!("{}/{id}", Forward::KIND), bytes))
}

#[cfg(test)]
mod tests {
    use super::super::Forwarder;
    use super::*;

    const STUDY: &str = "1.2.3";

    fn key(sop: &str) -> String {
        format!("{STUDY}/1.2.3.4/{sop}")
    }

    #[test]
    fn open_moves_old_forward_records_into_the_queue_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = db.open_tree(OLD_TREE).unwrap();
        // exactly as the forwarder before the queue wrote them
        old.insert(
            key("1.1"),
            r#"{"state":{"state":"pending"},"attempts":3,"next_attempt":"2026-01-02T03:04:05.000Z","first_failure":"2026-01-02T03:00:00.000Z","last_error":"connection refused","seq":7}"#,
        )
        .unwrap();
        old.insert(
            key("1.2"),
            r#"{"state":{"state":"sent","status":0,"at":"2026-01-02T03:01:00.000Z"},"attempts":1,"next_attempt":"2026-01-02T03:00:00.000Z","seq":8}"#,
        )
        .unwrap();
        old.insert(
            key("1.3"),
            r#"{"state":{"state":"failed","reason":"status 0xA700","attempts":1,"at":"2026-01-02T03:01:00.000Z"},"attempts":1,"next_attempt":"2026-01-02T03:00:00.000Z","last_error":"status 0xA700","seq":9}"#,
        )
        .unwrap();
        let f = Forwarder::open(&crate::store::SledQueue::open(&db).unwrap()).unwrap();
        let items = f.status().unwrap();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[0].state, ForwardState::Pending);
        assert_eq!(items[0].attempts, 3);
        assert_eq!(items[0].last_error.as_deref(), Some("connection refused"));
        assert!(items[0].next_attempt.is_some());
        assert!(matches!(
            items[1].state,
            ForwardState::Sent { status: 0, .. }
        ));
        assert!(
            matches!(&items[2].state, ForwardState::Failed { reason, attempts: 1, .. } if reason == "status 0xA700"),
            "{:?}",
            items[2]
        );
        // the pending one is due (it was due long ago), and is so once
        let due = f.due(Timestamp::now()).unwrap();
        assert_eq!(due.batches.len(), 1);
        assert_eq!(due.batches[0].len(), 1);
        assert_eq!(due.batches[0][0].1, 7, "its seq is kept");
        assert!(
            !db.tree_names()
                .iter()
                .any(|n| n.as_ref() == OLD_TREE.as_bytes())
        );
        assert_eq!(
            Forwarder::open(&crate::store::SledQueue::open(&db).unwrap())
                .unwrap()
                .status()
                .unwrap(),
            items
        );
    }
}
