//! Sent and Received in the console, with two real gateways on loopback:
//! a gebruiker on A sends a study to B from the outbox page (the person
//! journaled as who asked) and sees it delivered; B's Received page names
//! A, its message (as text) and the patient. With B down, the push keeps
//! retrying and the page refreshes itself; a gebruiker may not retry or
//! cancel (403, journaled); the applicatiebeheerder's "retry now" tries at
//! once and "cancel" (after its confirmation step) stops it for good, both
//! journaled with the person.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::gateways::{cli_ok, entry, gateway};
use common::{Daemon, Storescp, eventually};

const URA_A: &str = "11111111";
const URA_B: &str = "22222222";

fn ct_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::samples().join("ct-phantom"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files
}

fn write_book(d: &Daemon, text: &str) {
    let path = d.dir.path().join("peers.toml");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn outbox(d: &Daemon) -> Vec<serde_json::Value> {
    let out = cli_ok(d, &["outbox", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

fn relay_steps(d: &Daemon, step: &str) -> Vec<serde_json::Value> {
    d.journal()
        .into_iter()
        .filter(|r| r["event"]["type"] == "relay" && r["event"]["step"] == step)
        .collect()
}

#[test]
fn send_from_the_console_then_retry_and_cancel() {
    let pacs = Storescp::start();
    let a = gateway("Ziekenhuis A", URA_A, "");
    let mut b = gateway(
        "Ziekenhuis B",
        URA_B,
        &format!("[forward]\npacs = \"STORESCP@127.0.0.1:{}\"\n", pacs.port),
    );
    write_book(&a, &entry(&b, "Ziekenhuis B", URA_B));
    write_book(&b, &entry(&a, "Ziekenhuis A", URA_A));
    a.send_all(&ct_files());
    assert!(eventually(
        Duration::from_secs(20),
        || a.studies()[0]["state"] == "complete"
    ));
    let study = a.studies()[0]["study_uid"].as_str().unwrap().to_string();
    let ann = a.staff("ann", "user");
    let beheer = a.staff("beheer", "admin");

    // the form offers the address book's gateways (the book reloads on its own)
    assert!(
        eventually(Duration::from_secs(10), || ann
            .get(&format!("/console/outbox?study={study}"))
            .body
            .contains("Ziekenhuis B (URA 22222222)")),
        "B not offered"
    );
    let form = ann.get(&format!("/console/outbox?study={study}"));
    assert!(
        form.body.contains(&format!("value=\"{study}\"")),
        "the study filled in"
    );
    assert!(
        !form.body.contains("/retry\""),
        "a gebruiker gets no queue control"
    );
    let sent = ann.post(
        "/console/outbox/send",
        &[
            ("study", &study),
            ("to_ura", URA_B),
            ("priority", "spoed"),
            ("message", "Graag <b>beoordelen</b>"),
        ],
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(
        sent.header("location")
            .unwrap()
            .starts_with("/console/outbox?queued=")
    );
    assert!(
        eventually(Duration::from_secs(60), || outbox(&a)[0]["state"] == "sent"),
        "not delivered: {:?}\nB:\n{}",
        outbox(&a),
        b.log()
    );
    let item = &outbox(&a)[0];
    assert_eq!(item["by"], "console");
    assert_eq!(item["actor"]["id"], "local:ann");
    assert_eq!(item["priority"], "spoed");
    let queued = relay_steps(&a, "queued");
    assert_eq!(queued[0]["event"]["actor"]["id"], "local:ann", "{queued:?}");
    let page = ann.get("/console/outbox");
    assert!(
        page.body.contains("afgeleverd") && page.body.contains("Jansen, Anna"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("pushgate-refresh"),
        "nothing open: no refresh"
    );
    // an unknown study: said on the form, nothing queued
    let bad = ann.post(
        "/console/outbox/send",
        &[
            ("study", "1.2.3.4"),
            ("to_ura", URA_B),
            ("priority", "routine"),
        ],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("1.2.3.4"), "{}", bad.body);
    assert_eq!(outbox(&a).len(), 1);
    // without the CSRF token: refused
    let forged = a.console_post(
        "/console/outbox/send",
        Some(&ann.cookie),
        &[("study", &study), ("to_ura", URA_B)],
    );
    assert_eq!(forged.status, 403);

    // B received it: sender, message as text, the patient
    let bea = b.staff("bea", "user");
    let received = bea.get("/console/received");
    assert_eq!(received.status, 200, "{}", received.body);
    assert!(received.body.contains("Ziekenhuis A"), "{}", received.body);
    assert!(
        received
            .body
            .contains("Graag &lt;b&gt;beoordelen&lt;/b&gt;"),
        "{}",
        received.body
    );
    assert!(received.body.contains("Jansen, Anna") && received.body.contains("spoed"));
    // forwarded to B's PACS, instance by instance
    let instances = ct_files().len();
    assert!(
        eventually(Duration::from_secs(30), || bea
            .get(&format!("/console/received/{study}"))
            .body
            .matches("status 0x0000")
            .count()
            == instances),
        "not all forwarded: {}",
        bea.get(&format!("/console/received/{study}")).body
    );
    let one = bea.get(&format!("/console/received/{study}"));
    assert!(one.body.contains("URA 11111111"));
    assert!(
        one.body.contains(&format!("{instances} in het PACS")),
        "{}",
        one.body
    );
    assert!(
        bea.get("/console/received")
            .body
            .contains(&format!("{instances} in het PACS"))
    );
    assert_eq!(bea.get("/console/received/1.2.3.4").status, 404);

    // B down: the next push keeps failing
    b.kill9();
    let again = ann.post(
        "/console/outbox/send",
        &[
            ("study", &study),
            ("to_ura", URA_B),
            ("priority", "routine"),
        ],
    );
    assert_eq!(again.status, 303, "{}", again.body);
    let open = |o: &[serde_json::Value]| o.iter().find(|i| i["state"] == "pending").cloned();
    assert!(
        eventually(Duration::from_secs(30), || open(&outbox(&a))
            .is_some_and(|i| i["attempts"] == 1)),
        "{:?}",
        outbox(&a)
    );
    let id = open(&outbox(&a)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = ann.get("/console/outbox");
    assert!(
        page.body
            .contains("name=\"pushgate-refresh\" content=\"5\""),
        "live while open"
    );
    // the form's answer with a push open: what it says stays (a reload
    // would ask /console/outbox/send with GET: not found)
    let refused = ann.post(
        "/console/outbox/send",
        &[
            ("study", "1.2.3.4"),
            ("to_ura", URA_B),
            ("priority", "routine"),
        ],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("1.2.3.4"), "{}", refused.body);
    assert!(
        !refused.body.contains("pushgate-refresh"),
        "an answer to a form does not reload itself: {}",
        refused.body
    );
    ann.get("/console/outbox");
    assert!(
        page.body.contains("connect"),
        "the last error: {}",
        page.body
    );

    // a gebruiker: no retry, no cancel
    for action in ["retry", "cancel"] {
        let r = ann.post(
            &format!("/console/outbox/{id}/{action}"),
            &[("confirm", "yes")],
        );
        assert_eq!(r.status, 403, "{action}: {}", r.body);
        ann.get("/console/outbox");
    }
    assert!(a.journal().iter().any(|r| r["event"]["step"] == "refused"
        && r["event"]["actor"]["id"] == "local:ann"
        && r["event"]["what"] == "queue"));

    // retry now: the next attempt at once, not after the backoff (≥ 4 s)
    let page = beheer.get("/console/outbox");
    assert!(
        page.body.contains(&format!("/console/outbox/{id}/retry")),
        "{}",
        page.body
    );
    let r = beheer.post(&format!("/console/outbox/{id}/retry"), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        eventually(Duration::from_secs(3), || outbox(&a)
            .iter()
            .any(|i| i["id"] == id.as_str() && i["attempts"] == 2)),
        "not tried again at once: {:?}",
        outbox(&a)
    );
    let asked = relay_steps(&a, "retry_asked");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["event"]["actor"]["id"], "local:beheer");
    assert_eq!(asked[0]["event"]["outbox"], id.as_str());

    // cancel: a confirmation first, then no more attempts
    beheer.get("/console/outbox");
    let confirm = beheer.post(&format!("/console/outbox/{id}/cancel"), &[]);
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""));
    assert_eq!(
        open(&outbox(&a)).map(|i| i["id"].clone()),
        Some(serde_json::json!(id))
    );
    let done = beheer.post(
        &format!("/console/outbox/{id}/cancel"),
        &[("confirm", "yes"), ("reason", "verkeerd adres")],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    let item = outbox(&a)
        .into_iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert_eq!(item["state"], "cancelled", "{item}");
    assert!(
        item["last_error"]
            .as_str()
            .unwrap()
            .contains("cancelled by beheer: verkeerd adres")
    );
    let withdrawn = relay_steps(&a, "withdrawn");
    assert_eq!(
        withdrawn[0]["event"]["actor"]["id"], "local:beheer",
        "{withdrawn:?}"
    );
    assert_eq!(withdrawn[0]["event"]["reason"], "verkeerd adres");
    let attempts = item["attempts"].clone();
    std::thread::sleep(Duration::from_secs(12));
    let later = outbox(&a)
        .into_iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        (later["state"].clone(), later["attempts"].clone()),
        (serde_json::json!("cancelled"), attempts)
    );
    // nothing left to retry
    beheer.get("/console/outbox");
    assert_eq!(
        beheer
            .post(&format!("/console/outbox/{id}/retry"), &[])
            .status,
        400
    );
    b.spawn().unwrap();
}
