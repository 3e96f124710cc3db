//! The console in a real browser: headless Chromium (Selenium) by clicks,
//! axe-core (npm, pinned, cached under ~/.cache/pushgate/npm) on every
//! page — no serious or critical accessibility violation — and no CSP
//! violation in the browser's console.

mod common;

use std::process::Command;

use common::Daemon;
use common::clients::run_script;
use serde_json::json;

/// axe.min.js, installed once by tests/clients/axe-install.sh.
fn axe() -> String {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/axe-install.sh"
    ))
    .output()
    .unwrap();
    assert!(out.status.success(), "axe-core: {}", common::text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn enrol_manage_users_switch_language_log_out_and_in_by_clicks() {
    let daemon = Daemon::start();
    let out = daemon.cli(&[
        "users",
        "add",
        "anna",
        "--role",
        "admin",
        "--display-name",
        "Anna de Vries",
        "--json",
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = json!({
        "base": daemon.console_origin(),
        "work": daemon.dir.path(),
        "enrol_url": made["enrol_url"],
        "name": "anna",
        "password": common::console::PASSWORD,
        "axe": axe(),
    });
    let ran = run_script("console_browser.py", "accounts", &config, daemon.dir.path());
    ran.assert_passed(&[
        "enrol",
        "users",
        "language",
        "logout",
        "wrong_then_right",
        "no_csp_violation",
    ]);
    for (page, violations) in ran.report["axe"].as_object().unwrap() {
        for v in violations.as_array().unwrap() {
            eprintln!("axe {page}: {} ({}) {}", v["id"], v["impact"], v["help"]);
        }
    }
}

/// The whole flow by clicks, as a laborant with the user role:
/// log in, find the study by patient ID (its hostile name shown as text),
/// untick a series and see the summary follow, share on a referral, print
/// the referral sheet (one A4 page), revoke with a reason after the
/// confirmation step. Then, outside the browser: the grant covers exactly
/// the series left ticked, the link shown is refused once revoked, and
/// the journal names her for both. Then every other section as the
/// applicatiebeheerder sees it, each checked by axe.
#[test]
fn find_untick_share_print_and_revoke_by_clicks() {
    const NAME: &str = "<script>alert(1)</script>^\"O'Hara\"";
    let (daemon, study) = common::sharing::ct_study_of("", NAME);
    let staff = daemon.staff("laborant", "user");
    let admin = daemon.staff("beheer", "admin");
    let patient_id = daemon.studies()[0]["patient"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let config = json!({
        "base": daemon.console_origin(),
        "work": daemon.dir.path(),
        "name": staff.name,
        "password": common::console::PASSWORD,
        "secret": staff.secret,
        "patient_id": patient_id,
        "patient_name_shown": "<script>alert(1)</script>, \"O'Hara\"",
        "untick": "SR",
        "admin": {"name": admin.name, "secret": admin.secret},
        "axe": axe(),
    });
    let ran = run_script("console_browser.py", "share", &config, daemon.dir.path());
    ran.assert_passed(&[
        "log_in",
        "find",
        "untick",
        "share",
        "print",
        "revoke",
        "admin_pages",
        "no_csp_violation",
    ]);
    assert_eq!(ran.report["sheet_pages"], 1);

    // the grant: exactly the CT series (PR by default, SR by the click)
    let token = std::fs::read_to_string(daemon.data_dir().join("admin.token")).unwrap();
    let grants = daemon
        .https(
            "GET",
            "/admin/v1/grants",
            common::Ask {
                headers: vec![("Authorization", format!("Bearer {}", token.trim()))],
                ..common::Ask::default()
            },
        )
        .json();
    let grants = grants.as_array().unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let grant = &grants[0];
    assert_eq!(grant["target"]["study"], study.as_str());
    assert_eq!(grant["status"], "revoked", "{grant}");
    assert_eq!(grant["issued_by"]["id"], staff.person_id());
    let detail = daemon
        .https(
            "GET",
            &format!("/admin/v1/studies/{study}"),
            common::Ask {
                headers: vec![("Authorization", format!("Bearer {}", token.trim()))],
                ..common::Ask::default()
            },
        )
        .json();
    let ct: Vec<&serde_json::Value> = detail["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["modality"] == "CT")
        .collect();
    assert_eq!(ct.len(), 1);
    assert_eq!(grant["scope"]["series"], json!([ct[0]["series_uid"]]));
    assert_eq!(ran.report["leaving"]["series"], 1);
    assert_eq!(ran.report["leaving"]["images"], ct[0]["num_instances"]);

    // the link the page showed: refused now, like any unknown link
    let link = ran.report["link"].as_str().unwrap();
    let refused = daemon.https(
        "POST",
        &common::sharing::path_of(&json!(link)),
        common::Ask::default(),
    );
    assert_eq!(refused.status, 404, "{refused:?}");

    // the journal names her as issuer and as revoker, with the reason
    let journal = daemon.journal();
    let of = |kind: &str| {
        journal
            .iter()
            .find(|r| r["event"]["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))["event"]
            .clone()
    };
    assert_eq!(of("grant_issued")["by"]["id"], staff.person_id());
    assert_eq!(of("grant_issued")["legal_basis"]["kind"], "referral");
    let revoked = of("grant_revoked");
    assert_eq!(revoked["actor"]["id"], staff.person_id());
    assert_eq!(revoked["reason"], "Verkeerde patiënt gekozen", "{revoked}");
}

/// A study still arriving keeps the studies page reloading itself; the
/// reload says it is one (`?auto=1`, so the idle timeout still ends an
/// unattended session: tests/console_login.rs) and stops while she types.
#[test]
fn a_live_page_reloads_itself_quietly_and_not_while_typing() {
    let daemon =
        Daemon::start_with("[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nstable_after = \"10m\"\n");
    let dir = tempfile::tempdir().unwrap();
    let files = common::sharing::ct_files_with(dir.path(), &[]);
    daemon.send_all(&files[..2]);
    let staff = daemon.staff("laborant", "user");
    let config = json!({
        "base": daemon.console_origin(),
        "work": daemon.dir.path(),
        "name": staff.name,
        "password": common::console::PASSWORD,
        "secret": staff.secret,
    });
    let ran = run_script("console_browser.py", "live", &config, daemon.dir.path());
    ran.assert_passed(&[
        "log_in",
        "reloads_quietly",
        "not_while_typing",
        "no_csp_violation",
    ]);
}
