//! The sender's and the recipient's first steps: share a study with the
//! CLI, bind the link as a program, ask as its holder.

use serde_json::Value;

use std::time::Duration;

use super::{Ask, Daemon, eventually, sample_files, text, variant};

/// `pushgate share … --json`, on a referral unless `args` names another
/// `--legal-basis`.
pub fn share(daemon: &Daemon, args: &[&str]) -> Value {
    let mut all = vec!["share"];
    if !args.contains(&"--legal-basis") {
        all.extend_from_slice(&["--legal-basis", "referral"]);
    }
    all.extend_from_slice(args);
    all.push("--json");
    let out = daemon.cli(&all);
    assert!(out.status.success(), "share: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `/s/{token}` path of a link URL.
pub fn path_of(url: &Value) -> String {
    let url = url.as_str().unwrap();
    url[url.find("/s/").unwrap()..].to_string()
}

/// Binds as a program; returns the holder token.
pub fn bind(daemon: &Daemon, path: &str) -> String {
    let reply = daemon.https("POST", path, Ask::default());
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["holder_token"].as_str().unwrap().to_string()
}

pub fn as_holder(token: &str) -> Ask<'static> {
    Ask {
        headers: vec![("Authorization", format!("Bearer {token}"))],
        ..Ask::default()
    }
}

/// The study UID of the first study with `modality`.
pub fn study_with(daemon: &Daemon, modality: &str) -> String {
    daemon
        .studies()
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["modalities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == modality)
        })
        .unwrap_or_else(|| panic!("a study with {modality}"))["study_uid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The ct-phantom study's files (16 CT, 1 PR, 1 SR) written to `dir`
/// with `changes` (keyword, value) applied.
pub fn ct_files_with(dir: &std::path::Path, changes: &[(&str, &str)]) -> Vec<std::path::PathBuf> {
    sample_files()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("ct-phantom"))
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            variant(dir, &f, &name, false, changes)
        })
        .collect()
}

/// A daemon (with `extra` configuration) holding the ct-phantom study,
/// its patient named `patient_name`; its study UID.
pub fn ct_study_of(extra: &str, patient_name: &str) -> (Daemon, String) {
    let daemon = Daemon::start_with(extra);
    let dir = tempfile::tempdir().unwrap();
    daemon.send_all(&ct_files_with(dir.path(), &[("PatientName", patient_name)]));
    assert!(eventually(Duration::from_secs(20), || {
        daemon.studies()[0]["state"] == "complete"
    }));
    let study = study_with(&daemon, "PR");
    (daemon, study)
}
