//! Nothing outside the grant, and no BSN, comes out of a search.

use std::collections::BTreeSet;

use serde_json::json;

use super::*;

fn without_pr_and_sr() -> Scope {
    Scope {
        series: None,
        exclude_modalities: BTreeSet::from(["PR".to_string()]),
        exclude_sop_classes: BTreeSet::from([SR_CLASS.to_string()]),
    }
}

fn only_series(series: &[&str]) -> Scope {
    Scope {
        series: Some(series.iter().map(|s| uid(s)).collect()),
        ..Scope::default()
    }
}

#[test]
fn counts_and_modalities_cover_only_the_grant() {
    let scope = without_pr_and_sr();
    let study = &search_scoped(
        CT_STUDY,
        &scope,
        Level::Studies,
        &at(None, None),
        "includefield=all",
    )[0];
    assert_eq!(values(study, "00080061"), [json!("CT")]);
    assert_eq!(
        values(study, "00080062"),
        [json!("1.2.840.10008.5.1.4.1.1.2")]
    );
    assert_eq!(
        first(study, "00201206"),
        1,
        "the SR series has no covered instance"
    );
    assert_eq!(first(study, "00201208"), 16);

    let scope = only_series(&[CT_SERIES, PR_SERIES]);
    let study = &search_scoped(CT_STUDY, &scope, Level::Studies, &at(None, None), "")[0];
    assert_eq!(values(study, "00080061"), [json!("CT"), json!("PR")]);
    assert_eq!(first(study, "00201206"), 2);
    assert_eq!(first(study, "00201208"), 17);
}

#[test]
fn uncovered_series_and_instances_cannot_be_found() {
    let scope = without_pr_and_sr();
    let search =
        |level, path: &PathScope, query: &str| search_scoped(CT_STUDY, &scope, level, path, query);
    let none = at(None, None);
    assert!(search(Level::Studies, &none, "ModalitiesInStudy=PR").is_empty());
    assert!(search(Level::Studies, &none, "Modality=SR").is_empty());
    assert!(
        search(
            Level::Studies,
            &none,
            &format!("SOPClassesInStudy={SR_CLASS}")
        )
        .is_empty()
    );
    let series = search(Level::Series, &at(Some(CT_STUDY), None), "");
    assert_eq!(series.len(), 1);
    assert_eq!(first(&series[0], "0020000E"), CT_SERIES);
    assert!(
        search(
            Level::Series,
            &none,
            &format!("SeriesInstanceUID={PR_SERIES}")
        )
        .is_empty()
    );
    assert!(search(Level::Instances, &at(Some(CT_STUDY), Some(PR_SERIES)), "").is_empty());
    assert!(search(Level::Instances, &at(Some(CT_STUDY), Some(SR_SERIES)), "").is_empty());
    assert_eq!(search(Level::Instances, &none, "").len(), 16);
}

#[test]
fn a_series_counts_its_covered_instances_only() {
    let samples = samples();
    let study = uid(CT_STUDY);
    let record = &samples.studies[&study];
    let all = &samples.instances[&study];
    // a grant on the CT series whose resolution left out two slices
    let covered_instances: Vec<_> = all
        .iter()
        .filter(|(k, r)| k.series == uid(CT_SERIES) && r.attrs.instance_number < Some(15))
        .map(|(k, r)| (k, r))
        .collect();
    let covered = Covered {
        study: record,
        series: record
            .series
            .iter()
            .filter(|(u, _)| **u == uid(CT_SERIES))
            .collect(),
        instances: covered_instances,
        metadata: &|_| None,
    };
    let query = parse(Level::Series, None).unwrap();
    let series = search(&query, &at(None, None), &covered, BASE);
    assert_eq!(first(&series[0], "00201209"), 14);
    assert_eq!(first(&series[0], "00201208"), 14);
}

#[test]
fn the_bsn_as_patient_id_is_returned_as_received() {
    // Jansen^Anna: the Patient ID is the BSN.
    let study = &run(
        CT_STUDY,
        Level::Studies,
        &at(None, None),
        "PatientID=999912343",
    )[0];
    assert_eq!(first(study, "00100020"), "999912343");
}

#[test]
fn a_bsn_elsewhere_never_leaves() {
    // Müller^Jörg: BSN 999920017 only in Other Patient IDs Sequence.
    let bsn = "999920017";
    for (level, query) in [
        (Level::Instances, "includefield=all"),
        (
            Level::Instances,
            "includefield=OtherPatientIDsSequence,00101000",
        ),
        (
            Level::Studies,
            "includefield=all&includefield=OtherPatientIDsSequence",
        ),
        (Level::Series, "includefield=OtherPatientIDsSequence"),
    ] {
        let results = run(MR_STUDY, level, &at(None, None), query);
        assert!(!results.is_empty());
        let text = serde_json::to_string(&results).unwrap();
        assert!(!text.contains(bsn), "{query}: {text}");
        assert_eq!(first(&results[0], "00100020"), "ZKH123456");
    }
    // the sequence is still there, minus the BSN
    let instance = &run(
        MR_STUDY,
        Level::Instances,
        &at(None, None),
        "includefield=00101002&limit=1",
    )[0];
    let item = &values(instance, "00101002")[0];
    assert!(item.get("00100020").is_none(), "{item}");
    assert!(item.get("00100021").is_some(), "{item}");
}

#[test]
fn record_values_holding_the_bsn_come_out_empty_and_match_nothing() {
    let samples = samples();
    let study = uid(MR_STUDY);
    let mut record = samples.studies[&study].clone();
    record.attrs.accession_number = "BSN 999-920-017".into();
    let covered = covered(
        &record,
        &samples.instances[&study],
        &Scope::default(),
        &|_| None,
    );
    let find = |query: &str| {
        let query = parse(Level::Studies, Some(query)).unwrap();
        search(&query, &at(None, None), &covered, BASE)
    };
    assert_eq!(find("")[0]["00080050"], json!({"vr": "SH"}));
    assert!(find("AccessionNumber=BSN*").is_empty());
    assert!(find("AccessionNumber=*017").is_empty());
}

#[test]
fn instances_of_series_not_handed_over_are_ignored() {
    let samples = samples();
    let study = uid(CT_STUDY);
    let record = &samples.studies[&study];
    let covered = Covered {
        study: record,
        series: record
            .series
            .iter()
            .filter(|(u, _)| **u == uid(PR_SERIES))
            .collect(),
        instances: samples.instances[&study]
            .iter()
            .map(|(k, r)| (k, r))
            .collect(),
        metadata: &|_| None,
    };
    let query = parse(Level::Instances, None).unwrap();
    let instances = search(&query, &at(None, None), &covered, BASE);
    assert_eq!(instances.len(), 1);
    assert_eq!(first(&instances[0], "00080060"), "PR");
    assert_eq!(first(&instances[0], "00201208"), 1);
}
