//! One journal line: `{"hash":"<64 hex>","seq":…,"at":…,"prev":…,"event":…}`.
//!
//! The hash is SHA-256 over the previous record's hash and the bytes of the
//! line from `{"seq"` on (with the opening brace): the record as written is
//! what is hashed, so verification never depends on re-serialising. Every
//! line is plain JSON for `jq` and a SIEM.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::Event;
use crate::store::Timestamp;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const PREFIX: &str = "{\"hash\":\"";
/// `{"hash":"` + 64 hex digits + `",`
const SIGNED_PREFIX_LEN: usize = PREFIX.len() + 64 + 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub at: Timestamp,
    pub prev: String,
    pub event: Event,
}

#[derive(Debug, Serialize)]
struct Unsigned<'a> {
    seq: u64,
    at: Timestamp,
    prev: &'a str,
    event: &'a Event,
}

fn chain_hash(prev: &str, unsigned: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(unsigned);
    hex(&hasher.finalize())
}

/// Lower-case hex, as the hashes are written.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Serialises a record as one line (no newline) and returns it with its hash.
pub fn seal(
    seq: u64,
    at: Timestamp,
    prev: &str,
    event: &Event,
) -> Result<(String, String), serde_json::Error> {
    let unsigned = serde_json::to_string(&Unsigned {
        seq,
        at,
        prev,
        event,
    })?;
    let hash = chain_hash(prev, unsigned.as_bytes());
    // unsigned starts with '{'; the hash goes in front of its first field
    let line = format!("{PREFIX}{hash}\",{}", &unsigned[1..]);
    Ok((line, hash))
}

/// Why a line is not the record it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    #[error("not a journal record (no hash in front)")]
    NoHash,
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("content does not match its hash (the record was altered)")]
    Altered,
    #[error(
        "names {found} as previous record, but that was {expected} (a record was removed, inserted or reordered)"
    )]
    BrokenChain { expected: String, found: String },
    #[error(
        "sequence number {found} where {expected} was due (a record was inserted or reordered)"
    )]
    Sequence { expected: u64, found: u64 },
    /// A record's number jumps ahead: the ones in between were removed.
    #[error("{} missing (removed from the journal)", Missing(*from, *to))]
    Missing { from: u64, to: u64 },
}

/// `records 1–3 are` / `record 7 is`, for messages about a gap.
pub struct Missing(pub u64, pub u64);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == self.1 {
            write!(f, "record {} is", self.0)
        } else {
            write!(f, "records {}-{} are", self.0, self.1)
        }
    }
}

/// Checks one line against its own hash (not yet against the record before
/// it: see `follows`), and returns the record and its hash.
pub fn unseal(line: &str) -> Result<(Record, String), LineError> {
    let hash = line
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.get(..64))
        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter(|_| line.get(PREFIX.len() + 64..SIGNED_PREFIX_LEN) == Some("\","))
        .ok_or(LineError::NoHash)?;
    let unsigned = format!("{{{}", &line[SIGNED_PREFIX_LEN..]);
    let record: Record =
        serde_json::from_str(&unsigned).map_err(|e| LineError::Json(e.to_string()))?;
    if chain_hash(&record.prev, unsigned.as_bytes()) != hash {
        return Err(LineError::Altered);
    }
    Ok((record, hash.to_string()))
}

/// Whether `record` is the one due after the record numbered
/// `expected_seq - 1` with hash `prev` (`1` and `GENESIS` for the first).
/// The one judgement of a link, for the full read and for the check of
/// segment boundaries at start: a number that jumps ahead is a gap, named
/// by the numbers missing.
pub fn follows(record: &Record, expected_seq: u64, prev: &str) -> Result<(), LineError> {
    if record.seq > expected_seq {
        return Err(LineError::Missing {
            from: expected_seq,
            to: record.seq - 1,
        });
    }
    if record.seq < expected_seq {
        return Err(LineError::Sequence {
            expected: expected_seq,
            found: record.seq,
        });
    }
    if record.prev != prev {
        return Err(LineError::BrokenChain {
            expected: prev.to_string(),
            found: record.prev.clone(),
        });
    }
    Ok(())
}

/// The hash of a line `unseal` accepted.
pub fn hash_of(line: &str) -> &str {
    line.get(PREFIX.len()..PREFIX.len() + 64)
        .unwrap_or_default()
}

/// Checks one line against its hash and the record before it.
pub fn open_line(line: &str, prev: &str, expected_seq: u64) -> Result<(Record, String), LineError> {
    let (record, hash) = unseal(line)?;
    follows(&record, expected_seq, prev)?;
    Ok((record, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::event::{Access, AccessKind, Outcome, Who};

    fn event(n: u32) -> Event {
        Event::Access(Access {
            grant: None,
            study: None,
            what: AccessKind::Page,
            who: Who::Anonymous,
            from: format!("192.0.2.{n}"),
            outcome: Outcome::Allowed,
            instances: n,
            bytes: 0,
        })
    }

    #[test]
    fn lines_chain_and_verify() {
        let (first, h1) = seal(1, Timestamp(1000), GENESIS, &event(1)).unwrap();
        let (second, h2) = seal(2, Timestamp(2000), &h1, &event(2)).unwrap();
        assert!(first.starts_with("{\"hash\":\""));
        let parsed: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(parsed["hash"], h2.as_str());
        assert_eq!(parsed["seq"], 2);
        let (r1, got1) = open_line(&first, GENESIS, 1).unwrap();
        assert_eq!((r1.seq, got1.as_str()), (1, h1.as_str()));
        assert!(open_line(&second, &h1, 2).is_ok());
        // skipped: named by the numbers missing
        assert_eq!(
            open_line(&second, GENESIS, 1).unwrap_err(),
            LineError::Missing { from: 1, to: 1 }
        );
        // out of order, or linked to the wrong record
        assert!(matches!(
            open_line(&first, &h1, 2),
            Err(LineError::Sequence { .. })
        ));
        let (other, _) = seal(2, Timestamp(2000), GENESIS, &event(2)).unwrap();
        assert!(matches!(
            open_line(&other, &h1, 2),
            Err(LineError::BrokenChain { .. })
        ));
        assert_eq!(hash_of(&second), h2);
    }

    /// Lines written before the journal had record shapes of its own read
    /// back and write again byte for byte: the audit format is the
    /// journal's, whatever authz's types become.
    #[test]
    fn golden_lines_reseal_byte_for_byte() {
        let golden = include_str!("../../tests/data/journal/golden.jsonl");
        let mut prev = GENESIS.to_string();
        for (i, line) in golden.lines().enumerate() {
            let (record, hash) = open_line(line, &prev, i as u64 + 1).unwrap();
            let (again, _) = seal(record.seq, record.at, &record.prev, &record.event).unwrap();
            assert_eq!(again, line);
            prev = hash;
        }
        assert_eq!(golden.lines().count(), 46);
    }

    #[test]
    fn any_changed_byte_is_noticed() {
        let (line, _) = seal(1, Timestamp(1000), GENESIS, &event(7)).unwrap();
        for i in 0..line.len() {
            let mut bytes = line.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(altered) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(
                open_line(&altered, GENESIS, 1).is_err(),
                "flip at {i} unnoticed: {altered}"
            );
        }
    }
}
