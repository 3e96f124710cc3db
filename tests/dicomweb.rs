//! DICOMweb against the running daemon, with curl as the recipient:
//! retrieval of exactly what the grant covers (bytes as stored), metadata
//! and its bulk data links, refusals, CORS, `follow=true` while a study
//! arrives, and the journal entries all of it leaves.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::sharing::{as_holder, bind, path_of, share, study_with};
use common::{Ask, Daemon, Reply, sample_files, sop_instance, text};
use serde_json::Value;

const STORED: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

fn ct_files() -> Vec<PathBuf> {
    sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect()
}

/// A daemon with the CT study (16 CT, a PR, an SR), and a bound link to it
/// (`share_args` after the study UID); returns daemon, link path, holder
/// token, study UID.
fn shared_ct(extra: &str, share_args: &[&str]) -> (Daemon, String, String, String) {
    let daemon = Daemon::start_with(extra);
    daemon.send_all(&ct_files());
    let study = study_with(&daemon, "CT");
    let mut args = vec![study.as_str()];
    args.extend_from_slice(share_args);
    let grant = share(&daemon, &args);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    (daemon, path, holder, study)
}

fn holder_accepting(holder: &str, accept: &str) -> Ask<'static> {
    let mut ask = as_holder(holder);
    ask.headers.push(("Accept", accept.to_string()));
    ask
}

/// The parts of a multipart/related answer: (headers, content).
fn parts(reply: &Reply) -> Vec<(String, Vec<u8>)> {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/related"),
        "{content_type}"
    );
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("a boundary")
        .trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let body = &reply.raw;
    let mut positions = Vec::new();
    let mut i = 0;
    while let Some(at) = body[i..]
        .windows(delimiter.len())
        .position(|w| w == delimiter.as_slice())
    {
        positions.push(i + at);
        i += at + delimiter.len();
    }
    let mut out = Vec::new();
    for pair in positions.windows(2) {
        let part = &body[pair[0] + delimiter.len() + 2..pair[1] - 2];
        let split = part.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        out.push((
            String::from_utf8_lossy(&part[..split]).to_string(),
            part[split + 4..].to_vec(),
        ));
    }
    let last = *positions.last().expect("a close delimiter");
    assert_eq!(
        &body[last + delimiter.len()..],
        b"--\r\n",
        "the body ends with the close delimiter"
    );
    out
}

fn sop_of_part(part: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.dcm");
    std::fs::write(&path, part).unwrap();
    sop_instance(&path)
}

#[test]
fn a_study_comes_back_byte_for_byte_and_only_what_the_grant_covers() {
    let (daemon, path, holder, study) = shared_ct("", &["--exclude-modality", "PR"]);
    let reply = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies/{study}"),
        holder_accepting(&holder, STORED),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("content-length"),
        Some(reply.raw.len().to_string().as_str()),
        "the length is announced"
    );
    let parts = parts(&reply);
    assert_eq!(parts.len(), 17, "16 CT and the SR; the PR is left out");
    let stored: Vec<(String, Vec<u8>)> = daemon
        .stored_files()
        .into_iter()
        .map(|p| (sop_instance(&p), std::fs::read(&p).unwrap()))
        .collect();
    for (headers, content) in &parts {
        assert!(
            headers
                .contains("Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1"),
            "{headers}"
        );
        let sop = sop_of_part(content);
        let (_, file) = stored.iter().find(|(s, _)| *s == sop).unwrap();
        // intake_dcmtk shows the stored file holds what storescu sent
        assert_eq!(content, file, "{sop}: the stored file, byte for byte");
    }
    // viewing order: series number, then instance number (CT series 1
    // before the SR's 902)
    let first = sop_of_part(&parts[0].1);
    let ct1 = ct_files()
        .into_iter()
        .find(|p| p.ends_with("CT000001.dcm"))
        .unwrap();
    assert_eq!(first, sop_instance(&ct1));

    // the PR series and instance: as unknown as a study that does not exist
    let pr = ct_files()
        .into_iter()
        .find(|p| p.ends_with("PR000001.dcm"))
        .unwrap();
    let pr_sop = sop_instance(&pr);
    let meta = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies/{study}/metadata"),
        as_holder(&holder),
    );
    // the top-level Series Instance UID (not the referenced CT series)
    let pr_series = {
        let out = Command::new("dcmdump").arg("-q").arg(&pr).output().unwrap();
        let dump = String::from_utf8_lossy(&out.stdout).to_string();
        let line = dump
            .lines()
            .find(|l| l.starts_with("(0020,000e)"))
            .unwrap()
            .to_string();
        line[line.find('[').unwrap() + 1..line.find(']').unwrap()].to_string()
    };
    let unknown = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies/1.2.3.4.5.6"),
        holder_accepting(&holder, STORED),
    );
    assert_eq!(unknown.status, 404);
    for out_of_scope in [
        format!("{path}/dicomweb/studies/{study}/series/{pr_series}"),
        format!("{path}/dicomweb/studies/{study}/series/{pr_series}/instances/{pr_sop}"),
        format!("{path}/dicomweb/studies/{study}/series/{pr_series}/metadata"),
    ] {
        let accept = if out_of_scope.ends_with("metadata") {
            "application/dicom+json"
        } else {
            STORED
        };
        let r = daemon.https("GET", &out_of_scope, holder_accepting(&holder, accept));
        assert!(
            r.status == 404 && r.body == unknown.body,
            "{out_of_scope}: {} {}",
            r.status,
            r.body.chars().take(200).collect::<String>()
        );
    }
    assert!(!meta.body.contains(&pr_sop), "metadata leaves the PR out");
}

#[test]
fn metadata_points_at_bulk_data_of_this_link() {
    let (daemon, path, holder, study) = shared_ct("", &[]);
    let meta = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies/{study}/metadata"),
        as_holder(&holder),
    );
    assert_eq!(meta.status, 200, "{}", meta.body);
    assert_eq!(meta.header("content-type"), Some("application/dicom+json"));
    let instances = meta.json();
    let instances = instances.as_array().unwrap();
    assert_eq!(instances.len(), 18);
    let ct = instances
        .iter()
        .find(|i| i["00080060"]["Value"][0] == "CT")
        .unwrap();
    assert!(ct["7FE00010"].get("Value").is_none() && ct["7FE00010"].get("InlineBinary").is_none());
    let uri = ct["7FE00010"]["BulkDataURI"].as_str().unwrap();
    let base = format!("https://localhost:8443{path}/dicomweb/studies/{study}/series/");
    assert!(uri.starts_with(&base), "{uri} under {base}");
    assert!(uri.ends_with("/bulkdata/7FE00010"), "{uri}");
    let pixels = daemon.https(
        "GET",
        &uri[uri.find("/s/").unwrap()..],
        holder_accepting(
            &holder,
            "multipart/related; type=\"application/octet-stream\"",
        ),
    );
    assert_eq!(pixels.status, 200, "{}", pixels.body);
    let parts = parts(&pixels);
    assert_eq!(parts.len(), 1);
    assert!(parts[0].0.contains("application/octet-stream"));
    // 256 × 256 × 16 bit
    assert_eq!(parts[0].1.len(), 256 * 256 * 2);
    // the same bytes dcmdump writes out for the pixel data element
    let sop = ct["00080018"]["Value"][0].as_str().unwrap();
    let file = ct_files()
        .into_iter()
        .find(|p| sop_instance(p) == sop)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("dcmdump")
        .args(["-q", "+W"])
        .arg(dir.path())
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let written = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "raw"))
        .expect("dcmdump wrote the pixel data");
    assert_eq!(parts[0].1, std::fs::read(written).unwrap());

    // a bulk data path the instance does not have
    let none = daemon.https(
        "GET",
        &format!(
            "{}{}",
            &uri[uri.find("/s/").unwrap()..uri.len() - 8],
            "00420011"
        ),
        as_holder(&holder),
    );
    assert_eq!(none.status, 404);
}

#[test]
fn refusals_are_neutral_or_precise() {
    let (daemon, path, holder, study) = shared_ct("", &[]);
    let wado = format!("{path}/dicomweb/studies/{study}");
    // not the holder, no credential, a forged token, an unknown link:
    // the neutral answer, as anywhere under /s/
    let unknown = daemon.https(
        "GET",
        &format!("/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/dicomweb/studies/{study}"),
        Ask::default(),
    );
    assert_eq!(unknown.status, 404);
    for ask in [
        Ask::default(),
        as_holder("forged-token-forged-token-forged-token-xyz"),
    ] {
        let r = daemon.https("GET", &wado, ask);
        assert_eq!((r.status, &r.body), (404, &unknown.body));
    }
    // the holder asking for something impossible is told what and why
    let r = daemon.https("GET", &wado, holder_accepting(&holder, "application/pdf"));
    assert_eq!(r.status, 406, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("multipart/related")
    );
    let r = daemon.https(
        "GET",
        &wado,
        holder_accepting(
            &holder,
            "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50",
        ),
    );
    assert_eq!(r.status, 406, "{}", r.body);
    assert!(r.body.contains("1.2.840.10008.1.2.4.50"), "{}", r.body);
    let r = daemon.https(
        "GET",
        &format!("{wado}/series/1.2/instances/1.3/frames/0"),
        as_holder(&holder),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = daemon.https(
        "GET",
        &format!("{path}/dicomweb/nonsense"),
        as_holder(&holder),
    );
    assert_eq!(r.status, 404);
    let r = daemon.https("POST", &wado, as_holder(&holder));
    assert_eq!(r.status, 405);
    // still serving
    let r = daemon.https("GET", &wado, holder_accepting(&holder, STORED));
    assert_eq!(r.status, 200);
}

#[test]
fn a_viewer_on_an_allowed_origin_may_call_it() {
    let (daemon, path, holder, study) = shared_ct(
        "[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\ncors_origins = [\"https://viewer.example\"]\n",
        &[],
    );
    let url = format!("{path}/dicomweb/studies/{study}/metadata");
    let preflight = daemon.https(
        "OPTIONS",
        &url,
        Ask {
            headers: vec![
                ("Origin", "https://viewer.example".into()),
                ("Access-Control-Request-Method", "GET".into()),
                ("Access-Control-Request-Headers", "authorization".into()),
            ],
            ..Ask::default()
        },
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://viewer.example")
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
    assert_eq!(preflight.header("access-control-allow-credentials"), None);
    let mut ask = as_holder(&holder);
    ask.headers
        .push(("Origin", "https://viewer.example".into()));
    let r = daemon.https("GET", &url, ask);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://viewer.example")
    );
    let mut ask = as_holder(&holder);
    ask.headers.push(("Origin", "https://evil.example".into()));
    let r = daemon.https("GET", &url, ask);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[test]
fn follow_streams_instances_as_they_arrive_until_the_study_is_complete() {
    let daemon = Daemon::start();
    let files = ct_files();
    let (first, rest): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        *name < *"CT000006"
    });
    daemon.send_all(&first);
    let study = study_with(&daemon, "CT");
    let grant = share(&daemon, &[&study]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    let out_file = daemon.dir.path().join("followed.mp");
    let mut curl = Command::new("curl")
        .args(["-sk", "--max-time", "60", "-D"])
        .arg(daemon.dir.path().join("followed.head"))
        .arg("-o")
        .arg(&out_file)
        .args(["-H", &format!("Authorization: Bearer {holder}")])
        .args(["-H", &format!("Accept: {STORED}")])
        .arg(format!(
            "https://{}{path}/dicomweb/studies/{study}?follow=true",
            daemon.http
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        curl.try_wait().unwrap().is_none(),
        "the response stays open while the study arrives"
    );
    for file in &rest {
        daemon.send_all(std::slice::from_ref(file));
        std::thread::sleep(Duration::from_millis(150));
    }
    // complete 2 s (the test's stable_after) after the last instance
    let status = common::eventually(Duration::from_secs(30), || {
        curl.try_wait().unwrap().is_some()
    });
    assert!(status, "the response ends once the study is complete");
    assert!(curl.wait().unwrap().success());
    let head = std::fs::read_to_string(daemon.dir.path().join("followed.head")).unwrap();
    let reply = Reply {
        status: 200,
        headers: head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body: String::new(),
        raw: std::fs::read(&out_file).unwrap(),
    };
    let parts = parts(&reply);
    let mut sops: Vec<String> = parts.iter().map(|(_, c)| sop_of_part(c)).collect();
    sops.sort();
    let mut expected: Vec<String> = ct_files().iter().map(|p| sop_instance(p)).collect();
    expected.sort();
    assert_eq!(sops, expected, "every instance, each once");
}

#[test]
fn what_was_served_is_journaled() {
    let (daemon, path, holder, study) = shared_ct("", &[]);
    let reply = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies/{study}"),
        holder_accepting(&holder, STORED),
    );
    assert_eq!(reply.status, 200);
    let served = reply.raw.len() as u64;
    let found = common::eventually(Duration::from_secs(5), || {
        let out = daemon.cli(&["audit", "export", "--since", "1h"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).lines().any(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            let event = &record["event"];
            event["what"] == "wado"
                && event["instances"] == 18
                && event["bytes"] == served
                && event["study"] == study.as_str()
                && event["outcome"]["result"] == "allowed"
        })
    });
    assert!(found, "an access event with what was sent");
}
