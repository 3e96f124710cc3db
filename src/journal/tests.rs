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
    let bad = verify(dir.path()).unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 3);
    assert!(bad.problem.contains("removed"), "{bad:?}");
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
