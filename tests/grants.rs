//! Push authorizations against the running daemon, with curl as the
//! recipient and the pushgate CLI as the sender: binding, the neutral
//! answer, codes and their limits, re-authorization, revocation, UZI
//! certificates over mTLS, the journal (tamper, kill -9, reindex).

mod common;

use std::time::Duration;

use common::pki::TestCa;
use common::sharing::{as_holder, bind, path_of, share, study_with};
use common::{Ask, Daemon, Reply, sample_files, text};
use serde_json::Value;

fn study_uid(daemon: &Daemon) -> String {
    study_with(daemon, "CT")
}

fn daemon_with_ct() -> Daemon {
    let daemon = Daemon::start();
    let ct: Vec<_> = sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect();
    daemon.send_all(&ct);
    daemon
}

#[test]
fn every_refusal_under_s_looks_the_same() {
    let daemon = daemon_with_ct();
    let study = study_uid(&daemon);
    let grant = share(&daemon, &[&study, "--message", "voor dr. de Vries"]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    let page = daemon.https("GET", &path, as_holder(&holder));
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.json()["message"], "voor dr. de Vries");
    assert!(page.json()["covers"]["instances"].as_u64().unwrap() >= 16);

    let expired = share(&daemon, &[&study, "--expires", "1s"]);
    let expired_path = path_of(&expired["url"]);
    let expired_holder = bind(&daemon, &expired_path);
    let revoked = share(&daemon, &[&study]);
    let revoked_path = path_of(&revoked["url"]);
    let revoked_holder = bind(&daemon, &revoked_path);
    assert!(
        daemon
            .cli(&["revoke", revoked["id"].as_str().unwrap()])
            .status
            .success()
    );
    std::thread::sleep(Duration::from_millis(1500));

    let refusals: Vec<(&str, Reply)> = vec![
        ("second identity", daemon.get(&path)),
        (
            "forged holder token",
            daemon.https(
                "GET",
                &path,
                as_holder("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ),
        ),
        (
            "expired",
            daemon.https("GET", &expired_path, as_holder(&expired_holder)),
        ),
        (
            "revoked",
            daemon.https("GET", &revoked_path, as_holder(&revoked_holder)),
        ),
        (
            "unknown token",
            daemon.get("/s/QwdYCqIeG5OqXrAqd12qxibNR4xstlLe"),
        ),
        ("garbage token", daemon.get("/s/%2e%2e")),
        (
            "unknown path under a valid token",
            daemon.https("GET", &format!("{path}/elsewhere"), as_holder(&holder)),
        ),
        ("rebinding", daemon.https("POST", &path, Ask::default())),
    ];
    let (_, first) = &refusals[0];
    assert_eq!(first.status, 404);
    for (what, reply) in &refusals {
        assert_eq!(reply, first, "{what} differs from the other refusals");
    }
    // the same holds for browsers, in HTML
    let html = |p: &str| {
        daemon.https(
            "GET",
            p,
            Ask {
                headers: vec![("Accept", "text/html".into())],
                ..Ask::default()
            },
        )
    };
    assert_eq!(html(&path), html("/s/QwdYCqIeG5OqXrAqd12qxibNR4xstlLe"));
    assert!(html(&path).body.contains("Niet beschikbaar"));
}

#[test]
fn a_browser_enters_a_code_and_gets_the_study_page_with_its_cookie() {
    let daemon = daemon_with_ct();
    let study = study_uid(&daemon);
    let grant = share(
        &daemon,
        &[
            &study,
            "--exclude-modality",
            "PR",
            "--message",
            "Verwijzing neurologie",
        ],
    );
    let html = |extra: Vec<(&'static str, String)>| Ask {
        headers: [vec![("Accept", "text/html".to_string())], extra].concat(),
        ..Ask::default()
    };
    let home = daemon.https("GET", "/", html(vec![]));
    assert!(home.body.contains("action=\"/redeem\""), "{home:?}");
    let code = grant["code"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .replace('-', " ");
    let redeemed = daemon.https(
        "POST",
        "/redeem",
        Ask {
            body: Some(format!("code={}", code.replace(' ', "+"))),
            form: true,
            ..html(vec![])
        },
    );
    assert_eq!(redeemed.status, 303, "{redeemed:?}");
    let location = redeemed.header("location").unwrap().to_string();
    let cookie = redeemed.header("set-cookie").unwrap().to_string();
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        &format!("Path={location}"),
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    let page = daemon.https("GET", &location, html(vec![("Cookie", pair.clone())]));
    assert_eq!(page.status, 200, "{page:?}");
    // a page with patient data and a token in its URL: not cached, not
    // framed, not referred, no scripts from anywhere
    for (name, value) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(page.header(name), Some(value), "{page:?}");
    }
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        page.body.contains("Verwijzing neurologie") && page.body.contains("Jansen"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("Presentatiestatus"),
        "the PR series was left out"
    );
    // the same cookie does not open another grant
    let other = share(&daemon, &[&study]);
    let other_page = daemon.https("GET", &path_of(&other["url"]), html(vec![("Cookie", pair)]));
    assert!(
        other_page.body.contains("Openen"),
        "an unbound grant offers binding, nothing more"
    );
}

/// Redeeming: a code that is expired, revoked, unknown or already someone
/// else's gets one answer.
#[test]
fn every_refused_code_looks_the_same() {
    let daemon = daemon_with_ct();
    let study = study_uid(&daemon);
    let expired = share(&daemon, &[&study, "--expires", "1s"]);
    let revoked = share(&daemon, &[&study]);
    assert!(
        daemon
            .cli(&["revoke", revoked["id"].as_str().unwrap()])
            .status
            .success()
    );
    let taken = share(&daemon, &[&study]);
    bind(&daemon, &path_of(&taken["url"]));
    std::thread::sleep(Duration::from_millis(1500));
    let unknown = pushgate::authz::secret::new_code().0;
    let replies: Vec<Reply> = [
        expired["code"].as_str().unwrap(),
        revoked["code"].as_str().unwrap(),
        taken["code"].as_str().unwrap(),
        &unknown,
    ]
    .iter()
    .enumerate()
    .map(|(n, code)| {
        daemon.https(
            "POST",
            "/redeem",
            Ask {
                body: Some(format!("{{\"code\":\"{code}\"}}")),
                from: Some(format!("127.0.1.{n}")),
                ..Ask::default()
            },
        )
    })
    .collect();
    assert_eq!(replies[0].status, 404);
    for reply in &replies {
        assert_eq!(reply, &replies[0]);
    }
}

/// A form on another site aimed at a holder's browser is refused; programs
/// (no Origin, no Sec-Fetch-Site) are not affected.
#[test]
fn posts_from_other_sites_are_refused() {
    let daemon = daemon_with_ct();
    let study = study_uid(&daemon);
    let grant = share(&daemon, &[&study, "--delegation-depth", "1"]);
    let path = path_of(&grant["url"]);
    for header in [
        ("Origin", "https://evil.example".to_string()),
        ("Sec-Fetch-Site", "cross-site".to_string()),
    ] {
        let reply = daemon.https(
            "POST",
            &path,
            Ask {
                headers: vec![header.clone()],
                ..Ask::default()
            },
        );
        assert_eq!(reply.status, 403, "{header:?}");
    }
    // still unbound: the refused requests bound nothing
    assert_eq!(daemon.https("POST", &path, Ask::default()).status, 200);
}

#[test]
fn codes_catch_typos_and_hold_their_limits_under_a_burst() {
    let daemon = daemon_with_ct();
    let study = study_uid(&daemon);
    let grant = share(&daemon, &[&study]);
    let code = grant["code"].as_str().unwrap();
    let mut typo: Vec<char> = code.chars().collect();
    typo[1] = if typo[1] == '7' { '8' } else { '7' };
    let typo: String = typo.into_iter().collect();
    let reply = daemon.https(
        "POST",
        "/redeem",
        Ask {
            body: Some(format!("{{\"code\":\"{typo}\"}}")),
            ..Ask::default()
        },
    );
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("typo"), "{reply:?}");

    let started = std::time::Instant::now();
    // wrong codes with valid check characters from one address: five, then 429
    let wrong: Vec<String> = (0..8)
        .map(|_| pushgate::authz::secret::new_code().0)
        .collect();
    let statuses: Vec<u16> = wrong
        .iter()
        .map(|c| {
            daemon
                .https(
                    "POST",
                    "/redeem",
                    Ask {
                        body: Some(format!("{{\"code\":\"{c}\"}}")),
                        from: Some("127.0.0.2".into()),
                        ..Ask::default()
                    },
                )
                .status
        })
        .collect();
    assert_eq!(&statuses[..5], &[404; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = daemon.https(
        "POST",
        "/redeem",
        Ask {
            body: Some(format!("{{\"code\":\"{}\"}}", wrong[0])),
            from: Some("127.0.0.2".into()),
            ..Ask::default()
        },
    );
    assert!(limited.header("retry-after").is_some(), "{limited:?}");

    // a burst from many addresses at once: the global limit (100) holds
    let children: Vec<_> = (10..80)
        .map(|n| {
            let wrong: Vec<String> = (0..6)
                .map(|_| pushgate::authz::secret::new_code().0)
                .collect();
            let port = daemon.http.port();
            std::thread::spawn(move || {
                wrong
                    .iter()
                    .map(|c| {
                        let out = std::process::Command::new("curl")
                            .args([
                                "-sk",
                                "-o",
                                "/dev/null",
                                "-w",
                                "%{http_code}",
                                "--interface",
                                &format!("127.0.0.{n}"),
                            ])
                            .args([
                                "-H",
                                "Content-Type: application/json",
                                "--data-binary",
                                &format!("{{\"code\":\"{c}\"}}"),
                            ])
                            .arg(format!("https://127.0.0.1:{port}/redeem"))
                            .output()
                            .unwrap();
                        String::from_utf8_lossy(&out.stdout).to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<String> = children
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let looked_up = all.iter().filter(|s| *s == "404").count();
    let limited = all.iter().filter(|s| *s == "429").count();
    assert_eq!(looked_up + limited, all.len(), "{all:?}");
    // never past the global budget: 100 at once, 100 a minute after that
    let refilled = (started.elapsed().as_secs_f64() * 100.0 / 60.0).ceil() as usize;
    assert!(
        looked_up + 5 <= 100 + refilled,
        "{looked_up} wrong codes looked up in {:?}",
        started.elapsed()
    );
    assert!(limited > 0);
    // every failure is journaled
    let journal = daemon.cli(&["audit", "export"]);
    let denied = String::from_utf8_lossy(&journal.stdout)
        .matches("\"what\":\"redeem\"")
        .count();
    assert!(
        denied >= all.len() + 9,
        "{denied} redeem events for {} attempts",
        all.len() + 9
    );
    // the right code still works from a fresh address, once the global
    // budget has an attempt again
    std::thread::sleep(Duration::from_secs(1));
    let ok = daemon.https(
        "POST",
        "/redeem",
        Ask {
            body: Some(format!("{{\"code\":\"{code}\"}}")),
            from: Some("127.0.0.200".into()),
            ..Ask::default()
        },
    );
    assert_eq!(ok.status, 200, "{ok:?}");
}

#[test]
fn passing_on_narrows_and_revoking_the_parent_cuts_the_children() {
    let daemon = daemon_with_ct();
    let study = study_uid(&daemon);
    let parent = share(
        &daemon,
        &[
            &study,
            "--delegation-depth",
            "1",
            "--expires",
            "2d",
            "--exclude-modality",
            "PR",
        ],
    );
    let path = path_of(&parent["url"]);
    let holder = bind(&daemon, &path);
    let delegate = |body: &str| {
        daemon.https(
            "POST",
            &format!("{path}/delegate"),
            Ask {
                body: Some(body.to_string()),
                ..as_holder(&holder)
            },
        )
    };
    // wider, longer, deeper: refused with the reason (the holder may know)
    for body in [
        r#"{"series":["1.2.3.4.5"]}"#,
        r#"{"expires":"3d"}"#,
        r#"{"delegation_depth":1}"#,
    ] {
        let reply = delegate(body);
        assert_eq!(reply.status, 422, "{body}: {reply:?}");
    }
    // a stranger cannot delegate
    let stranger = daemon.https(
        "POST",
        &format!("{path}/delegate"),
        Ask {
            body: Some("{}".into()),
            ..Ask::default()
        },
    );
    assert_eq!(stranger.status, 404);
    let child = delegate(r#"{"expires":"1d","message":"voor de neuroloog"}"#);
    assert_eq!(child.status, 201, "{child:?}");
    let child = child.json();
    let child_path = path_of(&child["url"]);
    let child_holder = bind(&daemon, &child_path);
    assert_eq!(
        daemon
            .https("GET", &child_path, as_holder(&child_holder))
            .status,
        200
    );
    // the child may not be passed on again
    let grandchild = daemon.https(
        "POST",
        &format!("{child_path}/delegate"),
        Ask {
            body: Some("{}".into()),
            ..as_holder(&child_holder)
        },
    );
    assert_eq!(grandchild.status, 422);
    // the chain is visible to the issuer
    let show = daemon.cli(&["grants", "--json"]);
    let grants: Value = serde_json::from_slice(&show.stdout).unwrap();
    let child_view = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == child["id"])
        .unwrap();
    assert_eq!(child_view["parent"], parent["id"]);
    assert!(
        child_view["scope"]["exclude_modalities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "PR")
    );
    // revoking the parent cuts the child
    let out = daemon.cli(&[
        "revoke",
        parent["id"].as_str().unwrap(),
        "--reason",
        "verkeerde patiënt",
    ]);
    assert!(
        text(&out).contains("1 grant(s) passed on"),
        "{}",
        text(&out)
    );
    assert_eq!(
        daemon
            .https("GET", &child_path, as_holder(&child_holder))
            .status,
        404
    );
    assert_eq!(daemon.https("GET", &path, as_holder(&holder)).status, 404);
}

#[test]
fn uzi_certificates_bind_by_organization_and_role_over_mtls() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new(pki.path());
    let radiologist = ca.issue("dr A Radioloog", Some(("10000001", "90000380", "01.039")));
    let colleague = ca.issue("dr B Radioloog", Some(("10000002", "90000380", "01.039")));
    let surgeon = ca.issue("dr C Chirurg", Some(("10000003", "90000380", "01.003")));
    let elsewhere = ca.issue("dr D Elders", Some(("10000004", "90000999", "01.039")));
    let plain = ca.issue("pacs.zkh-b.example", None);
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = TestCa::new(foreign_dir.path());
    let unknown_ca = foreign.issue("dr E Onbekend", Some(("10000005", "90000380", "01.039")));

    let daemon = Daemon::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\nclient_ca = [\"{}\"]\n",
        ca.ca_pem.display()
    ));
    let ct: Vec<_> = sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect();
    daemon.send_all(&ct);
    let study = study_uid(&daemon);
    let grant = share(
        &daemon,
        &[&study, "--to-ura", "90000380", "--role", "01.039"],
    );
    let path = path_of(&grant["url"]);
    let with = |cert| Ask {
        cert: Some(cert),
        ..Ask::default()
    };
    // no certificate, a certificate from another CA, another organization,
    // another role: the neutral answer, and nothing is bound
    assert_eq!(daemon.https("POST", &path, Ask::default()).status, 404);
    // (the handshake takes any client certificate, since peer gateways
    // present theirs on the same port; one that does not chain to
    // `http.client_ca` names no holder)
    assert_eq!(
        daemon.https("POST", &path, with(&unknown_ca)).status,
        404,
        "a certificate from an unknown CA is no identity"
    );
    assert_eq!(daemon.https("POST", &path, with(&elsewhere)).status, 404);
    assert_eq!(daemon.https("POST", &path, with(&surgeon)).status, 404);
    // the radiologist binds it to the card
    let bound = daemon.https("POST", &path, with(&radiologist));
    assert_eq!(bound.status, 200, "{bound:?}");
    assert!(
        bound.json()["holder_token"].is_null(),
        "bound to the certificate, no token"
    );
    assert_eq!(daemon.https("GET", &path, with(&radiologist)).status, 200);
    // a colleague with the same URA and role is someone else
    assert_eq!(daemon.https("GET", &path, with(&colleague)).status, 404);
    let grants = daemon.cli(&["grants", "--json"]);
    assert!(
        String::from_utf8_lossy(&grants.stdout).contains("UZI 10000001"),
        "{}",
        text(&grants)
    );

    // a grant for anyone binds to a plain certificate's subject and key
    let open = share(&daemon, &[&study]);
    let open_path = path_of(&open["url"]);
    assert_eq!(daemon.https("POST", &open_path, with(&plain)).status, 200);
    assert_eq!(daemon.https("GET", &open_path, with(&plain)).status, 200);
    assert_eq!(daemon.https("GET", &open_path, Ask::default()).status, 404);
    // a browser without a card still reaches the code page
    assert_eq!(daemon.get("/").status, 200);
}

/// Only the CAs named in `http.uzi_ca` may vouch for a UZI identity: a
/// hospital CA also in `http.client_ca` cannot mint a radiologist.
#[test]
fn uzi_identities_count_only_from_uzi_cas() {
    let pki = tempfile::tempdir().unwrap();
    let uzi_dir = pki.path().join("uzi");
    let local_dir = pki.path().join("local");
    std::fs::create_dir_all(&uzi_dir).unwrap();
    std::fs::create_dir_all(&local_dir).unwrap();
    let uzi_ca = TestCa::new(&uzi_dir);
    let local_ca = TestCa::new(&local_dir);
    let forged = local_ca.issue("not really dr A", Some(("10000001", "90000380", "01.039")));
    let genuine = uzi_ca.issue("dr A Radioloog", Some(("10000001", "90000380", "01.039")));
    let daemon = Daemon::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\nclient_ca = [\"{}\", \"{}\"]\nuzi_ca = [\"{}\"]\n",
        uzi_ca.ca_pem.display(),
        local_ca.ca_pem.display(),
        uzi_ca.ca_pem.display()
    ));
    let ct: Vec<_> = sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect();
    daemon.send_all(&ct);
    let study = study_uid(&daemon);
    let grant = share(&daemon, &[&study, "--to-ura", "90000380"]);
    let path = path_of(&grant["url"]);
    assert_eq!(
        daemon
            .https(
                "POST",
                &path,
                Ask {
                    cert: Some(&forged),
                    ..Ask::default()
                }
            )
            .status,
        404
    );
    assert_eq!(
        daemon
            .https(
                "POST",
                &path,
                Ask {
                    cert: Some(&genuine),
                    ..Ask::default()
                }
            )
            .status,
        200
    );
}

#[test]
fn the_journal_names_a_flipped_byte_and_survives_kill_9_and_reindex() {
    let mut daemon = daemon_with_ct();
    let study = study_uid(&daemon);
    let grant = share(&daemon, &[&study, "--delegation-depth", "1"]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    // kill -9 right after a grant was created: it is there after restart
    let late = share(&daemon, &[&study, "--message", "na de crash"]);
    daemon.kill9();
    daemon.spawn().unwrap();
    let grants: Value = serde_json::from_slice(&daemon.cli(&["grants", "--json"]).stdout).unwrap();
    assert!(
        grants
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == late["id"]),
        "{grants}"
    );
    assert_eq!(daemon.https("GET", &path, as_holder(&holder)).status, 200);

    // delete the index, reindex: grants and bindings come back from the journal
    assert_eq!(daemon.stop(), Some(0));
    std::fs::remove_dir_all(daemon.data_dir().join("index")).unwrap();
    let out = daemon.cli(&["reindex"]);
    assert!(
        out.status.success() && text(&out).contains("2 grant(s) rebuilt"),
        "{}",
        text(&out)
    );
    daemon.spawn().unwrap();
    assert_eq!(daemon.https("GET", &path, as_holder(&holder)).status, 200);
    assert_eq!(
        daemon.https("GET", &path, Ask::default()).status,
        404,
        "still bound to its holder"
    );
    assert_eq!(daemon.stop(), Some(0));

    // one flipped byte: audit verify names that record
    let verify = daemon.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    // the head it prints is the last record's hash, as written on disk
    let journal_text: String = {
        // the segments only (the directory also holds the signed head.asc)
        let mut paths: Vec<_> = std::fs::read_dir(daemon.data_dir().join("journal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    };
    let last: serde_json::Value =
        serde_json::from_str(journal_text.lines().last().unwrap()).unwrap();
    assert!(
        text(&verify).contains(&format!(
            "head: record {} hash {}",
            last["seq"],
            last["hash"].as_str().unwrap()
        )),
        "{}",
        text(&verify)
    );
    let segment = std::fs::read_dir(daemon.data_dir().join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let third = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0
        + 1;
    let at = third
        + bytes[third..]
            .windows(6)
            .position(|w| w == b"\"at\":\"")
            .unwrap()
        + 8;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&segment, bytes).unwrap();
    let verify = daemon.cli(&["audit", "verify"]);
    assert!(!verify.status.success());
    assert!(
        text(&verify).contains("BROKEN at record 3"),
        "{}",
        text(&verify)
    );
    // export stops there, and a daemon does not start on a journal it
    // cannot trust
    let export = daemon.cli(&["audit", "export", "--since", "1h"]);
    assert!(!export.status.success(), "{}", text(&export));
    let refused = daemon.spawn().unwrap_err();
    assert!(refused.contains("audit verify"), "{refused}");
}

#[test]
fn the_admin_api_wants_its_token() {
    let daemon = Daemon::start();
    for (method, path) in [
        ("GET", "/admin/v1/grants"),
        ("POST", "/admin/v1/grants"),
        ("GET", "/admin/v1/studies"),
    ] {
        let none = daemon.https(method, path, Ask::default());
        assert_eq!(none.status, 401, "{method} {path}");
        let wrong = daemon.https(
            method,
            path,
            Ask {
                headers: vec![("Authorization", "Bearer nope".into())],
                ..Ask::default()
            },
        );
        assert_eq!(wrong.status, 401);
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    }
    let out = daemon.cli(&[
        "share",
        "--legal-basis",
        "referral",
        "1.2.3",
        "--expires",
        "soon",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("duration"), "{}", text(&out));
    // the legal basis is required, and explicit consent says whose
    let out = daemon.cli(&["share", "1.2.3"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--legal-basis"), "{}", text(&out));
    let out = daemon.cli(&["share", "1.2.3", "--legal-basis", "explicit-consent"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("who consented"), "{}", text(&out));
}
