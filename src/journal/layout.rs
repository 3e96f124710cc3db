//! Where the segments join: a chain starts at its genesis (record 1, whose
//! `prev` is GENESIS), each segment is named by its first record and starts
//! right after the last record of the segment before. Records cut from the
//! front, a segment removed or renamed, the end of a segment cut off: each
//! shows at a boundary, as the numbers missing.
//!
//! The full read (`Records`) judges every boundary with `enter` as it
//! passes; the start of the daemon reads only each segment's first and last
//! record (`check`), so a journal of years opens in milliseconds. A record
//! removed from inside an older segment only the full read can see
//! (`pushgate audit verify`); the last segment is read whole at every start.

use std::path::{Path, PathBuf};

use super::JournalError;
use super::lines::{as_text, ends, segments};
use super::read::Problem;
use super::record::{GENESIS, LineError, Record, follows, unseal};

/// Judges `record`, the one due as `next_seq` after the record with hash
/// `prev` (`None`: not known, after a gap). `Ok(Some(_))`: records are
/// missing before it, and reading may go on after it (the records that
/// remain still chain); `Err`: nothing after it can be trusted.
pub(super) fn link(
    path: &Path,
    line: usize,
    record: &Record,
    next_seq: u64,
    prev: Option<&str>,
) -> Result<Option<JournalError>, JournalError> {
    match follows(record, next_seq, prev.unwrap_or(&record.prev)) {
        Ok(()) => Ok(None),
        Err(LineError::Missing { from, to }) => Ok(Some(JournalError::Missing {
            path: path.to_path_buf(),
            line,
            from,
            to,
        })),
        Err(e) => Err(corrupt(path, line, next_seq, e)),
    }
}

pub(super) fn corrupt(path: &Path, line: usize, seq: u64, e: LineError) -> JournalError {
    JournalError::Corrupt {
        path: path.to_path_buf(),
        line,
        problem: format!("record {seq}: {e}"),
    }
}

/// Judges the start of a segment named `named`: `first` is its first
/// record (`None`: the segment is empty). Returns the problems after which
/// reading may go on, in order; `Err` as for `link`.
pub(super) fn enter(
    path: &Path,
    named: u64,
    first: Option<&Record>,
    next_seq: u64,
    prev: Option<&str>,
) -> Result<Vec<JournalError>, JournalError> {
    let mut found = Vec::new();
    let Some(first) = first else {
        // An empty segment (a rotation just happened) claims that its
        // name is the next record's number.
        if named > next_seq {
            found.push(JournalError::Missing {
                path: path.to_path_buf(),
                line: 0,
                from: next_seq,
                to: named - 1,
            });
        } else if named < next_seq {
            found.push(JournalError::Misnamed {
                path: path.to_path_buf(),
                named,
                first: next_seq,
            });
        }
        return Ok(found);
    };
    found.extend(link(path, 1, first, next_seq, prev)?);
    if first.seq != named {
        found.push(JournalError::Misnamed {
            path: path.to_path_buf(),
            named,
            first: first.seq,
        });
    }
    Ok(found)
}

fn record_of(path: &Path, line: usize, bytes: &[u8]) -> Result<(Record, String), JournalError> {
    let text = as_text(bytes).map_err(|problem| JournalError::Corrupt {
        path: path.to_path_buf(),
        line,
        problem,
    })?;
    unseal(text).map_err(|e| JournalError::Corrupt {
        path: path.to_path_buf(),
        line,
        problem: e.to_string(),
    })
}

/// Every boundary problem of the journal in `dir`, from each segment's
/// first and last record alone; empty when the segments join up from the
/// genesis on.
pub(super) fn check(dir: &Path) -> Result<Vec<Problem>, JournalError> {
    let all: Vec<(u64, PathBuf)> = segments(dir)?;
    let mut problems = Vec::new();
    let (mut next_seq, mut prev) = (1u64, Some(GENESIS.to_string()));
    for (i, (named, path)) in all.iter().enumerate() {
        let is_last = i + 1 == all.len();
        let ends = ends(path)?;
        let first = match &ends.first {
            Some(bytes) => match record_of(path, 1, bytes) {
                Ok(record) => Some(record),
                Err(e) => {
                    problems.push(Problem::of(e, next_seq));
                    return Ok(problems);
                }
            },
            None => None,
        };
        match enter(
            path,
            *named,
            first.as_ref().map(|(r, _)| r),
            next_seq,
            prev.as_deref(),
        ) {
            Ok(found) => problems.extend(found.into_iter().map(|e| Problem::of(e, next_seq))),
            Err(e) => {
                problems.push(Problem::of(e, next_seq));
                return Ok(problems);
            }
        }
        if ends.torn && !is_last {
            problems.push(Problem::of(
                JournalError::Corrupt {
                    path: path.clone(),
                    line: 0,
                    problem: "the segment ends inside a record (it was cut off)".into(),
                },
                next_seq,
            ));
        }
        let Some((first, first_hash)) = first else {
            if *named > next_seq {
                // after the gap, its name is all there is to go on
                (next_seq, prev) = (*named, None);
            }
            continue;
        };
        let (last, last_hash) = match &ends.last {
            Some(bytes) if ends.last != ends.first => match record_of(path, 0, bytes) {
                Ok(record) => record,
                Err(e) => {
                    problems.push(Problem::of(e, first.seq + 1));
                    return Ok(problems);
                }
            },
            _ => (first, first_hash),
        };
        (next_seq, prev) = (last.seq + 1, Some(last_hash));
    }
    Ok(problems)
}
