//! `pushgate pacs find` against Orthanc as the local PACS (C-FIND SCP) on
//! 127.0.0.1: what the PACS holds comes back as one JSON array with the
//! studies' UIDs, conditions combine, and a PACS that is down or a bad
//! condition is a clear error with a non-zero exit.

mod common;

use std::collections::BTreeSet;

use common::pacs::Orthanc;
use common::{Daemon, sample_files, text};
use serde_json::Value;

/// The Study Instance UID of the first sample under `dir`.
fn study_of(dir: &str) -> String {
    let file = sample_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains(&format!("/{dir}/")))
        .unwrap();
    let out = std::process::Command::new("dcmdump")
        .args(["+P", "StudyInstanceUID", "-q"])
        .arg(&file)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    line.split('[')
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .to_string()
}

fn find(daemon: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["pacs", "find", "--json"];
    all.extend_from_slice(args);
    let out = daemon.cli(&all);
    assert!(out.status.success(), "pacs find {args:?}: {}", text(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
    rows.as_array().unwrap().clone()
}

fn studies(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["study_uid"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pacs_find_lists_what_the_pacs_holds() {
    let orthanc = Orthanc::start(&[]);
    orthanc.upload(&sample_files());
    let pacs = orthanc.address();
    let daemon = Daemon::prepare(&format!(
        "[pacs]\naddress = \"{}@127.0.0.1:{}\"\n",
        pacs.called_ae, pacs.port
    ));
    let (ct, rle) = (study_of("ct-phantom"), study_of("rle"));

    // Jansen^Anna has two studies: 2024-03-12 (CT phantom), 2024-09-17 (RLE)
    let both = find(&daemon, &["--name", "Jansen*"]);
    assert_eq!(studies(&both), BTreeSet::from([ct.clone(), rle.clone()]));
    let spring = find(
        &daemon,
        &["--name", "Jansen*", "--date", "20240101-20240630"],
    );
    assert_eq!(studies(&spring), BTreeSet::from([ct.clone()]));
    let row = &spring[0];
    assert_eq!(row["patient_name"], "Jansen^Anna", "{row}");
    assert_eq!(row["study_date"], "20240312", "{row}");
    assert_eq!(row["patient_id"], "999912343", "{row}");
    let by_id = find(
        &daemon,
        &["--patient-id", "999912343", "--date", "20240901-"],
    );
    assert_eq!(studies(&by_id), BTreeSet::from([rle.clone()]));
    assert!(find(&daemon, &["--name", "Nobody*"]).is_empty());

    // the series of the CT study, with their modalities
    let series = find(&daemon, &["--series-of", &ct]);
    let modalities: BTreeSet<&str> = series
        .iter()
        .map(|s| s["modality"].as_str().unwrap())
        .collect();
    assert_eq!(modalities, BTreeSet::from(["CT", "PR", "SR"]), "{series:?}");

    // people read the table
    let table = daemon.cli(&["pacs", "find", "--name", "Jansen*"]);
    assert!(table.status.success());
    let shown = text(&table);
    assert!(
        shown.contains("Jansen^Anna") && shown.contains(&ct),
        "{shown}"
    );

    // no condition, a bad date: refused before asking
    for bad in [&[][..], &["--date", "2024-01"][..]] {
        let mut args = vec!["pacs", "find"];
        args.extend_from_slice(bad);
        let out = daemon.cli(&args);
        assert!(!out.status.success(), "{bad:?}: {}", text(&out));
    }

    // the PACS down: a clear error, exit non-zero
    drop(orthanc);
    let out = daemon.cli(&["pacs", "find", "--name", "Jansen*"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot connect"), "{}", text(&out));
}
