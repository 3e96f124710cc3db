//! Reading segment files line by line as bytes: the one reader behind
//! recovery, replay and verification, so they cannot disagree about what a
//! line is. A last line without its newline is a write a crash interrupted
//! (it may end inside a UTF-8 character).

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::JournalError;

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

pub(super) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.jsonl"))
}

pub(super) enum Line {
    /// A whole line, without its newline, and its length with it.
    Complete(Vec<u8>, usize),
    /// The end of the file without a newline.
    Torn,
}

pub(super) struct SegmentReader {
    pub path: PathBuf,
    reader: BufReader<File>,
    /// Number of the line last returned (1-based).
    pub number: usize,
}

impl SegmentReader {
    pub fn open(path: &Path) -> Result<SegmentReader, JournalError> {
        let file = File::open(path).map_err(|cause| JournalError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Ok(SegmentReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(256 * 1024, file),
            number: 0,
        })
    }

    pub fn next_line(&mut self) -> Result<Option<Line>, JournalError> {
        let mut bytes = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut bytes)
            .map_err(|cause: io::Error| JournalError::Io {
                path: self.path.clone(),
                cause,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        if bytes.pop() != Some(b'\n') {
            return Ok(Some(Line::Torn));
        }
        Ok(Some(Line::Complete(bytes, n)))
    }
}

/// A line as text, or why it is not.
pub(super) fn as_text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "not UTF-8 (the record was altered)".to_string())
}

/// A segment's first and last complete lines, read without reading what is
/// between (the start-up check of every segment's boundaries must stay
/// cheap on a journal of years).
pub(super) struct Ends {
    pub first: Option<Vec<u8>>,
    pub last: Option<Vec<u8>>,
    /// The file ends without a newline.
    pub torn: bool,
}

pub(super) fn ends(path: &Path) -> Result<Ends, JournalError> {
    let io = |cause| JournalError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    // Newlines found from the end: the last complete line lies between the
    // second-to-last (or the start) and the last.
    let (mut last_nl, mut start) = (None::<u64>, None::<u64>);
    let mut pos = len;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 && start.is_none() {
        let n = (buf.len() as u64).min(pos) as usize;
        pos -= n as u64;
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        file.read_exact(&mut buf[..n]).map_err(io)?;
        for i in (0..n).rev() {
            if buf[i] == b'\n' {
                let at = pos + i as u64;
                if last_nl.is_none() {
                    last_nl = Some(at);
                } else {
                    start = Some(at + 1);
                    break;
                }
            }
        }
    }
    let torn = len > 0 && last_nl != Some(len - 1);
    let Some(end) = last_nl else {
        return Ok(Ends {
            first: None,
            last: None,
            torn,
        });
    };
    let start = start.unwrap_or(0);
    let read_range = |file: &mut File, from: u64, to: u64| -> Result<Vec<u8>, JournalError> {
        let mut bytes = vec![0u8; (to - from) as usize];
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        file.read_exact(&mut bytes).map_err(io)?;
        Ok(bytes)
    };
    let last = read_range(&mut file, start, end)?;
    let first = if start == 0 {
        last.clone()
    } else {
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut first = Vec::new();
        BufReader::new(&mut file)
            .read_until(b'\n', &mut first)
            .map_err(io)?;
        first.pop();
        first
    };
    Ok(Ends {
        first: Some(first),
        last: Some(last),
        torn,
    })
}
