//! DICOMweb against the running daemon, with curl as the recipient:
//! retrieval of exactly what the grant covers (bytes as stored), metadata
//! and its bulk data links, refusals, CORS, `follow=true` while a study
//! arrives, and the journal entries all of it leaves.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::sharing::{as_holder, bind, path_of, share, study_with};
use common::wire::parts;
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

// ---- frames, rendered, thumbnail -------------------------------------

fn files_in(dir: &str) -> Vec<PathBuf> {
    sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!("{dir}/")))
        .collect()
}

/// A daemon with the samples of `dirs`, and a bound link to the study with
/// `modality`: daemon, link path, holder, study UID.
fn shared(dirs: &[&str], modality: &str) -> (Daemon, String, String, String) {
    let daemon = Daemon::start_with("");
    for dir in dirs {
        daemon.send_all(&files_in(dir));
    }
    let study = study_with(&daemon, modality);
    let grant = share(&daemon, &[study.as_str()]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    (daemon, path, holder, study)
}

fn dataset(path: &std::path::Path) -> dicom_object::DefaultDicomObject {
    dicom_object::open_file(path).unwrap()
}

fn uid_of(object: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> String {
    object
        .element(tag)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches('\0')
        .to_string()
}

/// `…/studies/{s}/series/{se}/instances/{sop}` of a sample file.
fn instance_path(link: &str, file: &std::path::Path) -> String {
    use dicom_dictionary_std::tags;
    let object = dataset(file);
    format!(
        "{link}/dicomweb/studies/{}/series/{}/instances/{}",
        uid_of(&object, tags::STUDY_INSTANCE_UID),
        uid_of(&object, tags::SERIES_INSTANCE_UID),
        uid_of(&object, tags::SOP_INSTANCE_UID)
    )
}

/// Native pixel data of a file, as stored.
fn native_pixels(file: &std::path::Path) -> Vec<u8> {
    dataset(file)
        .element(dicom_dictionary_std::tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap()
        .to_vec()
}

#[test]
fn frames_of_a_multiframe_come_decoded_in_the_order_asked() {
    let (daemon, link, holder, _) = shared(&["multiframe"], "XA");
    let file = &files_in("multiframe")[0];
    let pixels = native_pixels(file);
    let frame = |n: usize| pixels[(n - 1) * 65536..n * 65536].to_vec();
    let url = format!("{}/frames/20,1,5", instance_path(&link, file));
    let reply = daemon.https("GET", &url, as_holder(&holder));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let content_type = reply.header("content-type").unwrap();
    assert!(
        content_type.contains("type=\"application/octet-stream\""),
        "{content_type}"
    );
    assert_eq!(
        reply.header("content-length"),
        Some(reply.raw.len().to_string().as_str())
    );
    let got = parts(&reply);
    assert_eq!(got.len(), 3);
    for ((head, body), n) in got.iter().zip([20, 1, 5]) {
        assert!(head.contains("application/octet-stream"), "{head}");
        assert!(*body == frame(n), "frame {n} differs from the file's");
    }
    // out of range: says how many there are
    let reply = daemon.https(
        "GET",
        &format!("{}/frames/21", instance_path(&link, file)),
        as_holder(&holder),
    );
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(
        reply.body.contains("21") && reply.body.contains("20"),
        "{}",
        reply.body
    );
    let reply = daemon.https(
        "GET",
        &format!("{}/frames/0", instance_path(&link, file)),
        as_holder(&holder),
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
}

/// The RLE sample's decoded pixels are those of CT000011 (sample-dicom
/// README): decoded frames are compared with that file, stored frames with
/// the fragment in the RLE file, as DCMTK's dcmdump writes it out.
#[test]
fn compressed_frames_decoded_by_default_or_as_stored_when_asked() {
    let (daemon, link, holder, _) = shared(&["rle"], "CT");
    let file = &files_in("rle")[0];
    let frames = format!("{}/frames/1", instance_path(&link, file));
    let reply = daemon.https("GET", &frames, as_holder(&holder));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reference = common::samples().join("ct-phantom/CT000011.dcm");
    let got = parts(&reply);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].0.contains("transfer-syntax=1.2.840.10008.1.2.1"),
        "{}",
        got[0].0
    );
    assert!(
        got[0].1 == native_pixels(&reference),
        "decoded RLE differs from CT000011"
    );

    // as stored: the fragment, byte for byte (dcmdump +W writes it out)
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/dcmdump")
        .args(["-q", "+W"])
        .arg(dir.path())
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut fragments: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".raw"))
        .collect();
    fragments.sort();
    // `….0.raw` is the (empty) offset table, `….1.raw` the one fragment
    assert_eq!(fragments.len(), 2, "{fragments:?}");
    let fragment = std::fs::read(fragments.last().unwrap()).unwrap();
    for accept in [
        "multipart/related; type=\"image/dicom-rle\"",
        "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*",
    ] {
        let reply = daemon.https("GET", &frames, holder_accepting(&holder, accept));
        assert_eq!(reply.status, 200, "{accept}: {}", reply.body);
        let got = parts(&reply);
        assert!(
            got[0].0.contains("transfer-syntax=1.2.840.10008.1.2.5"),
            "{}",
            got[0].0
        );
        assert!(got[0].1 == fragment, "{accept}: not the stored fragment");
    }
    // no transcoding between codecs: a precise 406
    let reply = daemon.https(
        "GET",
        &frames,
        holder_accepting(&holder, "multipart/related; type=\"image/jp2\""),
    );
    assert_eq!(reply.status, 406, "{}", reply.body);
    assert!(reply.body.contains("image/dicom-rle"), "{}", reply.body);
}

/// JPEG baseline decoded by pushgate against DCMTK's dcmdjpeg: lossy
/// decoders may round differently, by a grey level at most.
#[test]
fn jpeg_frames_decode_like_dcmtk() {
    let (daemon, link, holder, _) = shared(&["jpeg"], "US");
    let file = &files_in("jpeg")[0];
    let reply = daemon.https(
        "GET",
        &format!("{}/frames/1", instance_path(&link, file)),
        as_holder(&holder),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ours = &parts(&reply)[0].1;
    let dir = tempfile::tempdir().unwrap();
    let decoded = dir.path().join("d.dcm");
    let out = Command::new("/usr/bin/dcmdjpeg")
        .arg(file)
        .arg(&decoded)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let theirs = native_pixels(&decoded);
    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 2, "differs from dcmdjpeg by up to {worst}");
}

fn image(reply: &Reply) -> dicom_pixeldata::image::DynamicImage {
    dicom_pixeldata::image::load_from_memory(&reply.raw)
        .unwrap_or_else(|e| panic!("not an image ({e}): {reply:?}"))
}

/// DCMTK's rendering of `file` with a window, as 8-bit grey.
fn dcmj2pnm(file: &std::path::Path, center: &str, width: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.pgm");
    let out = Command::new("/usr/bin/dcmj2pnm")
        .args(["--write-raw-pnm", "+Ww", center, width])
        .arg(file)
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pgm = std::fs::read(out_file).unwrap();
    dicom_pixeldata::image::load_from_memory(&pgm)
        .unwrap()
        .to_luma8()
        .into_raw()
}

#[test]
fn rendered_images_are_windowed_like_dcmtk() {
    let (daemon, link, holder, _) = shared(&["ct-phantom"], "CT");
    let file = common::samples().join("ct-phantom/CT000011.dcm");
    let rendered = format!("{}/rendered", instance_path(&link, &file));
    for (center, width) in [("40", "80"), ("600", "2800")] {
        let reply = daemon.https(
            "GET",
            &format!("{rendered}?window={center},{width},linear"),
            holder_accepting(&holder, "image/png"),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("image/png"));
        let ours = image(&reply).to_luma8().into_raw();
        let theirs = dcmj2pnm(&file, center, width);
        assert_eq!(ours.len(), 256 * 256);
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "window {center}/{width}: off DCMTK by up to {worst}"
        );
    }
    // default: JPEG at the file's own first window (brain 40/80)
    let reply = daemon.https("GET", &rendered, as_holder(&holder));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("image/jpeg"));
    let jpeg = image(&reply).to_luma8().into_raw();
    let brain = dcmj2pnm(&file, "40", "80");
    let mean = jpeg
        .iter()
        .zip(&brain)
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / jpeg.len() as f64;
    assert!(
        mean < 3.0,
        "JPEG far from the file's window: mean error {mean}"
    );
    // refusals with reasons
    for (query, accept, status) in [
        ("?quality=0", "image/jpeg", 400),
        ("?window=40", "image/jpeg", 400),
        ("?viewport=10,10,0,0,5,5", "image/jpeg", 400),
        ("", "image/gif", 406),
    ] {
        let reply = daemon.https(
            "GET",
            &format!("{rendered}{query}"),
            holder_accepting(&holder, accept),
        );
        assert_eq!(reply.status, status, "{query} {accept}: {}", reply.body);
        assert!(
            reply.json()["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
    }
    let sr = common::samples().join("ct-phantom/SR000001.dcm");
    let reply = daemon.https(
        "GET",
        &format!("{}/rendered", instance_path(&link, &sr)),
        as_holder(&holder),
    );
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(reply.body.contains("no pixel data"), "{}", reply.body);
}

#[test]
fn thumbnails_fit_and_show_the_middle_image() {
    let (daemon, link, holder, study) = shared(&["ct-phantom"], "CT");
    let ct = common::samples().join("ct-phantom/CT000001.dcm");
    let series = uid_of(
        &dataset(&ct),
        dicom_dictionary_std::tags::SERIES_INSTANCE_UID,
    );
    let base = format!("{link}/dicomweb/studies/{study}");
    // the series thumbnail is the middle slice of 16 (the 9th, index 8)
    let reply = daemon.https(
        "GET",
        &format!("{base}/series/{series}/thumbnail"),
        holder_accepting(&holder, "image/png"),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let thumb = image(&reply).to_luma8();
    assert_eq!(thumb.dimensions(), (256, 256));
    let middle = common::samples().join("ct-phantom/CT000009.dcm");
    let reply = daemon.https(
        "GET",
        &format!("{}/rendered", instance_path(&link, &middle)),
        holder_accepting(&holder, "image/png"),
    );
    assert_eq!(reply.status, 200);
    assert!(
        thumb.into_raw() == image(&reply).to_luma8().into_raw(),
        "not the middle slice"
    );
    // the study thumbnail, scaled to a viewport, as a browser asks for it
    let reply = daemon.https(
        "GET",
        &format!("{base}/thumbnail?viewport=64,64"),
        holder_accepting(
            &holder,
            "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        ),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("image/jpeg"));
    let small = image(&reply);
    assert_eq!((small.width(), small.height()), (64, 64));
    // a series without images has no thumbnail, and says so
    let sr = dataset(&common::samples().join("ct-phantom/SR000001.dcm"));
    let sr_series = uid_of(&sr, dicom_dictionary_std::tags::SERIES_INSTANCE_UID);
    let reply = daemon.https(
        "GET",
        &format!("{base}/series/{sr_series}/thumbnail"),
        as_holder(&holder),
    );
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(reply.body.contains("pixel data"), "{}", reply.body);
    // several frames in one rendering: refused with the reason
    let reply = daemon.https(
        "GET",
        &format!("{}/frames/1,1/rendered", instance_path(&link, &ct)),
        as_holder(&holder),
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    // the page shows thumbnails: they are journaled as such
    let found = common::eventually(Duration::from_secs(5), || {
        let out = daemon.cli(&["audit", "export", "--since", "1h"]);
        String::from_utf8_lossy(&out.stdout).lines().any(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            record["event"]["what"] == "thumbnail" && record["event"]["instances"] == 1
        })
    });
    assert!(found, "a thumbnail access event");
}
