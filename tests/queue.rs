//! The one work queue, black box: a push to a peer gateway that is down
//! shows in `GET /admin/v1/queue` and `pushgate queue` with its attempts,
//! next attempt and last error; the listing needs the admin token.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::gateways::{cli_ok, entry, gateway};
use common::{Daemon, eventually};

const URA_A: &str = "11111111";
const URA_B: &str = "22222222";

fn listing(d: &Daemon, token: Option<&str>) -> common::Reply {
    d.https(
        "GET",
        "/admin/v1/queue",
        common::Ask {
            headers: token
                .map(|t| vec![("Authorization", format!("Bearer {t}"))])
                .unwrap_or_default(),
            ..common::Ask::default()
        },
    )
}

#[test]
fn a_failing_push_is_listed_with_its_attempts_and_last_error() {
    let a = gateway("Ziekenhuis A", URA_A, "");
    let mut b = gateway("Ziekenhuis B", URA_B, "");
    let book = a.dir.path().join("peers.toml");
    std::fs::write(book.with_extension("tmp"), entry(&b, "Ziekenhuis B", URA_B)).unwrap();
    std::fs::rename(book.with_extension("tmp"), &book).unwrap();
    // B's port on loopback, with nothing listening
    b.kill9();
    let ct: PathBuf = common::samples().join("ct-phantom").join("CT000001.dcm");
    a.send_all(&[ct]);
    assert!(
        eventually(Duration::from_secs(20), || a.studies()[0]["state"]
            == "complete"),
        "study never complete"
    );
    let study = a.studies()[0]["study_uid"].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(10), || a
            .cli(&["send", &study, "--to-ura", URA_B])
            .status
            .success()),
        "send never accepted"
    );

    let token = std::fs::read_to_string(a.data_dir().join("admin.token")).unwrap();
    let rows = || -> Vec<serde_json::Value> {
        let reply = listing(&a, Some(token.trim()));
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str::<serde_json::Value>(&reply.body)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(40), || {
            let r = rows();
            r.len() == 1 && r[0]["attempts"].as_u64() >= Some(2)
        }),
        "no second failed attempt listed: {:?}",
        rows()
    );
    let row = rows()[0].clone();
    assert_eq!(row["kind"], "push", "{row}");
    assert_eq!(row["target"], URA_B, "{row}");
    assert_eq!(row["state"], "pending", "{row}");
    let error = row["last_error"].as_str().unwrap();
    assert!(
        error.contains("cannot connect to") && error.contains(&b.http.to_string()),
        "{row}"
    );
    assert!(row["next_attempt"].is_string(), "{row}");
    assert!(row["created_at"].is_string(), "{row}");
    let id = row["id"].as_str().unwrap().to_string();
    // the listing is the outbox's own record
    let outbox: serde_json::Value =
        serde_json::from_str(&cli_ok(&a, &["outbox", "--json"])).unwrap();
    assert_eq!(outbox[0]["id"], id.as_str());

    // the CLI shows the same, through the admin API
    let json: serde_json::Value = serde_json::from_str(&cli_ok(&a, &["queue", "--json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    let table = cli_ok(&a, &["queue"]);
    assert!(table.contains(&id), "{table}");
    assert!(table.contains("push") && table.contains(URA_B), "{table}");
    assert!(table.contains("next attempt"), "{table}");
    assert!(table.contains("last error: "), "{table}");
    assert!(table.contains("cannot connect to"), "{table}");

    // without the admin token: nothing
    let denied = listing(&a, None);
    assert_eq!(denied.status, 401, "{}", denied.body);
    assert!(!denied.body.contains(&id));
    let wrong = listing(&a, Some("not-the-token"));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
}
