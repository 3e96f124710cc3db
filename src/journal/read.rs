//! Reading the journal back: replay, export, and verification of the chain.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};

use super::head::Head;
use super::lines::{Line, SegmentReader, as_text, segments};
use super::record::{GENESIS, Missing, Record, hash_of, unseal};
use super::{JournalError, layout};

/// Records from `from_seq` on, each checked against its hash and the one
/// before it; yields the record and its line as written. Reading from the
/// start begins at the genesis (record 1, `prev` GENESIS) whatever the
/// first file is called. Reading from later starts at the segment that
/// holds `from_seq` (whose link to the one before `Journal::open` checked),
/// so a replay of the tail does not re-read years of access events.
///
/// Records missing (a gap) and a segment whose name is not its first
/// record are yielded as errors and reading goes on: what remains still
/// chains, and `audit verify` names every gap. Any other error ends it. A
/// torn last line ends the iteration.
pub struct Records {
    segments: std::vec::IntoIter<(u64, PathBuf)>,
    current: Option<SegmentReader>,
    /// The name of the current segment until its first line is judged.
    named: Option<u64>,
    /// Hash of the record before the next; `None` when not known (reading
    /// from a later segment, or after a gap).
    prev: Option<String>,
    next_seq: u64,
    from_seq: u64,
    /// Judged, not yet yielded.
    queued: VecDeque<Result<(Record, String), JournalError>>,
    done: bool,
}

/// Opens the journal for reading from `from_seq` (1: everything).
pub fn read(dir: &Path, from_seq: u64) -> Result<Records, JournalError> {
    let mut all = segments(dir)?;
    let start = if from_seq <= 1 {
        0
    } else {
        all.iter()
            .rposition(|(first, _)| *first <= from_seq)
            .unwrap_or(0)
    };
    let next_seq = match all.get(start) {
        Some((first, _)) if start > 0 => *first,
        _ => 1,
    };
    Ok(Records {
        segments: all.split_off(start).into_iter(),
        current: None,
        named: None,
        prev: (next_seq == 1).then(|| GENESIS.to_string()),
        next_seq,
        from_seq,
        queued: VecDeque::new(),
        done: false,
    })
}

impl Records {
    fn fail(&mut self, error: JournalError) -> Option<Result<(Record, String), JournalError>> {
        // Nothing after a broken link can be trusted.
        self.done = true;
        Some(Err(error))
    }

    /// Reads and judges the next line; `None`: nothing more to read.
    fn step(&mut self) -> Option<Result<(), JournalError>> {
        if self.current.is_none() {
            let (named, path) = self.segments.next()?;
            match SegmentReader::open(&path) {
                Ok(reader) => self.current = Some(reader),
                Err(e) => return Some(Err(e)),
            }
            self.named = Some(named);
        }
        let reader = self.current.as_mut()?;
        let (path, number) = (reader.path.clone(), reader.number + 1);
        let bytes = match reader.next_line() {
            Ok(Some(Line::Complete(bytes, _))) => bytes,
            Ok(Some(Line::Torn)) => {
                // Only the last segment may end in a write in progress.
                if self.segments.len() == 0 {
                    self.current = None;
                    return self.step_empty(&path).or(Some(Ok(())));
                }
                return Some(Err(JournalError::Corrupt {
                    path,
                    line: number,
                    problem: "a record is cut off inside the journal".into(),
                }));
            }
            Ok(None) => {
                self.current = None;
                return self.step_empty(&path).or(Some(Ok(())));
            }
            Err(e) => return Some(Err(e)),
        };
        let corrupt = |problem| JournalError::Corrupt {
            path: path.clone(),
            line: number,
            problem,
        };
        let seq = self.next_seq;
        let text = match as_text(&bytes) {
            Ok(text) => text,
            Err(problem) => return Some(Err(corrupt(format!("record {seq}: {problem}")))),
        };
        let (record, hash) = match unseal(text) {
            Ok(sealed) => sealed,
            Err(e) => return Some(Err(layout::corrupt(&path, number, seq, e))),
        };
        let judged = match self.named.take() {
            Some(named) => layout::enter(&path, named, Some(&record), seq, self.prev.as_deref()),
            None => layout::link(&path, number, &record, seq, self.prev.as_deref())
                .map(|gap| gap.into_iter().collect()),
        };
        match judged {
            Ok(found) => self.queued.extend(found.into_iter().map(Err)),
            Err(e) => return Some(Err(e)),
        }
        self.prev = Some(hash);
        self.next_seq = record.seq + 1;
        if record.seq >= self.from_seq {
            self.queued.push_back(Ok((record, text.to_string())));
        }
        Some(Ok(()))
    }

    /// A segment ended before its first record was judged: it is empty.
    fn step_empty(&mut self, path: &Path) -> Option<Result<(), JournalError>> {
        let named = self.named.take()?;
        match layout::enter(path, named, None, self.next_seq, self.prev.as_deref()) {
            Ok(found) => {
                if named > self.next_seq {
                    (self.next_seq, self.prev) = (named, None);
                }
                self.queued.extend(found.into_iter().map(Err));
                Some(Ok(()))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl Iterator for Records {
    type Item = Result<(Record, String), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queued.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.step()? {
                Ok(()) => {}
                Err(e) => return self.fail(e),
            }
        }
    }
}

/// A record that does not verify, or records missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based; 0: at the segment's end, or the segment as a whole.
    pub line: usize,
    /// The first record concerned.
    pub seq: u64,
    pub problem: String,
    /// The numbers of the records missing, first and last.
    pub missing: Option<(u64, u64)>,
}

impl Problem {
    /// The problem an error of reading describes; `seq`: the record due.
    pub(super) fn of(error: JournalError, seq: u64) -> Problem {
        match error {
            JournalError::Missing {
                path,
                line,
                from,
                to,
            } => Problem {
                path,
                line,
                seq: from,
                problem: format!("{} missing (removed from the journal)", Missing(from, to)),
                missing: Some((from, to)),
            },
            JournalError::Misnamed { path, named, first } => Problem {
                problem: format!(
                    "the file is named for record {named}, but its first record is {first} (the segment was renamed)"
                ),
                path,
                line: 1,
                seq: first,
                missing: None,
            },
            JournalError::Corrupt {
                path,
                line,
                problem,
            } => Problem {
                path,
                line,
                seq,
                problem,
                missing: None,
            },
            other => Problem {
                path: PathBuf::new(),
                line: 0,
                seq,
                problem: other.to_string(),
                missing: None,
            },
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.path.file_name().unwrap_or_default().to_string_lossy();
        match self.line {
            0 => write!(f, "{file}: {}", self.problem),
            line => write!(f, "{file}, line {line}: {}", self.problem),
        }
    }
}

/// What an auditor's written-down head shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorCheck {
    /// The record is in the chain with that hash.
    Holds,
    /// The record is there with another hash: the journal was rewritten.
    Rewritten { found: String },
    /// The journal ends before the record: its end was cut off.
    CutOff { ends_at: u64 },
    /// The record is in a gap, or after the point where the chain breaks.
    NotReached,
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Records that verified.
    pub verified: u64,
    /// The last record: note it down (`SEQ:HASH`), and a later verify with
    /// `--anchor` shows that nothing up to it was rewritten or cut off.
    pub head: Option<Head>,
    /// Every gap and misnamed segment, in order, then the record where the
    /// chain breaks if it does (reading stops there).
    pub problems: Vec<Problem>,
    /// The first of `problems`.
    pub first_bad: Option<Problem>,
    /// The last line has no newline: a write in progress (or a crash the
    /// daemon has not yet repaired).
    pub incomplete_tail: bool,
    /// Each anchor asked about, and what the journal shows of it.
    pub anchors: Vec<(Head, AnchorCheck)>,
}

impl VerifyReport {
    /// The ranges of records missing, first and last number.
    pub fn missing(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.problems.iter().filter_map(|p| p.missing)
    }

    /// Whether the chain is whole from its genesis and every anchor holds.
    pub fn intact(&self) -> bool {
        self.problems.is_empty() && self.anchors.iter().all(|(_, a)| *a == AnchorCheck::Holds)
    }
}

/// Checks the whole chain from its genesis: names every gap and the first
/// record that breaks the chain.
pub fn verify(dir: &Path) -> Result<VerifyReport, JournalError> {
    verify_anchored(dir, &[])
}

/// `verify`, and whether each of `anchors` (heads written down earlier)
/// holds.
pub fn verify_anchored(dir: &Path, anchors: &[Head]) -> Result<VerifyReport, JournalError> {
    let mut report = VerifyReport::default();
    let mut seen = vec![None::<String>; anchors.len()];
    let mut broke = false;
    for item in read(dir, 1)? {
        match item {
            Ok((record, line)) => {
                report.verified += 1;
                let hash = hash_of(&line).to_string();
                for (anchor, seen) in anchors.iter().zip(seen.iter_mut()) {
                    if anchor.seq == record.seq {
                        *seen = Some(hash.clone());
                    }
                }
                report.head = Some(Head {
                    seq: record.seq,
                    hash,
                });
            }
            Err(e @ (JournalError::Missing { .. } | JournalError::Misnamed { .. })) => {
                let due = report.head.as_ref().map_or(1, |h| h.seq + 1);
                report.problems.push(Problem::of(e, due));
            }
            Err(e @ JournalError::Corrupt { .. }) => {
                let due = report.head.as_ref().map_or(1, |h| h.seq + 1);
                report.problems.push(Problem::of(e, due));
                broke = true;
            }
            Err(e) => return Err(e),
        }
    }
    let ends_at = report.head.as_ref().map_or(0, |h| h.seq);
    report.anchors = anchors
        .iter()
        .zip(seen)
        .map(|(anchor, seen)| {
            let check = match seen {
                Some(hash) if hash == anchor.hash => AnchorCheck::Holds,
                Some(found) => AnchorCheck::Rewritten { found },
                None if anchor.seq > ends_at && !broke => AnchorCheck::CutOff { ends_at },
                None => AnchorCheck::NotReached,
            };
            (anchor.clone(), check)
        })
        .collect();
    report.first_bad = report.problems.first().cloned();
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
