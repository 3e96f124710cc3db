//! Reading segment files line by line as bytes: the one reader behind
//! recovery, replay and verification, so they cannot disagree about what a
//! line is. A last line without its newline is a write a crash interrupted
//! (it may end inside a UTF-8 character).

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
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
