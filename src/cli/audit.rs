//! `pushgate audit verify` and `pushgate audit export`: they read the
//! journal files directly (read-only; safe while the daemon appends).

use std::io::Write;
use std::time::SystemTime;

use crate::config::Config;
use crate::journal::{self, JournalError};
use crate::store::Timestamp;

/// Checks the chain; `Ok(false)` when a record does not verify.
pub fn verify(config: &Config, out: &mut impl Write) -> Result<bool, JournalError> {
    let dir = config.journal_dir();
    if !dir.exists() {
        let _ = writeln!(out, "no journal yet at {}", dir.display());
        return Ok(true);
    }
    let report = journal::verify(&dir)?;
    match &report.first_bad {
        None => {
            let _ = writeln!(
                out,
                "journal intact: {} record(s), chain verified",
                report.verified
            );
            if let Some(head) = &report.head {
                // written down elsewhere (a ticket, a log host), it shows
                // later that nothing up to here was rewritten or cut off
                let _ = writeln!(out, "head: record {} hash {head}", report.verified);
            }
        }
        Some(bad) => {
            let _ = writeln!(
                out,
                "journal BROKEN at record {} ({}, line {}): {}\n{} record(s) before it verified",
                bad.seq,
                bad.path.display(),
                bad.line,
                bad.problem,
                report.verified
            );
        }
    }
    if report.incomplete_tail {
        let _ = writeln!(
            out,
            "note: the last line is incomplete (a write in progress, or a crash the daemon repairs at its next start)"
        );
    }
    Ok(report.first_bad.is_none())
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
