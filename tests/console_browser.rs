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
