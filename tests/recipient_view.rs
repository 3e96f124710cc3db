//! What a grant leaves out is the sender's to know: the holder's study
//! page (HTML and JSON) and the answer to passing a grant on name only what
//! is covered — no excluded series, modalities or counts — while the
//! sender (admin API, CLI) still sees the whole coverage.

mod common;

use common::sharing::{as_holder, bind, path_of, share, study_with};
use common::{Ask, Daemon, sample_files};

#[test]
fn the_holder_sees_no_trace_of_what_was_left_out() {
    let daemon = Daemon::start();
    let ct: Vec<_> = sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect();
    daemon.send_all(&ct);
    let study = study_with(&daemon, "CT");
    let grant = share(
        &daemon,
        &[
            &study,
            "--exclude-modality",
            "PR",
            "--delegation-depth",
            "1",
        ],
    );
    // the sender sees what stays home
    let covers = &grant["covers"];
    assert_eq!(covers["excluded"]["modalities"], serde_json::json!(["PR"]));
    assert_eq!(covers["excluded"]["series"], 1);
    assert_eq!(covers["excluded"]["instances"], 1);
    let pr_series = covers["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["modality"] == "PR")
        .expect("the sender sees the PR series")["series_uid"]
        .as_str()
        .unwrap()
        .to_string();

    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    let leaks = |body: &str| -> Vec<&'static str> {
        [
            ("excluded", body.contains("excluded")),
            ("the PR series", body.contains(&pr_series)),
            (
                "the PR modality",
                body.contains("\"PR\"") || body.contains(">PR<"),
            ),
            ("included counts", body.contains("\"included\"")),
            (
                "the study's 18 instances",
                body.contains("\"instances\":18"),
            ),
        ]
        .into_iter()
        .filter(|(_, leaked)| *leaked)
        .map(|(what, _)| what)
        .collect()
    };
    let json = daemon.https(
        "GET",
        &path,
        Ask {
            headers: vec![
                ("Authorization", format!("Bearer {holder}")),
                ("Accept", "application/json".into()),
            ],
            ..Ask::default()
        },
    );
    assert_eq!(json.status, 200, "{json:?}");
    assert_eq!(leaks(&json.body), Vec::<&str>::new(), "{}", json.body);
    let page = json.json();
    let series = page["covers"]["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "CT and SR: {}", json.body);
    let counted: u64 = series
        .iter()
        .map(|s| s["instances"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 17);
    assert_eq!(page["covers"]["instances"], 17);
    assert_eq!(
        page["covers"]["modalities"],
        serde_json::json!(["CT", "SR"])
    );

    let html = daemon.https(
        "GET",
        &path,
        Ask {
            headers: vec![
                ("Authorization", format!("Bearer {holder}")),
                ("Accept", "text/html".into()),
            ],
            ..Ask::default()
        },
    );
    assert_eq!(html.status, 200);
    assert!(html.body.contains("<html"), "{}", html.body);
    assert_eq!(leaks(&html.body), Vec::<&str>::new(), "{}", html.body);

    // passing it on: the answer covers what the child covers, no more said
    let child = daemon.https(
        "POST",
        &format!("{path}/delegate"),
        Ask {
            body: Some(r#"{"expires":"1d"}"#.into()),
            ..as_holder(&holder)
        },
    );
    assert_eq!(child.status, 201, "{child:?}");
    assert_eq!(leaks(&child.body), Vec::<&str>::new(), "{}", child.body);
    assert_eq!(child.json()["covers"]["instances"], 17);

    // the sender still sees the child's whole coverage (admin API)
    let id = child.json()["id"].as_str().unwrap().to_string();
    let token = std::fs::read_to_string(daemon.data_dir().join("admin.token")).unwrap();
    let detail = daemon.https(
        "GET",
        &format!("/admin/v1/grants/{id}"),
        Ask {
            headers: vec![("Authorization", format!("Bearer {}", token.trim()))],
            ..Ask::default()
        },
    );
    assert_eq!(detail.status, 200, "{detail:?}");
    let excluded = &detail.json()["covers"]["excluded"];
    assert_eq!(
        excluded["modalities"],
        serde_json::json!(["PR"]),
        "{}",
        detail.body
    );
    assert_eq!(excluded["series"], 1);
}
