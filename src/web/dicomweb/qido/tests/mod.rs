//! Searches over the real sample studies (`sample-dicom/`), indexed by the
//! real intake (`describe_file`) and index (`SledIndex`), covered by the
//! real scope check (`authz::Scope`).

mod clients;
mod grants;
mod search;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use super::{Covered, Level, PathScope, parse, search};
use crate::authz::Scope;
use crate::store::{Index, InstanceKey, InstanceRecord, SledIndex, StudyRecord, Uid};

pub const CT_STUDY: &str = "2.25.325094526103698473295534683862429208209";
pub const CT_SERIES: &str = "2.25.96870912945937403075976188666097586444";
pub const PR_SERIES: &str = "2.25.334545550930484795320640936273611558730";
pub const SR_SERIES: &str = "2.25.196129278289298905098047073415481982392";
pub const MR_STUDY: &str = "2.25.117324152329770787253697756740162042743";
pub const US_STUDY: &str = "2.25.300136081445939378864237203614336939000";
pub const XA_STUDY: &str = "2.25.44470358574823769882282886267981707948";
pub const BASE: &str = "https://gw.example/s/TOKEN/dicomweb";
pub const SR_CLASS: &str = "1.2.840.10008.5.1.4.1.1.88.11";

/// The sample studies as the index keeps them.
pub struct Samples {
    pub studies: BTreeMap<Uid, StudyRecord>,
    pub instances: BTreeMap<Uid, Vec<(InstanceKey, InstanceRecord)>>,
    pub metadata: HashMap<InstanceKey, Vec<u8>>,
}

pub fn samples() -> &'static Samples {
    static SAMPLES: OnceLock<Samples> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let index = SledIndex::temporary().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-dicom");
        let mut files = 0;
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&dir).unwrap() {
                let file = file.unwrap().path();
                let entry = crate::ingest::describe_file(&file)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                index.put_instance(&entry).unwrap();
                files += 1;
            }
        }
        assert_eq!(files, 31);
        let mut samples = Samples {
            studies: BTreeMap::new(),
            instances: BTreeMap::new(),
            metadata: HashMap::new(),
        };
        for study in index.studies().unwrap() {
            let instances = index.instances(&study.study_uid, None).unwrap();
            for (key, _) in &instances {
                let json = index.metadata(key).unwrap().unwrap();
                samples.metadata.insert(key.clone(), json);
            }
            samples.instances.insert(study.study_uid.clone(), instances);
            samples.studies.insert(study.study_uid.clone(), study);
        }
        samples
    })
}

pub fn uid(s: &str) -> Uid {
    Uid::parse(s).unwrap()
}

/// What a grant with `scope` on `record` covers, as the web layer hands
/// it over.
pub fn covered<'a>(
    record: &'a StudyRecord,
    instances: &'a [(InstanceKey, InstanceRecord)],
    scope: &Scope,
    metadata: &'a dyn Fn(&InstanceKey) -> Option<Vec<u8>>,
) -> Covered<'a> {
    let modality = |series: &Uid| {
        record
            .series
            .get(series)
            .map_or("", |s| s.attrs.modality.as_str())
    };
    Covered {
        study: record,
        series: record
            .series
            .iter()
            .filter(|(uid, s)| scope.covers_series(uid, &s.attrs.modality))
            .collect(),
        instances: instances
            .iter()
            .filter(|(k, r)| scope.covers(&k.series, modality(&k.series), &r.attrs.sop_class_uid))
            .map(|(k, r)| (k, r))
            .collect(),
        metadata,
    }
}

fn stored_metadata(key: &InstanceKey) -> Option<Vec<u8>> {
    samples().metadata.get(key).cloned()
}

/// Searches one sample study under a grant with `scope`.
pub fn search_scoped(
    study: &str,
    scope: &Scope,
    level: Level,
    path: &PathScope,
    query: &str,
) -> Vec<Value> {
    let samples = samples();
    let uid = uid(study);
    let covered = covered(
        &samples.studies[&uid],
        &samples.instances[&uid],
        scope,
        &stored_metadata,
    );
    let query = parse(level, Some(query)).unwrap_or_else(|e| panic!("{query}: {e}"));
    search(&query, path, &covered, BASE)
}

/// Searches one sample study under a grant for all of it.
pub fn run(study: &str, level: Level, path: &PathScope, query: &str) -> Vec<Value> {
    search_scoped(study, &Scope::default(), level, path, query)
}

pub fn at(study: Option<&str>, series: Option<&str>) -> PathScope {
    PathScope {
        study: study.map(uid),
        series: series.map(uid),
    }
}

/// The first value of an attribute, or `Null`.
pub fn first<'v>(result: &'v Value, tag: &str) -> &'v Value {
    result
        .get(tag)
        .and_then(|e| e.get("Value"))
        .and_then(|v| v.get(0))
        .unwrap_or(&Value::Null)
}

pub fn values(result: &Value, tag: &str) -> Vec<Value> {
    result
        .get(tag)
        .and_then(|e| e.get("Value"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub fn keys(result: &Value) -> Vec<&str> {
    result
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}
