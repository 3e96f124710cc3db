//! One result as a DICOM JSON object (PS3.18 F.2): the level's defaults,
//! the matching keys and the `includefield` attributes, from the records
//! where they keep the attribute, else from the stored metadata of the
//! instance that stands for the result (the first covered one).
//!
//! From stored metadata nothing binary comes out (no `BulkDataURI`, no
//! `InlineBinary`, no pixel data), and no value holding the BSN (UIDs
//! and URLs aside); IS and DS become numbers. From the records, the BSN only as the
//! Patient ID received.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use dicom_core::Tag;
use serde_json::{Map, Value};

use super::attributes::{KNOWN, OPTIONAL_DEFAULTS, defaults, known_attribute};
use super::element::tag_key;
use super::rows::{Row, StudyView};
use super::{Level, PathScope, Query};
use crate::store::InstanceKey;

const PIXEL_DATA: [&str; 3] = ["7FE00008", "7FE00009", "7FE00010"];

pub(super) fn render(
    row: &Row,
    query: &Query,
    path: &PathScope,
    metadata: &dyn Fn(&InstanceKey) -> Option<Vec<u8>>,
) -> Value {
    let level = row.level();
    let stored = OnceCell::new();
    let stored_metadata = || -> Option<&Map<String, Value>> {
        stored
            .get_or_init(|| {
                row.representative()
                    .and_then(metadata)
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .map(|map| cleaned(map, row.study))
            })
            .as_ref()
    };

    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    if query.include_all()
        && level == Level::Instances
        && let Some(map) = stored_metadata()
    {
        out.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    // Explicitly asked for beats optional; the first mention decides order
    // only, the output is sorted by tag anyway.
    let mut wanted: BTreeMap<Tag, bool> = BTreeMap::new();
    for tag in defaults(level, path) {
        wanted
            .entry(tag)
            .or_insert(OPTIONAL_DEFAULTS.contains(&tag));
    }
    let all_known = KNOWN.iter().filter(|_| query.include_all()).map(|k| k.tag);
    for tag in query.returned().iter().copied().chain(all_known) {
        wanted.insert(tag, false);
    }
    for (tag, optional) in wanted {
        let key = tag_key(tag);
        if known_attribute(tag).is_some() {
            // None: an attribute of a lower level than this result.
            if let Some(element) = row.element(tag) {
                if optional && element.is_empty() {
                    out.remove(&key);
                } else {
                    out.insert(key, element.to_json());
                }
            }
        } else if let Some(value) = stored_metadata().and_then(|m| m.get(&key)) {
            out.insert(key, value.clone());
        }
    }
    Value::Object(out.into_iter().collect())
}

/// Stored metadata without what a search must not return.
fn cleaned(mut map: Map<String, Value>, study: &StudyView) -> Map<String, Value> {
    for tag in PIXEL_DATA {
        map.remove(tag);
    }
    clean_dataset(&mut map, study);
    map
}

fn clean_dataset(map: &mut Map<String, Value>, study: &StudyView) {
    map.retain(|_, element| keep(element, study));
}

fn keep(element: &mut Value, study: &StudyView) -> bool {
    let Some(object) = element.as_object_mut() else {
        return false;
    };
    if object.contains_key("BulkDataURI") || object.contains_key("InlineBinary") {
        return false;
    }
    match object.get("vr").and_then(Value::as_str) {
        Some("SQ") => {
            if let Some(Value::Array(items)) = object.get_mut("Value") {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    clean_dataset(item, study);
                }
            }
            true
        }
        Some("UI" | "UR") => true,
        vr => {
            if matches!(vr, Some("IS" | "DS"))
                && let Some(Value::Array(values)) = object.get_mut("Value")
            {
                values.iter_mut().for_each(as_number);
            }
            !object
                .get("Value")
                .is_some_and(|value| mentions_bsn(value, study))
        }
    }
}

/// IS and DS values are JSON numbers (F.2.3); dicom-json writes them as
/// the strings they were in the file. One that is no number stays as it is.
fn as_number(value: &mut Value) {
    let Value::String(text) = value else {
        return;
    };
    let text = text.trim();
    let number = match text.parse::<i64>() {
        Ok(n) => Some(serde_json::Number::from(n)),
        Err(_) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64),
    };
    if let Some(number) = number {
        *value = Value::Number(number);
    }
}

fn mentions_bsn(value: &Value, study: &StudyView) -> bool {
    match value {
        Value::String(s) => study.mentions_bsn(s),
        Value::Number(n) => study.mentions_bsn(&n.to_string()),
        Value::Array(values) => values.iter().any(|v| mentions_bsn(v, study)),
        Value::Object(groups) => groups.values().any(|v| mentions_bsn(v, study)),
        Value::Null | Value::Bool(_) => false,
    }
}
