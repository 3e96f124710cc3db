//! The console's Audit and Settings against the real daemon: the filters
//! (patient by name, ID or BSN; study; person; period) find exactly the
//! matching records, in the page and in both exports; JSON lines parse and
//! match; the CSV has its header and defuses a hostile value (a formula,
//! quotes, a line break) as a spreadsheet must see it — checked with
//! Python's csv module; the per-patient report names that patient's
//! grants and accesses only, and still names the patient after retention
//! deleted the study; a gebruiker gets 403 on audit and settings; the
//! settings page shows no secret's value.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::sharing::{as_holder, bind, path_of, share, study_with};
use common::{Daemon, eventually, samples, text};

const CT_PATIENT_ID: &str = "999912343";
const MR_BSN: &str = "999920017";
const HOSTILE: &str = "=cmd|' /C calc'!A0 \"quoted\" <script>alert(2)</script>\nsecond line";

fn files_in(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files
}

/// Every grant id a journal record names.
fn grants_named(record: &serde_json::Value) -> Vec<String> {
    let e = &record["event"];
    let mut out = Vec::new();
    for g in [&e["grant"]["id"], &e["grant"]] {
        if let Some(s) = g.as_str() {
            out.push(s.to_string());
        }
    }
    out
}

fn lines(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The CSV as Python's csv module reads it.
fn csv_rows(body: &str) -> Vec<Vec<String>> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import csv,sys,json,io; print(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline='')))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn today() -> String {
    let out = Command::new("date").arg("+%Y-%m-%d").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn tomorrow() -> String {
    let out = Command::new("date")
        .args(["-d", "tomorrow", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn filters_and_exports_find_exactly_the_matching_records() {
    let daemon = Daemon::start();
    daemon.send_all(&files_in("ct-phantom"));
    daemon.send_all(&files_in("mr-brain"));
    let (ct, mr) = (study_with(&daemon, "CT"), study_with(&daemon, "MR"));
    let admin = daemon.staff("beheer", "admin");
    let ann = daemon.staff("ann", "user");

    // a gebruiker: not the audit, not the settings
    for page in [
        "/console/audit",
        "/console/audit/export.csv",
        "/console/audit/export.jsonl",
        "/console/audit/patient?q=x",
        "/console/settings",
    ] {
        let r = ann.get(page);
        assert_eq!(r.status, 403, "{page}: {}", r.body);
        assert!(r.body.contains("applicatiebeheerder"), "{}", r.body);
    }
    let refused: Vec<String> = daemon
        .journal()
        .iter()
        .filter(|r| r["event"]["step"] == "refused" && r["event"]["actor"]["id"] == "local:ann")
        .map(|r| r["event"]["what"].as_str().unwrap().to_string())
        .collect();
    assert!(
        refused.contains(&"audit".to_string()) && refused.contains(&"configuration".to_string()),
        "{refused:?}"
    );

    let ct_grant = share(&daemon, &[&ct]);
    let ct_id = ct_grant["id"].as_str().unwrap().to_string();
    let holder = bind(&daemon, &path_of(&ct_grant["url"]));
    assert_eq!(
        daemon
            .https("GET", &path_of(&ct_grant["url"]), as_holder(&holder))
            .status,
        200
    );
    let mr_grant = share(&daemon, &[&mr]);
    let mr_id = mr_grant["id"].as_str().unwrap().to_string();
    admin.get("/console/shares");
    let r = admin.post(
        &format!("/console/shares/{mr_id}/revoke"),
        &[("reason", HOSTILE), ("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.body);

    // the page: by name, newest first, the chain checked
    let page = admin.get("/console/audit?patient=jansen");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Journaal intact"), "{}", page.body);
    assert!(
        page.body.contains(&ct_id) && !page.body.contains(&mr_id),
        "{}",
        page.body
    );
    let all = admin.get("/console/audit");
    assert!(
        all.body.contains("&lt;script&gt;alert(2)"),
        "the reason as text: {}",
        all.body
    );
    assert!(!all.body.contains("<script>alert(2)"));
    let first = all.body.find("grant_revoked").unwrap();
    let issued = all.body.find("grant_issued").unwrap();
    assert!(first < issued, "newest first");

    // the exports: the same filters, each line the journal's own
    let export = |query: &str| {
        let r = admin.get(&format!("/console/audit/export.jsonl?{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert!(r.header("content-type").unwrap().contains("ndjson"));
        lines(&r.body)
    };
    let whole = daemon.journal();
    for (query, grant, other) in [
        (format!("patient={CT_PATIENT_ID}"), &ct_id, &mr_id),
        ("patient=Jansen".to_string(), &ct_id, &mr_id),
        (format!("patient={MR_BSN}"), &mr_id, &ct_id),
        (format!("study={mr}"), &mr_id, &ct_id),
    ] {
        let found = export(&query);
        assert!(!found.is_empty(), "{query}");
        let named: Vec<String> = found.iter().flat_map(grants_named).collect();
        assert!(named.contains(grant), "{query}: {found:?}");
        assert!(!named.contains(other), "{query}: {found:?}");
        for line in &found {
            assert!(whole.contains(line), "an export line as journaled: {line}");
        }
    }
    let ct_lines = export(&format!("study={ct}"));
    let kinds: Vec<&str> = ct_lines
        .iter()
        .filter_map(|l| l["event"]["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"grant_issued")
            && kinds.contains(&"grant_bound")
            && kinds.contains(&"access"),
        "{kinds:?}"
    );
    // a person
    let anns = export("person=local:ann");
    assert!(!anns.is_empty());
    assert!(
        anns.iter().all(|l| l.to_string().contains("local:ann")),
        "{anns:?}"
    );
    let revokers = export("person=beheer");
    assert!(
        revokers
            .iter()
            .any(|l| l["event"]["type"] == "grant_revoked")
    );
    assert!(revokers.iter().all(|l| l.to_string().contains("beheer")));
    // a period
    assert!(export(&format!("from={}", tomorrow())).is_empty());
    let today = export(&format!("from={}&to={}", today(), today()));
    assert!(
        today.len() + 5 >= whole.len(),
        "today: {} of {}",
        today.len(),
        whole.len()
    );
    let bad = admin.get("/console/audit/export.jsonl?from=yesterday");
    assert_eq!(bad.status, 400);

    // the CSV: a header, the hostile reason defused and whole
    let csv = admin.get(&format!("/console/audit/export.csv?study={mr}"));
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.body.starts_with("seq,time,event,actor,actor_id,from,grant,study,patient_name,patient_id,outcome,detail,hash\r\n"));
    let rows = csv_rows(&csv.body);
    assert!(rows.iter().skip(1).all(|r| r.len() == 13), "{rows:?}");
    let revoked = rows
        .iter()
        .find(|r| r[2] == "grant_revoked")
        .expect("the revocation");
    assert_eq!(revoked[11], format!("'{HOSTILE}"), "{revoked:?}");
    assert_eq!(revoked[3], "beheer");
    assert_eq!(revoked[9], "ZKH123456");
    for row in &rows {
        for field in row {
            assert!(
                !field.starts_with(['=', '+', '-', '@']),
                "a formula: {field:?}"
            );
        }
    }

    // reading the audit is itself journaled
    let audited: Vec<String> = daemon
        .journal()
        .iter()
        .filter(|r| r["event"]["step"] == "audited")
        .map(|r| format!("{} {}", r["event"]["actor"]["id"], r["event"]["what"]))
        .collect();
    assert!(
        audited
            .iter()
            .any(|a| a.contains("local:beheer") && a.contains("export.csv")),
        "{audited:?}"
    );
    let verify = daemon.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn the_patient_report_names_that_patient_only_also_after_retention() {
    let daemon = Daemon::start_with(
        "[retention]\nkeep_after_last_grant = \"2s\"\nmax_age = \"off\"\nsweep_every = \"1s\"\n",
    );
    daemon.send_all(&files_in("ct-phantom"));
    daemon.send_all(&files_in("mr-brain"));
    let (ct, mr) = (study_with(&daemon, "CT"), study_with(&daemon, "MR"));
    let admin = daemon.staff("beheer", "admin");
    let ct_grant = share(&daemon, &[&ct, "--expires", "4s"]);
    let ct_id = ct_grant["id"].as_str().unwrap().to_string();
    let path = path_of(&ct_grant["url"]);
    let holder = bind(&daemon, &path);
    assert_eq!(daemon.https("GET", &path, as_holder(&holder)).status, 200);
    let mr_grant = share(&daemon, &[&mr]);
    let mr_id = mr_grant["id"].as_str().unwrap().to_string();

    let check = |when: &str| {
        let report = admin.get(&format!("/console/audit/patient?q={CT_PATIENT_ID}"));
        assert_eq!(report.status, 200, "{when}: {}", report.body);
        let body = &report.body;
        assert!(body.contains("Jansen, Anna"), "{when}: {body}");
        assert!(body.contains(CT_PATIENT_ID));
        assert!(body.contains(&ct_id), "{when}: the grant: {body}");
        assert!(
            body.contains("verwijzing"),
            "{when}: the legal basis: {body}"
        );
        assert!(body.contains("admin token"), "{when}: who shared: {body}");
        assert!(
            body.contains("houdertoken") || body.contains("holder token"),
            "{when}: the holder: {body}"
        );
        assert!(
            body.contains("<code>127.0.0.1</code>"),
            "{when}: from where: {body}"
        );
        assert!(
            body.contains("pagina bekeken"),
            "{when}: the access: {body}"
        );
        assert!(
            !body.contains(&mr_id) && !body.contains("Müller"),
            "{when}: another patient: {body}"
        );
        body.clone()
    };
    check("before");
    // more than one patient matches: a choice, no report
    let choose = admin.get("/console/audit/patient?q=e");
    assert!(
        choose.body.contains("key=")
            && choose.body.contains("Jansen, Anna")
            && choose.body.contains("Müller, Jörg"),
        "{}",
        choose.body
    );
    assert!(!choose.body.contains(&ct_id));

    let listed = || {
        daemon
            .studies()
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["study_uid"] == ct.as_str())
    };
    assert!(
        eventually(Duration::from_secs(40), || !listed()),
        "retention never deleted the study:\n{}",
        daemon.log()
    );
    let after = check("after retention");
    assert!(after.contains("verwijderd"), "the deletion: {after}");
    let page = admin.get("/console/audit?patient=jansen");
    assert!(page.body.contains(&ct_id), "{}", page.body);
}

#[test]
fn settings_show_the_configuration_without_a_secret() {
    let daemon = Daemon::start();
    let admin = daemon.staff("beheer", "admin");
    let page = admin.get("/console/settings");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains(env!("CARGO_PKG_VERSION")));
    assert!(
        body.contains(&daemon.data_dir().display().to_string()),
        "{body}"
    );
    assert!(
        body.contains("token_file") && body.contains("client_secret_file"),
        "{body}"
    );
    assert!(body.contains(&daemon.console.port().to_string()), "{body}");
    assert!(
        body.contains("outbox") && body.contains("draait"),
        "the workers: {body}"
    );
    let token = std::fs::read_to_string(daemon.data_dir().join("admin.token")).unwrap();
    assert!(!body.contains(token.trim()), "the admin token on the page");
    let tls_key = std::fs::read_to_string(daemon.data_dir().join("tls/key.pem")).unwrap();
    let middle = tls_key.lines().nth(1).unwrap();
    assert!(!body.contains(middle), "the TLS key on the page");
    assert!(!body.contains("PRIVATE KEY"));
    let relay_key = std::fs::read(daemon.data_dir().join("relay/key.pgp")).unwrap();
    let relay_text = String::from_utf8_lossy(&relay_key);
    if let Some(line) = relay_text.lines().find(|l| l.len() > 40) {
        assert!(!body.contains(line), "the gateway key on the page");
    }
}
