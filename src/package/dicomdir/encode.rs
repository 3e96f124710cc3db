//! Data elements in Explicit VR Little Endian with defined lengths only,
//! and their conversion from DICOM JSON (PS3.18 F.2).

use base64::Engine;
use serde_json::{Map, Value};

use crate::package::PackageError;

#[derive(Clone, Debug)]
pub struct Element {
    pub tag: u32,
    pub vr: [u8; 2],
    pub value: Val,
}

#[derive(Clone, Debug)]
pub enum Val {
    Bytes(Vec<u8>),
    Items(Vec<Vec<Element>>),
}

/// VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
fn long_form(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// VRs whose values are binary, not text.
fn binary_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"AT"
            | b"FD"
            | b"FL"
            | b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SL"
            | b"SS"
            | b"SV"
            | b"UL"
            | b"UN"
            | b"US"
            | b"UV"
    )
}

/// VRs whose values may hold characters beyond the default repertoire.
fn text_vr(vr: [u8; 2]) -> bool {
    matches!(&vr, b"SH" | b"LO" | b"ST" | b"LT" | b"UT" | b"UC" | b"PN")
}

/// The DICOM JSON key of a tag: `GGGGEEEE`.
pub fn tag_key(tag: u32) -> String {
    format!("{tag:08X}")
}

/// Joins values with '\' and pads to even length (UI with NUL, the
/// others with a space).
fn text_value(values: &[impl AsRef<str>], vr: [u8; 2]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            bytes.push(b'\\');
        }
        bytes.extend_from_slice(v.as_ref().as_bytes());
    }
    if bytes.len() % 2 == 1 {
        bytes.push(if &vr == b"UI" { 0 } else { b' ' });
    }
    bytes
}

impl Element {
    pub fn strings(tag: u32, vr: [u8; 2], values: &[impl AsRef<str>]) -> Element {
        Element {
            tag,
            vr,
            value: Val::Bytes(text_value(values, vr)),
        }
    }

    pub fn uid(tag: u32, uid: &str) -> Element {
        Element::strings(tag, *b"UI", &[uid])
    }

    pub fn empty(tag: u32, vr: [u8; 2]) -> Element {
        let value = if &vr == b"SQ" {
            Val::Items(Vec::new())
        } else {
            Val::Bytes(Vec::new())
        };
        Element { tag, vr, value }
    }

    pub fn ul(tag: u32, v: u32) -> Element {
        Element {
            tag,
            vr: *b"UL",
            value: Val::Bytes(v.to_le_bytes().to_vec()),
        }
    }

    pub fn us(tag: u32, v: u16) -> Element {
        Element {
            tag,
            vr: *b"US",
            value: Val::Bytes(v.to_le_bytes().to_vec()),
        }
    }

    pub fn sequence(tag: u32, items: Vec<Vec<Element>>) -> Element {
        Element {
            tag,
            vr: *b"SQ",
            value: Val::Items(items),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.value {
            Val::Bytes(b) if binary_vr(self.vr) => b.is_empty(),
            Val::Bytes(b) => b.iter().all(|&c| c == b' ' || c == 0),
            Val::Items(items) => items.is_empty(),
        }
    }

    /// Whether a text value (here or in nested items) is not ASCII, so the
    /// record needs Specific Character Set ISO_IR 192 (UTF-8).
    pub fn needs_utf8(&self) -> bool {
        match &self.value {
            Val::Bytes(b) => text_vr(self.vr) && !b.is_ascii(),
            Val::Items(items) => items.iter().flatten().any(Element::needs_utf8),
        }
    }

    fn value_len(&self) -> u64 {
        match &self.value {
            Val::Bytes(b) => b.len() as u64,
            Val::Items(items) => items.iter().map(|item| 8 + items_len(item)).sum(),
        }
    }

    pub fn encoded_len(&self) -> u64 {
        let header = if long_form(self.vr) { 12 } else { 8 };
        header + self.value_len()
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), PackageError> {
        let len = self.value_len();
        let too_long = || PackageError::Metadata {
            path: "DICOMDIR".into(),
            reason: format!(
                "value of {} ({} bytes) is too long for its VR",
                tag_key(self.tag),
                len
            ),
        };
        out.extend_from_slice(&((self.tag >> 16) as u16).to_le_bytes());
        out.extend_from_slice(&(self.tag as u16).to_le_bytes());
        out.extend_from_slice(&self.vr);
        if long_form(self.vr) {
            out.extend_from_slice(&[0, 0]);
            let len = u32::try_from(len).ok().filter(|&l| l != u32::MAX);
            out.extend_from_slice(&len.ok_or_else(too_long)?.to_le_bytes());
        } else {
            let len = u16::try_from(len).map_err(|_| too_long())?;
            out.extend_from_slice(&len.to_le_bytes());
        }
        match &self.value {
            Val::Bytes(b) => out.extend_from_slice(b),
            Val::Items(items) => {
                for item in items {
                    let len = u32::try_from(items_len(item)).map_err(|_| too_long())?;
                    out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
                    out.extend_from_slice(&len.to_le_bytes());
                    for element in item {
                        element.encode(out)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Length of an item's content.
pub fn items_len(item: &[Element]) -> u64 {
    item.iter().map(Element::encoded_len).sum()
}

/// A person name value of DICOM JSON as PN text: the alphabetic,
/// ideographic and phonetic groups joined by '='.
pub fn person_name(value: &Value) -> String {
    let group = |key| value.get(key).and_then(Value::as_str).unwrap_or("");
    let mut groups = vec![group("Alphabetic"), group("Ideographic"), group("Phonetic")];
    while groups.last() == Some(&"") {
        groups.pop();
    }
    groups.join("=")
}

/// A DICOM JSON data set (an item) as elements in tag order. Elements
/// whose value lives elsewhere (`BulkDataURI`) are left out.
pub fn from_json_dataset(map: &Map<String, Value>) -> Result<Vec<Element>, String> {
    let mut elements = Vec::with_capacity(map.len());
    for (key, element) in map {
        let tag = u32::from_str_radix(key, 16).map_err(|_| format!("bad tag {key:?}"))?;
        if let Some(e) = from_json(tag, element)? {
            elements.push(e);
        }
    }
    elements.sort_by_key(|e| e.tag);
    Ok(elements)
}

/// One DICOM JSON element, with the VR it declares.
pub fn from_json(tag: u32, element: &Value) -> Result<Option<Element>, String> {
    let bad = |what: &str| format!("{}: {what}", tag_key(tag));
    let vr: [u8; 2] = element
        .get("vr")
        .and_then(Value::as_str)
        .and_then(|s| s.as_bytes().try_into().ok())
        .filter(|vr: &[u8; 2]| vr.iter().all(u8::is_ascii_uppercase))
        .ok_or_else(|| bad("no valid vr"))?;
    if element.get("BulkDataURI").is_some() {
        return Ok(None);
    }
    if let Some(inline) = element.get("InlineBinary") {
        let mut bytes = inline
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| bad("InlineBinary is not base64"))?;
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        return Ok(Some(Element {
            tag,
            vr,
            value: Val::Bytes(bytes),
        }));
    }
    let empty = Vec::new();
    let values = match element.get("Value") {
        None | Some(Value::Null) => &empty,
        Some(Value::Array(values)) => values,
        Some(_) => return Err(bad("Value is not an array")),
    };
    let value = match &vr {
        b"SQ" => Val::Items(
            values
                .iter()
                .map(|item| match item {
                    Value::Object(map) => from_json_dataset(map),
                    Value::Null => Ok(Vec::new()),
                    _ => Err(bad("item is not an object")),
                })
                .collect::<Result<_, _>>()?,
        ),
        b"PN" => Val::Bytes(text_value(
            &values.iter().map(person_name).collect::<Vec<_>>(),
            vr,
        )),
        b"US" | b"SS" | b"UL" | b"SL" | b"FL" | b"FD" | b"SV" | b"UV" => {
            let mut bytes = Vec::new();
            for v in values {
                binary_number(v, vr, &mut bytes).ok_or_else(|| bad("not a number"))?;
            }
            Val::Bytes(bytes)
        }
        b"AT" => {
            let mut bytes = Vec::new();
            for v in values {
                let at = v
                    .as_str()
                    .and_then(|s| u32::from_str_radix(s, 16).ok())
                    .ok_or_else(|| bad("not a tag"))?;
                bytes.extend_from_slice(&((at >> 16) as u16).to_le_bytes());
                bytes.extend_from_slice(&(at as u16).to_le_bytes());
            }
            Val::Bytes(bytes)
        }
        _ => {
            let strings = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Null => Ok(String::new()),
                    _ => Err(bad("not a string")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Val::Bytes(text_value(&strings, vr))
        }
    };
    Ok(Some(Element { tag, vr, value }))
}

fn binary_number(v: &Value, vr: [u8; 2], out: &mut Vec<u8>) -> Option<()> {
    let text;
    let (int, float) = match v {
        Value::Number(n) => (
            n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
            n.as_f64(),
        ),
        Value::String(s) => {
            text = s.trim();
            (text.parse::<i128>().ok(), text.parse::<f64>().ok())
        }
        _ => return None,
    };
    match &vr {
        b"US" => out.extend_from_slice(&u16::try_from(int?).ok()?.to_le_bytes()),
        b"SS" => out.extend_from_slice(&i16::try_from(int?).ok()?.to_le_bytes()),
        b"UL" => out.extend_from_slice(&u32::try_from(int?).ok()?.to_le_bytes()),
        b"SL" => out.extend_from_slice(&i32::try_from(int?).ok()?.to_le_bytes()),
        b"SV" => out.extend_from_slice(&i64::try_from(int?).ok()?.to_le_bytes()),
        b"UV" => out.extend_from_slice(&u64::try_from(int?).ok()?.to_le_bytes()),
        b"FL" => out.extend_from_slice(&(float? as f32).to_le_bytes()),
        b"FD" => out.extend_from_slice(&float?.to_le_bytes()),
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encoded(e: &Element) -> Vec<u8> {
        let mut out = Vec::new();
        e.encode(&mut out).unwrap();
        assert_eq!(out.len() as u64, e.encoded_len());
        out
    }

    #[test]
    fn short_and_long_forms_and_padding() {
        let e = Element::uid(0x0004_1511, "1.2.3");
        assert_eq!(encoded(&e), b"\x04\x00\x11\x15UI\x06\x001.2.3\0");
        let e = Element::strings(0x0004_1500, *b"CS", &["DICOM", "IM00000"]);
        assert_eq!(&encoded(&e)[8..], b"DICOM\\IM00000 ");
        let item = vec![Element::us(0x0004_1410, 0xFFFF)];
        let e = Element::sequence(0x0004_1220, vec![item]);
        assert_eq!(
            encoded(&e),
            b"\x04\x00\x20\x12SQ\0\0\x12\0\0\0\xFE\xFF\x00\xE0\x0A\0\0\0\x04\x00\x10\x14US\x02\0\xFF\xFF"
        );
    }

    #[test]
    fn json_values_convert_with_their_vr() {
        let e = from_json(
            0x0010_0010,
            &json!({"vr":"PN","Value":[{"Alphabetic":"Müller^Jörg"}]}),
        )
        .unwrap()
        .unwrap();
        assert!(e.needs_utf8());
        assert_eq!(&encoded(&e)[8..], "Müller^Jörg ".as_bytes());
        let e = from_json(0x0020_0013, &json!({"vr":"IS","Value":[12]}))
            .unwrap()
            .unwrap();
        assert_eq!(&encoded(&e)[8..], b"12");
        let e = from_json(0x0028_0010, &json!({"vr":"US","Value":[512]}))
            .unwrap()
            .unwrap();
        assert_eq!(&encoded(&e)[8..], &512u16.to_le_bytes());
        let e = from_json(
            0x0040_A043,
            &json!({"vr":"SQ","Value":[{"00080100":{"vr":"SH","Value":["18748-4"]},
                                         "00080102":{"vr":"SH","Value":["LN"]}}]}),
        )
        .unwrap()
        .unwrap();
        let Val::Items(items) = &e.value else {
            panic!("not a sequence")
        };
        assert_eq!(items[0].len(), 2);
        assert!(
            from_json(
                0x7FE0_0010,
                &json!({"vr":"OW","BulkDataURI":"pushgate-bulk:7FE00010"})
            )
            .unwrap()
            .is_none()
        );
    }
}
