use std::io::Write;

use super::*;
use crate::journal::event::{Access, AccessKind, Outcome, Who};

fn access(n: u32) -> Event {
    Event::Access(Access {
        grant: None,
        study: None,
        what: AccessKind::Wado,
        who: Who::Anonymous,
        from: "127.0.0.1".into(),
        outcome: Outcome::Allowed,
        instances: n,
        bytes: 0,
    })
}

#[test]
fn durable_appends_number_in_order_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.append_durable(access(1)).unwrap().0, 1);
    for n in 2..=100 {
        journal.append(access(n));
    }
    assert_eq!(journal.append_durable(access(101)).unwrap().0, 102 - 1);
    journal.close();
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.append_durable(access(102)).unwrap().0, 102);
    journal.close();
    let report = verify(dir.path()).unwrap();
    assert_eq!(
        (report.verified, report.first_bad.is_none()),
        (102, true),
        "{report:?}"
    );
    let from_50: Vec<u64> = read(dir.path(), 50)
        .unwrap()
        .map(|r| r.unwrap().0.seq)
        .collect();
    assert_eq!(from_50, (50..=102).collect::<Vec<_>>());
}

#[test]
fn a_flipped_byte_is_named_by_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    for n in 1..=20 {
        journal.append_durable(access(n)).unwrap();
    }
    journal.close();
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&segment).unwrap();
    // a byte inside record 13
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let at = starts[12] + 120;
    bytes[at] ^= 0x04;
    std::fs::write(&segment, &bytes).unwrap();
    let report = verify(dir.path()).unwrap();
    let bad = report.first_bad.expect("the flip is found");
    assert_eq!(
        (bad.seq, bad.line, report.verified),
        (13, 13, 12),
        "{bad:?}"
    );
    // reading stops there too, and opening refuses a broken last segment
    assert!(read(dir.path(), 1).unwrap().any(|r| r.is_err()));
    assert!(matches!(
        Journal::open(dir.path()),
        Err(JournalError::Corrupt { line: 13, .. })
    ));
}

#[test]
fn a_record_removed_from_the_middle_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    for n in 1..=5 {
        journal.append_durable(access(n)).unwrap();
    }
    journal.close();
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&segment).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&segment, kept.join("\n") + "\n").unwrap();
    let report = verify(dir.path()).unwrap();
    let bad = report.first_bad.clone().unwrap();
    assert_eq!(
        (bad.seq, bad.line, bad.missing),
        (3, 3, Some((3, 3))),
        "{bad:?}"
    );
    assert!(bad.problem.contains("record 3 is missing"), "{bad:?}");
    // the records after the gap still chain: the rest verifies
    assert_eq!((report.verified, report.problems.len()), (4, 1));
    assert!(!report.intact());
}

#[test]
fn a_torn_last_line_is_cut_off_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.append_durable(access(1)).unwrap();
    journal.close();
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(b"{\"hash\":\"12")
        .unwrap();
    assert!(verify(dir.path()).unwrap().incomplete_tail);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.append_durable(access(2)).unwrap().0, 2);
    journal.close();
    let report = verify(dir.path()).unwrap();
    assert!(report.first_bad.is_none() && !report.incomplete_tail && report.verified == 2);
}

#[test]
fn export_filters_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.append_durable(access(1)).unwrap();
    journal.close();
    let mut out = Vec::new();
    assert_eq!(export(dir.path(), None, &mut out).unwrap(), 1);
    let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(line["event"]["type"], "access");
    let mut out = Vec::new();
    let future = Timestamp::now().saturating_add(std::time::Duration::from_secs(60));
    assert_eq!(export(dir.path(), Some(future), &mut out).unwrap(), 0);
}

/// A journal of `n` records cut into segments starting at `starts` (as if
/// rotated there): the layout a long-running daemon leaves.
fn segmented(n: u32, starts: &[u64]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    for i in 1..=n {
        journal.append_durable(access(i)).unwrap();
    }
    journal.close();
    let whole = lines::segment_path(dir.path(), 1);
    let text = std::fs::read_to_string(&whole).unwrap();
    std::fs::remove_file(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut bounds = starts.to_vec();
    bounds.push(n as u64 + 1);
    for pair in bounds.windows(2) {
        let part: String = lines[(pair[0] - 1) as usize..(pair[1] - 1) as usize]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(lines::segment_path(dir.path(), pair[0]), part).unwrap();
    }
    dir
}

fn cut_lines(path: &std::path::Path, keep: impl Fn(usize) -> bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(path, kept).unwrap();
}

fn seg(dir: &tempfile::TempDir, first: u64) -> std::path::PathBuf {
    lines::segment_path(dir.path(), first)
}

/// What verify, a full read and opening say; each must name `missing`.
fn assert_refused(dir: &tempfile::TempDir, missing: &[(u64, u64)]) {
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.missing().collect::<Vec<_>>(), missing, "{report:?}");
    assert!(!report.intact());
    match Journal::open(dir.path()) {
        Err(JournalError::Broken { problems, .. }) => {
            let found: Vec<_> = problems.iter().filter_map(|p| p.missing).collect();
            assert_eq!(found, missing, "{problems:?}");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a journal with records missing was opened"),
    }
    // a replay from the start (reindex) stops at the first gap
    let first_error = read(dir.path(), 1).unwrap().find_map(|r| r.err());
    assert!(
        matches!(first_error, Some(JournalError::Missing { from, .. }) if from == missing[0].0),
        "{first_error:?}"
    );
}

#[test]
fn a_segmented_journal_verifies_and_opens() {
    let dir = segmented(12, &[1, 5, 9]);
    let report = verify(dir.path()).unwrap();
    assert!(report.intact() && report.verified == 12, "{report:?}");
    assert!(layout::check(dir.path()).unwrap().is_empty());
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.head().seq, 12);
    assert_eq!(journal.append_durable(access(13)).unwrap().0, 13);
    journal.close();
}

#[test]
fn records_cut_from_the_front_and_renamed_are_missing() {
    // the attack: the first three records removed, the file renamed to 4
    let dir = segmented(12, &[1]);
    cut_lines(&seg(&dir, 1), |i| i >= 3);
    std::fs::rename(seg(&dir, 1), seg(&dir, 4)).unwrap();
    assert_refused(&dir, &[(1, 3)]);
    let bad = verify(dir.path()).unwrap().first_bad.unwrap();
    assert!(bad.problem.contains("records 1-3 are missing"), "{bad}");
}

#[test]
fn records_cut_from_the_front_of_a_file_named_1_are_missing() {
    let dir = segmented(12, &[1, 7]);
    cut_lines(&seg(&dir, 1), |i| i >= 2);
    assert_refused(&dir, &[(1, 2)]);
    // and the name no longer agrees with the first record
    let report = verify(dir.path()).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.problem.contains("renamed")),
        "{report:?}"
    );
}

#[test]
fn a_whole_first_segment_removed_is_missing() {
    let dir = segmented(12, &[1, 5, 9]);
    std::fs::remove_file(seg(&dir, 1)).unwrap();
    assert_refused(&dir, &[(1, 4)]);
}

#[test]
fn a_middle_segment_removed_is_missing() {
    let dir = segmented(12, &[1, 5, 9]);
    std::fs::remove_file(seg(&dir, 5)).unwrap();
    assert_refused(&dir, &[(5, 8)]);
}

#[test]
fn the_end_of_a_middle_segment_cut_off_is_missing() {
    let dir = segmented(12, &[1, 5, 9]);
    cut_lines(&seg(&dir, 5), |i| i < 2);
    assert_refused(&dir, &[(7, 8)]);
}

#[test]
fn every_gap_is_named() {
    let dir = segmented(16, &[1, 5, 9, 13]);
    std::fs::remove_file(seg(&dir, 1)).unwrap();
    std::fs::remove_file(seg(&dir, 9)).unwrap();
    assert_refused(&dir, &[(1, 4), (9, 12)]);
    // a record removed inside an older segment: only the full read sees it
    cut_lines(&seg(&dir, 5), |i| i != 1);
    let report = verify(dir.path()).unwrap();
    assert_eq!(
        report.missing().collect::<Vec<_>>(),
        vec![(1, 4), (6, 6), (9, 12)]
    );
    assert_eq!(report.verified, 7);
}

#[test]
fn a_renamed_segment_is_named() {
    let dir = segmented(12, &[1, 5, 9]);
    std::fs::rename(seg(&dir, 9), seg(&dir, 10)).unwrap();
    let report = verify(dir.path()).unwrap();
    let bad = report.first_bad.clone().unwrap();
    assert!(
        bad.problem
            .contains("named for record 10, but its first record is 9"),
        "{bad}"
    );
    assert!(
        report.missing().next().is_none(),
        "nothing is missing: {report:?}"
    );
    assert!(matches!(
        Journal::open(dir.path()),
        Err(JournalError::Broken { .. })
    ));
}

#[test]
fn an_empty_last_segment_after_a_cut_shows_the_gap() {
    // rotated at 13, then the end of the segment before was cut off
    let dir = segmented(12, &[1, 7]);
    std::fs::write(seg(&dir, 13), b"").unwrap();
    assert!(verify(dir.path()).unwrap().intact());
    Journal::open(dir.path()).unwrap().close();
    cut_lines(&seg(&dir, 7), |i| i < 4);
    assert_refused(&dir, &[(11, 12)]);
}

#[test]
fn an_anchor_shows_a_cut_end_and_a_rewrite() {
    let dir = segmented(12, &[1, 7]);
    let head = verify(dir.path()).unwrap().head.unwrap();
    assert_eq!(head.seq, 12);
    let earlier = Head {
        seq: 6,
        hash: record::hash_of(
            std::fs::read_to_string(seg(&dir, 1))
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
        .to_string(),
    };
    let report = verify_anchored(dir.path(), &[head.clone(), earlier.clone()]).unwrap();
    assert!(report.intact(), "{report:?}");
    // the end cut off: the chain alone cannot tell, the anchor can
    cut_lines(&seg(&dir, 7), |i| i < 3);
    let report = verify(dir.path()).unwrap();
    assert!(report.intact());
    let report = verify_anchored(dir.path(), &[head.clone(), earlier.clone()]).unwrap();
    assert!(!report.intact());
    assert_eq!(
        report.anchors,
        vec![
            (head.clone(), AnchorCheck::CutOff { ends_at: 9 }),
            (earlier.clone(), AnchorCheck::Holds)
        ]
    );
    // a rewritten chain (every hash recomputed) keeps its numbers, not its hashes
    let rewritten = Head {
        seq: 6,
        hash: "1".repeat(64),
    };
    let report = verify_anchored(dir.path(), std::slice::from_ref(&rewritten)).unwrap();
    assert_eq!(
        report.anchors,
        vec![(
            rewritten,
            AnchorCheck::Rewritten {
                found: earlier.hash
            }
        )]
    );
}

#[test]
fn the_writer_keeps_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.head(), Head::default());
    journal.append_durable(access(1)).unwrap();
    journal.append_durable(access(2)).unwrap();
    let head = journal.head();
    journal.close();
    assert_eq!(Some(head.clone()), verify(dir.path()).unwrap().head);
    assert_eq!(Journal::open(dir.path()).unwrap().head(), head);
}

#[test]
fn segment_ends_are_read_from_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    let long = "y".repeat(200_000);
    std::fs::write(&path, format!("a\n{long}\nb\n{long}\ntorn")).unwrap();
    let ends = lines::ends(&path).unwrap();
    assert_eq!(ends.first.as_deref(), Some(&b"a"[..]));
    assert_eq!(ends.last.as_deref(), Some(long.as_bytes()));
    assert!(ends.torn);
    std::fs::write(&path, "only\n").unwrap();
    let ends = lines::ends(&path).unwrap();
    assert_eq!(
        (ends.first.as_deref(), ends.last.as_deref(), ends.torn),
        (Some(&b"only"[..]), Some(&b"only"[..]), false)
    );
    std::fs::write(&path, "").unwrap();
    let ends = lines::ends(&path).unwrap();
    assert!(ends.first.is_none() && ends.last.is_none() && !ends.torn);
}
