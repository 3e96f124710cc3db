//! The writer thread: group commit, segment rotation, recovery of the tail.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use super::event::Event;
use super::head::Head;
use super::lines::{Line, SegmentReader, as_text, segment_path, segments};
use super::record::{GENESIS, open_line, seal};
use super::{Ack, Command, JournalError, layout};
use crate::store::{Timestamp, private_dir, sync_dir};

const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Events written per group at most (then synced, then the next group).
const MAX_GROUP: usize = 8192;

/// Where the journal ends: the last record's number and hash, and the
/// segment to append to.
pub(super) struct Tail {
    pub seq: u64,
    pub hash: String,
    segment: PathBuf,
    len: u64,
}

impl Tail {
    /// Reads the last segment; a last line without its newline is a write a
    /// crash interrupted (never acknowledged) and is cut off.
    pub(super) fn recover(dir: &Path) -> Result<Tail, JournalError> {
        private_dir(dir).map_err(|cause| JournalError::Io {
            path: dir.to_path_buf(),
            cause,
        })?;
        let all = segments(dir)?;
        let problems = layout::check(dir)?;
        if !problems.is_empty() {
            return Err(JournalError::Broken {
                dir: dir.to_path_buf(),
                problems,
            });
        }
        let Some((first, path)) = all.last().cloned() else {
            return Ok(Tail {
                seq: 0,
                hash: GENESIS.to_string(),
                segment: segment_path(dir, 1),
                len: 0,
            });
        };
        let mut reader = SegmentReader::open(&path)?;
        let (mut seq, mut hash, mut good_len) = (first - 1, None::<String>, 0u64);
        while let Some(line) = reader.next_line()? {
            let Line::Complete(bytes, n) = line else {
                tracing::warn!(segment = %path.display(), "journal: cutting off a record a crash left half-written");
                break;
            };
            let corrupt = |problem: String| JournalError::Corrupt {
                path: path.clone(),
                line: reader.number,
                problem,
            };
            let text = as_text(&bytes).map_err(corrupt)?;
            // Each record's own hash and its link to the one before; the
            // link into this segment `layout::check` has judged.
            let prev = match &hash {
                Some(h) => h.clone(),
                None => serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v["prev"].as_str().map(str::to_string))
                    .unwrap_or_default(),
            };
            let (_, h) = open_line(text, &prev, seq + 1).map_err(|e| corrupt(e.to_string()))?;
            seq += 1;
            hash = Some(h);
            good_len += n as u64;
        }
        let io = |cause| JournalError::Io {
            path: path.clone(),
            cause,
        };
        if std::fs::metadata(&path).map_err(io)?.len() != good_len {
            let file = OpenOptions::new().write(true).open(&path).map_err(io)?;
            file.set_len(good_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let hash = match hash {
            Some(h) => h,
            // An empty last segment continues the chain of the one before.
            None => last_hash(&all[..all.len() - 1])?,
        };
        Ok(Tail {
            seq,
            hash,
            segment: path,
            len: good_len,
        })
    }
}

fn last_hash(earlier: &[(u64, PathBuf)]) -> Result<String, JournalError> {
    let Some((_, path)) = earlier.last() else {
        return Ok(GENESIS.to_string());
    };
    let mut reader = SegmentReader::open(path)?;
    let mut last = GENESIS.to_string();
    while let Some(Line::Complete(bytes, _)) = reader.next_line()? {
        if let Some(h) = as_text(&bytes)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| v["hash"].as_str().map(str::to_string))
        {
            last = h;
        }
    }
    Ok(last)
}

pub(super) struct Writer {
    dir: PathBuf,
    file: BufWriter<File>,
    segment_len: u64,
    /// Last record written and synced.
    seq: u64,
    hash: String,
    /// Access events dropped because the queue was full; journaled as one
    /// record when there is room again.
    dropped: Arc<AtomicU64>,
    health: Arc<super::Health>,
    /// A write or sync failed and could not be undone cleanly: nothing more
    /// is accepted (after a failed fsync the page cache cannot be trusted).
    broken: Option<String>,
}

fn open_segment(path: &Path) -> Result<File, JournalError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|cause| JournalError::Io {
            path: path.to_path_buf(),
            cause,
        })
}

impl Writer {
    pub(super) fn new(
        dir: PathBuf,
        tail: Tail,
        dropped: Arc<AtomicU64>,
        health: Arc<super::Health>,
    ) -> Result<Writer, JournalError> {
        let file = open_segment(&tail.segment)?;
        sync_dir(&dir).map_err(|cause| JournalError::Io {
            path: dir.clone(),
            cause,
        })?;
        Ok(Writer {
            dir,
            file: BufWriter::with_capacity(256 * 1024, file),
            segment_len: tail.len,
            seq: tail.seq,
            hash: tail.hash,
            dropped,
            health,
            broken: None,
        })
    }

    pub(super) fn run(mut self, rx: mpsc::Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(command) => group.push(command),
                    Err(_) => break,
                }
            }
            let mut stop = None;
            let mut appended = 0u64;
            let mut events = Vec::with_capacity(group.len() + 1);
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                events.push((Event::Dropped { count: dropped }, None));
            }
            for command in group {
                match command {
                    Command::Append(event, ack) => {
                        appended += 1;
                        events.push((*event, ack));
                    }
                    Command::Stop(done) => stop = Some(done),
                }
            }
            if !events.is_empty() {
                self.commit(events);
            }
            self.health.pending.fetch_sub(appended, Ordering::Relaxed);
            if let Some(done) = stop {
                let _ = done.send(());
                return;
            }
        }
    }

    /// From now on nothing is accepted; `/readyz` and `/metrics` say so.
    fn mark_broken(&mut self, why: String) {
        self.broken = Some(why);
        self.health.broken.store(true, Ordering::Relaxed);
    }

    /// Writes a group, syncs it, then answers every waiter with the record's
    /// number and time. On a failed write the segment is cut back to the last
    /// synced record, so the chain stays whole; on a failed sync the journal
    /// stops accepting anything.
    fn commit(&mut self, events: Vec<(Event, Option<Ack>)>) {
        if let Some(why) = &self.broken {
            for (_, ack) in events {
                if let Some(ack) = ack {
                    ack(Err(format!(
                        "the journal stopped after an earlier failure: {why}"
                    )));
                }
            }
            return;
        }
        let (start_seq, start_hash, start_len) = (self.seq, self.hash.clone(), self.segment_len);
        let now = Timestamp::now();
        let mut acks: Vec<(u64, Ack)> = Vec::new();
        let mut failure: Option<String> = None;
        for (event, ack) in events {
            let seq = self.seq + 1;
            match seal(seq, now, &self.hash, &event) {
                Ok((line, hash)) => {
                    let written = self
                        .file
                        .write_all(line.as_bytes())
                        .and_then(|_| self.file.write_all(b"\n"));
                    if let Err(e) = written {
                        failure = Some(e.to_string());
                        if let Some(ack) = ack {
                            acks.push((seq, ack));
                        }
                        break;
                    }
                    self.segment_len += line.len() as u64 + 1;
                    self.seq = seq;
                    self.hash = hash;
                    if let Some(ack) = ack {
                        acks.push((seq, ack));
                    }
                }
                Err(e) => {
                    if let Some(ack) = ack {
                        ack(Err(format!("cannot serialise event: {e}")));
                    }
                }
            }
        }
        if failure.is_none() {
            if let Err(e) = self.file.flush() {
                failure = Some(e.to_string());
            } else if let Err(e) = self.file.get_ref().sync_data() {
                // Whether the data reached the disk is unknowable now.
                self.mark_broken(format!("fdatasync failed: {e}"));
                failure = self.broken.clone();
            }
        }
        if let Some(why) = &failure {
            tracing::error!("journal write failed ({why}); the group is refused");
            if self.broken.is_none() {
                self.rewind(start_seq, start_hash, start_len);
            }
        }
        if failure.is_none()
            && let Ok(mut head) = self.health.head.lock()
        {
            *head = Head {
                seq: self.seq,
                hash: self.hash.clone(),
            };
        }
        for (seq, ack) in acks {
            ack(match &failure {
                None => Ok((seq, now)),
                Some(why) => Err(why.clone()),
            });
        }
        if failure.is_none() && self.segment_len >= SEGMENT_BYTES {
            self.rotate();
        }
    }

    /// Cuts the segment back after a failed write. The buffer's unwritten
    /// bytes are dropped, not flushed.
    fn rewind(&mut self, seq: u64, hash: String, len: u64) {
        let fresh = match self.file.get_ref().try_clone() {
            Ok(file) => BufWriter::with_capacity(256 * 1024, file),
            Err(e) => {
                self.mark_broken(format!("cannot recover from a failed write: {e}"));
                return;
            }
        };
        let (file, _discarded) = std::mem::replace(&mut self.file, fresh).into_parts();
        if let Err(e) = file.set_len(len).and_then(|_| file.sync_data()) {
            self.mark_broken(format!("cannot cut back a failed write: {e}"));
            return;
        }
        self.seq = seq;
        self.hash = hash;
        self.segment_len = len;
    }

    fn rotate(&mut self) {
        let path = segment_path(&self.dir, self.seq + 1);
        match open_segment(&path) {
            Ok(file) => {
                self.file = BufWriter::with_capacity(256 * 1024, file);
                self.segment_len = 0;
                if let Err(e) = sync_dir(&self.dir) {
                    tracing::error!("journal: cannot sync its directory: {e}");
                }
            }
            Err(e) => tracing::error!(
                "journal: cannot start a new segment ({e}); continuing in the old one"
            ),
        }
    }
}
