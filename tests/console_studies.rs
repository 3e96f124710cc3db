//! The console's study list against the real daemon: what arrived, each
//! search criterion finding its studies and no others, pages of 50, a
//! study still arriving counted live, and a hostile patient name shown as
//! text.

mod common;

use std::time::Duration;

use common::{Daemon, eventually, sample_files, samples, variant};

/// The accession numbers of the rows of a list page (each row shows
/// "Acc. NUMBER").
fn accessions(page: &str) -> Vec<String> {
    let mut found: Vec<String> = page
        .split("Acc. ")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap_or("").to_string())
        .collect();
    found.sort();
    found
}

fn rows(page: &str) -> usize {
    page.matches("class=\"button\" href=\"/console/share/")
        .count()
}

#[test]
fn each_search_finds_its_studies_and_not_the_others() {
    let daemon = Daemon::start();
    daemon.send_all(&sample_files());
    assert!(eventually(Duration::from_secs(20), || daemon
        .studies()
        .as_array()
        .unwrap()
        .len()
        == 5));
    let staff = daemon.staff("laborant", "user");

    let all = staff.get("/console/studies");
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(rows(&all.body), 5, "{}", all.body);
    for shown in [
        "Jansen, Anna",
        "de Boer, Sanne",
        "Müller, Jörg",
        "Visser, Hendrik",
    ] {
        assert!(all.body.contains(shown), "{shown}");
    }
    // what arrived: modalities, counts, the calling AE
    assert!(all.body.contains("CT, PR, SR"), "{}", all.body);
    assert!(all.body.contains("18 beelden"), "{}", all.body);
    assert!(
        all.body.contains("DICOM <code>STORESCU</code>"),
        "{}",
        all.body
    );
    assert!(
        all.body.contains("12 maart 2024"),
        "the study date as people write it"
    );

    let cases: &[(&str, &[&str])] = &[
        ("name=jansen", &["ZKHA24031201", "ZKHA24091702"]),
        ("name=ANNA%20jansen", &[]),
        ("name=jansen%5Eanna", &["ZKHA24031201", "ZKHA24091702"]),
        ("name=*boer*", &["ZKHA24060301"]),
        ("name=m%C3%BCller", &["ZKHA24052103"]),
        ("name=v%3Fsser*", &["ZKHA24022801"]),
        ("patient_id=zkh123456", &["ZKHA24052103"]),
        ("patient_id=ZKH*", &["ZKHA24022801", "ZKHA24052103"]),
        ("bsn=999912343", &["ZKHA24031201", "ZKHA24091702"]),
        ("bsn=9999%2040016", &["ZKHA24022801"]),
        ("accession=ZKHA24091702", &["ZKHA24091702"]),
        ("accession=zkha2406*", &["ZKHA24060301"]),
        ("from=2024-09-01", &["ZKHA24091702"]),
        ("to=2024-02-28", &["ZKHA24022801"]),
        (
            "from=2024-05-01&to=2024-06-30",
            &["ZKHA24052103", "ZKHA24060301"],
        ),
        ("modality=PR", &["ZKHA24031201"]),
        ("modality=MR&name=jansen", &[]),
    ];
    for (query, expected) in cases {
        let page = staff.get(&format!("/console/studies?{query}"));
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        assert_eq!(accessions(&page.body), *expected, "{query}");
        assert_eq!(rows(&page.body), expected.len(), "{query}");
    }
    let none = staff.get("/console/studies?name=nobody");
    assert!(none.body.contains("Geen onderzoeken gevonden."));
    let bad = staff.get("/console/studies?from=2024-13-01");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("is not a date"), "{}", bad.body);
    // the search stays in the form
    let kept = staff.get("/console/studies?name=o%27Brien%20%3Cx%3E");
    assert!(
        kept.body.contains("value=\"o'Brien &lt;x&gt;\""),
        "{}",
        kept.body
    );

    // not logged in: to the login page
    let anonymous = daemon.get("/console/studies");
    assert_eq!(anonymous.status, 303);
    assert!(
        anonymous
            .header("location")
            .unwrap()
            .starts_with("/console/login")
    );
}

#[test]
fn fifty_to_a_page_and_a_hostile_name_is_text() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let us = samples().join("jpeg/US000001.dcm");
    let mut files: Vec<_> = (0..54)
        .map(|i| {
            variant(
                dir.path(),
                &us,
                &format!("p{i}.dcm"),
                true,
                &[
                    ("PatientName", &format!("Pagina^Patient{i:02}")),
                    ("AccessionNumber", &format!("PG{i:02}")),
                ],
            )
        })
        .collect();
    files.push(variant(
        dir.path(),
        &us,
        "hostile.dcm",
        true,
        &[
            ("PatientName", "<script>alert(1)</script>^\"O'Hara\""),
            ("PatientID", "<b>id</b>"),
            ("StudyDescription", "<img src=x onerror=alert(2)>"),
            ("AccessionNumber", "HOSTILE"),
        ],
    ));
    daemon.send_all(&files);
    assert!(eventually(Duration::from_secs(30), || daemon
        .studies()
        .as_array()
        .unwrap()
        .len()
        == 55));
    let staff = daemon.staff("secretaresse", "user");

    let first = staff.get("/console/studies");
    assert_eq!(rows(&first.body), 50);
    assert!(
        first.body.contains("55 onderzoeken · pagina 1 / 2"),
        "{}",
        first.body
    );
    assert!(first.body.contains("href=\"/console/studies?page=2\""));
    let second = staff.get("/console/studies?page=2");
    assert_eq!(rows(&second.body), 5);
    let mut both = accessions(&first.body);
    both.extend(accessions(&second.body));
    both.sort();
    both.dedup();
    assert_eq!(both.len(), 55, "every study on exactly one page");
    // a search is paged with its query kept
    let searched = staff.get("/console/studies?name=pagina*");
    assert!(searched.body.contains("54 onderzoeken · pagina 1 / 2"));
    assert!(
        searched
            .body
            .contains("href=\"/console/studies?name=pagina%2A&amp;page=2\""),
        "{}",
        searched.body
    );

    let hostile = staff.get("/console/studies?accession=HOSTILE");
    assert_eq!(rows(&hostile.body), 1, "{}", hostile.body);
    for raw in ["<script>alert", "<b>id</b>", "<img src=x"] {
        assert!(
            !hostile.body.contains(raw),
            "{raw} unescaped: {}",
            hostile.body
        );
    }
    assert!(
        hostile
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        hostile.body
    );
    assert!(hostile.body.contains("&lt;b&gt;id&lt;/b&gt;"));
    assert!(hostile.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
    // the page's CSP forbids inline script anyway
    assert!(
        hostile
            .header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
}

#[test]
fn a_study_still_arriving_is_counted_live() {
    let daemon =
        Daemon::start_with("[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nstable_after = \"8s\"\n");
    let ct: Vec<_> = sample_files()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("ct-phantom/CT"))
        .collect();
    let staff = daemon.staff("laborant", "user");
    daemon.send_all(&ct[..3]);
    let arriving = staff.get("/console/studies");
    assert!(
        arriving.body.contains("komt binnen: 3 beelden"),
        "{}",
        arriving.body
    );
    assert!(
        arriving
            .body
            .contains("<meta name=\"pushgate-refresh\" content=\"5\">")
    );
    daemon.send_all(&ct[3..8]);
    let more = staff.get("/console/studies");
    assert!(
        more.body.contains("komt binnen: 8 beelden"),
        "{}",
        more.body
    );
    assert!(eventually(Duration::from_secs(20), || {
        staff.get("/console/studies").body.contains("compleet")
    }));
    let complete = staff.get("/console/studies");
    assert!(
        !complete.body.contains("pushgate-refresh"),
        "no refresh once complete"
    );
    assert!(complete.body.contains("8 beelden"));
}
