//! The edge in-process: how refusals are answered, that nothing tells a
//! live token from an unknown one, that every endpoint is reached, and
//! that the limits are the server's own.

use std::collections::BTreeSet;

use hyper::Method;

use super::{Answer, Harness};
use crate::web::Gates;
use crate::web::router::{self, Admin, Endpoint, Recipient};

const HTML: &str = "Accept: text/html";
const UNKNOWN: &str = "/s/NoSuchTokenNoSuchTokenNoSuchTk";

fn content_type(answer: &Answer) -> &str {
    answer.header("content-type").unwrap_or("")
}

#[test]
fn refusals_are_pages_for_browsers_and_json_for_programs() {
    let web = Harness::start();
    let page = web.get(UNKNOWN, &[HTML]);
    assert_eq!(page.status, 404, "{page:?}");
    assert!(content_type(&page).starts_with("text/html"), "{page:?}");
    assert!(page.body.contains("Niet beschikbaar"), "{page:?}");

    let program = web.get(UNKNOWN, &[]);
    assert_eq!(program.status, 404);
    assert_eq!(content_type(&program), "application/json");
    assert_eq!(program.json(), serde_json::json!({ "error": "not found" }));

    // a wrong method on a page: the page form, with what is allowed
    let wrong = web.ask("DELETE", "/", &[HTML], None);
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    assert!(content_type(&wrong).starts_with("text/html"), "{wrong:?}");
    // in the language the browser asked for (Dutch here), the reason too
    assert!(
        wrong.body.contains("dit kan op dit adres niet"),
        "{wrong:?}"
    );

    // the APIs answer programs, whatever the Accept header says
    let admin = web.get("/admin/v1/studies", &[HTML]);
    assert_eq!(admin.status, 401);
    assert_eq!(admin.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        admin.json(),
        serde_json::json!({ "error": "authorization required" })
    );
    let inbox = web.ask("POST", "/relay/v1/inbox", &[HTML], Some("x"));
    assert_eq!(inbox.status, 403);
    assert!(
        inbox.json()["error"]
            .as_str()
            .unwrap()
            .contains("no TLS client certificate"),
        "{inbox:?}"
    );

    // a code that cannot be one: JSON with the reason, or the code page
    let json = "Content-Type: application/json";
    let typo = web.ask("POST", "/redeem", &[json], Some(r#"{"code":"1"}"#));
    assert_eq!(typo.status, 400, "{typo:?}");
    assert!(typo.json()["error"].is_string());
    let form = "Content-Type: application/x-www-form-urlencoded";
    let again = web.ask("POST", "/redeem", &[HTML, form], Some("code=1"));
    assert_eq!(again.status, 400, "{again:?}");
    assert!(again.body.contains("action=\"/redeem\""), "{again:?}");
}

/// An accession grant (its study has not arrived), bound by a program:
/// its path and holder token.
fn bound_grant(web: &Harness) -> (String, String) {
    let issued = web.admin(
        "POST",
        "/admin/v1/grants",
        Some(r#"{"accession":"ACC1","patient_id":"P1","legal_basis":{"kind":"referral"}}"#),
    );
    assert_eq!(issued.status, 201, "{issued:?}");
    let url = issued.json()["url"].as_str().unwrap().to_string();
    let path = url[url.find("/s/").unwrap()..].to_string();
    let bound = web.ask("POST", &path, &[], None);
    assert_eq!(bound.status, 200, "{bound:?}");
    let holder = bound.json()["holder_token"].as_str().unwrap().to_string();
    (path, holder)
}

#[test]
fn an_unknown_token_and_a_live_one_without_its_holder_look_alike() {
    let web = Harness::start();
    let (path, holder) = bound_grant(&web);
    let unknown = format!("/s/{}", "A".repeat(path.len() - 3));
    let wrong = "Authorization: Bearer not-the-holder";
    let right = format!("Authorization: Bearer {holder}");
    for tail in ["", "/dicomweb/studies", "/download.zip", "/elsewhere"] {
        for accept in [None, Some(HTML)] {
            let headers: Vec<&str> = [Some(wrong), accept].into_iter().flatten().collect();
            let live = web.get(&format!("{path}{tail}"), &headers);
            let none = web.get(&format!("{unknown}{tail}"), &headers);
            assert_eq!(live.status, 404, "{tail} {accept:?}: {live:?}");
            assert_eq!(live, none, "{tail} {accept:?}");
        }
    }
    // the holder is let in
    let page = web.get(&path, &[&right]);
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.json()["status"], "bound");
    let search = web.get(&format!("{path}/dicomweb/studies"), &[&right]);
    assert_eq!((search.status, search.body.as_str()), (200, "[]"));
    let zip = web.get(&format!("{path}/download.zip"), &[&right]);
    assert_eq!(zip.status, 404);
    assert!(zip.body.contains("No images yet"), "{zip:?}");
}

/// Each endpoint's place in the list below. The match has no catch-all: a
/// new endpoint needs a number here, and the test then needs a request
/// that reaches it.
fn ordinal(endpoint: &Endpoint) -> usize {
    match endpoint {
        Endpoint::Healthz => 0,
        Endpoint::Readyz => 1,
        Endpoint::Metrics => 2,
        Endpoint::Favicon => 3,
        Endpoint::Recipient(page) => match page {
            Recipient::Home => 4,
            Recipient::Redeem => 5,
            Recipient::Share(_) => 6,
            Recipient::Bind(_) => 7,
            Recipient::Delegate(_) => 8,
        },
        Endpoint::DicomWeb { .. } => 9,
        Endpoint::DicomWebPreflight => 10,
        Endpoint::Download(_) => 11,
        Endpoint::Admin(call) => match call {
            Admin::Studies => 12,
            Admin::Study(_) => 13,
            Admin::Grants => 14,
            Admin::Issue => 15,
            Admin::Grant(_) => 16,
            Admin::Revoke(_) => 17,
            Admin::Outbox => 18,
            Admin::Send => 19,
            Admin::Forward => 20,
            Admin::Queue => 23,
        },
        Endpoint::RelayInbox => 21,
        Endpoint::OpenPgpKey => 22,
    }
}
const ENDPOINTS: usize = 24;

#[test]
fn every_endpoint_is_reached_and_answers() {
    let web = Harness::start();
    let (path, holder) = bound_grant(&web);
    let holder = format!("Authorization: Bearer {holder}");
    let json = "Content-Type: application/json";
    // (method, path, body, as the holder, what it answers)
    let cases: Vec<(&str, String, Option<&str>, bool, u16)> = vec![
        ("GET", "/healthz".into(), None, false, 200),
        ("GET", "/readyz".into(), None, false, 200),
        ("GET", "/metrics".into(), None, false, 200),
        ("GET", "/favicon.ico".into(), None, false, 204),
        ("GET", "/".into(), None, false, 200),
        (
            "POST",
            "/redeem".into(),
            Some(r#"{"code":"1"}"#),
            false,
            400,
        ),
        ("GET", path.clone(), None, true, 200),
        ("POST", UNKNOWN.into(), None, false, 404),
        ("POST", format!("{path}/delegate"), Some("{}"), true, 422),
        ("GET", format!("{path}/dicomweb/studies"), None, true, 200),
        (
            "OPTIONS",
            format!("{path}/dicomweb/studies"),
            None,
            false,
            204,
        ),
        ("GET", format!("{path}/download.zip"), None, true, 404),
        ("GET", "/admin/v1/studies".into(), None, false, 200),
        ("GET", "/admin/v1/studies/1.2.3".into(), None, false, 404),
        ("GET", "/admin/v1/grants".into(), None, false, 200),
        (
            "POST",
            "/admin/v1/grants".into(),
            Some(r#"{"accession":"ACC2","patient_id":"P2","legal_basis":{"kind":"referral"}}"#),
            false,
            201,
        ),
        (
            "GET",
            "/admin/v1/grants/no-such-grant".into(),
            None,
            false,
            404,
        ),
        (
            "POST",
            "/admin/v1/grants/no-such-grant/revoke".into(),
            Some(r#"{"reason":"edge test"}"#),
            false,
            404,
        ),
        ("GET", "/admin/v1/outbox".into(), None, false, 200),
        ("POST", "/admin/v1/outbox".into(), Some("{}"), false, 400),
        ("GET", "/admin/v1/forward".into(), None, false, 200),
        ("GET", "/admin/v1/queue".into(), None, false, 200),
        ("POST", "/relay/v1/inbox".into(), Some("x"), false, 403),
        (
            "GET",
            "/.well-known/pushgate/openpgp.asc".into(),
            None,
            false,
            200,
        ),
    ];
    let mut reached = BTreeSet::new();
    for (method, path, body, as_holder, status) in &cases {
        let endpoint = router::route(&method.parse::<Method>().unwrap(), path).unwrap();
        reached.insert(ordinal(&endpoint));
        let mut headers = vec![json];
        if *as_holder {
            headers.push(&holder);
        } else if path.starts_with("/admin/") {
            admin_case(&web, method, path, *body, *status, &endpoint);
            continue;
        }
        let answer = web.ask(method, path, &headers, *body);
        assert_eq!(answer.status, *status, "{endpoint:?}: {answer:?}");
    }
    assert_eq!(reached, (0..ENDPOINTS).collect(), "an endpoint has no case");
}

fn admin_case(
    web: &Harness,
    method: &str,
    path: &str,
    body: Option<&str>,
    status: u16,
    endpoint: &Endpoint,
) {
    let answer = web.admin(method, path, body);
    assert_eq!(answer.status, status, "{endpoint:?}: {answer:?}");
    assert_eq!(content_type(&answer), "application/json", "{endpoint:?}");
}

#[test]
fn stream_limits_are_the_servers_own() {
    let full = Harness::with_gates(Gates::new(0, 1));
    let free = Harness::start();
    for tail in ["/dicomweb/studies", "/download.zip"] {
        let busy = full.get(&format!("{UNKNOWN}{tail}"), &[]);
        assert_eq!(busy.status, 503, "{tail}: {busy:?}");
        assert_eq!(busy.header("retry-after"), Some("5"));
        assert!(
            busy.json()["error"]
                .as_str()
                .unwrap()
                .contains("too many downloads"),
            "{busy:?}"
        );
        // the other server in this process has its places free
        assert_eq!(free.get(&format!("{UNKNOWN}{tail}"), &[]).status, 404);
    }
    // answers that stream nothing do not need a place
    assert_eq!(full.get("/", &[]).status, 200);
    // the places are the App's: taking one there is seen by the server
    let _taken: Vec<_> = std::iter::from_fn(|| free.app.gates.stream().ok()).collect();
    assert_eq!(
        free.get(&format!("{UNKNOWN}/download.zip"), &[]).status,
        503
    );
}
