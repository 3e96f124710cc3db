//! `GET /s/{token}/download.zip`, checked with software nobody here wrote:
//! `unzip` and Python's zipfile read the archive, `dcmftest` every file,
//! `dcmdump` and dicom3tools' `dcdirdmp` the DICOMDIR, `dciodvfy` checks
//! it against the Basic Directory IOD, DCMTK's `storescp
//! --bit-preserving` says what storescu actually sent, and curl resumes a
//! download cut in half. Only what the grant covers is in it; strangers get
//! the answer of an unknown link; downloads are journaled.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::sharing::{as_holder, bind, path_of, share};
use common::wire::same_bytes;
use common::{Ask, Daemon, Reply, Storescp, sample_files, sop_instance, text};
use serde_json::Value;

const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

fn samples_in(dir: &str) -> Vec<PathBuf> {
    sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!("/{dir}/")))
        .collect()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program).args(args).output().unwrap()
}

/// A top-level value of a file as dcmdump shows it (UIDs as numbers,
/// values converted to UTF-8).
fn value_of(path: &Path, tag: &str) -> String {
    let out = run(
        "dcmdump",
        &["-q", "-Un", "+U8", "+L", "-s", "+P", tag, s(path)],
    );
    let dump = String::from_utf8_lossy(&out.stdout).to_string();
    let line = dump
        .lines()
        .next()
        .unwrap_or_else(|| panic!("{} has no {tag}", path.display()));
    match (line.find('['), line.find(']')) {
        (Some(a), Some(b)) => line[a + 1..b].to_string(),
        _ => line.split_whitespace().nth(2).unwrap_or("").to_string(),
    }
}

fn transfer_syntax(path: &Path) -> String {
    common::transfer_syntax(path)
}

/// Waits until every study on the daemon is complete (`stable_after` is
/// 2 s in tests): what a recipient downloads is a finished study.
fn wait_complete(daemon: &Daemon) {
    let done = common::eventually(Duration::from_secs(20), || {
        daemon
            .studies()
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "complete")
    });
    assert!(done, "studies complete: {}", daemon.studies());
}

/// A bound link: (grant id, path, holder token).
fn link(daemon: &Daemon, args: &[&str]) -> (String, String, String) {
    let grant = share(daemon, args);
    let path = path_of(&grant["url"]);
    let holder = bind(daemon, &path);
    (grant["id"].as_str().unwrap().to_string(), path, holder)
}

fn with_headers(holder: &str, headers: &[(&'static str, String)]) -> Ask<'static> {
    let mut ask = as_holder(holder);
    ask.headers.extend(headers.iter().cloned());
    ask
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .header(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", reply.headers))
}

/// A HEAD request as `curl -I` makes it: (status, headers without Date,
/// body bytes received).
fn head(
    daemon: &Daemon,
    protocol: &str,
    path: &str,
    holder: Option<&str>,
) -> (u16, Vec<(String, String)>, usize) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", protocol, "-I", "--max-time", "20"]);
    if let Some(holder) = holder {
        cmd.args(["-H", &format!("Authorization: Bearer {holder}")]);
    }
    let out = cmd
        .arg(format!("https://{}{path}", daemon.http))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(n, _)| n != "date")
        .collect();
    (status, headers, body.len())
}

/// One leaf record of a DICOMDIR as dcmdump shows it.
#[derive(Debug)]
struct Leaf {
    kind: String,
    file_id: String,
    sop_class: String,
    sop_instance: String,
    transfer_syntax: String,
}

/// The records of a DICOMDIR: every record type with its count, the leaf
/// records, and the values of the upper records by (type, tag).
struct Directory {
    kinds: BTreeMap<String, usize>,
    leaves: Vec<Leaf>,
    upper: Vec<(String, String, String)>,
}

fn read_dicomdir(path: &Path) -> Directory {
    let out = run("dcmdump", &["-q", "-Un", "+U8", "+L", s(path)]);
    assert!(out.status.success(), "dcmdump DICOMDIR: {}", text(&out));
    let dump = String::from_utf8_lossy(&out.stdout).to_string();
    let mut kinds = BTreeMap::new();
    let mut records: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in dump.lines() {
        let line = line.trim();
        if let Some(at) = line.find("\"Directory Record\" ") {
            let rest = &line[at + "\"Directory Record\" ".len()..];
            let kind = rest[..rest.find(" #=").unwrap_or(rest.len())]
                .trim()
                .to_string();
            *kinds.entry(kind.clone()).or_insert(0) += 1;
            records.push((kind, Vec::new()));
        } else if line.starts_with('(')
            && let Some((_, elements)) = records.last_mut()
            && line.len() > 15
        {
            let tag = line[1..10].to_string();
            let rest = &line[15..];
            let value = match rest.strip_prefix('[') {
                Some(inner) => inner[..inner.find(']').unwrap_or(inner.len())].to_string(),
                None => rest.split_whitespace().next().unwrap_or("").to_string(),
            };
            elements.push((tag, value));
        }
    }
    let mut leaves = Vec::new();
    let mut upper = Vec::new();
    for (kind, elements) in records {
        let get = |tag: &str| {
            elements
                .iter()
                .find(|(t, _)| t == tag)
                .map(|(_, v)| v.clone())
        };
        if let Some(file_id) = get("0004,1500") {
            leaves.push(Leaf {
                kind,
                file_id,
                sop_class: get("0004,1510").unwrap_or_default(),
                sop_instance: get("0004,1511").unwrap_or_default(),
                transfer_syntax: get("0004,1512").unwrap_or_default(),
            });
        } else {
            for (tag, value) in elements {
                upper.push((kind.clone(), tag, value));
            }
        }
    }
    Directory {
        kinds,
        leaves,
        upper,
    }
}

/// The leaf record type PS3.3 Table F.4-1 gives an instance of this
/// modality's SOP class (in these samples).
fn record_type(modality: &str) -> &'static str {
    match modality {
        "SR" => "SR DOCUMENT",
        "PR" => "PRESENTATION",
        _ => "IMAGE",
    }
}

/// Downloads, unpacks and checks one file-set against the files the grant
/// covers: the stored files byte for byte, their data sets as storescu
/// sent them (`sent`: SOP Instance UID → the data set storescp kept), and
/// a DICOMDIR that DCMTK and dicom3tools read and dciodvfy accepts.
/// Returns the archive.
fn check_file_set(
    daemon: &Daemon,
    path: &str,
    holder: &str,
    covered: &[PathBuf],
    sent: &BTreeMap<String, Vec<u8>>,
) -> Vec<u8> {
    let reply = daemon.https("GET", &format!("{path}/download.zip"), as_holder(holder));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(header(&reply, "content-type"), "application/zip");
    assert_eq!(
        header(&reply, "content-length"),
        reply.raw.len().to_string(),
        "Content-Length is the body's length"
    );
    assert_eq!(header(&reply, "accept-ranges"), "bytes");
    let etag = header(&reply, "etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    let disposition = header(&reply, "content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"") && disposition.ends_with(".zip\""),
        "{disposition}"
    );
    let token = &path[path.rfind('/').unwrap() + 1..];
    assert!(!disposition.contains(token), "no token in the file name");

    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("download.zip");
    std::fs::write(&zip, &reply.raw).unwrap();
    let out = run("unzip", &["-t", s(&zip)]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("No errors detected"),
        "unzip -t: {}",
        text(&out)
    );
    // a second reader: Python's zipfile checks every CRC and lists names
    let out = run(
        "python3",
        &[
            "-c",
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             bad = z.testzip()\n\
             assert bad is None, bad\n\
             print('\\n'.join(z.namelist()))",
            s(&zip),
        ],
    );
    assert!(out.status.success(), "python zipfile: {}", text(&out));
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no name twice: {names:?}");
    assert!(names.contains(&"DICOMDIR".to_string()), "{names:?}");
    assert!(names.contains(&"README.TXT".to_string()), "{names:?}");
    let dicom: Vec<&String> = names.iter().filter(|n| n.starts_with("DICOM/")).collect();
    assert_eq!(
        names.len(),
        dicom.len() + 2,
        "DICOMDIR, README.TXT and DICOM/… only: {names:?}"
    );
    assert_eq!(dicom.len(), covered.len(), "one file per covered instance");

    let root = dir.path().join("unpacked");
    let out = run("unzip", &["-q", s(&zip), "-d", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let stored: BTreeMap<String, PathBuf> = daemon
        .stored_files()
        .into_iter()
        .map(|p| (sop_instance(&p), p))
        .collect();
    let expected: BTreeMap<String, &PathBuf> =
        covered.iter().map(|p| (sop_instance(p), p)).collect();
    let mut in_zip = BTreeMap::new();
    for name in &dicom {
        let file = root.join(name);
        // PS3.10 file IDs: components of up to 8 of A-Z, 0-9, _
        for component in name.split('/') {
            assert!(
                component.len() <= 8
                    && component
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
        let out = run("dcmftest", &[s(&file)]);
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("yes:"),
            "dcmftest {name}: {}",
            text(&out)
        );
        let sop = sop_instance(&file);
        assert!(
            expected.contains_key(&sop),
            "{name} ({sop}) is not covered by the grant"
        );
        let bytes = std::fs::read(&file).unwrap();
        same_bytes(
            &bytes,
            &std::fs::read(&stored[&sop]).unwrap(),
            &format!("{name}: the stored file"),
        );
        same_bytes(
            &common::dataset_bytes(&file),
            &sent[&sop],
            &format!("{name}: the data set storescu sent"),
        );
        in_zip.insert(sop, name.to_string());
    }
    assert_eq!(
        in_zip.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "exactly the covered instances"
    );

    // the DICOMDIR, read by DCMTK
    let dicomdir = root.join("DICOMDIR");
    let out = run("dcmftest", &[s(&dicomdir)]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("yes:"));
    assert_eq!(
        value_of(&dicomdir, "0002,0002"),
        "1.2.840.10008.1.3.10",
        "Media Storage Directory Storage"
    );
    let directory = read_dicomdir(&dicomdir);
    let studies: BTreeSet<String> = covered.iter().map(|p| value_of(p, "0020,000d")).collect();
    let series: BTreeSet<String> = covered.iter().map(|p| value_of(p, "0020,000e")).collect();
    let patients: BTreeSet<String> = covered.iter().map(|p| value_of(p, "0010,0020")).collect();
    assert_eq!(directory.kinds.get("PATIENT"), Some(&patients.len()));
    assert_eq!(directory.kinds.get("STUDY"), Some(&studies.len()));
    assert_eq!(directory.kinds.get("SERIES"), Some(&series.len()));
    let mut leaf_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for file in covered {
        *leaf_kinds
            .entry(record_type(&value_of(file, "0008,0060")).to_string())
            .or_insert(0) += 1;
    }
    for (kind, count) in &leaf_kinds {
        assert_eq!(directory.kinds.get(kind), Some(count), "{kind} records");
    }
    assert_eq!(
        directory.kinds.len(),
        3 + leaf_kinds.len(),
        "no other records: {:?}",
        directory.kinds
    );
    assert_eq!(directory.leaves.len(), covered.len());
    for leaf in &directory.leaves {
        let name = leaf.file_id.replace('\\', "/");
        let file = root.join(&name);
        assert!(
            file.is_file(),
            "{} points at a file in the zip",
            leaf.file_id
        );
        let original = expected[&leaf.sop_instance];
        assert_eq!(in_zip[&leaf.sop_instance], name, "{leaf:?}");
        assert_eq!(leaf.sop_class, value_of(original, "0008,0016"), "{leaf:?}");
        assert_eq!(leaf.transfer_syntax, transfer_syntax(&file), "{leaf:?}");
        assert_eq!(
            leaf.kind,
            record_type(&value_of(original, "0008,0060")),
            "{leaf:?}"
        );
    }
    let first = &covered[0];
    for (kind, tag) in [
        ("PATIENT", "0010,0010"),
        ("PATIENT", "0010,0020"),
        ("STUDY", "0020,000d"),
        ("STUDY", "0008,0020"),
        ("STUDY", "0008,0050"),
    ] {
        let found: Vec<&String> = directory
            .upper
            .iter()
            .filter(|(k, t, _)| k == kind && t == tag)
            .map(|(_, _, v)| v)
            .collect();
        assert_eq!(found, [&value_of(first, tag)], "{kind} {tag}");
    }
    for series_uid in &series {
        assert!(
            directory
                .upper
                .iter()
                .any(|(k, t, v)| k == "SERIES" && t == "0020,000e" && v == series_uid),
            "a SERIES record for {series_uid}"
        );
    }

    // dicom3tools read it too, and find every file through it
    let out = run("dcdirdmp", &[s(&dicomdir)]);
    assert!(out.status.success(), "dcdirdmp: {}", text(&out));
    // (it writes the listing to stderr)
    let listing = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let referenced: Vec<String> = listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-> "))
        .map(|id| id.trim().replace('\\', "/"))
        .collect();
    assert_eq!(
        referenced.iter().collect::<BTreeSet<_>>(),
        in_zip.values().collect::<BTreeSet<_>>(),
        "dcdirdmp: {listing}"
    );
    // … and dciodvfy finds no error in it against the Basic Directory IOD.
    // Warnings are accepted (e.g. about optional attributes); they are
    // printed here for whoever reads the test log.
    let out = run("dciodvfy", &[s(&dicomdir)]);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("BasicDirectory"), "dciodvfy: {report}");
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("Error")).collect();
    assert!(errors.is_empty(), "dciodvfy errors: {errors:#?}");
    for warning in report.lines().filter(|l| l.starts_with("Warning")) {
        eprintln!("dciodvfy (accepted): {warning}");
    }

    // the README says what is in it
    let readme = std::fs::read_to_string(root.join("README.TXT")).unwrap();
    let images = readme
        .lines()
        .find_map(|l| l.strip_prefix("Images:"))
        .unwrap_or_else(|| panic!("no image count in {readme}"));
    assert_eq!(
        images.split_whitespace().next(),
        Some(covered.len().to_string().as_str()),
        "{readme}"
    );
    assert!(readme.contains("DICOMDIR"));
    reply.raw
}

/// What storescu sent of each file (DCMTK re-encodes sequences on the
/// way), as DCMTK's storescp --bit-preserving kept it: SOP → data set.
fn as_sent(files: &[PathBuf]) -> BTreeMap<String, Vec<u8>> {
    let reference = Storescp::start();
    reference.receive(files);
    let kept: BTreeMap<String, Vec<u8>> = reference
        .files()
        .iter()
        .map(|p| (sop_instance(p), common::decoded_dataset_bytes(p)))
        .collect();
    assert_eq!(kept.len(), files.len());
    kept
}

#[test]
fn the_zip_is_a_file_set_of_exactly_what_the_grant_covers() {
    let daemon = Daemon::start();
    let all = sample_files();
    daemon.send_all(&all);
    wait_complete(&daemon);
    let ct = samples_in("ct-phantom");
    let study = value_of(&ct[0], "0020,000d");
    let covered: Vec<PathBuf> = ct
        .iter()
        .filter(|p| value_of(p, "0008,0060") != "PR")
        .cloned()
        .collect();
    assert_eq!(covered.len(), ct.len() - 1);
    let sent = as_sent(&ct);
    let (_, path, holder) = link(&daemon, &[&study, "--exclude-modality", "PR"]);
    let zip = check_file_set(&daemon, &path, &holder, &covered, &sent);
    // nothing of the PR or of another study, not even a UID in the DICOMDIR
    let others: Vec<&PathBuf> = all.iter().filter(|p| !covered.contains(p)).collect();
    assert!(others.len() > 10);
    let raw = String::from_utf8_lossy(&zip);
    for other in others {
        let sop = sop_instance(other);
        assert!(!raw.contains(&sop), "{} is in the archive", other.display());
    }
    // the same study, the same archive: byte for byte, same ETag
    let again = daemon.https("GET", &format!("{path}/download.zip"), as_holder(&holder));
    assert_eq!(again.status, 200);
    same_bytes(&again.raw, &zip, "a second download");
}

#[test]
fn implicit_vr_latin1_compressed_and_multiframe_studies_import_like_a_cd_too() {
    let daemon = Daemon::start();
    let all = sample_files();
    daemon.send_all(&all);
    wait_complete(&daemon);
    for dir in ["mr-brain", "jpeg", "multiframe", "rle"] {
        let files = samples_in(dir);
        let sent = as_sent(&files);
        let study = value_of(&files[0], "0020,000d");
        let (_, path, holder) = link(&daemon, &[&study]);
        let zip = check_file_set(&daemon, &path, &holder, &files, &sent);
        let unpacked = tempfile::tempdir().unwrap();
        let archive = unpacked.path().join("d.zip");
        std::fs::write(&archive, &zip).unwrap();
        assert!(
            run("unzip", &["-q", s(&archive), "-d", s(unpacked.path())])
                .status
                .success()
        );
        let dicomdir = unpacked.path().join("DICOMDIR");
        let directory = read_dicomdir(&dicomdir);
        // each file's own syntax in its record (Implicit VR for the MR)
        for leaf in &directory.leaves {
            let file = unpacked.path().join(leaf.file_id.replace('\\', "/"));
            assert_eq!(leaf.transfer_syntax, transfer_syntax(&file), "{dir}");
        }
        if dir == "mr-brain" {
            assert!(
                directory
                    .leaves
                    .iter()
                    .all(|l| l.transfer_syntax == IMPLICIT_LE)
            );
            // a Latin-1 name, written so that DCMTK reads the same name
            let name = value_of(&files[0], "0010,0010");
            assert!(!name.is_ascii(), "{name}");
            assert!(
                directory
                    .upper
                    .iter()
                    .any(|(k, t, v)| k == "PATIENT" && t == "0010,0010" && *v == name),
                "PATIENT record named {name}"
            );
        }
    }
}

#[test]
fn head_ranges_and_if_range_resume_a_download_cut_in_half() {
    let daemon = Daemon::start();
    daemon.send_all(&samples_in("ct-phantom"));
    wait_complete(&daemon);
    let study = value_of(&samples_in("ct-phantom")[0], "0020,000d");
    let (_, path, holder) = link(&daemon, &[&study]);
    let url = format!("{path}/download.zip");
    let full = daemon.https("GET", &url, as_holder(&holder));
    assert_eq!(full.status, 200);
    let len = full.raw.len();
    assert!(len > 1_000_000, "{len}");
    let etag = header(&full, "etag").to_string();
    assert_eq!(header(&full, "content-length"), len.to_string());

    // HEAD: the same headers, no body
    let (status, headers, body) = head(&daemon, "--http2", &url, Some(&holder));
    assert_eq!(status, 200);
    assert_eq!(body, 0, "HEAD has no body");
    for name in [
        "content-type",
        "content-length",
        "accept-ranges",
        "etag",
        "content-disposition",
    ] {
        let value = headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        assert_eq!(value, full.header(name), "{name}");
    }
    let again = daemon.https("GET", &url, as_holder(&holder));
    assert_eq!(
        header(&again, "etag"),
        etag,
        "the same study, the same ETag"
    );

    // the first half, then curl resumes (-C -) from what it has
    let mid = len / 2;
    let first = daemon.https(
        "GET",
        &url,
        with_headers(&holder, &[("Range", format!("bytes=0-{}", mid - 1))]),
    );
    assert_eq!(first.status, 206);
    assert_eq!(
        header(&first, "content-range"),
        format!("bytes 0-{}/{len}", mid - 1)
    );
    assert_eq!(header(&first, "content-length"), mid.to_string());
    assert_eq!(header(&first, "etag"), etag);
    same_bytes(&first.raw, &full.raw[..mid], "the first half");
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join("partial.zip");
    std::fs::write(&partial, &first.raw).unwrap();
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "30", "-C", "-", "-w", "%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {holder}")])
        .arg("-o")
        .arg(&partial)
        .arg(format!("https://{}{url}", daemon.http))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl -C -: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "206");
    same_bytes(
        &std::fs::read(&partial).unwrap(),
        &full.raw,
        "resumed download",
    );
    assert!(run("unzip", &["-tq", s(&partial)]).status.success());

    // the second half by an open range, the tail by a suffix range
    let rest = daemon.https(
        "GET",
        &url,
        with_headers(&holder, &[("Range", format!("bytes={mid}-"))]),
    );
    assert_eq!(rest.status, 206);
    assert_eq!(
        header(&rest, "content-range"),
        format!("bytes {mid}-{}/{len}", len - 1)
    );
    let mut joined = first.raw.clone();
    joined.extend_from_slice(&rest.raw);
    same_bytes(&joined, &full.raw, "both halves");
    let tail = daemon.https(
        "GET",
        &url,
        with_headers(&holder, &[("Range", "bytes=-1000".into())]),
    );
    assert_eq!(tail.status, 206);
    same_bytes(&tail.raw, &full.raw[len - 1000..], "the last 1000 bytes");
    // a range reaching past the end ends at the end
    let over = daemon.https(
        "GET",
        &url,
        with_headers(
            &holder,
            &[("Range", format!("bytes={}-{}", len - 10, len + 500))],
        ),
    );
    assert_eq!(over.status, 206);
    same_bytes(&over.raw, &full.raw[len - 10..], "clipped range");

    // If-Range: the same archive resumes; another one starts over
    let resumed = daemon.https(
        "GET",
        &url,
        with_headers(
            &holder,
            &[
                ("Range", format!("bytes={mid}-")),
                ("If-Range", etag.clone()),
            ],
        ),
    );
    assert_eq!(resumed.status, 206);
    same_bytes(&resumed.raw, &full.raw[mid..], "If-Range with the ETag");
    let restarted = daemon.https(
        "GET",
        &url,
        with_headers(
            &holder,
            &[
                ("Range", format!("bytes={mid}-")),
                ("If-Range", "\"0123456789abcdef0123456789abcdef\"".into()),
            ],
        ),
    );
    assert_eq!(restarted.status, 200);
    assert_eq!(restarted.header("content-range"), None);
    same_bytes(&restarted.raw, &full.raw, "If-Range with another ETag");

    // nothing to give: 416 with the length
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 10, len + 20),
    ] {
        let r = daemon.https(
            "GET",
            &url,
            with_headers(&holder, &[("Range", range.clone())]),
        );
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes */{len}"),
            "{range}"
        );
        assert!(r.raw.len() < 100, "{range}: no archive in a 416");
    }
    // several ranges (or nonsense) may be ignored: the whole archive
    for range in ["bytes=0-1,5-6", "items=0-10"] {
        let r = daemon.https(
            "GET",
            &url,
            with_headers(&holder, &[("Range", range.into())]),
        );
        assert_eq!(r.status, 200, "{range}");
        same_bytes(&r.raw, &full.raw, range);
    }
}

#[test]
fn strangers_and_dead_links_get_the_answer_of_an_unknown_link() {
    let daemon = Daemon::start();
    daemon.send_all(&samples_in("ct-phantom"));
    wait_complete(&daemon);
    let study = value_of(&samples_in("ct-phantom")[0], "0020,000d");
    let (_, path, holder) = link(&daemon, &[&study]);
    let (_, other_path, other_holder) = link(&daemon, &[&study]);
    // shared, never opened
    let unbound = path_of(&share(&daemon, &[&study])["url"]);
    // bound, then revoked
    let (revoked_id, revoked_path, revoked_holder) = link(&daemon, &[&study]);
    let out = daemon.cli(&["revoke", &revoked_id]);
    assert!(out.status.success(), "{}", text(&out));

    let zip = |p: &str| format!("{p}/download.zip");
    for accept in [None, Some("text/html")] {
        let ask = |holder: Option<&str>| {
            let mut ask = match holder {
                Some(h) => as_holder(h),
                None => Ask::default(),
            };
            if let Some(accept) = accept {
                ask.headers.push(("Accept", accept.to_string()));
            }
            ask
        };
        let unknown = daemon.https(
            "GET",
            &zip("/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ask(None),
        );
        assert_eq!(unknown.status, 404, "{accept:?}");
        for (what, url, who) in [
            ("no credential", zip(&path), None),
            (
                "a forged holder token",
                zip(&path),
                Some("forged-token-forged-token-forged-token-xyz"),
            ),
            (
                "another link's holder",
                zip(&path),
                Some(other_holder.as_str()),
            ),
            ("an unbound link", zip(&unbound), None),
            (
                "an unbound link, someone's token",
                zip(&unbound),
                Some(holder.as_str()),
            ),
            (
                "a revoked link's holder",
                zip(&revoked_path),
                Some(revoked_holder.as_str()),
            ),
            (
                "a token one character off",
                {
                    let mut p = path.clone();
                    let last = p.pop().unwrap();
                    p.push(if last == 'A' { 'B' } else { 'A' });
                    zip(&p)
                },
                Some(holder.as_str()),
            ),
        ] {
            let r = daemon.https("GET", &url, ask(who));
            assert_eq!(
                (r.status, &r.headers, &r.body),
                (unknown.status, &unknown.headers, &unknown.body),
                "{what} ({accept:?})"
            );
            // a range or a HEAD changes nothing
            let mut ranged = ask(who);
            ranged.headers.push(("Range", "bytes=0-99".into()));
            let r = daemon.https("GET", &url, ranged);
            assert_eq!((r.status, &r.body), (404, &unknown.body), "{what}, ranged");
            if accept.is_none() {
                // (HTTP/1.1: see head_answers_over_http2_carry_no_body)
                let (status, headers, _) = head(&daemon, "--http1.1", &url, who);
                let (unknown_status, unknown_headers, _) = head(
                    &daemon,
                    "--http1.1",
                    &zip("/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                    None,
                );
                assert_eq!(
                    (status, headers),
                    (unknown_status, unknown_headers),
                    "{what}, HEAD"
                );
                assert_eq!(status, 404);
            }
        }
    }
    // the holders themselves still get their archives
    for (p, h) in [(&path, &holder), (&other_path, &other_holder)] {
        let r = daemon.https("GET", &zip(p), as_holder(h));
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-length"), r.raw.len().to_string());
    }
}

/// The journal's download events of one grant.
fn download_events(daemon: &Daemon, grant: &str) -> Vec<Value> {
    let out = daemon.cli(&["audit", "export", "--since", "1h"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["event"].clone())
        .filter(|e| e["what"] == "download" && e["grant"] == grant)
        .collect()
}

#[test]
fn downloads_are_journaled_with_what_and_for_whom() {
    let daemon = Daemon::start();
    let ct = samples_in("ct-phantom");
    daemon.send_all(&ct);
    wait_complete(&daemon);
    let study = value_of(&ct[0], "0020,000d");
    let (grant, path, holder) = link(&daemon, &[&study, "--exclude-modality", "PR"]);
    let covered = ct
        .iter()
        .filter(|p| value_of(p, "0008,0060") != "PR")
        .count();
    let reply = daemon.https("GET", &format!("{path}/download.zip"), as_holder(&holder));
    assert_eq!(reply.status, 200);
    let stranger = daemon.https("GET", &format!("{path}/download.zip"), Ask::default());
    assert_eq!(stranger.status, 404);
    let found = common::eventually(Duration::from_secs(5), || {
        let events = download_events(&daemon, &grant);
        let whole = events.iter().any(|e| {
            e["outcome"]["result"] == "allowed"
                && e["study"] == study.as_str()
                && e["instances"] == covered as u64
                && e["who"]["kind"] == "holder_token"
                && e["bytes"].as_u64().is_some_and(|b| b > 0)
        });
        let refused = events.iter().any(|e| e["outcome"]["result"] == "denied");
        whole && refused
    });
    assert!(
        found,
        "an allowed download of {covered} instances and the refusal: {:#?}",
        download_events(&daemon, &grant)
    );
}

/// The journal must say how many bytes left, for the whole archive and for
/// a resumed part (NEN 7513: what was handed out).
#[test]
fn the_journal_counts_every_byte_sent() {
    let daemon = Daemon::start();
    let ct = samples_in("ct-phantom");
    daemon.send_all(&ct);
    wait_complete(&daemon);
    let study = value_of(&ct[0], "0020,000d");
    let (grant, path, holder) = link(&daemon, &[&study]);
    let url = format!("{path}/download.zip");
    let full = daemon.https("GET", &url, as_holder(&holder));
    assert_eq!(full.status, 200);
    let part = daemon.https(
        "GET",
        &url,
        with_headers(&holder, &[("Range", "bytes=100-1099".into())]),
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.raw.len(), 1000);
    let expected = [full.raw.len() as u64, 1000];
    let found = common::eventually(Duration::from_secs(5), || {
        let sent: Vec<u64> = download_events(&daemon, &grant)
            .iter()
            .filter(|e| e["outcome"]["result"] == "allowed")
            .map(|e| e["bytes"].as_u64().unwrap_or(0))
            .collect();
        expected.iter().all(|b| sent.contains(b))
    });
    assert!(
        found,
        "journaled bytes {:?}, sent {expected:?}",
        download_events(&daemon, &grant)
            .iter()
            .map(|e| e["bytes"].clone())
            .collect::<Vec<_>>()
    );
}

/// HEAD must be answerable over HTTP/2 too, for strangers as for holders:
/// the neutral 404 for a refused download, like the holder's 200.
#[test]
fn head_answers_over_http2_carry_no_body() {
    let daemon = Daemon::start();
    daemon.send_all(&samples_in("ct-phantom"));
    let study = value_of(&samples_in("ct-phantom")[0], "0020,000d");
    let (_, path, holder) = link(&daemon, &[&study]);
    let url = format!("{path}/download.zip");
    let (status, _, body) = head(&daemon, "--http2", &url, Some(&holder));
    assert_eq!((status, body), (200, 0), "the holder's HEAD");
    let (status, headers, body) = head(&daemon, "--http2", &url, None);
    assert_eq!((status, body), (404, 0), "a stranger's HEAD: {headers:?}");
    let (status, _, _) = head(&daemon, "--http2", "/", None);
    assert_eq!(status, 200, "HEAD /");
}

/// Layouts are reused between requests (parallel connections, resumes) but
/// never across a change of the study: a late instance is in the next ZIP,
/// under a new ETag.
#[test]
fn a_late_instance_is_in_the_next_download() {
    let daemon = Daemon::start_with("");
    daemon.send_all(&samples_in("ct-phantom"));
    wait_complete(&daemon);
    let study = value_of(&samples_in("ct-phantom")[0], "0020,000d");
    let (_, path, holder) = link(&daemon, &[study.as_str()]);
    let url = format!("{path}/download.zip");
    let first = daemon.https("GET", &url, as_holder(&holder));
    assert_eq!(first.status, 200);
    let again = daemon.https("GET", &url, as_holder(&holder));
    assert_eq!(header(&first, "etag"), header(&again, "etag"));
    assert!(first.raw == again.raw, "same study, same archive");

    // a copy of a slice with new UIDs, in the same study
    let dir = tempfile::tempdir().unwrap();
    let late = dir.path().join("late.dcm");
    std::fs::copy(&samples_in("ct-phantom")[0], &late).unwrap();
    let uid = "2.25.31415926535897932384626433832795028841";
    let out = run(
        "/usr/bin/dcmodify",
        &[
            "-nb",
            // dcmodify updates the meta group's copy itself
            "-m",
            &format!("(0008,0018)={uid}"),
            s(&late),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    daemon.send_all(std::slice::from_ref(&late));
    wait_complete(&daemon);
    let later = daemon.https("GET", &url, as_holder(&holder));
    assert_eq!(later.status, 200);
    assert_ne!(header(&first, "etag"), header(&later, "etag"));
    let file = dir.path().join("later.zip");
    std::fs::write(&file, &later.raw).unwrap();
    let listing = run("/usr/bin/unzip", &["-l", s(&file)]);
    let count = |listing: &str| listing.lines().filter(|l| l.contains("DICOM/")).count();
    std::fs::write(&file, &first.raw).unwrap();
    let before = run("/usr/bin/unzip", &["-l", s(&file)]);
    assert_eq!(
        count(&String::from_utf8_lossy(&listing.stdout)),
        count(&String::from_utf8_lossy(&before.stdout)) + 1
    );
}

/// A stop (SIGTERM, as systemd sends it) lets a running download finish
/// within the drain bound, then the daemon exits cleanly.
#[test]
fn a_stop_lets_a_running_download_finish() {
    let mut daemon = Daemon::start_with("");
    daemon.send_all(&samples_in("ct-phantom"));
    wait_complete(&daemon);
    let study = value_of(&samples_in("ct-phantom")[0], "0020,000d");
    let (_, path, holder) = link(&daemon, &[study.as_str()]);
    let whole = daemon.https("GET", &format!("{path}/download.zip"), as_holder(&holder));
    assert_eq!(whole.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("slow.zip");
    // about 2 MB at 400 kB/s: still running when the stop comes
    let mut curl = Command::new("curl")
        .args(["-sk", "--fail", "--limit-rate", "400k", "--max-time", "30"])
        .args(["-H", &format!("Authorization: Bearer {holder}")])
        .arg("-o")
        .arg(&out)
        .arg(format!("https://{}{path}/download.zip", daemon.http))
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        curl.try_wait().unwrap().is_none(),
        "the download is running"
    );
    let started = std::time::Instant::now();
    assert_eq!(daemon.stop(), Some(0), "a clean exit");
    let status = curl.wait().unwrap();
    assert!(status.success(), "the download was cut: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(26),
        "drained within the bound"
    );
    assert!(
        std::fs::read(&out).unwrap() == whole.raw,
        "the whole archive arrived"
    );
}
