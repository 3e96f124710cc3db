//! Sharing from the console against the real daemon: the form's defaults
//! (PR unticked) and its summary, a grant for some series issued as the
//! person logged in with its legal basis, exactly those series through the
//! public DICOMweb and ZIP with the code the result page shows, the
//! referral sheet, refusals (no legal basis, someone else's result), a
//! hostile patient name shown as text on every page, and by accession
//! number for a study not here yet.

mod common;

use std::time::Duration;

use common::console::Staff;
use common::sharing::{as_holder, path_of, study_with};
use common::{Ask, Daemon, eventually};
use serde_json::Value;

const HOSTILE: &str = "<script>alert(1)</script>^\"O'Hara\"";
const HOSTILE_SHOWN: &str = "&lt;script&gt;alert(1)&lt;/script&gt;, &quot;O'Hara&quot;";

fn admin(daemon: &Daemon, path: &str) -> Value {
    let token = std::fs::read_to_string(daemon.data_dir().join("admin.token")).unwrap();
    let reply = daemon.https(
        "GET",
        path,
        Ask {
            headers: vec![("Authorization", format!("Bearer {}", token.trim()))],
            ..Ask::default()
        },
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()
}

/// The ct-phantom study (16 CT, 1 PR, 1 SR), its patient renamed.
fn daemon_with_ct(extra: &str) -> (Daemon, String) {
    common::sharing::ct_study_of(extra, HOSTILE)
}

/// The series of a study: (uid, modality, instances, bytes).
fn series_of(daemon: &Daemon, study: &str) -> Vec<(String, String, u64, u64)> {
    admin(daemon, &format!("/admin/v1/studies/{study}"))["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["series_uid"].as_str().unwrap().to_string(),
                s["modality"].as_str().unwrap().to_string(),
                s["num_instances"].as_u64().unwrap(),
                s["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The value of `id="NAME"`'s text, or of an input's value.
fn by_id(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let tag_end = at + page[at..].find('>').unwrap();
    let tag = &page[at..tag_end];
    if let Some(v) = tag.find("value=\"") {
        let v = &tag[v + 7..];
        return v[..v.find('"').unwrap()].to_string();
    }
    let rest = &page[tag_end + 1..];
    rest[..rest.find('<').unwrap()].to_string()
}

fn size(bytes: u64) -> String {
    let k = 1024.0;
    let b = bytes as f64;
    if b >= k * k {
        format!("{:.1} MB", b / (k * k))
    } else if b >= k {
        format!("{:.0} kB", b / k)
    } else {
        format!("{bytes} B")
    }
}

fn issue(staff: &Staff<'_>, study: &str, fields: &[(&str, &str)]) -> String {
    staff.get(&format!("/console/share/{study}"));
    let reply = staff.post(&format!("/console/share/{study}"), fields);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let location = reply.header("location").unwrap().to_string();
    assert!(location.starts_with("/console/share/done/"), "{location}");
    location
}

#[test]
fn a_subset_shared_with_its_legal_basis_is_exactly_what_the_recipient_gets() {
    let (daemon, study) = daemon_with_ct("public_url = \"https://gw.zkh-a.example:8443\"\n");
    let staff = daemon.staff("laborant", "user");
    let series = series_of(&daemon, &study);
    let (ct, pr, sr) = (
        series.iter().find(|s| s.1 == "CT").unwrap().clone(),
        series.iter().find(|s| s.1 == "PR").unwrap().clone(),
        series.iter().find(|s| s.1 == "SR").unwrap().clone(),
    );

    // the form: PR unticked, the others ticked, the summary their sum
    let form = staff.get(&format!("/console/share/{study}"));
    assert_eq!(form.status, 200, "{}", form.body);
    let checkbox = |uid: &str| {
        let at = form
            .body
            .find(&format!("value=\"{uid}\" id=\"series-{uid}\""))
            .unwrap();
        let end = at + form.body[at..].find('>').unwrap();
        form.body[at..end].contains("checked")
    };
    assert!(checkbox(&ct.0) && checkbox(&sr.0) && !checkbox(&pr.0));
    assert_eq!(by_id(&form.body, "leaving-series"), "2");
    assert_eq!(
        by_id(&form.body, "leaving-images"),
        (ct.2 + sr.2).to_string()
    );
    assert_eq!(by_id(&form.body, "leaving-bytes"), size(ct.3 + sr.3));
    assert!(form.body.contains(HOSTILE_SHOWN), "{}", form.body);
    assert!(!form.body.contains("<script>alert"));
    assert!(form.body.contains("src=\"/console/static/share.js\""));
    // thumbnails: the CT's middle image, a placeholder for the report
    let thumb = staff.get(&format!("/console/share/{study}/thumb/{}", ct.0));
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    assert_eq!(&thumb.raw[..2], b"\xff\xd8");
    let none = staff.get(&format!("/console/share/{study}/thumb/{}", sr.0));
    assert_eq!(none.header("content-type"), Some("image/svg+xml"));

    // no legal basis: 400 with the reason, the form again, nothing issued
    let refused = staff.post(
        &format!("/console/share/{study}"),
        &[
            ("series", &ct.0),
            ("recipient", "anyone"),
            ("expires", "7d"),
        ],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("Kies de grondslag"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("Niet gedeeld"));
    assert!(
        admin(&daemon, "/admin/v1/grants")
            .as_array()
            .unwrap()
            .is_empty()
    );
    // ... and none ticked is refused too
    let nothing = staff.post(
        &format!("/console/share/{study}"),
        &[
            ("recipient", "anyone"),
            ("expires", "7d"),
            ("legal_basis", "referral"),
        ],
    );
    assert_eq!(nothing.status, 400);
    assert!(nothing.body.contains("Vink ten minste één serie aan"));

    // only the CT series, on a referral
    let done = issue(
        &staff,
        &study,
        &[
            ("series", &ct.0),
            ("recipient", "anyone"),
            ("expires", "7d"),
            ("message", "Graag beoordelen"),
            ("depth", "0"),
            ("legal_basis", "referral"),
        ],
    );
    let result = staff.get(&done);
    assert_eq!(result.status, 200, "{}", result.body);
    assert_eq!(result.header("cache-control"), Some("no-store"));
    let link = by_id(&result.body, "share-link");
    let code = by_id(&result.body, "share-code");
    assert!(
        link.starts_with("https://gw.zkh-a.example:8443/s/"),
        "{link}"
    );
    assert_eq!(
        by_id(&result.body, "enter-at"),
        "https://gw.zkh-a.example:8443/"
    );
    assert!(
        result.body.contains("src=\"data:image/svg+xml;base64,"),
        "a QR code"
    );
    assert!(result.body.contains("data-copy=\"share-link\""));
    assert!(result.body.contains(HOSTILE_SHOWN) && !result.body.contains("<script>alert"));
    assert!(
        result
            .body
            .contains("verwijzing (toestemming verondersteld)")
    );
    assert!(
        result.body.contains(&format!("1 series, {} beelden", ct.2)),
        "{}",
        result.body
    );

    // the referral sheet: who, what, for whom, until when, the code, where
    let sheet = staff.get(&format!("{done}/sheet"));
    assert_eq!(sheet.status, 200);
    assert_eq!(by_id(&sheet.body, "sheet-code"), code);
    assert_eq!(
        by_id(&sheet.body, "sheet-enter-at"),
        "https://gw.zkh-a.example:8443/"
    );
    assert!(sheet.body.contains("Verwijzing: beelden gedeeld"));
    assert!(sheet.body.contains(HOSTILE_SHOWN) && !sheet.body.contains("<script>alert"));
    assert!(sheet.body.contains("Geldig tot en met"));
    let english = staff.get(&format!("{done}/sheet?lang=en"));
    assert!(english.body.contains("Referral: images shared"));

    // the recipient, with the code: exactly the CT series
    let redeemed = daemon.https(
        "POST",
        "/redeem",
        Ask {
            body: Some(format!("{{\"code\":\"{code}\"}}")),
            ..Ask::default()
        },
    );
    assert_eq!(redeemed.status, 200, "{redeemed:?}");
    let holder = redeemed.json()["holder_token"]
        .as_str()
        .unwrap()
        .to_string();
    let path = path_of(&redeemed.json()["url"]);
    let qido = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies/{study}/series"),
        as_holder(&holder),
    );
    assert_eq!(qido.status, 200, "{qido:?}");
    let got: Vec<String> = qido
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["0020000E"]["Value"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, vec![ct.0.clone()]);
    let zip = daemon.https("GET", &format!("{path}/download.zip"), as_holder(&holder));
    assert_eq!(zip.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.zip");
    std::fs::write(&file, &zip.raw).unwrap();
    let listing = std::process::Command::new("unzip")
        .arg("-Z1")
        .arg(&file)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    let images = listing
        .lines()
        .filter(|l| l.starts_with("DICOM/") && !l.ends_with('/'))
        .count();
    assert_eq!(images as u64, ct.2, "{listing}");

    // the journal names the person, the legal basis and the patient
    let issued: Vec<Value> = daemon
        .journal()
        .into_iter()
        .filter(|r| r["event"]["type"] == "grant_issued")
        .collect();
    assert_eq!(issued.len(), 1);
    let event = &issued[0]["event"];
    assert_eq!(event["by"]["id"], staff.person_id());
    assert_eq!(event["by"]["role"], "user");
    assert_eq!(event["legal_basis"]["kind"], "referral");
    assert_eq!(event["patient"]["name"], HOSTILE);
    assert_eq!(event["patient"]["bsn"], "999912343");
    assert_eq!(event["grant"]["scope"]["series"][0], ct.0.as_str());
    assert!(event["from"].as_str().unwrap().starts_with("127.0.0.1"));

    // explicit consent, noted; the default ticks of a complete study:
    // exactly its series but PR
    let consent = issue(
        &staff,
        &study,
        &[
            ("series", &ct.0),
            ("series", &sr.0),
            ("recipient", "anyone"),
            ("expires", "24h"),
            ("legal_basis", "explicit_consent"),
            ("consent_note", "mevrouw zelf, mondeling aan de balie"),
        ],
    );
    let page = staff.get(&consent);
    assert!(page.body.contains("uitdrukkelijke toestemming"));
    assert!(page.body.contains("mevrouw zelf, mondeling aan de balie"));
    let grants = admin(&daemon, "/admin/v1/grants");
    let second = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["legal_basis"]["kind"] == "explicit_consent")
        .unwrap();
    assert_eq!(
        second["scope"]["series"].as_array().unwrap().len(),
        2,
        "{second}"
    );
    assert!(second["scope"]["exclude_modalities"].is_null(), "{second}");
    assert_eq!(second["issued_by"]["id"], staff.person_id());
    let link = by_id(&page.body, "share-link");
    let bound = common::sharing::bind(&daemon, &path_of(&Value::String(link.clone())));
    let qido = daemon.https(
        "GET",
        &format!(
            "{}/dicomweb/studies/{study}/series",
            path_of(&Value::String(link))
        ),
        as_holder(&bound),
    );
    assert_eq!(
        qido.json().as_array().unwrap().len(),
        2,
        "CT and SR, not PR"
    );
}

#[test]
fn a_result_is_for_its_issuer_and_an_admin_and_the_code_only_once() {
    let (daemon, study) = daemon_with_ct("");
    let anna = daemon.staff("anna", "user");
    let bram = daemon.staff("bram", "user");
    let beheer = daemon.staff("beheer", "admin");
    let done = issue(
        &anna,
        &study,
        &[
            ("recipient", "anyone"),
            ("expires", "7d"),
            ("legal_basis", "referral"),
            ("series", &series_of(&daemon, &study)[0].0),
        ],
    );
    assert!(anna.get(&done).body.contains("id=\"share-code\""));
    // another gebruiker: refused with the reason, on the page and the sheet
    for path in [done.clone(), format!("{done}/sheet")] {
        let refused = bram.get(&path);
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
        assert!(
            refused.body.contains("door iemand anders gemaakt"),
            "{}",
            refused.body
        );
        assert!(!refused.body.contains(HOSTILE_SHOWN));
    }
    // an admin sees the share, but not its link and code
    let admin_view = beheer.get(&done);
    assert_eq!(admin_view.status, 200);
    assert!(!admin_view.body.contains("id=\"share-code\""));
    assert!(
        admin_view
            .body
            .contains("pushgate bewaart ze niet leesbaar")
    );
    // nor does the issuer after logging in again
    let again = anna.login(1);
    let cookie = common::console::session_cookie(&again).unwrap();
    let later = daemon.https(
        "GET",
        &done,
        Ask {
            headers: vec![("Cookie", cookie)],
            ..Ask::default()
        },
    );
    assert_eq!(later.status, 200);
    assert!(!later.body.contains("id=\"share-code\""));
    assert_eq!(anna.get("/console/share/done/no-such-grant").status, 404);
    // a form without its CSRF token issues nothing
    let forged = daemon.console_post(
        &format!("/console/share/{study}"),
        Some(&anna.cookie),
        &[("legal_basis", "referral"), ("expires", "7d")],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(
        admin(&daemon, "/admin/v1/grants").as_array().unwrap().len(),
        1
    );
}

#[test]
fn by_accession_before_the_study_is_here() {
    let daemon = Daemon::start();
    let staff = daemon.staff("laborant", "user");
    let ask = staff.get("/console/share");
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("name=\"accession\""));
    let form = staff.get("/console/share?accession=SPOED42");
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Nog niet binnen."), "{}", form.body);
    assert!(
        form.body
            .contains("name=\"leave_out\" value=\"PR\" checked"),
        "{}",
        form.body
    );
    assert!(form.body.contains("name=\"patient_id\""), "{}", form.body);
    let mut fields = vec![
        ("accession", "SPOED42"),
        ("leave_out", "PR"),
        ("recipient", "anyone"),
        ("expires", "24h"),
        ("legal_basis", "referral"),
    ];
    // without the patient: not shared, and the form says why
    let refused = staff.post("/console/share", &fields);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("Geef het patiëntnummer of het BSN"),
        "{}",
        refused.body
    );
    assert_eq!(admin(&daemon, "/admin/v1/grants"), serde_json::json!([]));
    fields.push(("patient_id", "999912343"));
    let reply = staff.post("/console/share", &fields);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let done = reply.header("location").unwrap().to_string();
    let result = staff.get(&done);
    assert!(result.body.contains("nog niet bekend"), "{}", result.body);
    assert!(result.body.contains("id=\"share-code\""));

    // first another patient's study with the same number (a CD import):
    // reported on the share, never pinned, never served
    let dir = tempfile::tempdir().unwrap();
    let mr = common::sample_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains("mr-brain"))
        .unwrap();
    let namesake = common::variant(
        dir.path(),
        &mr,
        "namesake.dcm",
        false,
        &[("AccessionNumber", "SPOED42"), ("PatientID", "OTHER-7")],
    );
    daemon.send_all(&[namesake]);
    let grant_id = done.rsplit('/').next().unwrap().to_string();
    assert!(eventually(Duration::from_secs(20), || {
        staff
            .get(&format!("/console/shares/{grant_id}"))
            .body
            .contains("another patient: patient ID &quot;OTHER-7&quot;")
    }));
    let grants = admin(&daemon, "/admin/v1/grants");
    assert!(grants[0]["patient"].is_null(), "not pinned: {grants}");
    assert_eq!(
        grants[0]["mismatches"][0]["reason"],
        "another patient: patient ID \"OTHER-7\", not \"999912343\"",
        "{grants}"
    );
    // the study arrives: the grant finds it, the result names the patient
    let files = common::sharing::ct_files_with(dir.path(), &[("AccessionNumber", "SPOED42")]);
    daemon.send_all(&files);
    assert!(eventually(Duration::from_secs(20), || {
        staff.get(&done).body.contains("Jansen, Anna")
    }));
    let grants = admin(&daemon, "/admin/v1/grants");
    assert_eq!(grants[0]["patient"]["name"], "Jansen^Anna", "{grants}");
    assert_eq!(grants[0]["scope"]["exclude_modalities"][0], "PR");
    // now here, beside the namesake: the accession leads to the list of
    // both, to choose
    let study = study_with(&daemon, "PR");
    let found = staff.get("/console/share?accession=SPOED42");
    assert_eq!(found.status, 303);
    assert_eq!(
        found.header("location"),
        Some("/console/studies?accession=SPOED42")
    );
    let list = staff.get("/console/studies?accession=SPOED42");
    assert!(
        list.body.contains(&format!("/console/share/{study}")),
        "{}",
        list.body
    );
}

/// A study still arriving, shared with the form's default ticks while
/// only its CT is here: the PR that arrives afterwards is not shared (PR
/// is left out by default, `console.exclude_by_default`), the SR that
/// arrives afterwards is. Before the fix nothing was unticked, so the
/// grant was the whole study and the later PR went along.
#[test]
fn a_study_shared_while_arriving_with_the_default_ticks_leaves_later_pr_out() {
    let daemon =
        Daemon::start_with("[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nstable_after = \"10m\"\n");
    let staff = daemon.staff("laborant", "user");
    let dir = tempfile::tempdir().unwrap();
    let files = common::sharing::ct_files_with(dir.path(), &[]);
    let named = |prefix: &str| -> Vec<std::path::PathBuf> {
        files
            .iter()
            .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .cloned()
            .collect()
    };
    daemon.send_all(&named("CT"));
    let study = study_with(&daemon, "CT");
    assert_ne!(daemon.studies()[0]["state"], "complete");
    let form = staff.get(&format!("/console/share/{study}"));
    assert!(
        form.body
            .contains("PR series that arrive later are not included")
            || form
                .body
                .contains("Series van PR die later binnenkomen, gaan niet mee"),
        "the form says what later PR does: {}",
        form.body
    );
    let ct = series_of(&daemon, &study);
    assert_eq!(ct.len(), 1, "{ct:?}");
    // the default ticks: the one CT series
    let done = issue(
        &staff,
        &study,
        &[
            ("series", &ct[0].0),
            ("recipient", "anyone"),
            ("expires", "24h"),
            ("legal_basis", "referral"),
        ],
    );
    let link = by_id(&staff.get(&done).body, "share-link");
    let grants = admin(&daemon, "/admin/v1/grants");
    assert_eq!(
        grants[0]["scope"]["exclude_modalities"],
        serde_json::json!(["PR"]),
        "{grants}"
    );

    daemon.send_all(&named("PR"));
    daemon.send_all(&named("SR"));
    assert!(eventually(Duration::from_secs(20), || {
        series_of(&daemon, &study).len() == 3
    }));
    let path = path_of(&Value::String(link));
    let bound = common::sharing::bind(&daemon, &path);
    let qido = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies/{study}/series"),
        as_holder(&bound),
    );
    assert_eq!(qido.status, 200, "{qido:?}");
    let modalities: Vec<String> = qido
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["00080060"]["Value"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(modalities.len(), 2, "{modalities:?}");
    assert!(modalities.contains(&"CT".to_string()), "{modalities:?}");
    assert!(
        modalities.contains(&"SR".to_string()),
        "the later SR joins: {modalities:?}"
    );
    assert!(
        !modalities.contains(&"PR".to_string()),
        "the later PR stays out: {modalities:?}"
    );
}
