//! QIDO-RS under `/s/{token}/dicomweb`, asked the way OHIF v3 and
//! dicomweb-client ask, against a daemon that holds every sample study.
//! Every value is compared with what `dcmdump` reads from the files sent,
//! never with a literal: attributes and their VRs, counts computed from
//! the files the grant covers. Scope: a grant narrowed by modality, series
//! or SOP class never lets the rest be found, at any level, by any key;
//! other studies on the same daemon (one of the same patient) are never
//! found.
//!
//! No match is `200 []` (src/web/dicomweb/search.rs: an empty JSON array;
//! PS3.18 §8.3.4.4.1 says 204, CP-2473 changes it to 200 with an empty
//! payload, which is what OHIF and dicomweb-client handle either way).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::sharing::{as_holder, bind, path_of, share};
use common::{Ask, Daemon, Reply, sample_files, text};
use serde_json::Value;

/// A top-level element as dcmdump shows it: VR and value (`None`: empty).
#[derive(Debug, Clone)]
struct Shown {
    vr: String,
    value: Option<String>,
}

/// The top-level data set of a file as `dcmdump +U8` reads it (values
/// converted to UTF-8 from the file's Specific Character Set), by tag
/// `gggg,eeee`.
fn dump(path: &Path) -> HashMap<String, Shown> {
    let out = Command::new("dcmdump")
        .args(["-q", "-Un", "+L", "+U8"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dcmdump {}: {}",
        path.display(),
        text(&out)
    );
    let mut found = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // nested elements are indented; the meta group is not the data set
        if !line.starts_with('(') || line.starts_with("(0002,") || line.len() < 15 {
            continue;
        }
        let tag = line[1..10].to_string();
        let vr = line[12..14].to_string();
        let rest = &line[15..];
        let value = if let Some(inner) = rest.strip_prefix('[') {
            inner.find(']').map(|end| inner[..end].to_string())
        } else if rest.starts_with('(') {
            None // "(no value available)", "(Sequence with …)"
        } else {
            rest.split_whitespace().next().map(str::to_string)
        };
        found.insert(tag, Shown { vr, value });
    }
    found
}

/// Files and what dcmdump says of them, read once per test.
struct Files {
    dumps: BTreeMap<PathBuf, HashMap<String, Shown>>,
}

impl Files {
    fn read(paths: &[PathBuf]) -> Files {
        Files {
            dumps: paths.iter().map(|p| (p.clone(), dump(p))).collect(),
        }
    }

    fn value(&self, path: &Path, tag: &str) -> String {
        self.dumps[path]
            .get(tag)
            .and_then(|s| s.value.clone())
            .unwrap_or_else(|| panic!("{} has no {tag}", path.display()))
    }

    /// The files whose `tag` is `value`, among `among`.
    fn with<'a>(&'a self, among: &'a [PathBuf], tag: &'a str, value: &'a str) -> Vec<PathBuf> {
        among
            .iter()
            .filter(|p| self.dumps[*p].get(tag).and_then(|s| s.value.as_deref()) == Some(value))
            .cloned()
            .collect()
    }

    fn sop(&self, path: &Path) -> String {
        self.value(path, "0008,0018")
    }

    fn series(&self, path: &Path) -> String {
        self.value(path, "0020,000e")
    }

    fn study(&self, path: &Path) -> String {
        self.value(path, "0020,000d")
    }

    /// The one file with this SOP Instance UID.
    fn by_sop(&self, sop: &str) -> &Path {
        self.dumps
            .keys()
            .find(|p| self.sop(p) == sop)
            .unwrap_or_else(|| panic!("no file has SOP Instance UID {sop}"))
    }

    /// Asserts that `tag` of a search result is what dcmdump reads from
    /// `path`: same VR, same values (numbers as numbers, person names by
    /// their alphabetic group); an attribute the file lacks has no value.
    fn assert_same(&self, result: &Value, tag: &str, path: &Path) {
        let key = tag.replace(',', "").to_ascii_uppercase();
        let element = result.get(&key);
        let shown = self.dumps[path].get(tag);
        let context = || format!("{key} of {} in {result}", path.display());
        let Some(Shown {
            vr,
            value: Some(value),
        }) = shown
        else {
            assert!(
                element.is_none_or(|e| e.get("Value").is_none_or(|v| v == &Value::Array(vec![]))),
                "{}: the file has no value",
                context()
            );
            return;
        };
        let element = element.unwrap_or_else(|| panic!("{} is missing", context()));
        assert_eq!(
            element["vr"].as_str(),
            Some(vr.as_str()),
            "VR of {}",
            context()
        );
        let expected: Vec<&str> = value.split('\\').map(str::trim).collect();
        let got = element["Value"]
            .as_array()
            .unwrap_or_else(|| panic!("{} has no Value", context()));
        assert_eq!(got.len(), expected.len(), "{}", context());
        for (got, want) in got.iter().zip(&expected) {
            match vr.as_str() {
                "IS" | "US" | "UL" | "SS" | "SL" | "UV" | "SV" => assert_eq!(
                    got.as_i64(),
                    Some(want.parse::<i64>().unwrap()),
                    "{}: JSON numbers (PS3.18 F.2.3)",
                    context()
                ),
                "DS" | "FL" | "FD" => assert_eq!(
                    got.as_f64(),
                    Some(want.parse::<f64>().unwrap()),
                    "{}",
                    context()
                ),
                "PN" => assert_eq!(got["Alphabetic"].as_str(), Some(*want), "{}", context()),
                _ => assert_eq!(got.as_str(), Some(*want), "{}", context()),
            }
        }
    }
}

/// Study-level attributes a study result returns by default (PS3.18
/// Table 10.6.3-3) that are the same in every file of the study.
const STUDY_TAGS: &[&str] = &[
    "0008,0020", // StudyDate
    "0008,0030", // StudyTime
    "0008,0050", // AccessionNumber
    "0008,0090", // ReferringPhysicianName
    "0008,0201", // TimezoneOffsetFromUTC
    "0010,0010", // PatientName
    "0010,0020", // PatientID
    "0010,0030", // PatientBirthDate
    "0010,0040", // PatientSex
    "0020,000d", // StudyInstanceUID
    "0020,0010", // StudyID
];

const SERIES_TAGS: &[&str] = &[
    "0008,0060", // Modality
    "0008,103e", // SeriesDescription
    "0020,000d", // StudyInstanceUID
    "0020,000e", // SeriesInstanceUID
    "0020,0011", // SeriesNumber
];

const INSTANCE_TAGS: &[&str] = &[
    "0008,0016", // SOPClassUID
    "0008,0018", // SOPInstanceUID
    "0020,0013", // InstanceNumber
    "0028,0010", // Rows
    "0028,0011", // Columns
    "0028,0100", // BitsAllocated
];

fn samples_in(dir: &str) -> Vec<PathBuf> {
    sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!("/{dir}/")))
        .collect()
}

/// A daemon with every sample (five studies, two of the same patient).
fn daemon_with_everything() -> (Daemon, Files) {
    let daemon = Daemon::start();
    let all = sample_files();
    daemon.send_all(&all);
    let files = Files::read(&all);
    (daemon, files)
}

/// A bound link: (path, holder token).
fn link(daemon: &Daemon, args: &[&str]) -> (String, String) {
    let grant = share(daemon, args);
    let path = path_of(&grant["url"]);
    let holder = bind(daemon, &path);
    (path, holder)
}

struct Searcher<'a> {
    daemon: &'a Daemon,
    path: String,
    holder: String,
}

impl Searcher<'_> {
    fn get_as(&self, query: &str, accept: &str) -> Reply {
        let mut ask = as_holder(&self.holder);
        ask.headers.push(("Accept", accept.to_string()));
        self.daemon
            .https("GET", &format!("{}/dicomweb/{query}", self.path), ask)
    }

    /// A search that must succeed; its results.
    fn search(&self, query: &str) -> Vec<Value> {
        let reply = self.get_as(query, "application/dicom+json");
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/dicom+json"),
            "{query}"
        );
        match reply.json() {
            Value::Array(results) => results,
            other => panic!("{query}: not an array: {other}"),
        }
    }

    /// A search that must find exactly nothing.
    fn nothing(&self, query: &str) {
        let reply = self.get_as(query, "application/dicom+json");
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "[]"),
            "{query} must find nothing"
        );
    }
}

fn text_of(result: &Value, key: &str) -> String {
    result[key]["Value"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {result}"))
        .to_string()
}

fn number_of(result: &Value, key: &str) -> i64 {
    result[key]["Value"][0]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} in {result}"))
}

fn texts_of(result: &Value, key: &str) -> Vec<String> {
    result[key]["Value"]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {result}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Percent-encodes a query value (RFC 3986 unreserved kept).
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The CT phantom study shared without its presentation state: the files
/// the grant covers (decided by what dcmdump reads, not by file name).
fn ct_without_pr(files: &Files) -> (String, Vec<PathBuf>, Vec<PathBuf>) {
    let ct = samples_in("ct-phantom");
    let study = files.study(&ct[0]);
    let (pr, covered): (Vec<PathBuf>, Vec<PathBuf>) = ct
        .into_iter()
        .partition(|p| files.value(p, "0008,0060") == "PR");
    assert_eq!(pr.len(), 1, "the sample study has one PR");
    (study, covered, pr)
}

#[test]
fn the_study_list_ohif_asks_for_shows_the_shared_study_as_the_files_say() {
    let (daemon, files) = daemon_with_everything();
    let (study, covered, pr) = ct_without_pr(&files);
    let (path, holder) = link(&daemon, &[&study, "--exclude-modality", "PR"]);
    let qido = Searcher {
        daemon: &daemon,
        path: path.clone(),
        holder,
    };
    let first = &covered[0];
    let date = files.value(first, "0008,0020");
    let patient = files.value(first, "0010,0010");
    let patient_id = files.value(first, "0010,0020");
    let accession = files.value(first, "0008,0050");
    let ohif = "limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060";
    let found_by = [
        format!("studies?{ohif}"),
        format!("studies?{ohif}&StudyDate=20000101-20301231"),
        format!("studies?{ohif}&StudyDate={date}"),
        format!("studies?{ohif}&PatientName=*"),
        format!("studies?{ohif}&ModalitiesInStudy=CT"),
        format!("studies?{ohif}&ModalitiesInStudy=SR"),
        // a person name matches case-insensitively (PS3.4 C.2.2.2.1.1)
        format!(
            "studies?{ohif}&PatientName={}",
            encoded(&format!("{}*", patient[..4].to_lowercase()))
        ),
        format!("studies?PatientName={}", encoded(&patient)),
        // this patient has a second study on the daemon: not this link's
        format!("studies?PatientID={patient_id}"),
        format!("studies?AccessionNumber={accession}"),
        format!("studies?StudyInstanceUID={study}"),
        // a series-level key at study level: some covered series matches
        "studies?Modality=CT".to_string(),
    ];
    let modalities: BTreeSet<String> = covered
        .iter()
        .map(|p| files.value(p, "0008,0060"))
        .collect();
    let series: BTreeSet<String> = covered.iter().map(|p| files.series(p)).collect();
    for query in &found_by {
        let results = qido.search(query);
        assert_eq!(results.len(), 1, "{query}: {results:?}");
        let result = &results[0];
        for tag in STUDY_TAGS {
            files.assert_same(result, tag, first);
        }
        if query.contains("includefield=00081030") {
            files.assert_same(result, "0008,1030", first);
        }
        assert_eq!(
            texts_of(result, "00080061"),
            modalities.iter().cloned().collect::<Vec<_>>(),
            "{query}: ModalitiesInStudy of what is covered (no PR)"
        );
        assert_eq!(number_of(result, "00201206"), series.len() as i64);
        assert_eq!(number_of(result, "00201208"), covered.len() as i64);
        assert_eq!(result["00201208"]["vr"], "IS");
        let retrieve = text_of(result, "00081190");
        assert!(
            retrieve.ends_with(&format!("{path}/dicomweb/studies/{study}")),
            "{retrieve}"
        );
    }
    // the Retrieve URL works, and retrieves exactly what was counted
    let result = &qido.search("studies")[0];
    let retrieve = text_of(result, "00081190");
    let mut ask = as_holder(&qido.holder);
    ask.headers.push((
        "Accept",
        "multipart/related; type=\"application/dicom\"; transfer-syntax=*".into(),
    ));
    let reply = daemon.https("GET", &retrieve[retrieve.find("/s/").unwrap()..], ask);
    assert_eq!(reply.status, 200);
    let parts = reply
        .raw
        .windows(b"Content-Type: application/dicom".len())
        .filter(|w| *w == b"Content-Type: application/dicom")
        .count();
    assert_eq!(parts, covered.len());

    // the other studies, the left-out PR, dates outside: nothing at all
    let others: Vec<PathBuf> = files
        .dumps
        .keys()
        .filter(|p| files.study(p) != study)
        .cloned()
        .collect();
    assert_eq!(
        others
            .iter()
            .map(|p| files.study(p))
            .collect::<BTreeSet<_>>()
            .len(),
        4
    );
    let same_patient: Vec<&PathBuf> = others
        .iter()
        .filter(|p| files.value(p, "0010,0020") == patient_id)
        .collect();
    assert!(
        !same_patient.is_empty(),
        "the RLE study is of the same patient"
    );
    let mut nothing = vec![
        format!("studies?{ohif}&StudyDate=20250101-20301231"),
        format!("studies?{ohif}&StudyDate=-20231231"),
        format!("studies?{ohif}&ModalitiesInStudy=PR"),
        "studies?Modality=PR".to_string(),
        format!("studies?SOPInstanceUID={}", files.sop(&pr[0])),
        format!("studies?SeriesInstanceUID={}", files.series(&pr[0])),
        "studies?PatientName=nobody*".to_string(),
        "studies?limit=101&offset=1&fuzzymatching=false&includefield=00081030%2C00080060"
            .to_string(),
    ];
    for other in &others {
        nothing.push(format!("studies?StudyInstanceUID={}", files.study(other)));
        nothing.push(format!(
            "studies?AccessionNumber={}",
            files.value(other, "0008,0050")
        ));
        let modality = files.value(other, "0008,0060");
        if !modalities.contains(&modality) {
            nothing.push(format!("studies?ModalitiesInStudy={modality}"));
        }
        let other_date = files.value(other, "0008,0020");
        if other_date != date {
            nothing.push(format!("studies?StudyDate={other_date}"));
        }
        nothing.push(format!("studies?SOPInstanceUID={}", files.sop(other)));
    }
    for other in &same_patient {
        // the same patient, but this link does not share that study
        nothing.push(format!(
            "studies?PatientID={patient_id}&StudyDate={}",
            files.value(other, "0008,0020")
        ));
    }
    for other in others
        .iter()
        .filter(|p| files.value(p, "0010,0020") != patient_id)
    {
        nothing.push(format!(
            "studies?PatientName={}",
            encoded(&files.value(other, "0010,0010"))
        ));
        nothing.push(format!(
            "studies?PatientID={}",
            files.value(other, "0010,0020")
        ));
    }
    for query in &nothing {
        qido.nothing(query);
    }

    // every search is journaled as a QIDO access of this grant
    let found = common::eventually(Duration::from_secs(5), || {
        let out = daemon.cli(&["audit", "export", "--since", "1h"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| {
                let record: Value = serde_json::from_str(line).unwrap();
                let event = &record["event"];
                event["what"] == "qido"
                    && event["study"] == study.as_str()
                    && event["outcome"]["result"] == "allowed"
            })
            .count()
            >= found_by.len() + nothing.len()
    });
    assert!(found, "one access event per search");
}

#[test]
fn series_and_instances_are_those_of_the_files_and_no_others() {
    let (daemon, files) = daemon_with_everything();
    let (study, covered, pr) = ct_without_pr(&files);
    let (path, holder) = link(&daemon, &[&study, "--exclude-modality", "PR"]);
    let qido = Searcher {
        daemon: &daemon,
        path,
        holder,
    };
    let mut by_series: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for f in &covered {
        by_series
            .entry(files.series(f))
            .or_default()
            .push(f.clone());
    }
    let ct_series = files.series(&files.with(&covered, "0008,0060", "CT")[0]);
    let sr_series = files.series(&files.with(&covered, "0008,0060", "SR")[0]);
    let pr_series = files.series(&pr[0]);

    // the series OHIF lists for a study, with the fields it shows
    let results = qido.search(&format!(
        "studies/{study}/series?includefield=0008103E%2C00080021%2C00080031%2C00200011"
    ));
    assert_eq!(results.len(), by_series.len(), "{results:?}");
    let mut numbers = Vec::new();
    for result in &results {
        let uid = text_of(result, "0020000E");
        let members = by_series
            .get(&uid)
            .unwrap_or_else(|| panic!("series {uid} is not covered"));
        for tag in SERIES_TAGS.iter().chain(&["0008,0021", "0008,0031"]) {
            files.assert_same(result, tag, &members[0]);
        }
        assert_eq!(number_of(result, "00201209"), members.len() as i64);
        numbers.push(number_of(result, "00200011"));
    }
    let mut sorted = numbers.clone();
    sorted.sort();
    assert_eq!(numbers, sorted, "series in Series Number order");

    // matching at series level
    for (query, series) in [
        ("Modality=CT".to_string(), &ct_series),
        ("Modality=SR".to_string(), &sr_series),
        (format!("SeriesInstanceUID={ct_series}"), &ct_series),
        (
            format!(
                "SeriesNumber={}",
                files.value(&by_series[&sr_series][0], "0020,0011")
            ),
            &sr_series,
        ),
        (
            format!(
                "SeriesDescription={}",
                encoded(&files.value(&by_series[&ct_series][0], "0008,103e"))
            ),
            &ct_series,
        ),
    ] {
        for base in [format!("studies/{study}/series"), "series".to_string()] {
            let results = qido.search(&format!("{base}?{query}"));
            assert_eq!(results.len(), 1, "{base}?{query}: {results:?}");
            assert_eq!(&text_of(&results[0], "0020000E"), series);
            if base == "series" {
                // a search from the root returns the study's attributes too
                for tag in STUDY_TAGS {
                    files.assert_same(&results[0], tag, &by_series[series][0]);
                }
            }
        }
    }
    for query in [
        format!("studies/{study}/series?Modality=PR"),
        format!("studies/{study}/series?SeriesInstanceUID={pr_series}"),
        format!(
            "studies/{study}/series?SeriesNumber={}",
            files.value(&pr[0], "0020,0011")
        ),
        "series?Modality=PR".to_string(),
        "series?Modality=MR".to_string(),
        format!("studies/{study}/series?Modality=MR"),
    ] {
        qido.nothing(&query);
    }

    // the instances of the CT series, in Instance Number order
    let results = qido.search(&format!("studies/{study}/series/{ct_series}/instances"));
    let ct_files = &by_series[&ct_series];
    assert_eq!(results.len(), ct_files.len());
    let mut last = i64::MIN;
    for result in &results {
        let sop = text_of(result, "00080018");
        let file = files.by_sop(&sop);
        assert!(ct_files.iter().any(|f| f == file), "{sop} is of the series");
        for tag in INSTANCE_TAGS {
            files.assert_same(result, tag, file);
        }
        files.assert_same(result, "0020,000e", file);
        let number = number_of(result, "00200013");
        assert!(number > last, "Instance Number order");
        last = number;
        let retrieve = text_of(result, "00081190");
        assert!(
            retrieve.ends_with(&format!(
                "/studies/{study}/series/{ct_series}/instances/{sop}"
            )),
            "{retrieve}"
        );
    }

    // every covered instance of the study, the SR's attributes included
    let results = qido.search(&format!("studies/{study}/instances"));
    let sops: BTreeSet<String> = results.iter().map(|r| text_of(r, "00080018")).collect();
    let expected: BTreeSet<String> = covered.iter().map(|f| files.sop(f)).collect();
    assert_eq!(sops, expected);
    for result in &results {
        let file = files.by_sop(&text_of(result, "00080018"));
        for tag in INSTANCE_TAGS.iter().chain(SERIES_TAGS) {
            files.assert_same(result, tag, file);
        }
    }
    let eleven = files.with(&covered, "0020,0013", "11");
    assert_eq!(eleven.len(), 1);
    let results = qido.search(&format!("studies/{study}/instances?InstanceNumber=11"));
    assert_eq!(results.len(), 1);
    assert_eq!(text_of(&results[0], "00080018"), files.sop(&eleven[0]));
    let results = qido.search(&format!(
        "instances?SOPInstanceUID={}",
        files.sop(&eleven[0])
    ));
    assert_eq!(results.len(), 1);
    for tag in STUDY_TAGS.iter().chain(SERIES_TAGS).chain(INSTANCE_TAGS) {
        files.assert_same(&results[0], tag, &eleven[0]);
    }

    // the left-out PR and every other study: nowhere, and a covered path
    // with an unknown series looks the same as the left-out series
    let unknown = qido.get_as(
        &format!("studies/{study}/series/1.2.3.4.5/instances"),
        "application/dicom+json",
    );
    let left_out = qido.get_as(
        &format!("studies/{study}/series/{pr_series}/instances"),
        "application/dicom+json",
    );
    assert_eq!(
        (left_out.status, &left_out.body),
        (unknown.status, &unknown.body)
    );
    assert_eq!((left_out.status, left_out.body.as_str()), (200, "[]"));
    let mut nothing = vec![
        format!("instances?SOPInstanceUID={}", files.sop(&pr[0])),
        format!(
            "studies/{study}/instances?SOPInstanceUID={}",
            files.sop(&pr[0])
        ),
        format!("studies/{study}/instances?Modality=PR"),
        format!(
            "studies/{study}/instances?SOPClassUID={}",
            files.value(&pr[0], "0008,0016")
        ),
    ];
    for other in files.dumps.keys().filter(|p| files.study(p) != study) {
        let (s, se, sop) = (files.study(other), files.series(other), files.sop(other));
        nothing.push(format!("studies/{s}/series"));
        nothing.push(format!("studies/{s}/instances"));
        nothing.push(format!("studies/{s}/series/{se}/instances"));
        nothing.push(format!("instances?SOPInstanceUID={sop}"));
        nothing.push(format!("series?SeriesInstanceUID={se}"));
    }
    for query in &nothing {
        qido.nothing(query);
    }
}

#[test]
fn limit_and_offset_page_through_every_result_exactly_once() {
    let (daemon, files) = daemon_with_everything();
    let (study, covered, _) = ct_without_pr(&files);
    let (path, holder) = link(&daemon, &[&study, "--exclude-modality", "PR"]);
    let qido = Searcher {
        daemon: &daemon,
        path,
        holder,
    };
    let sops = |results: &[Value]| -> Vec<String> {
        results.iter().map(|r| text_of(r, "00080018")).collect()
    };
    let all = sops(&qido.search(&format!("studies/{study}/instances")));
    assert_eq!(all.len(), covered.len());
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let page = sops(&qido.search(&format!(
            "studies/{study}/instances?limit=5&offset={offset}"
        )));
        assert!(page.len() <= 5);
        if page.is_empty() {
            break;
        }
        paged.extend(page);
        offset += 5;
    }
    assert_eq!(paged, all, "the pages, in order, are the whole list");
    assert_eq!(offset, covered.len().div_ceil(5) * 5);
    // offset alone, limit alone, and OHIF's page size
    assert_eq!(
        sops(&qido.search(&format!("studies/{study}/instances?offset=7"))),
        all[7..]
    );
    assert_eq!(
        sops(&qido.search(&format!("studies/{study}/instances?limit=3"))),
        all[..3]
    );
    assert_eq!(
        sops(&qido.search(&format!("studies/{study}/instances?limit=101&offset=0"))),
        all
    );
    qido.nothing(&format!(
        "studies/{study}/instances?offset={}",
        covered.len()
    ));
    // paging applies after matching
    let ct: Vec<String> = sops(&qido.search(&format!("studies/{study}/instances?Modality=CT")));
    assert_eq!(ct.len(), files.with(&covered, "0008,0060", "CT").len());
    assert_eq!(
        sops(&qido.search(&format!(
            "studies/{study}/instances?Modality=CT&limit=4&offset=12"
        ))),
        ct[12..]
    );
    assert_eq!(qido.search("studies?limit=101&offset=0").len(), 1);
    qido.nothing("studies?limit=101&offset=101");
    let series = qido.search("series?limit=1&offset=1");
    assert_eq!(series.len(), 1);
    assert_eq!(
        text_of(&series[0], "0020000E"),
        text_of(&qido.search("series")[1], "0020000E")
    );
}

#[test]
fn a_narrowed_grant_never_lets_the_rest_be_found() {
    let (daemon, files) = daemon_with_everything();
    let ct = samples_in("ct-phantom");
    let study = files.study(&ct[0]);
    let by_modality = |m: &str| files.with(&ct, "0008,0060", m);
    let (ct_images, sr, pr) = (by_modality("CT"), by_modality("SR"), by_modality("PR"));
    assert!(!ct_images.is_empty() && sr.len() == 1 && pr.len() == 1);
    let ct_series = files.series(&ct_images[0]);
    let sr_class = files.value(&sr[0], "0008,0016");

    // one series only
    let (path, holder) = link(&daemon, &[&study, "--series", &ct_series]);
    let qido = Searcher {
        daemon: &daemon,
        path: path.clone(),
        holder: holder.clone(),
    };
    let result = &qido.search("studies?includefield=00080062")[0];
    assert_eq!(texts_of(result, "00080061"), ["CT"]);
    assert_eq!(
        texts_of(result, "00080062"),
        [files.value(&ct_images[0], "0008,0016")]
    );
    assert_eq!(number_of(result, "00201206"), 1);
    assert_eq!(number_of(result, "00201208"), ct_images.len() as i64);
    let series = qido.search(&format!("studies/{study}/series"));
    assert_eq!(series.len(), 1);
    assert_eq!(text_of(&series[0], "0020000E"), ct_series);
    let instances: BTreeSet<String> = qido
        .search(&format!("studies/{study}/instances"))
        .iter()
        .map(|r| text_of(r, "00080018"))
        .collect();
    assert_eq!(
        instances,
        ct_images
            .iter()
            .map(|f| files.sop(f))
            .collect::<BTreeSet<_>>()
    );
    for hidden in sr.iter().chain(&pr) {
        let (se, sop, class, modality) = (
            files.series(hidden),
            files.sop(hidden),
            files.value(hidden, "0008,0016"),
            files.value(hidden, "0008,0060"),
        );
        for query in [
            format!("studies?ModalitiesInStudy={modality}"),
            format!("studies?Modality={modality}"),
            format!("studies?SOPClassesInStudy={class}"),
            format!("studies?SeriesInstanceUID={se}"),
            format!("studies?SOPInstanceUID={sop}"),
            format!("series?Modality={modality}"),
            format!("series?SeriesInstanceUID={se}"),
            format!("studies/{study}/series?SeriesInstanceUID={se}"),
            format!("studies/{study}/series/{se}/instances"),
            format!("studies/{study}/instances?SOPInstanceUID={sop}"),
            format!("instances?SOPClassUID={class}"),
            format!("instances?SOPInstanceUID={sop}"),
        ] {
            qido.nothing(&query);
        }
    }
    // not even in every attribute there is, at every level
    for query in [
        "studies?includefield=all".to_string(),
        "series?includefield=all".to_string(),
        format!("studies/{study}/instances?includefield=all"),
    ] {
        let reply = qido.get_as(&query, "application/dicom+json");
        assert_eq!(reply.status, 200);
        for hidden in sr.iter().chain(&pr) {
            for uid in [files.sop(hidden), files.series(hidden)] {
                assert!(!reply.body.contains(&uid), "{query} reveals {uid}");
            }
        }
    }

    // a SOP class left out: the SR is gone, the PR stays
    let (path2, holder2) = link(&daemon, &[&study, "--exclude-sop-class", &sr_class]);
    let qido2 = Searcher {
        daemon: &daemon,
        path: path2,
        holder: holder2,
    };
    let result = &qido2.search("studies")[0];
    let mut expected: Vec<String> = ct_images
        .iter()
        .chain(&pr)
        .map(|f| files.value(f, "0008,0060"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    expected.sort();
    assert_eq!(texts_of(result, "00080061"), expected);
    assert_eq!(
        number_of(result, "00201208"),
        (ct_images.len() + pr.len()) as i64
    );
    qido2.nothing(&format!("instances?SOPClassUID={sr_class}"));
    qido2.nothing(&format!(
        "series?SeriesInstanceUID={}",
        files.series(&sr[0])
    ));
    assert_eq!(
        qido2
            .search(&format!("instances?SOPInstanceUID={}", files.sop(&pr[0])))
            .len(),
        1
    );

    // someone without the holder token: the neutral answer of an unknown link
    let unknown = daemon.https(
        "GET",
        "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/dicomweb/studies",
        Ask::default(),
    );
    assert_eq!(unknown.status, 404);
    for ask in [
        Ask::default(),
        as_holder("forged-token-forged-token-forged-token-xyz"),
        // the other link's holder
        as_holder(&qido2.holder),
    ] {
        let r = daemon.https("GET", &format!("{path}/dicomweb/studies"), ask);
        assert_eq!((r.status, &r.body), (unknown.status, &unknown.body));
        assert_eq!(r.headers, unknown.headers);
    }
}

#[test]
fn latin1_names_of_an_implicit_vr_study_come_back_as_utf8() {
    let (daemon, files) = daemon_with_everything();
    let mr = samples_in("mr-brain");
    let first = &mr[0];
    assert_eq!(common::transfer_syntax(first), "1.2.840.10008.1.2");
    // (dcmdump +U8 reports the converted set; ask for the file's own)
    let out = Command::new("dcmdump")
        .args(["-q", "+P", "0008,0005"])
        .arg(first)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[ISO_IR 100]"),
        "the MR sample is Latin-1"
    );
    let study = files.study(first);
    let (path, holder) = link(&daemon, &[&study]);
    let qido = Searcher {
        daemon: &daemon,
        path,
        holder,
    };
    let name = files.value(first, "0010,0010");
    assert!(!name.is_ascii(), "{name}: the sample has a non-ASCII name");
    let family = name.split('^').next().unwrap().to_string();
    let given = name.split('^').nth(1).unwrap().to_string();
    for query in [
        "studies".to_string(),
        format!("studies?PatientName={}", encoded(&name)),
        format!("studies?PatientName={}*", encoded(&family.to_uppercase())),
        format!(
            "studies?fuzzymatching=true&PatientName={}",
            encoded(&given.to_lowercase())
        ),
    ] {
        let results = qido.search(&query);
        assert_eq!(results.len(), 1, "{query}");
        for tag in STUDY_TAGS {
            files.assert_same(&results[0], tag, first);
        }
        assert_eq!(
            texts_of(&results[0], "00080005"),
            ["ISO_IR 192"],
            "DICOM JSON is UTF-8"
        );
    }
    // the name without its accents is another name
    let ascii: String = family
        .chars()
        .map(|c| if c.is_ascii() { c } else { 'u' })
        .collect();
    qido.nothing(&format!("studies?PatientName={}*", encoded(&ascii)));
    // VRs come from the dictionary in an implicit VR file; same as DCMTK's
    let results = qido.search(&format!("studies/{study}/instances"));
    assert_eq!(results.len(), mr.len());
    for result in &results {
        let file = files.by_sop(&text_of(result, "00080018"));
        for tag in INSTANCE_TAGS.iter().chain(SERIES_TAGS) {
            files.assert_same(result, tag, file);
        }
    }
}

#[test]
fn bad_queries_are_refused_with_a_reason_and_the_rest_keeps_working() {
    let (daemon, files) = daemon_with_everything();
    let (study, covered, _) = ct_without_pr(&files);
    let (path, holder) = link(&daemon, &[&study, "--exclude-modality", "PR"]);
    let qido = Searcher {
        daemon: &daemon,
        path,
        holder,
    };
    for (query, named) in [
        ("studies?foo=bar".to_string(), vec!["foo"]),
        // keywords are case-sensitive (PS3.18 8.3.4.1)
        ("studies?patientname=x".to_string(), vec!["patientname"]),
        ("studies?limit=ten".to_string(), vec!["limit", "ten"]),
        ("studies?offset=-1".to_string(), vec!["offset", "-1"]),
        ("studies?limit=1&limit=2".to_string(), vec!["limit"]),
        (
            "studies?fuzzymatching=yes".to_string(),
            vec!["fuzzymatching", "yes"],
        ),
        (
            "studies?StudyDate=2024-03-12".to_string(),
            vec!["StudyDate"],
        ),
        ("studies?includefield=Bogus".to_string(), vec!["Bogus"]),
        (
            "studies?includefield=00081030%2CBogus".to_string(),
            vec!["Bogus"],
        ),
        (
            format!("studies/{study}/series?SeriesNumber=one"),
            vec!["SeriesNumber"],
        ),
        (
            "studies?StudyInstanceUID=1.2.x".to_string(),
            vec!["StudyInstanceUID"],
        ),
        ("studies?PatientName=%E0".to_string(), vec!["UTF-8"]),
        ("studies?PatientName=%zz".to_string(), vec!["%zz"]),
        ("studies/not-a-uid/series".to_string(), vec![]),
    ] {
        let reply = qido.get_as(&query, "application/dicom+json");
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        let reason = reply.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: no reason in {}", reply.body))
            .to_string();
        assert!(!reason.is_empty(), "{query}");
        for word in named {
            assert!(reason.contains(word), "{query}: {reason:?} names {word}");
        }
    }
    // a valid attribute that cannot be matched on: answered, with a Warning
    let reply = qido.get_as(
        &format!("studies/{study}/series?SeriesDate=19000101"),
        "application/dicom+json",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let warning = reply.header("warning").expect("a Warning");
    assert!(
        warning.starts_with("299 ") && warning.contains("SeriesDate"),
        "{warning}"
    );
    let series: BTreeSet<String> = covered.iter().map(|f| files.series(f)).collect();
    assert_eq!(reply.json().as_array().unwrap().len(), series.len());
    // JSON it is: plain JSON is fine, XML is not
    let reply = qido.get_as("studies", "application/json");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let reply = qido.get_as("studies", "application/dicom+xml");
    assert_eq!(reply.status, 406, "{}", reply.body);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("application/dicom+json")
    );
    // a search is only GET (no STOW-RS here)
    let reply = daemon.https(
        "POST",
        &format!("{}/dicomweb/studies", qido.path),
        as_holder(&qido.holder),
    );
    assert_eq!(reply.status, 405);
    assert!(reply.header("allow").is_some_and(|a| a.contains("GET")));
    // and after all that, searching still works
    assert_eq!(qido.search("studies").len(), 1);
    assert_eq!(
        qido.search(&format!("studies/{study}/instances")).len(),
        covered.len()
    );
}

/// A STOW-RS client POSTs a body to `/studies`: it must hear 405, over
/// HTTP/2 as over HTTP/1.1, however quickly it sends the body.
#[test]
fn a_post_with_a_body_is_told_405_over_http2_too() {
    let (daemon, files) = daemon_with_everything();
    let (study, _, _) = ct_without_pr(&files);
    let (path, holder) = link(&daemon, &[&study]);
    for round in 0..5 {
        let mut ask = as_holder(&holder);
        ask.body = Some("{}".into());
        let reply = daemon.https("POST", &format!("{path}/dicomweb/studies"), ask);
        assert_eq!(reply.status, 405, "round {round}");
    }
}
