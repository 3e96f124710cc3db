//! The DICOM JSON (PS3.18 F.2) that `/metadata` serves, computed once at
//! intake. Bulk values carry a `BulkDataURI` placeholder that retrieval
//! rewrites to the instance's URL; dicom-json writes the rest.

use dicom_object::InMemDicomObject;
use serde_json::{Map, Value};

use crate::store::BulkLayout;

/// Prefix of every stored `BulkDataURI`; followed by the tag path (e.g.
/// `7FE00010`, `0040A730.0.00420011`). Retrieval replaces the whole
/// `"BulkDataURI":"pushgate-bulk:` with the instance's bulkdata URL.
pub const BULK_URI_PREFIX: &str = "pushgate-bulk:";

const PIXEL_TAGS: [&str; 3] = ["7FE00010", "7FE00008", "7FE00009"];

pub fn to_json(
    object: &InMemDicomObject,
    layout: &BulkLayout,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = dicom_json::to_value(object)?;
    numbers(&mut value);
    if let Value::Object(map) = &mut value {
        if layout.pixel.is_some() {
            for tag in PIXEL_TAGS {
                if let Some(element) = map.get_mut(tag) {
                    set_bulk(element, tag);
                }
            }
        }
        for bulk in &layout.values {
            if let Some(element) = find(map, &bulk.path) {
                set_bulk(element, &bulk.path);
            }
        }
    }
    serde_json::to_vec(&value)
}

/// IS and DS values read from a file come out of dicom-json as the text
/// they are on the wire; PS3.18 F.2.3.1 wants JSON numbers. A value that
/// is not a number becomes null rather than a string a client would
/// choke on.
fn numbers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let vr = map.get("vr").and_then(Value::as_str).map(str::to_string);
            for (key, child) in map.iter_mut() {
                match (vr.as_deref(), key.as_str(), child) {
                    (Some("IS" | "DS"), "Value", Value::Array(values)) => {
                        // a multi-valued string may still hold its `\\`
                        *values = values
                            .iter()
                            .flat_map(|v| match v {
                                Value::String(text) => {
                                    text.split('\\').map(|t| number(t.trim())).collect()
                                }
                                other => vec![other.clone()],
                            })
                            .collect();
                    }
                    (_, _, child) => numbers(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numbers),
        _ => {}
    }
}

/// An IS, or a DS written as a whole number ("40"), stays an integer in
/// JSON; other DS values are floats.
fn number(text: &str) -> Value {
    if let Ok(n) = text.trim_start_matches('+').parse::<i64>() {
        return Value::from(n);
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn set_bulk(element: &mut Value, path: &str) {
    if let Value::Object(e) = element {
        e.remove("Value");
        e.remove("InlineBinary");
        e.insert(
            "BulkDataURI".to_string(),
            Value::String(format!("{BULK_URI_PREFIX}{path}")),
        );
    }
}

/// The first value of the element at tag path `path` (as `BulkValue`
/// paths name them) in stored `/metadata` JSON, e.g. the MIME Type of
/// Encapsulated Document beside a document's bulk data.
pub fn value_at(json: &[u8], path: &str) -> Option<Value> {
    let Value::Object(mut map) = serde_json::from_slice(json).ok()? else {
        return None;
    };
    find(&mut map, path)?.get("Value")?.get(0).cloned()
}

/// Follows a tag path like `0040A730.0.00420011` into nested items.
fn find<'a>(map: &'a mut Map<String, Value>, path: &str) -> Option<&'a mut Value> {
    let mut parts = path.split('.');
    let mut element = map.get_mut(parts.next()?)?;
    while let Some(index) = parts.next() {
        let index: usize = index.parse().ok()?;
        let tag = parts.next()?;
        element = element
            .get_mut("Value")?
            .get_mut(index)?
            .as_object_mut()?
            .get_mut(tag)?;
    }
    Some(element)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BulkValue, PixelLayout};
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, Length, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;

    #[test]
    fn bulk_values_become_uris_and_the_rest_stays() {
        let nested = InMemDicomObject::from_element_iter([
            DataElement::new(tags::ENCAPSULATED_DOCUMENT, VR::OB, PrimitiveValue::Empty),
            DataElement::new(tags::SLICE_LOCATION, VR::DS, PrimitiveValue::from("-37.5")),
        ]);
        let obj = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::PATIENT_NAME,
                VR::PN,
                PrimitiveValue::from("Jansen^Anna"),
            ),
            DataElement::new(
                tags::CONTENT_SEQUENCE,
                VR::SQ,
                DataSetSequence::new(vec![nested], Length::UNDEFINED),
            ),
            DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::Empty),
            // numbers as they come from a file: text
            DataElement::new(tags::INSTANCE_NUMBER, VR::IS, PrimitiveValue::from("7 ")),
            DataElement::new(
                tags::PIXEL_SPACING,
                VR::DS,
                PrimitiveValue::from("0.9375\\0.9375"),
            ),
            DataElement::new(
                tags::WINDOW_CENTER,
                VR::DS,
                PrimitiveValue::Strs(["-40.5".to_string(), "abc".to_string()].into()),
            ),
        ]);
        let layout = BulkLayout {
            pixel: Some(PixelLayout::Native {
                offset: 1000,
                length: 8,
            }),
            values: vec![BulkValue {
                path: "0040A730.0.00420011".into(),
                vr: "OB".into(),
                offset: 10,
                length: 2000,
            }],
            deflated: false,
        };
        let json: Value = serde_json::from_slice(&to_json(&obj, &layout).unwrap()).unwrap();
        assert_eq!(json["00200013"]["Value"], serde_json::json!([7]));
        assert_eq!(
            json["00280030"]["Value"],
            serde_json::json!([0.9375, 0.9375])
        );
        assert_eq!(json["00281050"]["Value"], serde_json::json!([-40.5, null]));
        assert_eq!(
            json["0040A730"]["Value"][0]["00201041"]["Value"],
            serde_json::json!([-37.5])
        );
        assert_eq!(json["00100010"]["Value"][0]["Alphabetic"], "Jansen^Anna");
        assert_eq!(json["7FE00010"]["BulkDataURI"], "pushgate-bulk:7FE00010");
        assert_eq!(json["7FE00010"]["vr"], "OW");
        assert_eq!(
            json["0040A730"]["Value"][0]["00420011"]["BulkDataURI"],
            "pushgate-bulk:0040A730.0.00420011"
        );
        let stored = to_json(&obj, &layout).unwrap();
        assert_eq!(
            value_at(&stored, "0040A730.0.00201041"),
            Some(serde_json::json!(-37.5))
        );
        assert_eq!(
            value_at(&stored, "00100010").unwrap()["Alphabetic"],
            "Jansen^Anna"
        );
        assert_eq!(value_at(&stored, "0040A730.1.00201041"), None);
        assert_eq!(value_at(&stored, "00420012"), None);
    }
}
