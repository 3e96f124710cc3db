//! An attribute value as QIDO-RS matches and returns it, and its DICOM JSON
//! (PS3.18 F.2).

use dicom_core::{Tag, VR};
use serde_json::{Map, Value};

/// The items of a sequence: each item's elements in tag order.
pub(super) type Item = Vec<(Tag, Element)>;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Values {
    Text(Vec<String>),
    Numbers(Vec<i64>),
    Items(Vec<Item>),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Element {
    pub vr: VR,
    pub values: Values,
}

/// The DICOM JSON key of a tag: eight upper-case hex digits.
pub(super) fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

impl Element {
    /// A value as the records keep it: `\` separates values (none of the
    /// VRs kept allows a backslash inside a value); empty means no value.
    pub fn text(vr: VR, raw: &str) -> Element {
        let values = if raw.is_empty() {
            Vec::new()
        } else {
            raw.split('\\').map(|v| v.trim().to_string()).collect()
        };
        Element {
            vr,
            values: Values::Text(values),
        }
    }

    pub fn texts(vr: VR, values: Vec<String>) -> Element {
        Element {
            vr,
            values: Values::Text(values),
        }
    }

    pub fn number(vr: VR, value: Option<i64>) -> Element {
        Element {
            vr,
            values: Values::Numbers(value.into_iter().collect()),
        }
    }

    pub fn items(items: Vec<Item>) -> Element {
        Element {
            vr: VR::SQ,
            values: Values::Items(items),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.values {
            Values::Text(values) => values.is_empty(),
            Values::Numbers(values) => values.is_empty(),
            Values::Items(items) => items.is_empty(),
        }
    }

    /// The same attribute without a value.
    pub fn emptied(&self) -> Element {
        let values = match self.values {
            Values::Text(_) => Values::Text(Vec::new()),
            Values::Numbers(_) => Values::Numbers(Vec::new()),
            Values::Items(_) => Values::Items(Vec::new()),
        };
        Element {
            vr: self.vr,
            values,
        }
    }

    /// Whether any value, at any depth, satisfies `hit` (numbers as
    /// decimal text). UIDs and URLs are left out: they name what the path
    /// already names.
    pub fn any_text(&self, hit: &dyn Fn(&str) -> bool) -> bool {
        match &self.values {
            _ if matches!(self.vr, VR::UI | VR::UR) => false,
            Values::Text(values) => values.iter().any(|v| hit(v)),
            Values::Numbers(values) => values.iter().any(|n| hit(&n.to_string())),
            Values::Items(items) => items
                .iter()
                .flatten()
                .any(|(_, element)| element.any_text(hit)),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("vr".into(), Value::from(self.vr.to_string()));
        let values: Vec<Value> = match &self.values {
            Values::Text(values) => values.iter().map(|v| text_json(self.vr, v)).collect(),
            Values::Numbers(values) => values.iter().map(|n| Value::from(*n)).collect(),
            Values::Items(items) => items.iter().map(item_json).collect(),
        };
        if !values.is_empty() {
            object.insert("Value".into(), Value::Array(values));
        }
        Value::Object(object)
    }
}

/// One value: a person name becomes its component groups; an empty value
/// among several is `null` (F.2.5).
fn text_json(vr: VR, value: &str) -> Value {
    if value.is_empty() {
        return Value::Null;
    }
    if vr != VR::PN {
        return Value::from(value);
    }
    let mut name = Map::new();
    for (group, text) in ["Alphabetic", "Ideographic", "Phonetic"]
        .into_iter()
        .zip(value.split('='))
    {
        if !text.is_empty() {
            name.insert(group.into(), Value::from(text));
        }
    }
    if name.is_empty() {
        Value::Null
    } else {
        Value::Object(name)
    }
}

fn item_json(item: &Item) -> Value {
    let mut sorted: Vec<&(Tag, Element)> = item.iter().collect();
    sorted.sort_by_key(|(tag, _)| *tag);
    let object: Map<String, Value> = sorted
        .into_iter()
        .map(|(tag, element)| (tag_key(*tag), element.to_json()))
        .collect();
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;
    use serde_json::json;

    fn empty_json(vr: &str) -> Value {
        json!({ "vr": vr })
    }

    #[test]
    fn json_per_vr() {
        assert_eq!(
            Element::text(VR::PN, "Jansen^Anna").to_json(),
            json!({"vr": "PN", "Value": [{"Alphabetic": "Jansen^Anna"}]})
        );
        assert_eq!(
            Element::text(VR::PN, "Yamada^Tarou=山田^太郎").to_json(),
            json!({"vr": "PN", "Value": [{"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎"}]})
        );
        assert_eq!(
            Element::number(VR::IS, Some(901)).to_json(),
            json!({"vr": "IS", "Value": [901]})
        );
        assert_eq!(Element::text(VR::DA, "").to_json(), empty_json("DA"));
        assert_eq!(Element::number(VR::US, None).to_json(), empty_json("US"));
        assert_eq!(
            Element::text(VR::CS, "CT\\\\MR").to_json(),
            json!({"vr": "CS", "Value": ["CT", null, "MR"]})
        );
        let item = vec![
            (tags::REQUESTED_PROCEDURE_ID, Element::text(VR::SH, "RP1")),
            (tags::SCHEDULED_PROCEDURE_STEP_ID, Element::text(VR::SH, "")),
        ];
        assert_eq!(
            Element::items(vec![item]).to_json(),
            json!({"vr": "SQ", "Value": [{"00400009": {"vr": "SH"}, "00401001": {"vr": "SH", "Value": ["RP1"]}}]})
        );
        assert_eq!(Element::items(vec![]).to_json(), empty_json("SQ"));
    }

    #[test]
    fn item_keys_come_out_in_tag_order() {
        let item = vec![
            (tags::REQUESTED_PROCEDURE_ID, Element::text(VR::SH, "b")),
            (
                tags::SCHEDULED_PROCEDURE_STEP_ID,
                Element::text(VR::SH, "a"),
            ),
        ];
        let json = serde_json::to_string(&Element::items(vec![item]).to_json()).unwrap();
        assert!(json.find("00400009").unwrap() < json.find("00401001").unwrap());
    }
}
