use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;
use crate::ingest::Events;
use crate::store::{PatientAttrs, Store, StudyAttrs};

const DAY: Duration = Duration::from_secs(86400);

fn policy() -> RetentionConfig {
    RetentionConfig {
        keep_after_last_grant: Some(7 * DAY),
        max_age: Some(30 * DAY),
        sweep_every: Duration::from_secs(600),
    }
}

fn at(days: u64) -> Timestamp {
    Timestamp(1_700_000_000_000).saturating_add(days as u32 * DAY)
}

fn study(last_arrival: Timestamp, complete: bool) -> StudyRecord {
    StudyRecord {
        study_uid: Uid::parse("1.2.3").unwrap(),
        patient: PatientAttrs::default(),
        attrs: StudyAttrs::default(),
        series: BTreeMap::new(),
        first_arrival: last_arrival,
        last_arrival,
        completed_at: complete.then_some(last_arrival),
        sources: Default::default(),
    }
}

#[test]
fn a_study_never_shared_goes_after_max_age() {
    let s = study(at(0), true);
    assert_eq!(due(&policy(), &s, None, false, at(29)), None);
    assert_eq!(
        due(&policy(), &s, None, false, at(30)),
        Some(Reason::MaxAge)
    );
    let off = RetentionConfig {
        max_age: None,
        ..policy()
    };
    assert_eq!(due(&off, &s, None, false, at(365)), None, "max_age off");
}

#[test]
fn a_shared_study_goes_after_its_last_grant_ended() {
    let s = study(at(0), true);
    let ended = Some(Share::Ended(at(10)));
    assert_eq!(due(&policy(), &s, ended, false, at(16)), None);
    assert_eq!(
        due(&policy(), &s, ended, false, at(17)),
        Some(Reason::KeepAfterLastGrant)
    );
    assert_eq!(
        due(&policy(), &s, Some(Share::Active), false, at(400)),
        None,
        "a grant still usable keeps it, however old"
    );
    let off = RetentionConfig {
        keep_after_last_grant: None,
        ..policy()
    };
    assert_eq!(due(&off, &s, ended, false, at(400)), None);
}

#[test]
fn a_study_sent_again_after_its_grant_ended_counts_from_its_arrival() {
    let s = study(at(20), true);
    let ended = Some(Share::Ended(at(10)));
    assert_eq!(due(&policy(), &s, ended, false, at(26)), None);
    assert_eq!(
        due(&policy(), &s, ended, false, at(27)),
        Some(Reason::KeepAfterLastGrant)
    );
}

#[test]
fn arriving_or_pending_studies_stay() {
    assert_eq!(
        due(&policy(), &study(at(0), false), None, false, at(400)),
        None,
        "still arriving"
    );
    assert_eq!(
        due(&policy(), &study(at(0), true), None, true, at(400)),
        None,
        "a push or forward pending"
    );
}

fn ingest_sample(ingestor: &Ingestor, rel: &str) -> crate::store::InstanceKey {
    crate::ingest::ingest_sample(ingestor, rel, crate::store::Source::Reindex)
}

/// A store in `dir` and an ingestor on it (keep the store alive).
fn temporary_ingestor(dir: &std::path::Path) -> (Store, Ingestor) {
    let store = Store::temporary(dir).unwrap();
    let ingestor = Ingestor::new(
        store.files.clone(),
        store.index.clone(),
        Events::new(),
        Arc::new(AtomicBool::new(false)),
    );
    (store, ingestor)
}

/// A crash after the marker was written: the next sweep (or reindex)
/// removes what the marker names, files and index entries alike, but not
/// an instance received after the deletion was decided.
#[test]
fn a_marker_left_by_a_crash_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, ingestor) = temporary_ingestor(dir.path());
    let first = ingest_sample(&ingestor, "ct-phantom/CT000001.dcm");
    let record = ingestor.index().instance(&first).unwrap().unwrap();
    let pending = Pending {
        study: first.study.clone(),
        reason: Reason::MaxAge.as_str().into(),
        not_after: record.received_at,
    };
    let marker = write_pending(dir.path(), &pending).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let later = ingest_sample(&ingestor, "ct-phantom/CT000002.dcm");
    assert_eq!(later.study, first.study);

    assert_eq!(finish_pending(dir.path(), &ingestor, true).unwrap(), 1);
    assert!(marker.exists(), "reindex keeps the marker");
    assert!(!ingestor.files().path_of(&first).exists());
    assert!(ingestor.index().instance(&first).unwrap().is_none());
    assert!(ingestor.index().locate(&first.sop).unwrap().is_none());
    assert!(ingestor.files().path_of(&later).exists(), "received after");
    let study = ingestor.index().study(&first.study).unwrap().unwrap();
    assert_eq!(study.num_instances(), 1);

    assert_eq!(finish_pending(dir.path(), &ingestor, false).unwrap(), 1);
    assert!(!marker.exists());
    assert_eq!(finish_pending(dir.path(), &ingestor, false).unwrap(), 0);
}

#[test]
fn deleting_the_last_instance_removes_the_study_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, ingestor) = temporary_ingestor(dir.path());
    let key = ingest_sample(&ingestor, "ct-phantom/CT000001.dcm");
    let study = ingestor.index().study(&key.study).unwrap().unwrap();
    let pending = Pending {
        study: key.study.clone(),
        reason: Reason::MaxAge.as_str().into(),
        not_after: study.last_arrival,
    };
    assert_eq!(
        purge(&ingestor, &pending, &|| true).unwrap(),
        (1, study.bytes())
    );
    assert!(ingestor.index().study(&key.study).unwrap().is_none());
    assert!(ingestor.index().studies().unwrap().is_empty());
    assert!(ingestor.index().metadata(&key).unwrap().is_none());
    assert!(!ingestor.files().has_instances().unwrap());
    assert!(
        !ingestor
            .files()
            .instances_dir()
            .join(key.study.as_str())
            .exists(),
        "the study's directory goes too"
    );
}

/// A marker that cannot be finished (here: the instance's path is a
/// directory, as a file the daemon may not remove would be) is logged and
/// kept for the next sweep; the other markers are finished regardless.
#[test]
fn a_marker_that_cannot_be_finished_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, ingestor) = temporary_ingestor(dir.path());
    let stuck = ingest_sample(&ingestor, "ct-phantom/CT000001.dcm");
    let other = ingest_sample(&ingestor, "mr-brain/MR000001.dcm");
    assert_ne!(stuck.study, other.study);
    let mut markers = Vec::new();
    for key in [&stuck, &other] {
        let record = ingestor.index().instance(key).unwrap().unwrap();
        markers.push(
            write_pending(
                dir.path(),
                &Pending {
                    study: key.study.clone(),
                    reason: Reason::MaxAge.as_str().into(),
                    not_after: record.received_at,
                },
            )
            .unwrap(),
        );
    }
    let path = ingestor.files().path_of(&stuck);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("in-the-way"), b"x").unwrap();

    assert_eq!(finish_pending(dir.path(), &ingestor, false).unwrap(), 1);
    assert!(markers[0].exists(), "kept for the next sweep");
    assert!(!markers[1].exists());
    assert!(ingestor.index().instance(&other).unwrap().is_none());
    assert!(!ingestor.files().path_of(&other).exists());
}

/// A stop asked for half-way through a deletion ends it at once; the
/// marker finishes it at the next start.
#[test]
fn a_stop_interrupts_a_deletion_and_the_marker_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, ingestor) = temporary_ingestor(dir.path());
    let first = ingest_sample(&ingestor, "ct-phantom/CT000001.dcm");
    let second = ingest_sample(&ingestor, "ct-phantom/CT000002.dcm");
    let record = ingestor.index().instance(&second).unwrap().unwrap();
    let pending = Pending {
        study: first.study.clone(),
        reason: Reason::MaxAge.as_str().into(),
        not_after: record.received_at,
    };
    let marker = write_pending(dir.path(), &pending).unwrap();
    let asked = std::cell::Cell::new(0);
    let one_then_stop = || {
        asked.set(asked.get() + 1);
        asked.get() == 1
    };
    assert!(matches!(
        purge(&ingestor, &pending, &one_then_stop),
        Err(RetentionError::Stopped)
    ));
    let left = [&first, &second]
        .iter()
        .filter(|k| ingestor.files().path_of(k).exists())
        .count();
    assert_eq!(left, 1, "one instance gone, then it stopped");
    assert!(marker.exists());

    assert_eq!(finish_pending(dir.path(), &ingestor, false).unwrap(), 1);
    assert!(!ingestor.files().path_of(&first).exists());
    assert!(!ingestor.files().path_of(&second).exists());
    assert!(!marker.exists());
}
