//! `pushgate audit verify` and `pushgate audit export`: they read the
//! journal files directly (read-only; safe while the daemon appends).

use std::io::Write;
use std::time::SystemTime;

use crate::config::Config;
use crate::journal::{self, AnchorCheck, Head, JournalError};
use crate::store::Timestamp;

/// Checks the chain from its genesis, and each of `anchors` (heads written
/// down earlier); `Ok(false)` when a record does not verify, records are
/// missing, or an anchor does not hold.
pub fn verify(
    config: &Config,
    anchors: &[Head],
    out: &mut impl Write,
) -> Result<bool, JournalError> {
    let dir = config.journal_dir();
    if !dir.exists() {
        let _ = writeln!(out, "no journal yet at {}", dir.display());
        return Ok(anchors.is_empty());
    }
    let report = journal::verify_anchored(&dir, anchors)?;
    match &report.first_bad {
        None => {
            let _ = writeln!(
                out,
                "journal intact: {} record(s), chain verified from its genesis",
                report.verified
            );
            if let Some(head) = &report.head {
                // written down elsewhere (a ticket, a log host), it shows
                // later that nothing up to here was rewritten or cut off
                let _ = writeln!(out, "head: record {} hash {}", head.seq, head.hash);
                let _ = writeln!(
                    out,
                    "anchor: {head} (write it down; `pushgate audit verify --anchor {head}` checks it later)"
                );
            }
        }
        Some(bad) => {
            let _ = writeln!(
                out,
                "journal BROKEN at record {} ({}, line {}): {}\n{} record(s) verified",
                bad.seq,
                bad.path.display(),
                bad.line,
                bad.problem,
                report.verified
            );
            for other in &report.problems[1..] {
                let _ = writeln!(out, "also at record {}: {other}", other.seq);
            }
            let missing: Vec<String> = report
                .missing()
                .map(|(from, to)| match from == to {
                    true => from.to_string(),
                    false => format!("{from}-{to}"),
                })
                .collect();
            if !missing.is_empty() {
                let _ = writeln!(out, "missing records: {}", missing.join(", "));
            }
        }
    }
    for (anchor, check) in &report.anchors {
        let _ = match check {
            AnchorCheck::Holds => writeln!(
                out,
                "anchor {anchor} holds: record {} is in the chain with that hash",
                anchor.seq
            ),
            AnchorCheck::Rewritten { found } => writeln!(
                out,
                "anchor {anchor} does NOT hold: record {} now has hash {found} (the journal was rewritten)",
                anchor.seq
            ),
            AnchorCheck::CutOff { ends_at } => writeln!(
                out,
                "anchor {anchor} does NOT hold: the journal ends at record {ends_at}, records {}-{} were cut off its end",
                ends_at + 1,
                anchor.seq
            ),
            AnchorCheck::NotReached => writeln!(
                out,
                "anchor {anchor} does NOT hold: record {} is not in the verified chain",
                anchor.seq
            ),
        };
    }
    if report.incomplete_tail {
        let _ = writeln!(
            out,
            "note: the last line is incomplete (a write in progress, or a crash the daemon repairs at its next start)"
        );
    }
    Ok(report.intact())
}

/// `--anchor SEQ:HASH`, as `audit verify` prints it.
pub fn parse_anchor(text: &str) -> Result<Head, String> {
    text.parse()
}

/// `--since`: an RFC 3339 time (`2026-11-01`, `2026-11-01T08:00:00Z`) or a
/// duration back from now (`24h`, `7d`).
pub fn parse_since(text: &str) -> Result<Timestamp, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(Timestamp::from(t));
    }
    if text.len() == 10
        && let Ok(t) = humantime::parse_rfc3339_weak(&format!("{text} 00:00:00"))
    {
        return Ok(Timestamp::from(t));
    }
    humantime::parse_duration(text)
        .map(|ago| Timestamp::from(SystemTime::now() - ago))
        .map_err(|_| {
            format!("{text:?} is neither a time (2026-11-01T08:00:00Z) nor a duration (24h)")
        })
}

/// Prints the records since a time as JSON lines, each with its hash.
pub fn export(
    config: &Config,
    since: Option<Timestamp>,
    out: &mut impl Write,
) -> Result<usize, JournalError> {
    let dir = config.journal_dir();
    if !dir.exists() {
        return Ok(0);
    }
    journal::export(&dir, since, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_durations() {
        assert_eq!(
            parse_since("2026-11-01T08:00:00Z").unwrap().to_string(),
            "2026-11-01T08:00:00.000Z"
        );
        assert_eq!(
            parse_since("2026-11-01").unwrap().to_string(),
            "2026-11-01T00:00:00.000Z"
        );
        let day_ago = parse_since("24h").unwrap();
        assert!(Timestamp::now().0 - day_ago.0 >= 86_400_000 - 1000);
        assert!(parse_since("yesterday").is_err());
    }
}
