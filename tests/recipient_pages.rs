//! What the recipient's pages make of what a data set says: a study whose
//! patient name, study description and series description carry markup,
//! template syntax, a right-to-left override, a NUL and ten kilobytes,
//! stored over C-STORE like any other, is shown on the study page as text —
//! escaped, without the invisible characters, bounded — while the program's
//! JSON still gives the values as stored.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::sharing::{as_holder, bind, path_of, share};
use common::{Ask, Daemon, samples, text};

const STUDY: &str = "2.25.318441390912475309441071216413361001";
const SERIES: &str = "2.25.318441390912475309441071216413361002";
const SOP: &str = "2.25.318441390912475309441071216413361003";

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    assert!(python.exists(), "`make pyenv` creates {}", python.display());
    python
}

#[test]
fn the_study_page_shows_hostile_dicom_strings_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.dcm");
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/hostile_names.py"))
        .arg(samples().join("ct-phantom/CT000001.dcm"))
        .arg(&file)
        .args([STUDY, SERIES, SOP])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let daemon = Daemon::start();
    let out = daemon.storescu(&["-xe"], std::slice::from_ref(&file));
    assert!(out.status.success(), "storescu: {}", text(&out));
    let grant = share(&daemon, &[STUDY]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);

    let json = daemon.https("GET", &path, as_holder(&holder));
    assert_eq!(json.status, 200, "{json:?}");
    let covers = &json.json()["covers"];
    let stored_name = covers["patient_name"].as_str().unwrap_or_default();
    assert!(
        stored_name.contains("<script>") && stored_name.contains('\u{202E}'),
        "the data set's own value reaches the program: {stored_name:?}"
    );

    for (lang, unknown) in [("nl", "Naam onbekend"), ("en", "Name unknown")] {
        let page = daemon.https(
            "GET",
            &path,
            Ask {
                headers: vec![
                    ("Authorization", format!("Bearer {holder}")),
                    ("Accept", "text/html".into()),
                    ("Accept-Language", lang.into()),
                ],
                ..Ask::default()
            },
        );
        assert_eq!(page.status, 200, "{page:?}");
        let body = &page.body;
        assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{body}");
        // the name as text: family, given; the override and NUL gone
        assert!(
            body.contains(
                "<h1><bdi>&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;, Anna {{7*7}}</bdi></h1>"
            ),
            "{body}"
        );
        // the description escaped and cut: 128 characters with the ellipsis
        let description = format!(
            "<bdi>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;{}…</bdi>",
            "x".repeat(128 - 30 - 1)
        );
        assert!(body.contains(&description), "{body}");
        assert!(
            body.contains("<bdi>&lt;/li&gt;&lt;iframe src=//evil&gt;</bdi>"),
            "{body}"
        );
        for raw in [
            "<script>alert",
            "<img src=x",
            "<iframe",
            "\u{202E}",
            "\0",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert!(!body.contains(raw), "{raw:?} on the page: {body}");
        }
        // the page stays small whatever the data set says
        assert!(body.len() < 16_000, "{} bytes", body.len());
        assert!(!body.contains(unknown), "the name was shown");
    }
}
