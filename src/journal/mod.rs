//! The journal: an append-only, hash-chained, fsync'ed log of every grant
//! change and every access. It is the audit trail and the source of truth
//! for grant state (the sled view is rebuilt from it).
//!
//! One writer thread owns the file and commits in groups: whatever queued
//! while the last fsync ran is written and synced together. A state change
//! waits for its fsync (`append_durable`); an access event does not wait at
//! all (`append`) and is durable as soon as the writer gets to it — within
//! milliseconds, well inside a second, without slowing retrieval.
//!
//! Files: `journal/<first seq, 20 digits>.jsonl`, a new one after 64 MiB;
//! `journal/head.asc`, the signed head (see `head`).

mod actor;
pub mod event;
mod grant;
mod head;
mod layout;
mod lines;
mod read;
mod record;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

pub use actor::{ActorRecord, ConsoleEvent};
pub use event::{Access, AccessKind, BindVia, DenyReason, Event, Outcome, Relay, Who};
pub use grant::{
    AccessionRecord, CertRecord, GrantRecord, HolderRecord, LegalBasisRecord, PatientRecord,
    RecipientRecord, ScopeRecord, TargetRecord, UziRecord,
};
pub use head::{Head, HeadPublisher, HeadWorker, SignText, head_file};
pub use read::{AnchorCheck, Problem, Records, VerifyReport, read, verify, verify_anchored};
#[cfg(test)]
pub(crate) use record::seal;
pub use record::{GENESIS, LineError, Record};

use crate::store::Timestamp;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[error("journal {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("journal {path}, line {line}: {problem}; run `pushgate audit verify`")]
    Corrupt {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    /// Records missing: cut from the front or the end of a segment, or a
    /// segment removed.
    #[error(
        "journal {path}: {} missing (removed from the journal); run `pushgate audit verify`",
        record::Missing(*from, *to)
    )]
    Missing {
        path: PathBuf,
        /// 0: the segment is empty.
        line: usize,
        from: u64,
        to: u64,
    },
    #[error(
        "journal {path}: the file is named for record {named}, but its first record is {first} (the segment was renamed); run `pushgate audit verify`"
    )]
    Misnamed {
        path: PathBuf,
        named: u64,
        first: u64,
    },
    /// What `Journal::open` found at the segments' boundaries.
    #[error(
        "journal {}: {}; refusing to open a journal with records missing or out of place: run `pushgate audit verify`",
        dir.display(),
        summary(problems)
    )]
    Broken {
        dir: PathBuf,
        problems: Vec<Problem>,
    },
    #[error("the journal could not write: {0}")]
    Write(String),
    #[error("the journal writer has stopped")]
    Stopped,
}

/// The first few problems, and how many more (a message stays one line).
fn summary(problems: &[Problem]) -> String {
    const SHOWN: usize = 5;
    let mut text = problems
        .iter()
        .take(SHOWN)
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > SHOWN {
        text += &format!("; and {} more", problems.len() - SHOWN);
    }
    text
}

/// Events queued for the writer at most; beyond that, access events are
/// counted instead of kept (a flood of refused requests must not take the
/// memory, nor the disk the images are on), and the count is journaled.
const QUEUE: usize = 65_536;

type Ack = Box<dyn FnOnce(Result<(u64, Timestamp), String>) + Send>;

enum Command {
    Append(Box<Event>, Option<Ack>),
    Stop(mpsc::SyncSender<()>),
}

/// Shared with the writer thread.
#[derive(Default)]
pub(crate) struct Health {
    /// Events handed to the writer and not yet on disk: the journal's lag.
    pub(crate) pending: AtomicU64,
    /// The writer refuses everything after a failed fsync.
    pub(crate) broken: AtomicBool,
    /// The last record on disk.
    pub(crate) head: std::sync::Mutex<Head>,
}

/// A handle to the journal; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::SyncSender<Command>,
    dir: PathBuf,
    dropped: Arc<AtomicU64>,
    /// What `/metrics` and `/readyz` read of the writer.
    health: Arc<Health>,
    /// Number and hash of the last record when the journal was opened.
    pub opened_at: (u64, String),
}

impl Journal {
    /// Opens the journal in `dir` (creating it), repairing a torn last line
    /// left by a crash (it was never acknowledged), and starts the writer.
    /// Refuses a journal whose segments do not join up from the genesis
    /// (`Broken`, naming the records missing) or whose last segment does not
    /// verify (`Corrupt`).
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let tail = writer::Tail::recover(dir)?;
        let opened_at = (tail.seq, tail.hash.clone());
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let health = Arc::new(Health::default());
        if let Ok(mut head) = health.head.lock() {
            *head = Head {
                seq: tail.seq,
                hash: tail.hash.clone(),
            };
        }
        let writer = writer::Writer::new(dir.to_path_buf(), tail, dropped.clone(), health.clone())?;
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|cause| JournalError::Io {
                path: dir.to_path_buf(),
                cause,
            })?;
        Ok(Journal {
            tx,
            dir: dir.to_path_buf(),
            dropped,
            health,
            opened_at,
        })
    }

    /// The last record written and synced.
    pub fn head(&self) -> Head {
        self.health
            .head
            .lock()
            .map(|head| head.clone())
            .unwrap_or_default()
    }

    /// Events accepted and not yet written and synced.
    pub fn lag(&self) -> u64 {
        self.health.pending.load(Ordering::Relaxed)
    }

    /// Whether the journal still accepts records (it stops after a failed
    /// fsync, and then nothing that needs the journal can be done).
    pub fn is_writable(&self) -> bool {
        !self.health.broken.load(Ordering::Relaxed)
    }

    /// Access events counted instead of kept since the last record of them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues an event; it is durable within milliseconds. Never blocks: if
    /// the writer is that far behind, the event is counted as dropped.
    pub fn append(&self, event: Event) {
        self.health.pending.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Command::Append(Box::new(event), None)) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                self.health.pending.fetch_sub(1, Ordering::Relaxed);
                crate::metrics::METRICS.journal_dropped.inc();
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("journal queue full: access events are being counted, not kept");
                }
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                self.health.pending.fetch_sub(1, Ordering::Relaxed);
                tracing::error!("journal writer has stopped; an access event is lost");
            }
        }
    }

    /// Appends an event and returns once it is on disk, with its sequence
    /// number and time. Blocking: call from a blocking thread.
    pub fn append_durable(&self, event: Event) -> Result<(u64, Timestamp), JournalError> {
        let (done, wait) = mpsc::sync_channel(1);
        let ack: Ack = Box::new(move |result| {
            let _ = done.send(result);
        });
        self.health.pending.fetch_add(1, Ordering::Relaxed);
        if self
            .tx
            .send(Command::Append(Box::new(event), Some(ack)))
            .is_err()
        {
            self.health.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(JournalError::Stopped);
        }
        wait.recv()
            .map_err(|_| JournalError::Stopped)?
            .map_err(JournalError::Write)
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.tx.send(Command::Stop(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// Records with a time at or after `since`, for `audit export`.
pub fn export(
    dir: &Path,
    since: Option<Timestamp>,
    out: &mut impl std::io::Write,
) -> Result<usize, JournalError> {
    let mut count = 0;
    for item in read(dir, 1)? {
        let (record, line) = item?;
        if since.is_none_or(|t| record.at >= t) {
            writeln!(out, "{line}").map_err(|cause| JournalError::Io {
                path: dir.to_path_buf(),
                cause,
            })?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
