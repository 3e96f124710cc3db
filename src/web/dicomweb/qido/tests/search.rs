//! Matching, returned attributes, order and paging on the sample studies.

use serde_json::{Value, json};

use super::*;

fn count(study: &str, level: Level, path: &PathScope, query: &str) -> usize {
    run(study, level, path, query).len()
}

fn studies(query: &str) -> usize {
    count(CT_STUDY, Level::Studies, &at(None, None), query)
}

#[test]
fn study_defaults_from_the_records() {
    let results = run(CT_STUDY, Level::Studies, &at(None, None), "");
    assert_eq!(results.len(), 1);
    let study = &results[0];
    assert_eq!(
        keys(study),
        [
            "00080005", "00080020", "00080030", "00080050", "00080056", "00080061", "00080090",
            "00080201", "00081190", "00100010", "00100020", "00100030", "00100040", "0020000D",
            "00200010", "00201206", "00201208"
        ]
    );
    assert_eq!(
        study["00080005"],
        json!({"vr": "CS", "Value": ["ISO_IR 192"]})
    );
    assert_eq!(
        study["00080020"],
        json!({"vr": "DA", "Value": ["20240312"]})
    );
    assert_eq!(study["00080030"], json!({"vr": "TM", "Value": ["094107"]}));
    assert_eq!(
        study["00080050"],
        json!({"vr": "SH", "Value": ["ZKHA24031201"]})
    );
    assert_eq!(study["00080056"], json!({"vr": "CS", "Value": ["ONLINE"]}));
    assert_eq!(
        study["00080061"],
        json!({"vr": "CS", "Value": ["CT", "PR", "SR"]})
    );
    assert_eq!(
        study["00080090"],
        json!({"vr": "PN", "Value": [{"Alphabetic": "de Vries^Pieter"}]})
    );
    assert_eq!(study["00080201"], json!({"vr": "SH", "Value": ["+0100"]}));
    assert_eq!(
        study["00081190"],
        json!({"vr": "UR", "Value": [format!("{BASE}/studies/{CT_STUDY}")]})
    );
    assert_eq!(
        study["00100010"],
        json!({"vr": "PN", "Value": [{"Alphabetic": "Jansen^Anna"}]})
    );
    assert_eq!(
        study["00100030"],
        json!({"vr": "DA", "Value": ["19580614"]})
    );
    assert_eq!(study["00100040"], json!({"vr": "CS", "Value": ["F"]}));
    assert_eq!(study["0020000D"], json!({"vr": "UI", "Value": [CT_STUDY]}));
    assert_eq!(
        study["00200010"],
        json!({"vr": "SH", "Value": ["CT24031201"]})
    );
    assert_eq!(study["00201206"], json!({"vr": "IS", "Value": [3]}));
    assert_eq!(study["00201208"], json!({"vr": "IS", "Value": [18]}));
}

#[test]
fn output_is_sorted_by_tag_when_serialized() {
    let results = run(
        CT_STUDY,
        Level::Studies,
        &at(None, None),
        "includefield=all",
    );
    let text = serde_json::to_string(&results[0]).unwrap();
    let mut tags: Vec<&str> = keys(&results[0]);
    let positions: Vec<usize> = tags
        .iter()
        .map(|t| text.find(&format!("\"{t}\"")).unwrap())
        .collect();
    assert!(positions.is_sorted(), "{text}");
    tags.sort();
    assert_eq!(tags, keys(&results[0]));
}

#[test]
fn timezone_offset_only_if_set() {
    let samples = samples();
    let mut record = samples.studies[&uid(CT_STUDY)].clone();
    record.attrs.timezone_offset.clear();
    let metadata = |_: &InstanceKey| None;
    let covered = covered(
        &record,
        &samples.instances[&uid(CT_STUDY)],
        &crate::authz::Scope::default(),
        &metadata,
    );
    let plain = search(
        &parse(Level::Studies, None).unwrap(),
        &at(None, None),
        &covered,
        BASE,
    );
    assert!(plain[0].get("00080201").is_none());
    let asked = parse(Level::Studies, Some("includefield=TimezoneOffsetFromUTC")).unwrap();
    let asked = search(&asked, &at(None, None), &covered, BASE);
    assert_eq!(asked[0]["00080201"], json!({"vr": "SH"}));
}

#[test]
fn single_value_wildcard_and_case_rules() {
    assert_eq!(studies("AccessionNumber=ZKHA24031201"), 1);
    assert_eq!(
        studies("AccessionNumber=zkha24031201"),
        0,
        "SH is case-sensitive"
    );
    assert_eq!(studies("AccessionNumber=ZKHA2403*"), 1);
    assert_eq!(studies("AccessionNumber=ZKHA2403120?"), 1);
    assert_eq!(studies("AccessionNumber=ZKHA2409*"), 0);
    assert_eq!(studies("PatientName=JANSEN%5EANNA"), 1, "PN is not");
    assert_eq!(studies("PatientName=Jansen"), 0, "no implicit wildcard");
    assert_eq!(studies("PatientName=Jans*"), 1);
    assert_eq!(studies("ReferringPhysicianName=*vries*"), 1);
    assert_eq!(studies("StudyDescription=CT+hersenen*"), 1);
    assert_eq!(studies("PatientSex=M"), 0);
    assert_eq!(
        studies("PatientID=&StudyID=&AccessionNumber=*"),
        1,
        "universal"
    );
}

#[test]
fn fuzzymatching_on_person_names() {
    assert_eq!(studies("PatientName=anna"), 0);
    assert_eq!(studies("fuzzymatching=true&PatientName=anna"), 1);
    assert_eq!(
        studies("PatientName=jans&fuzzymatching=true"),
        1,
        "order of parameters"
    );
    assert_eq!(studies("fuzzymatching=true&PatientName=pieter"), 0);
    assert_eq!(
        studies("fuzzymatching=true&ReferringPhysicianName=pieter"),
        1
    );
    assert_eq!(
        studies("fuzzymatching=true&AccessionNumber=ZKHA"),
        0,
        "only names"
    );
}

#[test]
fn uid_list_matching() {
    assert_eq!(studies(&format!("StudyInstanceUID=1.2.3,{CT_STUDY}")), 1);
    assert_eq!(studies(&format!("StudyInstanceUID=1.2.3%5C{CT_STUDY}")), 1);
    assert_eq!(studies("StudyInstanceUID=1.2.3"), 0);
    let series = run(
        CT_STUDY,
        Level::Series,
        &at(Some(CT_STUDY), None),
        &format!("SeriesInstanceUID={PR_SERIES}%5C{SR_SERIES}"),
    );
    let numbers: Vec<&Value> = series.iter().map(|s| first(s, "00200011")).collect();
    assert_eq!(numbers, [&json!(901), &json!(902)]);
    assert_eq!(studies(&format!("SOPClassesInStudy={SR_CLASS}")), 1);
}

#[test]
fn date_and_time_ranges() {
    assert_eq!(studies("StudyDate=20240312"), 1);
    assert_eq!(studies("StudyDate=20240101-20241231"), 1);
    assert_eq!(studies("StudyDate=-2024"), 1);
    assert_eq!(studies("StudyDate=2024-"), 1);
    assert_eq!(studies("StudyDate=2025-"), 0);
    assert_eq!(studies("StudyDate=-20240311"), 0);
    assert_eq!(studies("StudyTime=0900-1000"), 1);
    assert_eq!(studies("StudyTime=0941"), 1, "a minute");
    assert_eq!(studies("StudyTime=1000-"), 0);
    assert_eq!(studies("PatientBirthDate=1950-1960"), 1);
    // combined: from 11 March 23:00 to 12 March 09:42
    assert_eq!(
        studies("StudyDate=20240311-20240312&StudyTime=2300-0942"),
        1
    );
    assert_eq!(
        studies("StudyDate=20240311-20240312&StudyTime=2300-0900"),
        0
    );
    assert_eq!(studies("StudyDate=20240312&StudyTime=0941-0942"), 1);
}

#[test]
fn modalities_in_study() {
    assert_eq!(studies("ModalitiesInStudy=CT"), 1);
    assert_eq!(studies("ModalitiesInStudy=PR"), 1);
    assert_eq!(studies("ModalitiesInStudy=MR"), 0);
    assert_eq!(studies("ModalitiesInStudy=MR%5CSR"), 1);
    assert_eq!(studies("ModalitiesInStudy=MR,SR"), 1);
    assert_eq!(studies("ModalitiesInStudy=MR&ModalitiesInStudy=CT"), 1);
    assert_eq!(studies("ModalitiesInStudy=S?"), 1);
}

#[test]
fn lower_level_keys_need_one_covered_child_matching_all() {
    assert_eq!(studies("Modality=PR"), 1);
    assert_eq!(studies("Modality=PR&SeriesNumber=901"), 1);
    assert_eq!(
        studies("Modality=PR&SeriesNumber=1"),
        0,
        "not the same series"
    );
    assert_eq!(
        studies("SOPInstanceUID=2.25.215421491623287063777115449955439637947"),
        1
    );
    assert_eq!(studies("InstanceNumber=17"), 0);
    let series = run(
        CT_STUDY,
        Level::Series,
        &at(None, None),
        "InstanceNumber=16",
    );
    assert_eq!(series.len(), 1);
    assert_eq!(first(&series[0], "0020000E"), CT_SERIES);
}

#[test]
fn upper_level_keys_at_lower_levels() {
    let query = format!("StudyInstanceUID={CT_STUDY}&Modality=CT");
    assert_eq!(
        count(CT_STUDY, Level::Instances, &at(None, None), &query),
        16
    );
    assert_eq!(
        count(CT_STUDY, Level::Instances, &at(None, None), "Modality=PR"),
        1
    );
    assert_eq!(
        count(
            CT_STUDY,
            Level::Instances,
            &at(None, None),
            "AccessionNumber=x"
        ),
        0
    );
    let series = run(
        CT_STUDY,
        Level::Series,
        &at(None, None),
        "PatientName=jansen*",
    );
    assert_eq!(series.len(), 3);
    // the study is not in the path: its attributes come with each series
    assert_eq!(first(&series[0], "00100010")["Alphabetic"], "Jansen^Anna");
    assert_eq!(first(&series[0], "00201208"), 18);
}

#[test]
fn number_matching() {
    let path = at(Some(CT_STUDY), Some(CT_SERIES));
    assert_eq!(
        count(CT_STUDY, Level::Instances, &path, "InstanceNumber=11"),
        1
    );
    assert_eq!(
        count(CT_STUDY, Level::Instances, &path, "InstanceNumber=011"),
        1
    );
    assert_eq!(
        count(CT_STUDY, Level::Instances, &path, "InstanceNumber=1,2,3"),
        3
    );
    assert_eq!(
        count(CT_STUDY, Level::Instances, &path, "Rows=256&Columns=256"),
        16
    );
    assert_eq!(
        count(
            XA_STUDY,
            Level::Instances,
            &at(None, None),
            "NumberOfFrames=20"
        ),
        1
    );
}

#[test]
fn series_in_order_with_counts_and_empty_type_2_values() {
    let series = run(CT_STUDY, Level::Series, &at(Some(CT_STUDY), None), "");
    let numbers: Vec<&Value> = series.iter().map(|s| first(s, "00200011")).collect();
    assert_eq!(numbers, [&json!(1), &json!(901), &json!(902)]);
    let counts: Vec<&Value> = series.iter().map(|s| first(s, "00201209")).collect();
    assert_eq!(counts, [&json!(16), &json!(1), &json!(1)]);
    let ct = &series[0];
    assert_eq!(
        keys(ct),
        [
            "00080005", "00080060", "00080201", "0008103E", "00081190", "0020000D", "0020000E",
            "00200011", "00201209", "00400244", "00400245", "00400275"
        ]
    );
    assert_eq!(ct["00080060"], json!({"vr": "CS", "Value": ["CT"]}));
    assert_eq!(
        ct["0008103E"],
        json!({"vr": "LO", "Value": ["Hersenen 5mm axiaal"]})
    );
    assert_eq!(ct["00400244"], json!({"vr": "DA"}));
    assert_eq!(ct["00400275"], json!({"vr": "SQ"}));
    assert_eq!(
        first(ct, "00081190"),
        &json!(format!("{BASE}/studies/{CT_STUDY}/series/{CT_SERIES}"))
    );
}

#[test]
fn instances_in_order_with_their_defaults() {
    let all = run(CT_STUDY, Level::Instances, &at(Some(CT_STUDY), None), "");
    assert_eq!(all.len(), 18);
    let order: Vec<(Value, Value)> = all
        .iter()
        .map(|i| (first(i, "00200011").clone(), first(i, "00200013").clone()))
        .collect();
    let mut expected: Vec<(Value, Value)> = (1..=16).map(|n| (json!(1), json!(n))).collect();
    expected.extend([(json!(901), json!(1)), (json!(902), json!(1))]);
    assert_eq!(order, expected);
    let sr = &all[17];
    assert_eq!(first(sr, "00080016"), SR_CLASS);
    assert_eq!(sr["00280010"], json!({"vr": "US"}), "an SR has no rows");
    assert!(sr.get("00100010").is_none(), "study named in the path");

    let xa = &run(XA_STUDY, Level::Instances, &at(None, None), "")[0];
    assert_eq!(xa["00280008"], json!({"vr": "IS", "Value": [20]}));
    assert_eq!(xa["00280100"], json!({"vr": "US", "Value": [8]}));
    assert_eq!(first(xa, "00080056"), "ONLINE");
    assert_eq!(
        first(xa, "00100020"),
        "ZKH654321",
        "study level included for /instances"
    );
    assert_eq!(first(xa, "00080060"), "XA", "series level too");
}

#[test]
fn limit_and_offset() {
    let path = at(Some(CT_STUDY), None);
    let page = run(CT_STUDY, Level::Series, &path, "limit=1&offset=1");
    assert_eq!(page.len(), 1);
    assert_eq!(first(&page[0], "0020000E"), PR_SERIES);
    let tail = run(CT_STUDY, Level::Instances, &path, "offset=14&limit=10");
    let numbers: Vec<&Value> = tail.iter().map(|i| first(i, "00200013")).collect();
    assert_eq!(numbers, [&json!(15), &json!(16), &json!(1), &json!(1)]);
    assert!(run(CT_STUDY, Level::Instances, &path, "limit=0").is_empty());
    assert!(run(CT_STUDY, Level::Instances, &path, "offset=18").is_empty());
    assert_eq!(
        run(CT_STUDY, Level::Instances, &path, "Modality=CT&offset=15").len(),
        1
    );
}

#[test]
fn includefield_from_the_stored_metadata() {
    let path = at(Some(CT_STUDY), Some(CT_SERIES));
    let instances = run(
        CT_STUDY,
        Level::Instances,
        &path,
        "includefield=ImagePositionPatient,00280030&InstanceNumber=1",
    );
    let ct = &instances[0];
    assert_eq!(
        ct["00200032"],
        json!({"vr": "DS", "Value": [-119.53125, -119.53125, -37.5]})
    );
    assert_eq!(
        ct["00280030"],
        json!({"vr": "DS", "Value": [0.9375, 0.9375]})
    );
    let numbers = run(
        CT_STUDY,
        Level::Instances,
        &path,
        "includefield=AcquisitionNumber,WindowCenter&InstanceNumber=2",
    );
    assert_eq!(numbers[0]["00200012"], json!({"vr": "IS", "Value": [1]}));
    assert_eq!(
        numbers[0]["00281050"],
        json!({"vr": "DS", "Value": [40, 600]})
    );
    // study level: from the first covered instance
    let study = &run(
        CT_STUDY,
        Level::Studies,
        &at(None, None),
        "includefield=PatientAge&includefield=00081030",
    )[0];
    assert_eq!(study["00101010"], json!({"vr": "AS", "Value": ["065Y"]}));
    assert_eq!(first(study, "00081030"), "CT hersenen zonder contrast");
    // an attribute nobody has: left out, no error
    let study = &run(
        CT_STUDY,
        Level::Studies,
        &at(None, None),
        "includefield=00091001",
    )[0];
    assert!(study.get("00091001").is_none());
}

#[test]
fn includefield_all_at_instance_level_is_the_metadata_without_binaries() {
    let path = at(Some(MR_STUDY), None);
    let mr = &run(
        MR_STUDY,
        Level::Instances,
        &path,
        "includefield=all&limit=1",
    )[0];
    assert!(mr.get("7FE00010").is_none());
    assert_eq!(
        first(mr, "00080005"),
        "ISO_IR 192",
        "stored says ISO_IR 100"
    );
    assert_eq!(first(mr, "00100010")["Alphabetic"], "Müller^Jörg");
    assert!(
        mr.get("00180087").is_some() || mr.get("00180080").is_some(),
        "MR acquisition attributes"
    );
    assert_eq!(first(mr, "00201208"), 10, "records' own values too");
    fn no_binaries(value: &Value) {
        match value {
            Value::Object(map) => {
                assert!(
                    !map.contains_key("BulkDataURI") && !map.contains_key("InlineBinary"),
                    "{map:?}"
                );
                map.values().for_each(no_binaries);
            }
            Value::Array(items) => items.iter().for_each(no_binaries),
            _ => {}
        }
    }
    no_binaries(mr);
    let sr = &run(
        CT_STUDY,
        Level::Instances,
        &at(None, Some(SR_SERIES)),
        "includefield=all",
    )[0];
    assert!(
        values(sr, "0040A730").len() > 1,
        "the report's content tree"
    );
    no_binaries(sr);
}

#[test]
fn includefield_all_at_study_level_is_what_the_records_keep() {
    let study = &run(
        CT_STUDY,
        Level::Studies,
        &at(None, None),
        "includefield=all",
    )[0];
    assert_eq!(first(study, "00080080"), "Ziekenhuis Amstelveld (fictief)");
    assert_eq!(first(study, "00100021"), "NLMINBIZA");
    assert_eq!(values(study, "00080062").len(), 3);
    assert!(
        study.get("00080060").is_none(),
        "no series attributes on a study"
    );
    assert!(
        study.get("00180050").is_none(),
        "no instance metadata on a study"
    );
}

#[test]
fn ignored_keys_are_returned_not_matched() {
    let query = parse(Level::Series, Some("SeriesDate=19000101")).unwrap();
    assert_eq!(query.ignored_keys(), ["SeriesDate"]);
    let series = run(
        CT_STUDY,
        Level::Series,
        &at(Some(CT_STUDY), None),
        "SeriesDate=19000101",
    );
    assert_eq!(series.len(), 3);
    assert_eq!(
        series[0]["00080021"],
        json!({"vr": "DA", "Value": ["20240312"]})
    );
}

#[test]
fn request_attributes_sequence_matching() {
    let samples = samples();
    let mut record = samples.studies[&uid(CT_STUDY)].clone();
    let ct = record.series.get_mut(&uid(CT_SERIES)).unwrap();
    ct.attrs.request_attributes =
        vec![("SPS1".into(), "RP1".into()), ("SPS2".into(), "RP2".into())];
    let metadata = |_: &InstanceKey| None;
    let covered = covered(
        &record,
        &samples.instances[&uid(CT_STUDY)],
        &crate::authz::Scope::default(),
        &metadata,
    );
    let find = |query: &str| {
        let query = parse(Level::Series, Some(query)).unwrap();
        search(&query, &at(Some(CT_STUDY), None), &covered, BASE)
    };
    let hits = find("RequestAttributesSequence.ScheduledProcedureStepID=SPS2");
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0]["00400275"],
        json!({"vr": "SQ", "Value": [
            {"00400009": {"vr": "SH", "Value": ["SPS1"]}, "00401001": {"vr": "SH", "Value": ["RP1"]}},
            {"00400009": {"vr": "SH", "Value": ["SPS2"]}, "00401001": {"vr": "SH", "Value": ["RP2"]}}
        ]})
    );
    assert_eq!(find("00400275.00401001=RP*").len(), 1);
    assert_eq!(
        find("00400275.00400009=SPS1&00400275.00401001=RP1").len(),
        1
    );
    assert_eq!(
        find("00400275.00400009=SPS1&00400275.00401001=RP2").len(),
        0,
        "one item"
    );
    assert_eq!(
        find("RequestAttributesSequence.RequestedProcedureID=RP3").len(),
        0
    );
}

#[test]
fn a_path_outside_the_grant_finds_nothing() {
    assert!(run(CT_STUDY, Level::Series, &at(Some(MR_STUDY), None), "").is_empty());
    let elsewhere = "1.2.3.4";
    assert!(
        run(
            CT_STUDY,
            Level::Instances,
            &at(Some(CT_STUDY), Some(elsewhere)),
            ""
        )
        .is_empty()
    );
}
