use super::*;
use crate::store::records::*;

fn uid(s: &str) -> Uid {
    Uid::parse(s).unwrap()
}

fn entry(study: &str, series: &str, sop: &str, size: u64, at: u64) -> IndexEntry {
    IndexEntry {
        key: InstanceKey {
            study: uid(study),
            series: uid(series),
            sop: uid(sop),
        },
        patient: PatientAttrs {
            name: "Jansen^Anna".into(),
            id: "999999990".into(),
            ..Default::default()
        },
        study: StudyAttrs::default(),
        series: SeriesAttrs {
            modality: if series.ends_with('9') {
                "PR".into()
            } else {
                "CT".into()
            },
            ..Default::default()
        },
        record: InstanceRecord {
            attrs: InstanceAttrs {
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                ..Default::default()
            },
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            size,
            mtime_ns: at,
            dataset_offset: 300,
            crc32: None,
            received_at: Timestamp(at),
            source: Source::Reindex,
            layout: BulkLayout::default(),
        },
        metadata_json: b"{}".to_vec(),
    }
}

#[test]
fn counts_follow_inserts_replacements_and_moves() {
    let index = SledIndex::temporary().unwrap();
    assert!(
        index
            .put_instance(&entry("1.1", "1.1.1", "1.1.1.1", 100, 1))
            .unwrap()
            .new_study
    );
    index
        .put_instance(&entry("1.1", "1.1.1", "1.1.1.2", 100, 2))
        .unwrap();
    index
        .put_instance(&entry("1.1", "1.1.9", "1.1.9.1", 10, 3))
        .unwrap();
    let study = index.study(&uid("1.1")).unwrap().unwrap();
    assert_eq!(
        (study.num_series(), study.num_instances(), study.bytes()),
        (2, 3, 210)
    );
    assert_eq!(
        study.modalities().into_iter().collect::<Vec<_>>(),
        ["CT", "PR"]
    );

    // same SOP instance again: replaced, counts unchanged, size updated
    let outcome = index
        .put_instance(&entry("1.1", "1.1.1", "1.1.1.2", 150, 4))
        .unwrap();
    assert!(outcome.replaced && outcome.moved_from.is_none());
    let study = index.study(&uid("1.1")).unwrap().unwrap();
    assert_eq!((study.num_instances(), study.bytes()), (3, 260));

    // same SOP instance under another study: the old study loses it
    let outcome = index
        .put_instance(&entry("2.2", "2.2.1", "1.1.9.1", 10, 5))
        .unwrap();
    assert_eq!(outcome.moved_from.unwrap().study, uid("1.1"));
    let study = index.study(&uid("1.1")).unwrap().unwrap();
    assert_eq!((study.num_series(), study.num_instances()), (1, 2));
    assert_eq!(
        index.locate(&uid("1.1.9.1")).unwrap().unwrap().study,
        uid("2.2")
    );
    assert_eq!(index.instances(&uid("1.1"), None).unwrap().len(), 2);
    assert_eq!(index.instance_count().unwrap(), 3);
}

#[test]
fn removing_the_last_instance_removes_the_study() {
    let index = SledIndex::temporary().unwrap();
    let e = entry("1.1", "1.1.1", "1.1.1.1", 100, 1);
    index.put_instance(&e).unwrap();
    assert!(index.remove_instance(&e.key).unwrap());
    assert!(index.study(&uid("1.1")).unwrap().is_none());
    assert!(index.locate(&e.key.sop).unwrap().is_none());
    assert!(index.studies().unwrap().is_empty());
    assert!(!index.remove_instance(&e.key).unwrap());
}

#[test]
fn completion_holds_only_if_nothing_arrived_since() {
    let index = SledIndex::temporary().unwrap();
    index
        .put_instance(&entry("1.1", "1.1.1", "1.1.1.1", 100, 10))
        .unwrap();
    assert!(
        !index
            .mark_complete(&uid("1.1"), Timestamp(9), Timestamp(50))
            .unwrap()
    );
    assert!(
        index
            .mark_complete(&uid("1.1"), Timestamp(10), Timestamp(50))
            .unwrap()
    );
    assert!(index.study(&uid("1.1")).unwrap().unwrap().is_complete());
    // a late instance reopens it
    let outcome = index
        .put_instance(&entry("1.1", "1.1.1", "1.1.1.2", 100, 60))
        .unwrap();
    assert!(outcome.reopened);
    assert!(!index.study(&uid("1.1")).unwrap().unwrap().is_complete());
}

#[test]
fn replacing_the_only_instance_of_a_complete_study_reopens_it() {
    let index = SledIndex::temporary().unwrap();
    index
        .put_instance(&entry("1.1", "1.1.1", "1.1.1.1", 100, 10))
        .unwrap();
    assert!(
        index
            .mark_complete(&uid("1.1"), Timestamp(10), Timestamp(50))
            .unwrap()
    );
    let outcome = index
        .put_instance(&entry("1.1", "1.1.1", "1.1.1.1", 120, 60))
        .unwrap();
    assert!(
        outcome.replaced && outcome.reopened && !outcome.new_study,
        "{outcome:?}"
    );
    let study = index.study(&uid("1.1")).unwrap().unwrap();
    assert_eq!(
        study.first_arrival,
        Timestamp(10),
        "the study keeps its history"
    );
    assert_eq!((study.num_instances(), study.bytes()), (1, 120));
}

/// The change count names every study an instance was added to, moved
/// from, removed from or completed in; past what it remembers it says
/// "read them all".
#[test]
fn study_changes_name_what_changed_since() {
    let index = SledIndex::temporary().unwrap();
    let StudyChanges::Since {
        now: start,
        studies,
    } = index.study_changes(0)
    else {
        panic!("a fresh index remembers everything");
    };
    assert!(studies.is_empty());
    let a = entry("1.1", "1.1.1", "1.1.1.1", 100, 1);
    index.put_instance(&a).unwrap();
    index
        .put_instance(&entry("1.2", "1.2.1", "1.2.1.1", 100, 2))
        .unwrap();
    let StudyChanges::Since { now, studies } = index.study_changes(start) else {
        panic!("two changes are remembered");
    };
    assert_eq!(studies, vec![uid("1.1"), uid("1.2")]);
    // moved to another study: both changed
    index
        .put_instance(&entry("1.3", "1.3.1", "1.1.1.1", 100, 3))
        .unwrap();
    assert!(
        index
            .mark_complete(&uid("1.2"), Timestamp(2), Timestamp(9))
            .unwrap()
    );
    let StudyChanges::Since {
        now: later,
        studies,
    } = index.study_changes(now)
    else {
        panic!("remembered");
    };
    assert_eq!(studies, vec![uid("1.3"), uid("1.1"), uid("1.2")]);
    assert_eq!(
        index.study_changes(later),
        StudyChanges::Since {
            now: later,
            studies: vec![]
        }
    );
    assert!(matches!(
        index.study_changes(later + 5),
        StudyChanges::All { .. }
    ));
    for i in 0..CHANGES_KEPT as u64 + 1 {
        index
            .put_instance(&entry("1.4", "1.4.1", &format!("1.4.1.{i}"), 1, 10 + i))
            .unwrap();
    }
    assert!(matches!(
        index.study_changes(later),
        StudyChanges::All { .. }
    ));
}
