//! The console's Shares against the real daemon: a gebruiker sees the
//! shares they issued and no one else's, and cannot open or revoke
//! another's (403 with the reason, the refusal journaled with their name);
//! the applicatiebeheerder sees every share with its delegation tree and
//! its use, and revokes with a reason after a confirmation step that names
//! the grants passed on that go with it — after which the links answer as
//! any unknown link. A form without its CSRF token is refused; a hostile
//! patient name shows as text.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::console::Staff;
use common::sharing::{as_holder, bind, path_of, share, study_with};
use common::{Ask, Daemon, samples, text};

fn ct_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples().join("ct-phantom"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files
}

/// Shares `study` through the console's share form as `staff` (every
/// series the form ticks, for whoever redeems it, on a referral, passable
/// once); the grant's id.
fn share_in_console(staff: &Staff<'_>, study: &str) -> String {
    let form = staff.get(&format!("/console/share/{study}"));
    assert_eq!(form.status, 200, "{}", form.body);
    let mut series = Vec::new();
    let mut rest = form.body.as_str();
    while let Some(at) = rest.find("name=\"series\" value=\"") {
        rest = &rest[at + "name=\"series\" value=\"".len()..];
        let end = rest.find('"').unwrap();
        series.push(rest[..end].to_string());
    }
    assert!(!series.is_empty(), "no series on the form: {}", form.body);
    let mut fields = vec![
        ("recipient", "anyone"),
        ("expires", "7d"),
        ("legal_basis", "referral"),
        ("depth", "1"),
    ];
    for s in &series {
        fields.push(("series", s));
    }
    let reply = staff.post(&format!("/console/share/{study}"), &fields);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let location = reply.header("location").unwrap();
    location
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_user_sees_and_revokes_only_their_own_shares_an_admin_all() {
    let daemon = Daemon::start();
    daemon.send_all(&ct_files());
    let study = study_with(&daemon, "CT");
    let admin = daemon.staff("beheer", "admin");
    let ann = daemon.staff("ann", "user");
    let bob = daemon.staff("bob", "user");
    let anns = share_in_console(&ann, &study);
    let tokens = share(&daemon, &[&study]);
    let tokens_id = tokens["id"].as_str().unwrap().to_string();

    let page = ann.get("/console/shares");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&format!("/console/shares/{anns}")),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&tokens_id),
        "another's share listed: {}",
        page.body
    );
    assert!(page.body.contains("Jansen, Anna"), "{}", page.body);
    let page = bob.get("/console/shares");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(&anns) && !page.body.contains(&tokens_id));
    let page = admin.get("/console/shares");
    assert!(
        page.body.contains(&anns) && page.body.contains(&tokens_id),
        "{}",
        page.body
    );

    // another's share: not to be opened, nor revoked (either step)
    let detail = ann.get(&format!("/console/shares/{tokens_id}"));
    assert_eq!(detail.status, 403, "{}", detail.body);
    assert!(detail.body.contains("iemand anders"), "{}", detail.body);
    ann.get("/console/shares");
    for fields in [
        vec![("reason", "mine now")],
        vec![("reason", "mine now"), ("confirm", "yes")],
    ] {
        let r = ann.post(&format!("/console/shares/{tokens_id}/revoke"), &fields);
        assert_eq!(r.status, 403, "{}", r.body);
        ann.get("/console/shares");
    }
    let r = bob.post(
        &format!("/console/shares/{anns}/revoke"),
        &[("reason", "x"), ("confirm", "yes")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let path = path_of(&tokens["url"]);
    assert_eq!(daemon.get(&path).status, 200, "the share still works");
    let refusals: Vec<_> = daemon
        .journal()
        .into_iter()
        .filter(|r| r["event"]["step"] == "refused")
        .collect();
    assert!(
        refusals
            .iter()
            .any(|r| r["event"]["actor"]["id"] == "local:ann"
                && r["event"]["what"].as_str().unwrap().contains(&tokens_id)),
        "{refusals:?}"
    );
    assert!(
        refusals
            .iter()
            .any(|r| r["event"]["actor"]["id"] == "local:bob"),
        "{refusals:?}"
    );
    assert!(
        daemon
            .journal()
            .iter()
            .all(|r| r["event"]["type"] != "grant_revoked")
    );

    // her own: revoked, with her as the revoker
    ann.get(&format!("/console/shares/{anns}"));
    let r = ann.post(
        &format!("/console/shares/{anns}/revoke"),
        &[("reason", "verkeerde patiënt"), ("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let revoked = daemon
        .journal()
        .into_iter()
        .find(|r| r["event"]["type"] == "grant_revoked")
        .expect("journaled");
    assert_eq!(revoked["event"]["grant"], anns.as_str());
    assert_eq!(revoked["event"]["actor"]["id"], "local:ann");
    assert_eq!(revoked["event"]["reason"], "verkeerde patiënt");
}

#[test]
fn revoking_shows_the_cascade_first_and_takes_the_passed_on_links_with_it() {
    let daemon = Daemon::start();
    daemon.send_all(&ct_files());
    let study = study_with(&daemon, "CT");
    let admin = daemon.staff("beheer", "admin");
    let parent = share(&daemon, &[&study, "--delegation-depth", "2"]);
    let id = parent["id"].as_str().unwrap().to_string();
    let path = path_of(&parent["url"]);
    let holder = bind(&daemon, &path);
    let child = daemon.https(
        "POST",
        &format!("{path}/delegate"),
        Ask {
            body: Some(r#"{"expires":"1d"}"#.into()),
            ..as_holder(&holder)
        },
    );
    assert_eq!(child.status, 201, "{child:?}");
    let child = child.json();
    let child_id = child["id"].as_str().unwrap().to_string();
    let child_path = path_of(&child["url"]);
    let child_holder = bind(&daemon, &child_path);
    // used: a page and the study's metadata
    assert_eq!(
        daemon
            .https("GET", &child_path, as_holder(&child_holder))
            .status,
        200
    );

    let list = admin.get("/console/shares");
    assert_eq!(list.status, 200);
    let tree = &list.body[list.body.find("class=\"tree\"").expect("a delegation tree")..];
    assert!(
        tree.contains(&format!("/console/shares/{child_id}")),
        "{}",
        list.body
    );
    let detail = admin.get(&format!("/console/shares/{id}"));
    assert_eq!(detail.status, 200);
    assert!(
        detail.body.contains("holder token") || detail.body.contains("houdertoken"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains(&child_id), "{}", detail.body);

    // step one: what goes with it, nothing revoked yet
    let confirm = admin.post(
        &format!("/console/shares/{id}/revoke"),
        &[("reason", "verkeerde patiënt")],
    );
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let cascade = &confirm.body[confirm.body.find("class=\"cascade\"").expect("the cascade")..];
    assert!(
        cascade.contains("houdertoken") || cascade.contains("holder token"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""));
    assert!(
        confirm.body.contains(">verkeerde patiënt</textarea>"),
        "{}",
        confirm.body
    );
    assert_eq!(
        daemon
            .https("GET", &child_path, as_holder(&child_holder))
            .status,
        200
    );
    // a confirmation without a reason is refused
    let empty = admin.post(
        &format!("/console/shares/{id}/revoke"),
        &[("reason", " "), ("confirm", "yes")],
    );
    assert_eq!(empty.status, 400, "{}", empty.body);
    // without the CSRF token: refused, nothing revoked
    let forged = daemon.console_post(
        &format!("/console/shares/{id}/revoke"),
        Some(&admin.cookie),
        &[("reason", "x"), ("confirm", "yes")],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(daemon.https("GET", &path, as_holder(&holder)).status, 200);

    let done = admin.post(
        &format!("/console/shares/{id}/revoke"),
        &[("reason", "verkeerde patiënt"), ("confirm", "yes")],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some(format!("/console/shares/{id}?revoked=1").as_str())
    );
    let unknown = daemon.get("/s/QwdYCqIeG5OqXrAqd12qxibNR4xstlLe");
    for (p, h) in [(&path, &holder), (&child_path, &child_holder)] {
        let answer = daemon.https("GET", p, as_holder(h));
        assert_eq!(
            (answer.status, &answer.body),
            (unknown.status, &unknown.body)
        );
    }
    let revoked = daemon
        .journal()
        .into_iter()
        .find(|r| r["event"]["type"] == "grant_revoked")
        .unwrap();
    assert_eq!(revoked["event"]["actor"]["id"], "local:beheer");
    assert_eq!(revoked["event"]["cascade"][0], child_id.as_str());
    let after = admin.get(&format!("/console/shares/{id}?revoked=1"));
    assert!(after.body.contains("verkeerde patiënt"), "{}", after.body);
    assert!(
        !after
            .body
            .contains(&format!("action=\"/console/shares/{id}/revoke\"")),
        "no revoke form on a revoked share: {}",
        after.body
    );
    let list = admin.get("/console/shares?state=revoked");
    assert!(list.body.contains(&id), "{}", list.body);
}

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    assert!(python.exists(), "`make pyenv` creates {}", python.display());
    python
}

#[test]
fn a_hostile_patient_name_shows_as_text() {
    const STUDY: &str = "2.25.318441390912475309441071216413361001";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.dcm");
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/hostile_names.py"))
        .arg(samples().join("ct-phantom/CT000001.dcm"))
        .arg(&file)
        .args([
            STUDY,
            "2.25.318441390912475309441071216413361002",
            "2.25.318441390912475309441071216413361003",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let daemon = Daemon::start();
    let out = daemon.storescu(&["-xe"], std::slice::from_ref(&file));
    assert!(out.status.success(), "storescu: {}", text(&out));
    let grant = share(&daemon, &[STUDY]);
    let admin = daemon.staff("beheer", "admin");
    for page in [
        "/console/shares".to_string(),
        format!("/console/shares/{}", grant["id"].as_str().unwrap()),
    ] {
        let reply = admin.get(&page);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            reply.body.contains("&lt;script&gt;alert(1)"),
            "{}",
            reply.body
        );
        assert!(!reply.body.contains("<script>alert"), "{}", reply.body);
    }
}
