//! The console's local accounts against the real daemon: made with
//! `pushgate users`, enrolled with a TOTP code computed by `oathtool`,
//! logged in and out through the forms — and every way to get in that
//! must not work: a used link, a wrong password or code, a reused code, a
//! hundred guesses, a planted session id, a disabled or reset account, a
//! user on an admin page, a form from another site or without its token.

mod common;

use common::console::{PASSWORD, csrf_in, session_cookie, totp};
use common::{Ask, Daemon};

fn events<'a>(journal: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    journal
        .iter()
        .filter(|r| r.to_string().contains(&format!("\"{kind}\"")))
        .collect()
}

#[test]
fn an_account_is_made_enrolled_and_logs_in_with_password_and_totp() {
    let daemon = Daemon::start();
    let out = daemon.cli(&[
        "users",
        "add",
        "anna",
        "--role",
        "admin",
        "--display-name",
        "Anna de Vries",
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    let url = printed
        .split_whitespace()
        .find(|w| w.contains("/console/enrol/"))
        .expect("the enrolment link printed")
        .to_string();
    let anna = daemon.enrol("anna", &url);
    // the link worked once
    let path = &url[url.find("/console/enrol/").unwrap()..];
    assert_eq!(daemon.get(path).status, 404);

    // the session cookie is what the issue asks
    let again = anna.login(1);
    assert_eq!(again.status, 303, "{}", again.body);
    let set = again.header("set-cookie").unwrap();
    for attribute in [
        "__Host-pushgate_console=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    ] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    // the same code again is refused: a TOTP code works once
    let replay = anna.login(1);
    assert_eq!(replay.status, 401, "{}", replay.body);

    let users = anna.get("/console/users");
    assert_eq!(users.status, 200, "{}", users.body);
    assert!(users.body.contains("Anna de Vries"), "{}", users.body);
    let listed = daemon.cli(&["users", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["name"], "anna");
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["role"], "admin");

    let journal = daemon.journal();
    let logged_in = events(&journal, "logged_in");
    assert!(
        logged_in
            .iter()
            .any(|e| e.to_string().contains("local:anna")),
        "{logged_in:?}"
    );
    let made = events(&journal, "account");
    assert!(
        made.iter()
            .any(|e| e.to_string().contains("added as admin")),
        "{made:?}"
    );
    assert!(
        made.iter().any(|e| e.to_string().contains("admin token")),
        "made by the token: {made:?}"
    );
}

#[test]
fn wrong_passwords_and_codes_get_one_answer_and_a_hundred_are_limited() {
    let daemon = Daemon::start();
    let bert = daemon.staff("bert", "user");
    let wrong = |password: &str, code: &str| {
        daemon.console_post(
            "/console/login",
            None,
            &[("name", "bert"), ("password", password), ("code", code)],
        )
    };
    let bad_password = wrong("not the password", &totp(&bert.secret, 1));
    let bad_code = wrong(PASSWORD, "000000");
    let nobody = daemon.console_post(
        "/console/login",
        None,
        &[
            ("name", "nobody"),
            ("password", PASSWORD),
            ("code", "123456"),
        ],
    );
    for reply in [&bad_password, &bad_code, &nobody] {
        assert_eq!(reply.status, 401);
        assert!(
            reply
                .body
                .contains("The name, password or code is not right")
                || reply
                    .body
                    .contains("De naam, het wachtwoord of de code klopt niet"),
            "{}",
            reply.body
        );
        assert!(session_cookie(reply).is_none());
    }
    let mut limited = 0;
    for _ in 0..100 {
        let reply = wrong("guess guess guess", "111111");
        assert!(session_cookie(&reply).is_none());
        if reply.status == 429 {
            limited += 1;
        } else {
            assert_eq!(reply.status, 401);
        }
    }
    assert!(limited >= 95, "{limited} of 100 limited");
    // now even the right password waits: the guesser learns nothing
    let right = bert.login(2);
    assert_eq!(right.status, 429, "{}", right.body);
    let journal = daemon.journal();
    let failed = events(&journal, "login_failed");
    assert!(failed.len() >= 10, "{} failures journaled", failed.len());
    assert!(
        failed
            .iter()
            .any(|e| e.to_string().contains("wrong password"))
    );
    assert!(
        failed
            .iter()
            .any(|e| e.to_string().contains("rate limited"))
    );
    // the daemon still serves others
    assert_eq!(daemon.get("/healthz").status, 200);
}

#[test]
fn a_planted_session_id_is_worth_nothing_and_logout_ends_the_session() {
    let daemon = Daemon::start();
    let carla = daemon.staff("carla", "admin");
    let planted = "__Host-pushgate_console=attacker-chosen-value";
    let login = daemon.https(
        "POST",
        "/console/login",
        Ask {
            headers: vec![
                ("Origin", daemon.console_origin()),
                ("Cookie", planted.to_string()),
            ],
            body: Some(common::console::form_body(&[
                ("name", "carla"),
                ("password", PASSWORD),
                ("code", &totp(&carla.secret, 1)),
            ])),
            form: true,
            ..Ask::default()
        },
    );
    assert_eq!(login.status, 303, "{}", login.body);
    let fresh = session_cookie(&login).unwrap();
    assert_ne!(fresh, planted);
    let with_planted = daemon.https(
        "GET",
        "/console/users",
        Ask {
            headers: vec![("Cookie", planted.to_string())],
            ..Ask::default()
        },
    );
    assert_eq!(with_planted.status, 303, "the planted id is no session");

    // logout (a form with the token) ends the session it was posted from
    let csrf = csrf_in(&carla.get("/console/users").body).unwrap();
    let out = daemon.console_post("/console/logout", Some(&carla.cookie), &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(carla.get("/console/users").status, 303, "logged out");
    let all = daemon.journal();
    assert!(
        events(&all, "logged_out")
            .iter()
            .any(|e| e.to_string().contains("local:carla"))
    );
}

#[test]
fn disabling_or_resetting_an_account_ends_its_sessions() {
    let daemon = Daemon::start();
    let admin = daemon.staff("dora", "admin");
    let user = daemon.staff("emiel", "admin");
    assert_eq!(user.get("/console/users").status, 200);
    // disabled from the console's Users page
    let disabled = admin.post("/console/users/emiel/disable", &[]);
    assert_eq!(disabled.status, 303, "{}", disabled.body);
    assert_eq!(user.get("/console/users").status, 303, "the session ended");
    assert_eq!(
        user.login(1).status,
        401,
        "a disabled account cannot log in"
    );

    // reset from the CLI: a new link, the old secret no longer works
    let out = daemon.cli(&["users", "reset", "dora", "--json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(
        admin.get("/console/users").status,
        303,
        "reset ends the session"
    );
    assert_eq!(
        admin.login(1).status,
        401,
        "the old password and TOTP are gone"
    );
    let url: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let back = daemon.enrol("dora", url["enrol_url"].as_str().unwrap());
    assert_ne!(back.secret, admin.secret, "a new TOTP secret");
    assert_eq!(back.get("/console/users").status, 200);
    let journal = daemon.journal();
    let changes: Vec<String> = events(&journal, "account")
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        changes
            .iter()
            .any(|c| c.contains("disabled") && c.contains("local:dora")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c.contains("reset") && c.contains("admin token")),
        "{changes:?}"
    );
}

#[test]
fn a_user_on_the_admin_page_gets_403_with_the_reason_and_forms_need_their_token() {
    let daemon = Daemon::start();
    let admin = daemon.staff("femke", "admin");
    let user = daemon.staff("gijs", "user");
    let page = user.get("/console/users");
    assert_eq!(page.status, 403);
    // the reason in the page's language: Dutch by default, English asked
    assert!(
        page.body.contains("u bent aangemeld als gebruiker"),
        "{}",
        page.body
    );
    let english = daemon.https(
        "GET",
        "/console/users?lang=en",
        Ask {
            headers: vec![("Cookie", user.cookie.clone())],
            ..Ask::default()
        },
    );
    assert_eq!(english.status, 403);
    assert!(
        english.body.contains("you are logged in as gebruiker"),
        "{}",
        english.body
    );
    let all = daemon.journal();
    let refused = events(&all, "refused");
    assert!(
        refused.iter().any(|e| e.to_string().contains("local:gijs")),
        "{refused:?}"
    );
    assert_eq!(
        user.post("/console/users", &[("name", "sneaky"), ("role", "admin")])
            .status,
        403
    );

    // no token, a wrong token, another site: nothing made
    admin.get("/console/users");
    let none = daemon.console_post(
        "/console/users",
        Some(&admin.cookie),
        &[("name", "x1"), ("role", "user")],
    );
    assert_eq!(none.status, 403);
    let wrong = daemon.console_post(
        "/console/users",
        Some(&admin.cookie),
        &[("csrf", "not-the-token"), ("name", "x2"), ("role", "user")],
    );
    assert_eq!(wrong.status, 403);
    let cross = daemon.https(
        "POST",
        "/console/users",
        Ask {
            headers: vec![
                ("Origin", "https://evil.example".to_string()),
                ("Cookie", admin.cookie.clone()),
            ],
            body: Some(common::console::form_body(&[
                ("csrf", &admin.csrf()),
                ("name", "x3"),
                ("role", "user"),
            ])),
            form: true,
            ..Ask::default()
        },
    );
    assert_eq!(cross.status, 403);
    let made = admin.post(
        "/console/users",
        &[
            ("name", "x4"),
            ("role", "user"),
            ("display_name", "<b>X4</b>"),
        ],
    );
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(made.body.contains("/console/enrol/"), "the link shown once");
    assert!(
        made.body.contains("&lt;b&gt;X4&lt;/b&gt;"),
        "a name is text"
    );
    let listed = daemon.cli(&["users", "list", "--json"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.contains("x4"));
    for refused in ["x1", "x2", "x3", "sneaky"] {
        assert!(
            !listed.contains(&format!("\"{refused}\"")),
            "{refused} made: {listed}"
        );
    }
}

#[test]
fn after_login_the_browser_goes_back_only_within_the_console() {
    let daemon = Daemon::start();
    for (i, (next, expected)) in [
        ("/console/users", "/console/users"),
        ("https://evil.example/", "/console/studies"),
        ("//evil.example/", "/console/studies"),
    ]
    .into_iter()
    .enumerate()
    {
        // one account each: a TOTP code works once
        let name = format!("hans{i}");
        let hans = daemon.staff(&name, "admin");
        let reply = daemon.console_post(
            "/console/login",
            None,
            &[
                ("name", &name),
                ("password", PASSWORD),
                ("code", &totp(&hans.secret, 1)),
                ("next", next),
            ],
        );
        assert_eq!(reply.status, 303, "{}", reply.body);
        assert_eq!(reply.header("location"), Some(expected), "next={next}");
    }
    let hans = daemon.staff("hans", "admin");
    // an admin API token is still needed for the API, a session is not enough
    let api = daemon.https(
        "GET",
        "/admin/v1/users",
        Ask {
            headers: vec![("Cookie", hans.cookie.clone())],
            ..Ask::default()
        },
    );
    assert_eq!(api.status, 401);
}

/// With `console.url` set, every enrolment link names it — printed by the
/// CLI on the server, shown on the Users page, made again by a reset —
/// whatever address the request came to; the link's path works.
#[test]
fn enrolment_links_name_the_console_url() {
    const URL: &str = "https://pushgate.zkh-a.example:8444";
    let daemon = Daemon::start_with(&format!(
        "[console]\nlisten = \"127.0.0.1:CONSOLE_PORT\"\nurl = \"{URL}/\"\n"
    ));
    let out = daemon.cli(&["users", "add", "anna", "--role", "admin", "--json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = made["enrol_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{URL}/console/enrol/")), "{url}");
    let anna = daemon.enrol("anna", url);
    anna.get("/console/users");
    let page = anna.post("/console/users", &[("name", "bert"), ("role", "user")]);
    assert!(
        page.body.contains(&format!("{URL}/console/enrol/")),
        "{}",
        page.body
    );
    let reset = daemon.cli(&["users", "reset", "bert", "--json"]);
    assert!(reset.status.success(), "{}", common::text(&reset));
    let again: serde_json::Value = serde_json::from_slice(&reset.stdout).unwrap();
    assert!(
        again["enrol_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{URL}/console/enrol/")),
        "{again}"
    );
}

/// A path the console does not know is a 404 in its frame; its language
/// switch never links to another site (`//evil.example` would).
#[test]
fn an_unknown_path_links_only_within_the_console() {
    let daemon = Daemon::start();
    let anna = daemon.staff("anna", "user");
    for path in ["/console//evil.example", "/console/x//evil.example"] {
        let page = anna.get(path);
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        assert!(!page.body.contains("href=\"//"), "{path}: {}", page.body);
        assert!(
            page.body.contains("href=\"/console/?lang=en\""),
            "{path}: {}",
            page.body
        );
    }
    // and a path outside /console on the console's listener
    let outside = daemon.https_on(
        daemon.console,
        "GET",
        "//evil.example",
        Ask {
            headers: vec![("Cookie", anna.cookie.clone())],
            ..Ask::default()
        },
    );
    assert!(!outside.body.contains("href=\"//"), "{}", outside.body);
}

/// A page left open that reloads itself (console.js adds `?auto=1` while
/// something arrives or is queued), with its stylesheet, script,
/// thumbnails and a browser's own `/favicon.ico`, must not keep its
/// session past `console.idle_timeout`; a
/// person's own requests do. Before the fix every reload counted as
/// activity and an unattended console stayed logged in for the whole
/// absolute lifetime.
#[test]
fn a_page_reloading_itself_does_not_outlive_the_idle_timeout() {
    let daemon = Daemon::start_with(
        "[console]\nlisten = \"127.0.0.1:CONSOLE_PORT\"\nidle_timeout = \"1m\"\n",
    );
    let left_open = daemon.staff("anna", "user");
    let working = daemon.staff("bert", "user");
    let started = std::time::Instant::now();
    let mut round = 0;
    while started.elapsed() < std::time::Duration::from_secs(68) {
        for path in [
            "/console/outbox?auto=1",
            "/console/static/console.css",
            "/console/static/console.js",
            "/console/share/1.2.3/thumb/1.2.3.4",
            "/favicon.ico",
            "/console/no-such-page",
        ] {
            let reply = left_open.get(path);
            if started.elapsed() < std::time::Duration::from_secs(50) {
                assert_ne!(reply.status, 303, "{path} while not yet idle");
            }
        }
        if round % 2 == 0 {
            assert_eq!(
                working.get("/console/outbox").status,
                200,
                "a person's clicks"
            );
        }
        round += 1;
        std::thread::sleep(std::time::Duration::from_secs(8));
    }
    let after = left_open.get("/console/outbox");
    assert_eq!(
        after.status, 303,
        "the reloading page's session ended when idle"
    );
    assert!(
        after
            .header("location")
            .unwrap_or("")
            .contains("/console/login"),
        "{:?}",
        after.header("location")
    );
    assert_eq!(working.get("/console/outbox").status, 200, "still working");
}
