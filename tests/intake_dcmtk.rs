//! Intake against DCMTK as the sending peer: every sample, every transfer
//! syntax DCMTK can produce, parallel associations, a large multi-frame
//! instance under a memory bound, study stability, the `studies` command.
//! "As received" is checked against DCMTK's own storescp in bit-preserving
//! mode fed the same files: both must hold the same data set bytes.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Daemon, Storescp, eventually, sample_files, sop_instance, text, transfer_syntax};

/// Data set bytes per SOP Instance UID, as a peer stored them (deflated
/// data sets inflated, as storescp keeps them).
fn by_instance(files: &[PathBuf]) -> HashMap<String, Vec<u8>> {
    files
        .iter()
        .map(|f| (sop_instance(f), common::decoded_dataset_bytes(f)))
        .collect()
}

fn send_to_storescp(files: &[PathBuf]) -> HashMap<String, Vec<u8>> {
    let scp = Storescp::start();
    scp.receive(files);
    let received = scp.files();
    assert_eq!(received.len(), files.len(), "storescp kept {:?}", received);
    by_instance(&received)
}

#[test]
fn echoscu_is_answered() {
    let daemon = Daemon::start();
    let out = daemon.echoscu(&["-v", "-aec", "PUSHGATE"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Received Echo Response (Success)"),
        "{}",
        text(&out)
    );
}

#[test]
fn every_sample_arrives_as_sent_and_is_indexed() {
    let daemon = Daemon::start();
    let files = sample_files();
    daemon.send_all(&files);
    let reference = send_to_storescp(&files);
    let ours = by_instance(&daemon.stored_files());
    assert_eq!(ours.len(), files.len());
    for (sop, bytes) in &reference {
        assert!(
            ours.get(sop) == Some(bytes),
            "instance {sop} differs from what storescp received"
        );
    }
    // the index knows them, with the BSN kept apart from Patient ID
    let studies = daemon.studies();
    let total: u64 = studies
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["num_instances"].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, files.len());
    let bsns: Vec<_> = studies
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["patient"]["bsn"].as_str())
        .collect();
    assert!(
        bsns.len() >= 2,
        "CT (Patient ID) and MR (Other Patient IDs) carry a BSN: {studies:#}"
    );
    for s in studies.as_array().unwrap() {
        if let Some(bsn) = s["patient"]["bsn"].as_str() {
            assert_eq!(bsn.len(), 9);
        }
        assert!(s["sources"][0].as_str().unwrap().starts_with("dicom:"));
    }
    let mr = studies
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["modalities"][0] == "MR")
        .expect("MR study");
    assert_ne!(
        mr["patient"]["id"], mr["patient"]["bsn"],
        "the MR's Patient ID is a local number"
    );
}

/// DCMTK's converters make each transfer syntax from a sample; storescu
/// proposes it with the matching `-x…` flag.
#[test]
fn every_transfer_syntax_dcmtk_can_send_is_stored_as_received() {
    let dir = tempfile::tempdir().unwrap();
    let samples = sample_files();
    let pick = |part: &str| {
        samples
            .iter()
            .find(|p| p.to_string_lossy().contains(part))
            .unwrap_or_else(|| panic!("sample {part}"))
            .clone()
    };
    let ct = pick("ct-phantom/");
    let mr = pick("mr-brain/");
    let variants: &[(&str, &[&str], &Path, &str, &str)] = &[
        // (tool, tool args, input, storescu flag, expected transfer syntax)
        ("dcmconv", &["+te"], &ct, "-xe", "1.2.840.10008.1.2.1"),
        ("dcmconv", &["+ti"], &ct, "-xi", "1.2.840.10008.1.2"),
        ("dcmconv", &["+tb"], &mr, "-xb", "1.2.840.10008.1.2.2"),
        ("dcmconv", &["+td"], &mr, "-xd", "1.2.840.10008.1.2.1.99"),
        ("dcmcjpeg", &["+e1"], &ct, "-xs", "1.2.840.10008.1.2.4.70"),
        ("dcmcjpeg", &["+ee"], &mr, "-xx", "1.2.840.10008.1.2.4.51"),
        ("dcmcjpls", &["+el"], &ct, "-xt", "1.2.840.10008.1.2.4.80"),
        ("dcmcjpls", &["+en"], &mr, "-xu", "1.2.840.10008.1.2.4.81"),
        ("dcmcrle", &[], &ct, "-xr", "1.2.840.10008.1.2.5"),
    ];
    let daemon = Daemon::start();
    for (i, (tool, args, input, flag, expected_ts)) in variants.iter().enumerate() {
        let renamed = dir.path().join(format!("v{i}.dcm"));
        let out = Command::new(format!("/usr/bin/{tool}"))
            .args(*args)
            .arg(input)
            .arg(&renamed)
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool}: {}", text(&out));
        // a fresh SOP Instance UID per variant, so they do not replace each other
        let out = Command::new("/usr/bin/dcmodify")
            .args(["-nb", "-gin"])
            .arg(&renamed)
            .output()
            .unwrap();
        assert!(out.status.success(), "dcmodify: {}", text(&out));
        assert_eq!(&transfer_syntax(&renamed), expected_ts, "{tool} {args:?}");
        let sent = daemon.storescu(&[flag], std::slice::from_ref(&renamed));
        assert!(
            sent.status.success(),
            "{tool} {args:?} via storescu {flag}: {}",
            text(&sent)
        );
        let reference = send_to_storescp(&[renamed]);
        let (sop, bytes) = reference.into_iter().next().unwrap();
        let stored = daemon
            .stored_files()
            .into_iter()
            .find(|f| sop_instance(f) == sop)
            .unwrap_or_else(|| panic!("{expected_ts} not stored"));
        assert_eq!(&transfer_syntax(&stored), expected_ts);
        assert!(
            common::decoded_dataset_bytes(&stored) == bytes,
            "{expected_ts}: stored bytes differ from what was sent"
        );
        if *expected_ts == "1.2.840.10008.1.2.1.99" {
            // kept deflated, as it came
            assert_ne!(common::dataset_bytes(&stored), bytes);
        }
    }
    assert_eq!(daemon.stored_files().len(), variants.len());
}

#[test]
fn parallel_associations_all_arrive() {
    let daemon = Daemon::start();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pushgate-samples"))
        .args(["bench"])
        .arg(data.path())
        .args(["--count", "48", "--size", "128"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 48);
    let children: Vec<_> = files
        .chunks(8)
        .map(|chunk| {
            Command::new(common::STORESCU)
                .args([
                    "-aec",
                    "PUSHGATE",
                    "127.0.0.1",
                    &daemon.dicom.port().to_string(),
                ])
                .args(chunk)
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
    }
    assert_eq!(daemon.instance_count(), 48);
    let log = daemon.log();
    assert!(log.matches("association accepted").count() >= 6);
    // they were served side by side, not one after another
    let most_open = log
        .split("open=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap();
    assert!(
        most_open >= 2,
        "at most {most_open} association(s) open at once"
    );
}

#[test]
fn a_large_multiframe_instance_streams_through_bounded_memory() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("large.dcm");
    // 1200 frames of 512×512×16 bit = 600 MiB
    let out = Command::new(env!("CARGO_BIN_EXE_pushgate-samples"))
        .args(["large"])
        .arg(&file)
        .args(["--frames", "1200", "--rows", "512", "--cols", "512"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size > 600_000_000);
    let before = daemon.peak_rss();
    let sent = daemon.storescu(&[], std::slice::from_ref(&file));
    assert!(sent.status.success(), "{}", text(&sent));
    let peak = daemon.peak_rss();
    assert!(
        peak < 100 * 1024 * 1024,
        "peak RSS {} MB while receiving {} MB (before: {} MB)",
        peak >> 20,
        size >> 20,
        before >> 20
    );
    let stored = daemon.stored_files();
    assert_eq!(stored.len(), 1);
    // same data set bytes as DCMTK's storescp keeps, compared without
    // loading either file whole
    let scp = Storescp::start();
    scp.receive(std::slice::from_ref(&file));
    let reference = scp.files().remove(0);
    let digest = |path: &Path| {
        use sha2::Digest;
        let header =
            pushgate::ingest::read_part10_header(&std::fs::File::open(path).unwrap()).unwrap();
        let mut f = std::fs::File::open(path).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(header.dataset_offset)).unwrap();
        let mut hasher = sha2::Sha256::new();
        std::io::copy(&mut f, &mut hasher).unwrap();
        hasher.finalize()
    };
    assert_eq!(digest(&stored[0]), digest(&reference));
    let study = &daemon.studies()[0];
    assert_eq!(study["num_instances"], 1);
}

#[test]
fn a_study_completes_after_the_quiet_time_and_a_late_instance_reopens_it() {
    let daemon = Daemon::start();
    let files = sample_files();
    let ct: Vec<PathBuf> = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .cloned()
        .collect();
    let (last, first) = ct.split_last().unwrap();
    assert!(daemon.storescu(&[], first).status.success());
    assert_eq!(daemon.studies()[0]["state"], "arriving");
    assert!(eventually(Duration::from_secs(10), || daemon.studies()[0]
        ["state"]
        == "complete"));
    assert!(daemon.log().contains("study complete"));
    assert!(
        daemon
            .storescu(&[], std::slice::from_ref(last))
            .status
            .success()
    );
    assert_eq!(daemon.studies()[0]["state"], "arriving");
    assert!(eventually(Duration::from_secs(10), || daemon.studies()[0]
        ["state"]
        == "complete"));
}

#[test]
fn studies_prints_a_table_for_people() {
    let daemon = Daemon::start();
    let out = daemon.cli(&["studies"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "No studies.");
    daemon.send_all(&sample_files());
    let out = daemon.cli(&["studies"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("DATE"), "{table}");
    assert!(table.contains("CT") && table.contains("MR"), "{table}");
}

#[test]
fn cli_without_a_running_daemon_says_so() {
    let mut daemon = Daemon::start();
    daemon.stop();
    let out = daemon.cli(&["studies"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is `pushgate serve` running"),
        "{}",
        text(&out)
    );
}
