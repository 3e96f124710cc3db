//! Re-authorization (doorautoriseren) with UZI certificates over mTLS: a
//! holder of an organization grant can pass it on only within that
//! organization, to the same or fewer roles, for no more series, no longer
//! and less deep. Every widening is 422 with the reason, journaled, and
//! leaves nothing another organization or role could bind.

mod common;

use common::pki::{ClientCert, TestCa};
use common::sharing::{path_of, share, study_with};
use common::{Ask, Daemon, sample_files, text};
use serde_json::Value;

const URA: &str = "11111111";
const OTHER_URA: &str = "22222222";

fn with(cert: &ClientCert) -> Ask<'_> {
    Ask {
        cert: Some(cert),
        ..Ask::default()
    }
}

#[test]
fn an_organization_grant_cannot_be_passed_on_wider_in_any_dimension() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new(pki.path());
    let holder = ca.issue("dr A Orthopeed", Some(("10000001", URA, "01.015")));
    let colleague = ca.issue("dr B Orthopeed", Some(("10000002", URA, "01.015")));
    let radiologist = ca.issue("dr C Radioloog", Some(("10000003", URA, "01.039")));
    let elsewhere = ca.issue("dr D Elders", Some(("10000004", OTHER_URA, "01.015")));
    let daemon = Daemon::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\nclient_ca = [\"{}\"]\n",
        ca.ca_pem.display()
    ));
    let ct: Vec<_> = sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect();
    daemon.send_all(&ct);
    let study = study_with(&daemon, "CT");
    // the sender's view names every series; the grant is for the CT only
    let all = share(&daemon, &[&study]);
    let series_of = |modality: &str| {
        all["covers"]["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["modality"] == modality)
            .unwrap_or_else(|| panic!("a {modality} series"))["series_uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ct_series, sr_series) = (series_of("CT"), series_of("SR"));
    let parent = share(
        &daemon,
        &[
            &study,
            "--series",
            &ct_series,
            "--to-ura",
            URA,
            "--role",
            "01.015",
            "--expires",
            "2d",
            "--delegation-depth",
            "2",
        ],
    );
    let path = path_of(&parent["url"]);
    assert_eq!(daemon.https("POST", &path, with(&holder)).status, 200);
    let delegate = |body: &str| {
        daemon.https(
            "POST",
            &format!("{path}/delegate"),
            Ask {
                body: Some(body.to_string()),
                ..with(&holder)
            },
        )
    };

    let widenings = [
        // recipient: another organization, any role, another role (with
        // and without naming the URA), anyone
        (
            format!(r#"{{"to_ura":"{OTHER_URA}"}}"#),
            "not to URA 22222222",
        ),
        (
            format!(r#"{{"to_ura":"{OTHER_URA}","roles":["01.015"]}}"#),
            "not to URA 22222222",
        ),
        (format!(r#"{{"to_ura":"{URA}"}}"#), "any role"),
        (
            format!(r#"{{"to_ura":"{URA}","roles":["01.039"]}}"#),
            "01.039",
        ),
        (r#"{"roles":["01.015","01.039"]}"#.to_string(), "01.039"),
        // scope: a series the parent leaves out
        (
            format!(r#"{{"series":["{ct_series}","{sr_series}"]}}"#),
            "cover more",
        ),
        // expiry and depth
        (r#"{"expires":"3d"}"#.to_string(), "outlive"),
        (r#"{"delegation_depth":2}"#.to_string(), "at most 1"),
    ];
    for (body, reason) in &widenings {
        let reply = delegate(body);
        assert_eq!(reply.status, 422, "{body}: {reply:?}");
        let error = reply.json()["error"].as_str().unwrap_or("").to_string();
        assert!(error.contains(reason), "{body}: {error}");
    }
    // each refusal is journaled as one
    let journal = text(&daemon.cli(&["audit", "export"]));
    assert_eq!(
        journal.matches("wider_than_parent").count(),
        widenings.len(),
        "{journal}"
    );
    // and none left a child behind
    let grants: Value = serde_json::from_slice(&daemon.cli(&["grants", "--json"]).stdout).unwrap();
    let parent_view = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == parent["id"])
        .unwrap()
        .clone();
    assert!(parent_view["children"].is_null(), "{parent_view}");

    // narrower in every dimension is fine: the same URA and role, shorter,
    // not to be passed on again
    let child = delegate(r#"{"roles":["01.015"],"expires":"1d","delegation_depth":0}"#);
    assert_eq!(child.status, 201, "{child:?}");
    let child = child.json();
    let child_path = path_of(&child["url"]);
    // another organization and another role cannot bind it; a colleague
    // with the same URA and role can, and reads the study
    assert_eq!(
        daemon.https("POST", &child_path, with(&elsewhere)).status,
        404
    );
    assert_eq!(
        daemon.https("POST", &child_path, with(&radiologist)).status,
        404
    );
    assert_eq!(
        daemon.https("POST", &child_path, with(&colleague)).status,
        200
    );
    let metadata = daemon.https(
        "GET",
        &format!("{child_path}/dicomweb/studies/{study}/metadata"),
        with(&colleague),
    );
    assert_eq!(metadata.status, 200, "{metadata:?}");
    assert!(!metadata.body.contains(&sr_series), "the SR stays out");
}
