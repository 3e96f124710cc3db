//! pushgate with third-party clients nobody here wrote: the Python
//! `dicomweb-client` library (PyPI) as a PACS or script would use it, and a
//! headless Chromium (Debian's, driven by Selenium) as the recipient's
//! browser: code entry, the study page with its thumbnails, the ZIP
//! download, opening the link, refusals.
//!
//! The clients are Python scripts under `tests/clients/`, run with the venv
//! `make test` creates (`target/pyenv`: dicomweb-client from PyPI, plus
//! Debian's python3-selenium through system site packages). Each prints
//! one JSON object naming the checks that passed and failed; the tests here
//! assert on it, and check the downloaded ZIP with unzip, DCMTK and
//! dicom3tools.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::clients::{Ran, run_script, tail};
use common::sharing::{bind, path_of, share};
use common::{Ask, Daemon, eventually, sample_files, samples, sop_instance, text};
use serde_json::{Value, json};

/// Links handed out must point at this daemon (the library follows the
/// BulkDataURIs in metadata as given), so `public_url` is its address.
const CONFIG: &str = "public_url = \"https://127.0.0.1:HTTP_PORT\"\n\
[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nstable_after = \"2s\"\n\
[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\n";

/// A daemon with every sample, and the study of each sample folder done
/// arriving (the study page shows no "still arriving" note then).
fn daemon_with_samples() -> Daemon {
    let daemon = Daemon::start_with(CONFIG);
    daemon.send_all(&sample_files());
    let complete = eventually(Duration::from_secs(30), || {
        let studies = daemon.studies();
        let studies = studies.as_array().unwrap();
        studies.len() == 5 && studies.iter().all(|s| s["state"] == "complete")
    });
    assert!(
        complete,
        "the 5 sample studies complete: {}",
        daemon.studies()
    );
    daemon
}

/// The Study Instance UID of a sample folder's files.
fn study_of(folder: &str) -> String {
    let file = sample_files()
        .into_iter()
        .find(|p| p.parent().unwrap().ends_with(folder))
        .unwrap();
    let out = Command::new("dcmdump")
        .args(["-q", "+P", "0020,000d"])
        .arg(&file)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&out.stdout).to_string();
    dump[dump.find('[').unwrap() + 1..dump.find(']').unwrap()].to_string()
}

// ---------------------------------------------------------------------------
// (a) dicomweb-client

/// Every sample on one daemon, and four bound links: the CT study without
/// its presentation state (PR), the MR (Implicit VR), the ultrasound (JPEG)
/// and the angiography (20 frames) studies whole.
fn dicomweb_client(part: &str) -> Ran {
    let daemon = daemon_with_samples();
    let mut grants = serde_json::Map::new();
    for (name, folder, extra) in [
        ("ct", "ct-phantom", &["--exclude-modality", "PR"][..]),
        ("mr", "mr-brain", &[][..]),
        ("us", "jpeg", &[][..]),
        ("xa", "multiframe", &[][..]),
    ] {
        let study = study_of(folder);
        let mut args = vec![study.as_str()];
        args.extend_from_slice(extra);
        let grant = share(&daemon, &args);
        let holder = bind(&daemon, &path_of(&grant["url"]));
        grants.insert(
            name.into(),
            json!({
                "dicomweb": format!("{}/dicomweb", grant["url"].as_str().unwrap()),
                "holder": holder,
            }),
        );
    }
    let config = json!({
        // the daemon's self-signed certificate: the client verifies against it
        "ca": daemon.data_dir().join("tls/cert.pem"),
        "samples": samples(),
        "grants": grants,
    });
    let ran = run_script("dicomweb_client_check.py", part, &config, daemon.dir.path());
    if ran.code != Some(0) {
        eprintln!("--- daemon log (tail) ---\n{}", tail(&daemon.log(), 6000));
    }
    ran
}

/// QIDO-RS: search_for_studies/series/instances return exactly what the
/// grant covers (the CT study's CT and SR series, 17 instances), never
/// the left-out PR nor the other patients' studies on the same daemon,
/// and retrieving those is a 404.
#[test]
fn dicomweb_client_searches_only_what_the_grant_covers() {
    dicomweb_client("scope").assert_passed(&[
        "qido_studies",
        "qido_studies_by_patient",
        "qido_series",
        "qido_instances",
        "scope_retrieval_refused",
    ]);
}

/// WADO-RS: retrieve_study/series/instance with transfer syntax `*` give
/// data sets equal, element by element and in their stored syntax, to the
/// sample files; the library's default retrieve_instance (which asks for
/// `*`) decodes in pydicom to the file's pixels, and so does Explicit VR LE
/// asked for by name; the SR's UTF-8 text arrives intact.
#[test]
fn dicomweb_client_retrieves_the_stored_instances() {
    dicomweb_client("retrieve").assert_passed(&[
        "retrieve_study_as_stored",
        "retrieve_series_as_stored",
        "retrieve_instances_as_stored",
        "retrieve_instance_default_and_explicit_le",
    ]);
}

/// Stored syntaxes other than Explicit VR LE: Implicit VR (MR, Latin-1
/// names) as stored and re-encoded to Explicit VR LE on request; JPEG
/// Baseline as stored (pydicom decodes it) and decoded by pushgate to
/// Explicit VR LE (within a level of Pillow's decoder); a 20-frame instance.
#[test]
fn dicomweb_client_gets_other_transfer_syntaxes() {
    dicomweb_client("syntaxes").assert_passed(&[
        "mr_implicit_vr_as_stored_and_explicit_le",
        "us_jpeg_as_stored_and_decoded",
        "xa_multiframe_as_stored",
    ]);
}

/// retrieve_study_metadata, then retrieve_bulkdata on each BulkDataURI:
/// the pixel data of each file, and a data set rebuilt by pydicom from the
/// JSON and the bulk data has every element of the file.
#[test]
fn dicomweb_client_follows_bulk_data_uris() {
    dicomweb_client("metadata")
        .assert_passed(&["metadata_then_bulkdata", "series_and_instance_metadata"]);
}

/// retrieve_instance_frames: frame 1 of a CT equals its pixel data (with
/// the library's default Accept and with application/octet-stream), MR
/// too; frames 1, 7 and 20 of the angiography are those slices of its
/// pixel data; the JPEG ultrasound gives its stored JPEG bitstream as
/// image/jpeg and a decoded frame as octet-stream; frame 21 of 20 and a
/// frame of the left-out PR are refused.
#[test]
fn dicomweb_client_retrieves_frames() {
    dicomweb_client("frames").assert_passed(&[
        "frames_ct_native",
        "frames_mr_implicit",
        "frames_xa_multiframe",
        "frames_us_jpeg",
        "frames_out_of_range",
        "frames_out_of_scope",
    ]);
}

/// retrieve_instance_rendered (and a rendered frame) as image/jpeg and
/// image/png: Pillow decodes them, Rows × Columns of the instance, not
/// blank; nothing rendered of the left-out PR.
#[test]
fn dicomweb_client_retrieves_rendered_images() {
    dicomweb_client("rendered").assert_passed(&[
        "rendered_ct",
        "rendered_us_jpeg",
        "rendered_xa_frame",
        "rendered_out_of_scope",
    ]);
}

// ---------------------------------------------------------------------------
// (b) a browser

const MESSAGE: &str = "Verwijzing neurochirurgie, dr. de Vries";

/// The CT study shared without its PR, as the browser checks expect it.
fn browser_config(daemon: &Daemon, work: &Path) -> Value {
    json!({
        "base": format!("https://{}", daemon.http),
        "work": work,
        "patient": "Jansen, Anna",
        "study_date": "2024-03-12",
        "org": "Radiologie Voorbeeld",
        "message": MESSAGE,
        // CT and SR listed, the PR left out; only the CT has a thumbnail
        "series": 2,
        "images": 1,
        "modalities": ["CT", "SR"],
        "left_out": ["PR"],
    })
}

fn share_ct(daemon: &Daemon, extra: &[&str]) -> Value {
    let study = study_of("ct-phantom");
    let mut args = vec![
        study.as_str(),
        "--exclude-modality",
        "PR",
        "--message",
        MESSAGE,
    ];
    args.extend_from_slice(extra);
    share(daemon, &args)
}

fn scratch(daemon: &Daemon) -> PathBuf {
    let work = daemon.dir.path().join("browser");
    std::fs::create_dir_all(&work).unwrap();
    work
}

/// Prints the daemon's log if the browser failed: what it was asked.
fn browser_run(daemon: &Daemon, scenario: &str, config: &Value) -> Ran {
    let ran = run_script("browser_check.py", scenario, config, daemon.dir.path());
    if ran.code != Some(0) {
        eprintln!("--- daemon log (tail) ---\n{}", tail(&daemon.log(), 6000));
    }
    ran
}

/// What a browser downloaded with the ZIP button: `unzip -t` finds no
/// error; under DICOM/ exactly the 17 shared instances (16 CT, the SR; not
/// the PR), each byte for byte the stored file and `dcmftest` yes; a
/// DICOMDIR that dcmftest accepts and dciodvfy finds no error or warning in.
fn check_downloaded_zip(daemon: &Daemon, report: &Value, work: &Path) {
    let zip = PathBuf::from(report["zip"].as_str().unwrap());
    assert_eq!(
        zip.file_name().unwrap().to_string_lossy(),
        "Jansen_Anna_20240312.zip"
    );
    let test = Command::new("unzip").arg("-t").arg(&zip).output().unwrap();
    assert!(test.status.success(), "unzip -t: {}", text(&test));
    assert!(
        String::from_utf8_lossy(&test.stdout).contains("No errors detected"),
        "{}",
        text(&test)
    );
    let root = work.join("unzipped");
    let out = Command::new("unzip")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "unzip: {}", text(&out));

    let mut files = Vec::new();
    let mut stack = vec![root.join("DICOM")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert_eq!(files.len(), 17, "16 CT and the SR: {files:?}");
    let ftest = Command::new("dcmftest").args(&files).output().unwrap();
    assert!(ftest.status.success(), "dcmftest: {}", text(&ftest));
    let said = String::from_utf8_lossy(&ftest.stdout).to_string();
    assert_eq!(
        said.lines().filter(|l| l.starts_with("yes:")).count(),
        17,
        "{said}"
    );
    let study = study_of("ct-phantom");
    let pr = sop_instance(&samples().join("ct-phantom/PR000001.dcm"));
    let mut stored: Vec<Vec<u8>> = daemon
        .stored_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&study))
        .filter(|p| sop_instance(p) != pr)
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut zipped: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    stored.sort();
    zipped.sort();
    assert_eq!(stored.len(), 17);
    assert!(
        stored == zipped,
        "the ZIP holds the stored files byte for byte"
    );

    let dicomdir = root.join("DICOMDIR");
    assert!(dicomdir.exists(), "a DICOMDIR at the root");
    let ftest = Command::new("dcmftest").arg(&dicomdir).output().unwrap();
    assert!(
        ftest.status.success(),
        "dcmftest DICOMDIR: {}",
        text(&ftest)
    );
    let vfy = Command::new("dciodvfy").arg(&dicomdir).output().unwrap();
    let report = text(&vfy);
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("Error") || l.starts_with("Warning"))
        .collect();
    assert!(problems.is_empty(), "dciodvfy DICOMDIR:\n{report}");
}

/// The study page checks, as the scripts name them.
const STUDY_PAGE_CHECKS: &[&str] = &[
    "patient_and_study",
    "series_list",
    "thumbnails_loaded",
    "download_button",
    "dicomweb_url_and_script",
    "download_zip",
    "no_console_errors",
];

/// A browser holding the link (the holder cookie a binding sets; here the
/// binding was made as a program, see the ignored tests below for the
/// browser's own): the study page shows the patient, who shared it and
/// why, the CT and SR series (not the PR) with a loaded thumbnail, the
/// DICOMweb URL and the ZIP button, runs its one allowed script, and logs
/// no CSP violation or other console error; the ZIP the button downloads
/// is checked by [`check_downloaded_zip`].
#[test]
fn browser_shows_the_study_page_and_downloads_the_zip() {
    let daemon = daemon_with_samples();
    let grant = share_ct(&daemon, &[]);
    let holder = bind(&daemon, &path_of(&grant["url"]));
    let work = scratch(&daemon);
    let mut config = browser_config(&daemon, &work);
    config["url"] = grant["url"].clone();
    config["holder"] = json!(holder);
    let ran = browser_run(&daemon, "holder", &config);
    let mut expected = vec!["holder_opens_study_page"];
    expected.extend_from_slice(STUDY_PAGE_CHECKS);
    ran.assert_passed(&expected);
    check_downloaded_zip(&daemon, &ran.report, &work);
}

// The three tests below are ignored for one bug: Chromium sends `Origin:
// null` (with `Sec-Fetch-Site: same-origin`) on every form POST from
// pushgate's own pages, because they set `Referrer-Policy: no-referrer`
// and the Fetch standard then serializes the request's origin as null;
// `cross_site()` in src/web/request.rs takes that for another site and
// answers 403, so no browser can redeem a code or bind a link. With the
// Origin header overridden to the page's own origin (CDP, by hand) all
// three pass; un-ignore them when the fix lands.

/// The code from a referral letter, typed into `/` in Chromium, leads to
/// the study page with its cookie; then everything
/// `browser_shows_the_study_page_and_downloads_the_zip` checks.
#[test]
fn browser_redeems_a_code_and_downloads_the_study() {
    let daemon = daemon_with_samples();
    let grant = share_ct(&daemon, &[]);
    let work = scratch(&daemon);
    let mut config = browser_config(&daemon, &work);
    config["code"] = grant["code"].clone();
    let ran = browser_run(&daemon, "code", &config);
    let mut expected = vec!["code_redeemed"];
    expected.extend_from_slice(STUDY_PAGE_CHECKS);
    ran.assert_passed(&expected);
    check_downloaded_zip(&daemon, &ran.report, &work);
}

/// The link itself, opened in two browsers: each is only offered to open
/// it (no patient shown, nothing bound by a GET); the one that presses
/// Open first gets the study page (thumbnail loaded, no console error)
/// and comes back to it later; the other, and a program binding after
/// them, get the neutral answer.
#[test]
fn browser_opens_the_link_and_binds_it() {
    let daemon = daemon_with_samples();
    let grant = share_ct(&daemon, &[]);
    let url = grant["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("https://{}/s/", daemon.http)));
    let path = path_of(&grant["url"]);
    // a mail scanner fetching the link first binds nothing
    let scanner = daemon.get(&path);
    assert_eq!(scanner.status, 200);
    let work = scratch(&daemon);
    let mut config = browser_config(&daemon, &work);
    config["url"] = json!(url);
    let ran = browser_run(&daemon, "link", &config);
    ran.assert_passed(&[
        "link_offers_binding_a",
        "link_offers_binding_b",
        "link_bound_by_open",
        "link_patient_and_study",
        "link_series_list",
        "link_thumbnails_loaded",
        "link_download_button",
        "link_dicomweb_url_and_script",
        "link_refused_to_second_opener",
        "link_holder_returns",
        "link_no_console_errors",
    ]);
    let late = daemon.https("POST", &path, Ask::default());
    let unknown = daemon.https(
        "POST",
        "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        Ask::default(),
    );
    assert_eq!(late.status, 404, "{late:?}");
    assert_eq!(late.body, unknown.body, "bound looks like unknown");
}

/// Luhn mod 32 over Crockford base-32, as the codes' check character
/// (src/authz/secret.rs): a code that is well formed but was never issued.
fn well_formed_code(data: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let values: Vec<u32> = data
        .bytes()
        .map(|b| ALPHABET.iter().position(|a| *a == b).unwrap() as u32)
        .collect();
    let mut factor = 2;
    let mut sum = 0;
    for v in values.iter().rev() {
        let addend = factor * v;
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / 32 + addend % 32;
    }
    let check = ALPHABET[((32 - sum % 32) % 32) as usize] as char;
    format!("{}-{}-{}{check}", &data[..4], &data[4..8], &data[8..])
}

/// Codes that lead nowhere, typed into `/`: one never issued, one revoked,
/// one expired and one already redeemed by someone else all get the same
/// page — an error that names no patient and does not say which — and a
/// typo is reported as a typo. No CSP violation on the way.
#[test]
fn browser_wrong_codes_reveal_nothing() {
    let daemon = daemon_with_samples();
    let revoked = share_ct(&daemon, &[]);
    let out = daemon.cli(&["revoke", revoked["id"].as_str().unwrap()]);
    assert!(out.status.success(), "revoke: {}", text(&out));
    let expired = share_ct(&daemon, &["--expires", "1s"]);
    let taken = share_ct(&daemon, &[]);
    let redeemed = daemon.https(
        "POST",
        "/redeem",
        Ask {
            body: Some(json!({ "code": taken["code"] }).to_string()),
            ..Ask::default()
        },
    );
    assert_eq!(redeemed.status, 200, "{redeemed:?}");
    let valid = share_ct(&daemon, &[]);
    let code = valid["code"].as_str().unwrap();
    // the last character is the check character: change it
    let last = code.chars().last().unwrap();
    let typo = format!(
        "{}{}",
        &code[..code.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    std::thread::sleep(Duration::from_millis(1200));
    let work = scratch(&daemon);
    let mut config = browser_config(&daemon, &work);
    config["wrong_codes"] = json!({
        "never_issued": well_formed_code("0123456789"),
        "revoked": revoked["code"],
        "expired": expired["code"],
        "redeemed_by_another": taken["code"],
    });
    config["typo_code"] = json!(typo);
    let ran = browser_run(&daemon, "wrong", &config);
    ran.assert_passed(&[
        "refused_never_issued",
        "refused_revoked",
        "refused_expired",
        "refused_redeemed_by_another",
        "refusals_identical",
        "typo_reported",
        "wrong_no_console_errors",
    ]);
}
