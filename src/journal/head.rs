//! The head of the journal: the number and hash of its last record, the
//! one thing an auditor writes down. A chain cannot show that its own end
//! was cut off, or that it was rewritten as a whole; a head kept elsewhere
//! can (`pushgate audit verify --anchor SEQ:HASH`).
//!
//! The daemon publishes the head: a log line at start, every
//! `journal.head_every` and at stop, and a file signed with the gateway's
//! OpenPGP key (`journal/head.asc`, cleartext-signed JSON) that an
//! external system collects. The journal does not know the key: the daemon
//! hands in a signing function (layers go one way; relay owns the key).

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::record::GENESIS;
use super::{Journal, JournalError};
use crate::store::{Timestamp, sync_dir};
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// A record's number and hash, written `SEQ:HASH` (as `audit verify`
/// prints it and `--anchor` takes it). Record 0 with the genesis hash is
/// the head of an empty journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Head {
        Head {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl FromStr for Head {
    type Err = String;

    fn from_str(text: &str) -> Result<Head, String> {
        let wrong =
            || format!("{text:?} is not a head: expected SEQ:HASH (as `audit verify` prints it)");
        let (seq, hash) = text.trim().split_once(':').ok_or_else(wrong)?;
        let seq: u64 = seq.parse().map_err(|_| wrong())?;
        if seq == 0 || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(wrong());
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// Signs the head file's text: returns it cleartext-signed (ASCII armor).
pub type SignText = Box<dyn Fn(&[u8]) -> Result<String, String> + Send + Sync>;

/// Publishes the head: to the log, and signed to `journal/head.asc`.
pub struct HeadPublisher {
    journal: Journal,
    /// Who publishes (the gateway's URA): the file says whose head it is.
    gateway: String,
    sign: Option<SignText>,
}

/// The signed head file in a journal directory.
pub fn head_file(dir: &Path) -> PathBuf {
    dir.join("head.asc")
}

impl HeadPublisher {
    pub fn new(journal: Journal, gateway: String, sign: Option<SignText>) -> HeadPublisher {
        HeadPublisher {
            journal,
            gateway,
            sign,
        }
    }

    /// Logs the head and writes the signed file. Blocking (signs, fsyncs).
    pub fn publish(&self, when: &'static str) {
        let head = self.journal.head();
        tracing::info!(head = %head, when, "journal head");
        let Some(sign) = &self.sign else { return };
        let text = head_json(&head, &self.gateway, Timestamp::now());
        let result = sign(text.as_bytes())
            .map_err(|e| format!("cannot sign: {e}"))
            .and_then(|signed| {
                write_replacing(&head_file(self.journal.dir()), signed.as_bytes())
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            tracing::error!("journal head file not written: {e}");
        }
    }
}

/// Publishes the head at start and every `journal.head_every`; the daemon
/// publishes the final head after the journal closed. A head that cannot
/// be written is logged and tried again next time, never a failure.
pub struct HeadWorker {
    publisher: Arc<HeadPublisher>,
    every: Duration,
    first: bool,
}

impl HeadWorker {
    pub fn new(publisher: Arc<HeadPublisher>, every: Duration) -> HeadWorker {
        HeadWorker {
            publisher,
            every,
            first: true,
        }
    }
}

impl Worker for HeadWorker {
    fn name(&self) -> &'static str {
        "journal_head"
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        let when = if self.first { "start" } else { "periodic" };
        self.first = false;
        let publisher = self.publisher.clone();
        tokio::task::spawn_blocking(move || publisher.publish(when))
            .await
            .map_err(|e| WorkerError::new(format!("publishing the head: {e}")))?;
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.every).await;
    }
}

/// The head as one JSON object; its fields are what a collector checks.
fn head_json(head: &Head, gateway: &str, at: Timestamp) -> String {
    serde_json::json!({
        "gateway_ura": gateway,
        "head": head.to_string(),
        "seq": head.seq,
        "hash": head.hash,
        "published_at": at.to_string(),
    })
    .to_string()
        + "\n"
}

/// Writes `path` whole or not at all: a collector never reads half a file.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let io = |cause| JournalError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let temp = path.with_extension("asc.tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o640)
        .open(&temp)
        .map_err(io)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_read_as_they_are_printed() {
        let hash = "ab".repeat(32);
        let head: Head = format!("12:{}", hash.to_uppercase()).parse().unwrap();
        assert_eq!(
            head,
            Head {
                seq: 12,
                hash: hash.clone()
            }
        );
        assert_eq!(head.to_string(), format!("12:{hash}"));
        for wrong in [
            "",
            "12",
            "12:abc",
            "x:",
            &format!("0:{hash}"),
            &format!("-1:{hash}"),
            &format!("12:{}", "g".repeat(64)),
        ] {
            assert!(wrong.parse::<Head>().is_err(), "{wrong:?} accepted");
        }
    }

    #[test]
    fn the_head_file_names_gateway_and_head() {
        let head = Head {
            seq: 3,
            hash: "0f".repeat(32),
        };
        let json: serde_json::Value =
            serde_json::from_str(&head_json(&head, "12345678", Timestamp(0))).unwrap();
        assert_eq!(json["head"], format!("3:{}", "0f".repeat(32)));
        assert_eq!(
            (json["seq"].as_u64(), json["gateway_ura"].as_str()),
            (Some(3), Some("12345678"))
        );
    }
}
