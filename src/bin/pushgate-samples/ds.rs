//! A thin builder over `InMemDicomObject` plus Part 10 file writing.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, Value};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject};

use crate::uid;

/// Dataset under construction. Setters overwrite earlier values of the same
/// tag and return `&mut Self` so calls can be chained.
#[derive(Debug, Clone)]
pub struct Ds(pub InMemDicomObject);

impl Default for Ds {
    fn default() -> Self {
        Self::new()
    }
}

impl Ds {
    pub fn new() -> Self {
        Ds(InMemDicomObject::new_empty())
    }

    fn put(&mut self, tag: Tag, vr: VR, value: PrimitiveValue) -> &mut Self {
        self.0.put(DataElement::new(tag, vr, value));
        self
    }

    /// Single-valued string (an empty string gives a zero-length Type 2 value).
    pub fn s(&mut self, tag: Tag, vr: VR, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.empty(tag, vr);
        }
        self.put(tag, vr, PrimitiveValue::from(value))
    }

    /// Multi-valued string, values joined with `\` on encoding.
    pub fn m(&mut self, tag: Tag, vr: VR, values: &[&str]) -> &mut Self {
        let v = values.iter().map(|s| s.to_string()).collect();
        self.put(tag, vr, PrimitiveValue::Strs(v))
    }

    /// Zero-length value (Type 2 attribute without a value).
    pub fn empty(&mut self, tag: Tag, vr: VR) -> &mut Self {
        if vr == VR::SQ {
            return self.seq(tag, Vec::new());
        }
        self.put(tag, vr, PrimitiveValue::Empty)
    }

    /// Decimal String values; see [`ds_str`].
    pub fn ds(&mut self, tag: Tag, values: &[f64]) -> &mut Self {
        let v = values.iter().map(|&x| ds_str(x)).collect();
        self.put(tag, VR::DS, PrimitiveValue::Strs(v))
    }

    /// Integer String value.
    pub fn is(&mut self, tag: Tag, value: i64) -> &mut Self {
        self.put(tag, VR::IS, PrimitiveValue::from(value.to_string()))
    }

    pub fn us(&mut self, tag: Tag, value: u16) -> &mut Self {
        self.put(tag, VR::US, PrimitiveValue::from(value))
    }

    pub fn us_list(&mut self, tag: Tag, values: &[u16]) -> &mut Self {
        self.put(
            tag,
            VR::US,
            PrimitiveValue::U16(values.iter().copied().collect()),
        )
    }

    pub fn ss(&mut self, tag: Tag, value: i16) -> &mut Self {
        self.put(tag, VR::SS, PrimitiveValue::from(value))
    }

    pub fn sl(&mut self, tag: Tag, values: &[i32]) -> &mut Self {
        self.put(
            tag,
            VR::SL,
            PrimitiveValue::I32(values.iter().copied().collect()),
        )
    }

    pub fn fl(&mut self, tag: Tag, values: &[f32]) -> &mut Self {
        self.put(
            tag,
            VR::FL,
            PrimitiveValue::F32(values.iter().copied().collect()),
        )
    }

    /// Attribute Tag value (e.g. Frame Increment Pointer).
    pub fn at(&mut self, tag: Tag, value: Tag) -> &mut Self {
        self.put(tag, VR::AT, PrimitiveValue::from(value))
    }

    /// Raw bytes (OB/OW; for OW the bytes are little endian words).
    pub fn bytes(&mut self, tag: Tag, vr: VR, value: Vec<u8>) -> &mut Self {
        self.put(tag, vr, PrimitiveValue::from(value))
    }

    /// Sequence of items (undefined length).
    pub fn seq(&mut self, tag: Tag, items: Vec<Ds>) -> &mut Self {
        let items: Vec<InMemDicomObject> = items.into_iter().map(|d| d.0).collect();
        let value: Value<InMemDicomObject, _> =
            DataSetSequence::new(items, Length::UNDEFINED).into();
        self.0.put(DataElement::new(tag, VR::SQ, value));
        self
    }

    /// Single-item code sequence (Code Value, Coding Scheme Designator, Code Meaning).
    pub fn code(&mut self, tag: Tag, value: &str, scheme: &str, meaning: &str) -> &mut Self {
        self.seq(tag, vec![code_item(value, scheme, meaning)])
    }
}

/// A basic coded entry item.
pub fn code_item(value: &str, scheme: &str, meaning: &str) -> Ds {
    use dicom_dictionary_std::tags;
    let mut d = Ds::new();
    d.s(tags::CODE_VALUE, VR::SH, value)
        .s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme)
        .s(tags::CODE_MEANING, VR::LO, meaning);
    d
}

/// Item with Referenced SOP Class UID and Referenced SOP Instance UID.
pub fn sop_ref(class: &str, instance: &str) -> Ds {
    use dicom_dictionary_std::tags;
    let mut d = Ds::new();
    d.s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, class).s(
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        instance,
    );
    d
}

/// Format a Decimal String value: shortest round-trip representation,
/// which must fit the 16 bytes DS allows.
pub fn ds_str(x: f64) -> String {
    let x = if x == 0.0 { 0.0 } else { x }; // no "-0"
    let s = format!("{x}");
    if s.len() <= 16 {
        return s;
    }
    // Too many digits: round until it fits.
    (0..=15)
        .rev()
        .map(|p| format!("{x:.p$}"))
        .find(|s| s.len() <= 16)
        .unwrap_or_else(|| "0".to_owned())
}

/// Recursively check every UI value in the dataset for valid UID syntax.
pub fn check_uids(obj: &InMemDicomObject) -> Result<()> {
    for elem in obj.iter() {
        if elem.vr() == VR::UI {
            let s = elem.value().to_str().context("UI value")?;
            for uid in s.split('\\') {
                let uid = uid.trim_end_matches('\0');
                ensure!(uid::is_valid(uid), "invalid UID {uid:?} in {}", elem.tag());
            }
        }
        if let Some(items) = elem.value().items() {
            for item in items {
                check_uids(item)?;
            }
        }
    }
    Ok(())
}

/// Attach a file meta group for transfer syntax `ts` (Media Storage SOP
/// Class/Instance UID are copied from the dataset).
pub fn into_file_object(ds: Ds, ts: &str) -> Result<DefaultDicomObject> {
    use dicom_dictionary_std::tags;
    check_uids(&ds.0)?;
    if ds.0.get(tags::SOP_CLASS_UID).is_none() || ds.0.get(tags::SOP_INSTANCE_UID).is_none() {
        bail!("dataset lacks SOP Class/Instance UID");
    }
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(ts)
        .implementation_class_uid(uid::implementation_class())
        .implementation_version_name(uid::IMPLEMENTATION_VERSION_NAME);
    ds.0.with_meta(meta).context("building file meta group")
}

/// Write `obj` as a Part 10 file.
pub fn write_file(obj: &DefaultDicomObject, path: &Path) -> Result<()> {
    obj.write_to_file(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Convenience: build the meta group for `ts` and write `ds` to `path`.
pub fn write_part10(ds: Ds, ts: &str, path: &Path) -> Result<()> {
    let obj = into_file_object(ds, ts)?;
    write_file(&obj, path)
}

/// Native pixel data bytes (little endian) from 16-bit signed samples.
pub fn i16_bytes(px: &[i16]) -> Vec<u8> {
    px.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Native pixel data bytes (little endian) from 16-bit unsigned samples.
pub fn u16_bytes(px: &[u16]) -> Vec<u8> {
    px.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit() {
        assert_eq!(ds_str(0.9375), "0.9375");
        assert_eq!(ds_str(-119.53125), "-119.53125");
        assert_eq!(ds_str(1.0), "1");
        assert_eq!(ds_str(-0.0), "0");
        assert!(ds_str(1.0 / 3.0).len() <= 16);
        assert!(ds_str(-123456.789_012_345).len() <= 16);
    }
}
