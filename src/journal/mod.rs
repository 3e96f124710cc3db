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
//! Files: `journal/<first seq, 20 digits>.jsonl`, a new one after 64 MiB.

pub mod event;
mod read;
mod record;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

pub use event::{Access, AccessKind, BindVia, DenyReason, Event, Outcome, Who};
pub use read::{Problem, Records, VerifyReport, read, verify};
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
    #[error("the journal could not write: {0}")]
    Write(String),
    #[error("the journal writer has stopped")]
    Stopped,
}

type Ack = Box<dyn FnOnce(Result<u64, String>) + Send>;

enum Command {
    Append(Box<Event>, Option<Ack>),
    Stop(mpsc::SyncSender<()>),
}

/// A handle to the journal; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Command>,
    dir: PathBuf,
}

impl Journal {
    /// Opens the journal in `dir` (creating it), repairing a torn last line
    /// left by a crash (it was never acknowledged), and starts the writer.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let tail = writer::Tail::recover(dir)?;
        let (tx, rx) = mpsc::channel();
        let writer = writer::Writer::new(dir.to_path_buf(), tail)?;
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
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues an event; it is durable within milliseconds. Never blocks.
    pub fn append(&self, event: Event) {
        if self
            .tx
            .send(Command::Append(Box::new(event), None))
            .is_err()
        {
            tracing::error!("journal writer has stopped; an access event is lost");
        }
    }

    /// Appends an event and returns once it is on disk, with its sequence
    /// number. Blocking: call from a blocking thread.
    pub fn append_durable(&self, event: Event) -> Result<u64, JournalError> {
        let (done, wait) = mpsc::sync_channel(1);
        let ack: Ack = Box::new(move |result| {
            let _ = done.send(result);
        });
        self.tx
            .send(Command::Append(Box::new(event), Some(ack)))
            .map_err(|_| JournalError::Stopped)?;
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
