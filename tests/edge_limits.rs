//! Limits at the HTTP edge, tried as an attacker would (issue #12): one
//! address cannot lock out all of IPv4 from redeeming codes on a
//! dual-stack listener; anonymous POSTs to the relay inbox and wrong admin
//! tokens are refused within the bound every refusal shares (journal and
//! log), and wrong admin tokens are limited per address.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::sharing::{share, study_with};
use common::{Ask, Daemon, sample_files, text};

/// Refusals one address may have journaled: 60 at once, then one a second
/// (`denials` in authz), plus a little slack for timing.
fn refusal_bound(since: Instant) -> usize {
    60 + since.elapsed().as_secs() as usize + 3
}

/// `count` POSTs (or GETs) in one curl run, one connection reused: the
/// status of each and its Retry-After, one line per request.
fn burst(daemon: &Daemon, from: &str, path: &str, headers: &[&str], count: usize) -> Vec<String> {
    // the admin API lives on the console's listener
    let port = if path.starts_with("/admin/") {
        daemon.console.port()
    } else {
        daemon.http.port()
    };
    let url = format!("https://127.0.0.1:{port}{path}");
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--max-time", "120", "--interface", from])
        .args(["-w", "%{http_code} %header{retry-after}\\n"]);
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    for _ in 0..count {
        cmd.args(["-o", "/dev/null"]).arg(&url);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "curl: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

fn journal(daemon: &Daemon) -> String {
    let out = daemon.cli(&["audit", "export"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_ipv4_client_of_a_dual_stack_listener_does_not_limit_another() {
    let mut daemon = Daemon::start_with("[http]\nlisten = \"[::]:HTTP_PORT\"\n");
    assert!(daemon.http.ip().is_unspecified() && daemon.http.is_ipv6());
    daemon.http = format!("127.0.0.1:{}", daemon.http.port()).parse().unwrap();
    let ct: Vec<_> = sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect();
    daemon.send_all(&ct);
    let grant = share(&daemon, &[&study_with(&daemon, "CT")]);
    let code = grant["code"].as_str().unwrap();
    let redeem = |code: &str, from: &str| {
        daemon.https(
            "POST",
            "/redeem",
            Ask {
                body: Some(format!("{{\"code\":\"{code}\"}}")),
                from: Some(from.into()),
                ..Ask::default()
            },
        )
    };
    // 127.0.0.40 arrives as ::ffff:127.0.0.40: five wrong codes, then 429
    let statuses: Vec<u16> = (0..6)
        .map(|_| redeem(&pushgate::authz::secret::new_code().0, "127.0.0.40").status)
        .collect();
    assert_eq!(statuses, [404, 404, 404, 404, 404, 429]);
    // its neighbour is a client of its own
    let ok = redeem(code, "127.0.0.41");
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.json()["holder_token"].is_string());
}

#[test]
fn anonymous_posts_to_the_relay_inbox_are_journaled_within_the_refusal_bound() {
    let daemon = Daemon::start();
    let started = Instant::now();
    // 500 POSTs with a small body, no client certificate, over HTTP/1.1
    // as gateways deliver
    let url = format!("https://127.0.0.1:{}/relay/v1/inbox", daemon.http.port());
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sk",
        "--http1.1",
        "--max-time",
        "120",
        "--interface",
        "127.0.0.7",
    ])
    .args(["-w", "%{http_code}\\n"])
    .args(["--data-binary", "not a package"]);
    for _ in 0..500 {
        cmd.args(["-o", "/dev/null"]).arg(&url);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "curl: {}", text(&out));
    let statuses = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(statuses.lines().count(), 500);
    assert!(statuses.lines().all(|s| s == "403"), "{statuses}");

    let bound = refusal_bound(started);
    let journal = journal(&daemon);
    let refused = journal.matches("\"step\":\"refused\"").count();
    assert!(
        (50..=bound).contains(&refused),
        "{refused} refusals journaled for 500 anonymous POSTs (bound {bound})"
    );
    let logged = daemon.log().matches("relay inbox: refused").count();
    assert!(
        (50..=bound).contains(&logged),
        "{logged} log lines for 500 anonymous POSTs (bound {bound})"
    );
    // the rest are counted, not lost, and the daemon serves on
    let metrics = daemon.get("/metrics");
    assert_eq!(metrics.status, 200);
    let unjournaled: f64 = metrics
        .body
        .lines()
        .find(|l| l.starts_with("pushgate_accesses_unjournaled"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(unjournaled >= (500 - bound) as f64, "{}", metrics.body);
    assert_eq!(daemon.get("/healthz").status, 200);
}

#[test]
fn wrong_admin_tokens_are_limited_per_address_and_journaled() {
    let daemon = Daemon::start();
    let token = std::fs::read_to_string(daemon.data_dir().join("admin.token")).unwrap();
    let token = token.trim();
    let started = Instant::now();
    let answers = burst(
        &daemon,
        "127.0.0.8",
        "/admin/v1/grants",
        &["Authorization: Bearer not-the-token"],
        300,
    );
    assert_eq!(answers.len(), 300);
    // ten failures, then 429 with Retry-After (one more failure is let
    // through every six seconds)
    assert!(answers[..10].iter().all(|a| a == "401"), "{answers:?}");
    let refilled = started.elapsed().as_secs() as usize / 6 + 1;
    let failed = answers[10..].iter().filter(|a| *a == "401").count();
    assert!(failed <= refilled, "{answers:?}");
    for answer in answers[10..].iter().filter(|a| *a != "401") {
        let (status, retry_after) = answer.split_once(' ').unwrap_or((answer, ""));
        assert_eq!(status, "429", "{answers:?}");
        let seconds: u64 = retry_after.parse().expect("Retry-After in seconds");
        assert!((1..=10).contains(&seconds), "{answer}");
    }
    // the limited address is refused even with the right token, until its
    // bucket refills; another address and the local command are not
    let from = |address: &str, bearer: &str| {
        daemon.https(
            "GET",
            "/admin/v1/grants",
            Ask {
                headers: vec![("Authorization", format!("Bearer {bearer}"))],
                from: Some(address.into()),
                ..Ask::default()
            },
        )
    };
    let limited = from("127.0.0.8", token);
    assert_eq!(limited.status, 429, "{limited:?}");
    assert!(limited.body.contains("too many"), "{limited:?}");
    assert_eq!(from("127.0.0.9", token).status, 200);
    let out = daemon.cli(&["grants", "--json"]);
    assert!(out.status.success(), "{}", text(&out));

    // journaled, bounded like every refusal, and logged as often
    let bound = refusal_bound(started);
    let journal = journal(&daemon);
    let admin = journal.matches("\"what\":\"admin\"").count();
    assert!(
        (50..=bound).contains(&admin),
        "{admin} admin refusals journaled for 301 (bound {bound})"
    );
    assert!(
        journal.contains("\"reason\":\"unknown_token\""),
        "{journal}"
    );
    assert!(journal.contains("\"reason\":\"rate_limited\""), "{journal}");
    let logged = daemon
        .log()
        .matches("admin API: authentication refused")
        .count();
    assert!((50..=bound).contains(&logged), "{logged} log lines");

    // one refill later (six seconds a failure) the right token works again
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(from("127.0.0.8", token).status, 200);
}
