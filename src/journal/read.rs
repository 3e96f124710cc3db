//! Reading the journal back: replay, export, and verification of the chain.

use std::path::{Path, PathBuf};

use super::JournalError;
use super::lines::{Line, SegmentReader, as_text, segments};
use super::record::{GENESIS, Record, open_line};

/// Records from `from_seq` on, each checked against its hash and the one
/// before it; yields the record and its line as written. Reading starts at
/// the segment that holds `from_seq` (whose link to the segment before is
/// `audit verify`'s to check), so a replay of the tail does not re-read
/// years of access events. A torn last line ends the iteration.
pub struct Records {
    segments: std::vec::IntoIter<(u64, PathBuf)>,
    current: Option<SegmentReader>,
    /// Hash of the record before the next; `None` until the first line of
    /// the starting segment names it.
    prev: Option<String>,
    next_seq: u64,
    from_seq: u64,
    done: bool,
}

/// Opens the journal for reading from `from_seq` (1: everything).
pub fn read(dir: &Path, from_seq: u64) -> Result<Records, JournalError> {
    let mut all = segments(dir)?;
    let start = all
        .iter()
        .rposition(|(first, _)| *first <= from_seq.max(1))
        .unwrap_or(0);
    let next_seq = all.get(start).map_or(1, |(first, _)| *first);
    Ok(Records {
        segments: all.split_off(start).into_iter(),
        current: None,
        prev: (next_seq == 1).then(|| GENESIS.to_string()),
        next_seq,
        from_seq,
        done: false,
    })
}

impl Records {
    fn fail(
        &mut self,
        path: PathBuf,
        line: usize,
        problem: String,
    ) -> Option<Result<(Record, String), JournalError>> {
        // Nothing after a broken link can be trusted.
        self.done = true;
        Some(Err(JournalError::Corrupt {
            path,
            line,
            problem,
        }))
    }
}

impl Iterator for Records {
    type Item = Result<(Record, String), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if self.current.is_none() {
                let (first, path) = self.segments.next()?;
                if first != self.next_seq {
                    let problem = format!(
                        "segment starts at record {first}, {} was due (a segment is missing)",
                        self.next_seq
                    );
                    return self.fail(path, 0, problem);
                }
                match SegmentReader::open(&path) {
                    Ok(reader) => self.current = Some(reader),
                    Err(e) => return Some(Err(e)),
                }
            }
            let reader = self.current.as_mut()?;
            let (path, number) = (reader.path.clone(), reader.number + 1);
            let bytes = match reader.next_line() {
                Ok(Some(Line::Complete(bytes, _))) => bytes,
                Ok(Some(Line::Torn)) => {
                    // Only the last segment may end in a write in progress.
                    if self.segments.len() == 0 {
                        self.done = true;
                        return None;
                    }
                    return self.fail(
                        path,
                        number,
                        "a record is cut off inside the journal".into(),
                    );
                }
                Ok(None) => {
                    self.current = None;
                    continue;
                }
                Err(e) => return Some(Err(e)),
            };
            let text = match as_text(&bytes) {
                Ok(text) => text,
                Err(problem) => {
                    return self.fail(path, number, format!("record {}: {problem}", self.next_seq));
                }
            };
            let prev = match &self.prev {
                Some(prev) => prev.clone(),
                None => serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v["prev"].as_str().map(str::to_string))
                    .unwrap_or_default(),
            };
            match open_line(text, &prev, self.next_seq) {
                Ok((record, hash)) => {
                    self.prev = Some(hash);
                    self.next_seq += 1;
                    if record.seq >= self.from_seq {
                        return Some(Ok((record, text.to_string())));
                    }
                }
                Err(problem) => {
                    let problem = format!("record {}: {problem}", self.next_seq);
                    return self.fail(path, number, problem);
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
    /// The last record's hash: note it down, and a later verify can show
    /// that nothing before it was rewritten or cut off.
    pub head: Option<String>,
    pub first_bad: Option<Problem>,
    /// The last line has no newline: a write in progress (or a crash the
    /// daemon has not yet repaired).
    pub incomplete_tail: bool,
}

/// Checks the whole chain from the first record and names the first record
/// that breaks it.
pub fn verify(dir: &Path) -> Result<VerifyReport, JournalError> {
    let mut report = VerifyReport::default();
    let mut records = read(dir, 1)?;
    loop {
        match records.next() {
            None => break,
            Some(Ok((_, line))) => {
                report.verified += 1;
                report.head = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["hash"].as_str().map(str::to_string));
            }
            Some(Err(JournalError::Corrupt {
                path,
                line,
                problem,
            })) => {
                report.first_bad = Some(Problem {
                    path,
                    line,
                    seq: report.verified + 1,
                    problem,
                });
                return Ok(report);
            }
            Some(Err(e)) => return Err(e),
        }
    }
    if let Some((_, last)) = segments(dir)?.last() {
        let mut reader = SegmentReader::open(last)?;
        while let Some(line) = reader.next_line()? {
            if matches!(line, Line::Torn) {
                report.incomplete_tail = true;
            }
        }
    }
    Ok(report)
}
