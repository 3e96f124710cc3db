//! The writer thread: group commit, segment rotation, recovery of the tail.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::record::{GENESIS, open_line, seal};
use super::{Ack, Command, JournalError};
use crate::store::{Timestamp, private_dir, sync_dir};

const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Events written per group at most (then synced, then the next group).
const MAX_GROUP: usize = 8192;

/// Segment files in order: (first seq, path).
pub(super) fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let io = |cause| JournalError::Io {
        path: dir.to_path_buf(),
        cause,
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.jsonl"))
}

/// Where the journal ends: the last record's number and hash, and the
/// segment to append to.
pub(super) struct Tail {
    seq: u64,
    hash: String,
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
        let Some((first, path)) = segments(dir)?.pop() else {
            return Ok(Tail {
                seq: 0,
                hash: GENESIS.to_string(),
                segment: segment_path(dir, 1),
                len: 0,
            });
        };
        let io = |cause| JournalError::Io {
            path: path.clone(),
            cause,
        };
        let file = File::open(&path).map_err(io)?;
        let mut reader = BufReader::new(file);
        let (mut seq, mut hash, mut good_len) = (first - 1, None::<String>, 0u64);
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            number += 1;
            if !line.ends_with('\n') {
                tracing::warn!(segment = %path.display(), "journal: cutting off a record a crash left half-written");
                break;
            }
            // The chain into this segment is checked by `audit verify`;
            // here each record's own hash and its link to the one before.
            let prev = hash.clone().unwrap_or_else(|| {
                serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["prev"].as_str().map(str::to_string))
                    .unwrap_or_default()
            });
            let (_, h) =
                open_line(line.trim_end(), &prev, seq + 1).map_err(|e| JournalError::Corrupt {
                    path: path.clone(),
                    line: number,
                    problem: e.to_string(),
                })?;
            seq += 1;
            hash = Some(h);
            good_len += n as u64;
        }
        let len = fs::metadata(&path).map_err(io)?.len();
        if len != good_len {
            let file = OpenOptions::new().write(true).open(&path).map_err(io)?;
            file.set_len(good_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let hash = match hash {
            Some(h) => h,
            // An empty last segment: the chain continues from the segment
            // before it.
            None => last_hash_before(dir, first)?,
        };
        Ok(Tail {
            seq,
            hash,
            segment: path,
            len: good_len,
        })
    }
}

fn last_hash_before(dir: &Path, first: u64) -> Result<String, JournalError> {
    let previous = segments(dir)?.into_iter().rev().find(|(f, _)| *f < first);
    let Some((_, path)) = previous else {
        return Ok(GENESIS.to_string());
    };
    let text = fs::read_to_string(&path).map_err(|cause| JournalError::Io {
        path: path.clone(),
        cause,
    })?;
    let last = text.lines().last().unwrap_or_default();
    Ok(serde_json::from_str::<serde_json::Value>(last)
        .ok()
        .and_then(|v| v["hash"].as_str().map(str::to_string))
        .unwrap_or_else(|| GENESIS.to_string()))
}

pub(super) struct Writer {
    dir: PathBuf,
    file: BufWriter<File>,
    segment_len: u64,
    /// Last record written and synced.
    seq: u64,
    hash: String,
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
    pub(super) fn new(dir: PathBuf, tail: Tail) -> Result<Writer, JournalError> {
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
            let mut events = Vec::with_capacity(group.len());
            for command in group {
                match command {
                    Command::Append(event, ack) => events.push((*event, ack)),
                    Command::Stop(done) => stop = Some(done),
                }
            }
            if !events.is_empty() {
                self.commit(events);
            }
            if let Some(done) = stop {
                let _ = done.send(());
                return;
            }
        }
    }

    /// Writes a group, syncs it, then answers every waiter. On failure the
    /// segment is cut back to the last synced record, so the chain stays
    /// whole, and every waiter of the group hears the error.
    fn commit(&mut self, events: Vec<(super::Event, Option<Ack>)>) {
        let (start_seq, start_hash, start_len) = (self.seq, self.hash.clone(), self.segment_len);
        let now = Timestamp::now();
        let mut acks: Vec<(u64, Ack)> = Vec::new();
        let mut result: Result<(), String> = Ok(());
        for (event, ack) in events {
            let seq = self.seq + 1;
            match seal(seq, now, &self.hash, &event) {
                Ok((line, hash)) => {
                    if let Err(e) = self
                        .file
                        .write_all(line.as_bytes())
                        .and_then(|_| self.file.write_all(b"\n"))
                    {
                        result = Err(e.to_string());
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
        if result.is_ok() {
            result = self
                .file
                .flush()
                .and_then(|_| self.file.get_ref().sync_data())
                .map_err(|e| e.to_string());
        }
        if let Err(e) = &result {
            tracing::error!("journal write failed ({e}); the group is refused");
            self.rewind(start_seq, start_hash, start_len);
        }
        for (seq, ack) in acks {
            ack(result.clone().map(|()| seq));
        }
        if result.is_ok() && self.segment_len >= SEGMENT_BYTES {
            self.rotate();
        }
    }

    fn rewind(&mut self, seq: u64, hash: String, len: u64) {
        let file = self.file.get_mut();
        let truncated = file
            .set_len(len)
            .and_then(|_| file.seek(SeekFrom::End(0)).map(|_| ()));
        if let Err(e) = truncated {
            tracing::error!(
                "journal: cannot cut back a failed write ({e}); `pushgate audit verify` will name it"
            );
        }
        // Whatever the BufWriter still held is dropped with a fresh one.
        if let Ok(file) = self.file.get_ref().try_clone() {
            self.file = BufWriter::with_capacity(256 * 1024, file);
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
