//! The index is a view of the files: `pushgate reindex` rebuilds it, and a
//! daemon whose index is missing or broken refuses to start, naming the fix.

mod common;

use common::{Daemon, sample_files, text};

#[test]
fn a_lost_index_is_refused_then_rebuilt_by_reindex() {
    let mut daemon = Daemon::start();
    daemon.send_all(&sample_files());
    let before = daemon.studies();
    assert_eq!(daemon.stop(), Some(0));

    std::fs::remove_dir_all(daemon.data_dir().join("index")).unwrap();
    let err = daemon.spawn().unwrap_err();
    assert!(err.contains("pushgate reindex"), "{err}");
    assert!(
        err.contains("refusing to start with an empty index"),
        "{err}"
    );

    let out = daemon.cli(&["reindex"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{} instance(s) indexed", sample_files().len())),
        "{}",
        text(&out)
    );
    daemon.spawn().unwrap();
    let after = daemon.studies();
    let summary = |v: &serde_json::Value| {
        let mut rows: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["study_uid"].clone(),
                    s["num_series"].clone(),
                    s["num_instances"].clone(),
                    s["bytes"].clone(),
                    s["patient"].clone(),
                )
            })
            .map(|t| format!("{t:?}"))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(summary(&before), summary(&after));
}

#[test]
fn a_corrupt_index_is_refused_with_the_fix() {
    let mut daemon = Daemon::start();
    daemon.send_all(&sample_files()[..2]);
    daemon.stop();
    let index = daemon.data_dir().join("index/v1");
    for entry in std::fs::read_dir(&index).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, vec![0xA5u8; 4096]).unwrap();
        }
    }
    let err = daemon.spawn().unwrap_err();
    assert!(err.contains("pushgate reindex"), "{err}");
    let out = daemon.cli(&["reindex"]);
    assert!(out.status.success(), "{}", text(&out));
    daemon.spawn().unwrap();
    assert_eq!(daemon.instance_count(), 2);
}

#[test]
fn reindex_refuses_while_the_daemon_runs() {
    let daemon = Daemon::start();
    let out = daemon.cli(&["reindex"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("another pushgate"), "{}", text(&out));
}
