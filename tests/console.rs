//! The console's listener (issue 14), black box: the admin API lives there
//! and no longer on the recipients' listener (unless the upgrade switch
//! says so, loudly); the grant's issuer is whoever authenticated, never
//! typed text; the console's pages come with a CSP that forbids inline
//! code, and the console serves nothing of the public site.

mod common;

use common::sharing::{share, study_with};
use common::{Ask, Daemon, sample_files, text};

fn admin_ask(daemon: &Daemon) -> Ask<'static> {
    let token = std::fs::read_to_string(daemon.data_dir().join("admin.token")).unwrap();
    Ask {
        headers: vec![("Authorization", format!("Bearer {}", token.trim()))],
        ..Ask::default()
    }
}

#[test]
fn the_admin_api_answers_on_the_console_listener_only() {
    let daemon = Daemon::start();
    assert_ne!(daemon.console.port(), daemon.http.port());
    let ask = admin_ask(&daemon);
    let on_console = daemon.https_on(daemon.console, "GET", "/admin/v1/grants", ask.clone());
    assert_eq!(on_console.status, 200, "{on_console:?}");
    // on the public listener: not there at all, even with the right token
    let on_public = daemon.https_on(daemon.http, "GET", "/admin/v1/grants", ask.clone());
    assert_eq!(on_public.status, 404, "{on_public:?}");
    let unauthenticated = daemon.https_on(daemon.http, "GET", "/admin/v1/studies", Ask::default());
    assert_eq!(unauthenticated.status, 404, "{unauthenticated:?}");
    // the CLI follows the API to the console's listener
    let grants = daemon.cli(&["grants", "--json"]);
    assert!(grants.status.success(), "{}", text(&grants));
    // and the public site is not served on the console's listener
    for path in [
        "/s/anything",
        "/redeem",
        "/.well-known/pushgate/openpgp.asc",
    ] {
        let answer = daemon.https_on(daemon.console, "GET", path, Ask::default());
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
    }
}

#[test]
fn the_upgrade_switch_keeps_the_admin_api_on_the_public_listener_and_says_so() {
    let daemon = Daemon::start_with("[admin]\non_public_listener = true\n");
    let on_public = daemon.https_on(daemon.http, "GET", "/admin/v1/grants", admin_ask(&daemon));
    assert_eq!(on_public.status, 200, "{on_public:?}");
    assert!(
        daemon.log().contains("admin.on_public_listener = true"),
        "{}",
        daemon.log()
    );
}

#[test]
fn the_console_listens_on_loopback_unless_told_otherwise() {
    // the embedded defaults, as the daemon reads them
    let defaults = pushgate::config::Config::from_toml_str("", std::path::Path::new("t")).unwrap();
    assert!(defaults.console.listen.ip().is_loopback());
    assert_eq!(defaults.console.listen.port(), 8444);
    assert!(!defaults.admin.on_public_listener);
    assert_eq!(defaults.console.exclude_by_default, vec!["PR".to_string()]);
}

#[test]
fn the_issuer_is_who_authenticated_never_typed_text() {
    let daemon = Daemon::start();
    let ct: Vec<_> = sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect();
    daemon.send_all(&ct);
    let study = study_with(&daemon, "CT");
    let grant = share(&daemon, &[&study]);
    let id = grant["id"].as_str().unwrap();
    let listed = daemon.cli(&["grants", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .unwrap();
    assert_eq!(mine["issuer"], "admin token", "{mine}");
    assert_eq!(mine["issued_by"]["id"], "admin-token", "{mine}");

    // a typed issuer is refused, by the API and by the CLI
    let mut ask = admin_ask(&daemon);
    ask.body = Some(format!(
        r#"{{"study_uid":"{study}","issuer":"dr. Somebody Else"}}"#
    ));
    let typed = daemon.https("POST", "/admin/v1/grants", ask);
    assert_eq!(typed.status, 400, "{typed:?}");
    assert!(typed.body.contains("issuer"), "{}", typed.body);
    let cli = daemon.cli(&["share", &study, "--issuer", "dr. Somebody Else"]);
    assert!(!cli.status.success(), "{}", text(&cli));

    // revocation names the token too, in the journal
    assert!(daemon.cli(&["revoke", id]).status.success());
    let journal = daemon.cli(&["audit", "export"]);
    let journal = String::from_utf8_lossy(&journal.stdout);
    let issued = journal
        .lines()
        .find(|l| l.contains("grant_issued") && l.contains(id))
        .expect("issued in the journal");
    assert!(issued.contains(r#""by":{"id":"admin-token""#), "{issued}");
    let revoked = journal
        .lines()
        .find(|l| l.contains("grant_revoked") && l.contains(id))
        .expect("revoked in the journal");
    assert!(
        revoked.contains(r#""actor":{"id":"admin-token""#),
        "{revoked}"
    );
}

#[test]
fn console_pages_forbid_inline_code_and_ask_for_a_login() {
    let daemon = Daemon::start();
    let home = daemon.https("GET", "/console/", Ask::default());
    assert_eq!(home.status, 303, "{home:?}");
    assert_eq!(home.header("location"), Some("/console/login"));
    let csp = home.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let css = daemon.https("GET", "/console/static/console.css", Ask::default());
    assert_eq!(css.status, 200);
    assert!(
        css.header("content-type")
            .unwrap_or_default()
            .starts_with("text/css")
    );
    assert!(css.body.contains("@media print"));
    let missing = daemon.https("GET", "/console/static/../../admin.token", Ask::default());
    assert_eq!(missing.status, 404, "{missing:?}");
    // a logout without a session and its CSRF token changes nothing
    let logout = daemon.https("POST", "/console/logout", Ask::default());
    assert_eq!(logout.status, 303, "{logout:?}");
    assert_eq!(
        logout.header("location"),
        Some("/console/login?next=/console/logout")
    );
}
