//! Query strings as real clients send them, verbatim.

use serde_json::json;

use super::*;

/// OHIF v3 study list.
#[test]
fn ohif_study_list() {
    let results = run(
        CT_STUDY,
        Level::Studies,
        &at(None, None),
        "limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060",
    );
    assert_eq!(results.len(), 1);
    assert_eq!(
        first(&results[0], "00081030"),
        "CT hersenen zonder contrast"
    );
    assert!(
        results[0].get("00080060").is_none(),
        "Modality is a series attribute; ModalitiesInStudy answers it"
    );
    assert_eq!(
        values(&results[0], "00080061"),
        [json!("CT"), json!("PR"), json!("SR")]
    );
}

/// OHIF v3 study list with a name and a date filter.
#[test]
fn ohif_filtered_study_list() {
    let query = "PatientName=*smith*&StudyDate=20240101-20241231&includefield=all";
    assert!(run(CT_STUDY, Level::Studies, &at(None, None), query).is_empty());
    let query = "PatientName=*jans*&StudyDate=20240101-20241231&includefield=all";
    let results = run(CT_STUDY, Level::Studies, &at(None, None), query);
    assert_eq!(results.len(), 1);
    assert_eq!(
        first(&results[0], "00081030"),
        "CT hersenen zonder contrast"
    );
}

/// OHIF v3 series list of a study.
#[test]
fn ohif_series_list() {
    let path = at(Some(CT_STUDY), None);
    let series = run(
        CT_STUDY,
        Level::Series,
        &path,
        "includefield=00080021,00080031",
    );
    assert_eq!(series.len(), 3);
    for s in &series {
        assert_eq!(s["00080021"], json!({"vr": "DA", "Value": ["20240312"]}));
        assert_eq!(s["00080031"]["vr"], "TM");
    }
    assert_eq!(first(&series[0], "00080031"), "094212");
}

/// OHIF v3 instance list of a series (no query string at all).
#[test]
fn ohif_instance_list() {
    let samples = samples();
    let uid = uid(CT_STUDY);
    let covered = covered(
        &samples.studies[&uid],
        &samples.instances[&uid],
        &crate::authz::Scope::default(),
        &|_| None,
    );
    let query = parse(Level::Instances, None).unwrap();
    let instances = search(&query, &at(Some(CT_STUDY), Some(CT_SERIES)), &covered, BASE);
    assert_eq!(instances.len(), 16);
    let eleventh = &instances[10];
    assert_eq!(first(eleventh, "00200013"), 11);
    assert_eq!(first(eleventh, "00280010"), 256);
    assert_eq!(first(eleventh, "00280011"), 256);
    assert_eq!(first(eleventh, "00280100"), 16);
    assert_eq!(eleventh["00280008"], json!({"vr": "IS"}));
    assert_eq!(first(eleventh, "00080016"), "1.2.840.10008.5.1.4.1.1.2");
    let sop = first(eleventh, "00080018").as_str().unwrap();
    assert_eq!(
        first(eleventh, "00081190"),
        &json!(format!(
            "{BASE}/studies/{CT_STUDY}/series/{CT_SERIES}/instances/{sop}"
        ))
    );
    assert!(
        eleventh.get("00080060").is_none(),
        "series named in the path"
    );
}

/// dicomweb-client: `search_for_studies(search_filters={'PatientID': ...},
/// fields=['StudyDescription'])` (parameters sorted, values quote_plus'ed).
#[test]
fn dicomweb_client_search_for_studies() {
    let path = at(None, None);
    let hit = run(
        CT_STUDY,
        Level::Studies,
        &path,
        "PatientID=999912343&includefield=StudyDescription",
    );
    assert_eq!(first(&hit[0], "00081030"), "CT hersenen zonder contrast");
    assert!(
        run(
            CT_STUDY,
            Level::Studies,
            &path,
            "PatientID=x&includefield=StudyDescription"
        )
        .is_empty()
    );
    // fuzzymatching=False, limit, offset and a list-valued filter
    let query = "ModalitiesInStudy=MR&ModalitiesInStudy=SR&fuzzymatching=false&limit=10&offset=0";
    assert_eq!(run(CT_STUDY, Level::Studies, &path, query).len(), 1);
}

/// quote_plus: spaces as `+`, `^` and non-ASCII percent-encoded.
#[test]
fn dicomweb_client_encoding() {
    let path = at(None, None);
    assert_eq!(
        run(
            US_STUDY,
            Level::Studies,
            &path,
            "PatientName=de+Boer%5ESanne"
        )
        .len(),
        1
    );
    assert_eq!(
        run(
            MR_STUDY,
            Level::Studies,
            &path,
            "PatientName=M%C3%BCller%5EJ%C3%B6rg"
        )
        .len(),
        1
    );
    assert_eq!(
        run(
            MR_STUDY,
            Level::Studies,
            &path,
            "PatientName=m%C3%BCller%2A"
        )
        .len(),
        1
    );
    assert_eq!(
        run(US_STUDY, Level::Series, &path, "SeriesDescription=%2A").len(),
        1,
        "quoted wildcard"
    );
}

/// dicomweb-client: `search_for_instances(study, series, fields=[...])`.
#[test]
fn dicomweb_client_search_for_instances_with_fields() {
    let path = at(Some(XA_STUDY), None);
    let instances = run(
        XA_STUDY,
        Level::Instances,
        &path,
        "includefield=FrameTime&includefield=NumberOfFrames",
    );
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0]["00181063"]["vr"], "DS");
    assert_eq!(first(&instances[0], "00280008"), 20);
}
