//! Reading the journal back: replay, export, and verification of the chain.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use super::JournalError;
use super::record::{GENESIS, Record, open_line};
use super::writer::segments;

/// Every record from `from_seq` on, each checked against its hash and its
/// predecessor; yields the record and its line as written.
pub struct Records {
    segments: std::vec::IntoIter<(u64, PathBuf)>,
    current: Option<(PathBuf, Lines<BufReader<File>>, usize)>,
    prev: String,
    next_seq: u64,
    from_seq: u64,
}

/// Opens the journal for reading from `from_seq` (1: everything).
pub fn read(dir: &Path, from_seq: u64) -> Result<Records, JournalError> {
    let all = segments(dir)?;
    Ok(Records {
        segments: all.into_iter(),
        current: None,
        prev: GENESIS.to_string(),
        next_seq: 1,
        from_seq,
    })
}

impl Iterator for Records {
    type Item = Result<(Record, String), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let (first, path) = self.segments.next()?;
                if first != self.next_seq {
                    return Some(Err(JournalError::Corrupt {
                        path,
                        line: 0,
                        problem: format!(
                            "segment starts at record {first}, {} was due (a segment is missing)",
                            self.next_seq
                        ),
                    }));
                }
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(cause) => return Some(Err(JournalError::Io { path, cause })),
                };
                self.current = Some((path, BufReader::new(file).lines(), 0));
            }
            let (path, lines, number) = self.current.as_mut()?;
            let Some(line) = lines.next() else {
                self.current = None;
                continue;
            };
            *number += 1;
            let line = match line {
                Ok(line) => line,
                Err(cause) => {
                    return Some(Err(JournalError::Io {
                        path: path.clone(),
                        cause,
                    }));
                }
            };
            match open_line(&line, &self.prev, self.next_seq) {
                Ok((record, hash)) => {
                    self.prev = hash;
                    self.next_seq += 1;
                    if record.seq >= self.from_seq {
                        return Some(Ok((record, line)));
                    }
                }
                Err(problem) => {
                    let err = JournalError::Corrupt {
                        path: path.clone(),
                        line: *number,
                        problem: format!("record {}: {problem}", self.next_seq),
                    };
                    // Nothing after a broken link can be trusted.
                    self.segments = Vec::new().into_iter();
                    self.current = None;
                    return Some(Err(err));
                }
            }
        }
    }
}

/// The first record that does not verify, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub seq: u64,
    pub problem: String,
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Records that verified, from the first.
    pub verified: u64,
    pub first_bad: Option<Problem>,
    /// The last line has no newline: a write in progress (or a crash the
    /// daemon has not yet repaired).
    pub incomplete_tail: bool,
}

/// Checks the whole chain and names the first record that breaks it.
pub fn verify(dir: &Path) -> Result<VerifyReport, JournalError> {
    let mut report = VerifyReport::default();
    let mut prev = GENESIS.to_string();
    let mut next_seq = 1u64;
    for (first, path) in segments(dir)? {
        let text = std::fs::read(&path).map_err(|cause| JournalError::Io {
            path: path.clone(),
            cause,
        })?;
        if first != next_seq {
            report.first_bad = Some(Problem {
                path,
                line: 0,
                seq: next_seq,
                problem: format!("segment starts at record {first}: records are missing before it"),
            });
            return Ok(report);
        }
        let ends_complete = text.is_empty() || text.ends_with(b"\n");
        let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        if ends_complete {
            lines.pop();
        } else {
            report.incomplete_tail = true;
            lines.pop();
        }
        for (i, raw) in lines.iter().enumerate() {
            let result = std::str::from_utf8(raw)
                .map_err(|_| "not UTF-8 (the record was altered)".to_string())
                .and_then(|line| open_line(line, &prev, next_seq).map_err(|e| e.to_string()));
            match result {
                Ok((_, hash)) => {
                    prev = hash;
                    next_seq += 1;
                    report.verified += 1;
                }
                Err(problem) => {
                    report.first_bad = Some(Problem {
                        path: path.clone(),
                        line: i + 1,
                        seq: next_seq,
                        problem,
                    });
                    return Ok(report);
                }
            }
        }
    }
    Ok(report)
}
