//! DIMSE command sets (PS3.7 §9, §E): always Implicit VR Little Endian.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

pub const C_STORE_RQ: u16 = 0x0001;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_CANCEL_RQ: u16 = 0x0FFF;
const RESPONSE_BIT: u16 = 0x8000;
/// Command Data Set Type value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

/// The fields of a request pushgate acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub command_field: u16,
    pub message_id: u16,
    pub sop_class: String,
    pub sop_instance: String,
    pub has_data_set: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("unreadable command set: {0}")]
pub struct CommandError(String);

fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

fn ushort(obj: &InMemDicomObject, tag: Tag) -> Option<u16> {
    obj.get(tag)?.to_int::<u16>().ok()
}

/// Checks every element header against the bytes actually present before
/// anything is decoded: a decoder allocates a value's declared length
/// first, so a 20-byte command claiming a 4 GiB string must be refused here.
pub(crate) fn check_lengths(bytes: &[u8]) -> Result<(), CommandError> {
    let mut pos = 0usize;
    while pos < bytes.len() {
        let header = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| CommandError(format!("{} stray bytes at the end", bytes.len() - pos)))?;
        let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let end = (pos + 8)
            .checked_add(length)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| {
                CommandError(format!(
                    "an element declares {length} bytes but only {} remain",
                    bytes.len() - pos - 8
                ))
            })?;
        pos = end;
    }
    Ok(())
}

impl Request {
    pub fn parse(bytes: &[u8]) -> Result<Request, CommandError> {
        check_lengths(bytes)?;
        let obj =
            InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .map_err(|e| CommandError(e.to_string()))?;
        let command_field = ushort(&obj, tags::COMMAND_FIELD)
            .ok_or_else(|| CommandError("no Command Field".into()))?;
        let message_id =
            ushort(&obj, tags::MESSAGE_ID).ok_or_else(|| CommandError("no Message ID".into()))?;
        let data_set_type = ushort(&obj, tags::COMMAND_DATA_SET_TYPE)
            .ok_or_else(|| CommandError("no Command Data Set Type".into()))?;
        Ok(Request {
            command_field,
            message_id,
            sop_class: text(&obj, tags::AFFECTED_SOP_CLASS_UID),
            sop_instance: text(&obj, tags::AFFECTED_SOP_INSTANCE_UID),
            has_data_set: data_set_type != NO_DATA_SET,
        })
    }

    pub fn is_response(&self) -> bool {
        self.command_field & RESPONSE_BIT != 0
    }
}

/// A response to `request` with `status` and an optional Error Comment,
/// encoded by hand (Implicit VR Little Endian is tag, length, value): every
/// string is reduced to printable ASCII first, so encoding cannot fail
/// whatever the request or the data set contained.
pub fn response(request: &Request, status: u16, comment: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    if !request.sop_class.is_empty() {
        put_text(
            &mut body,
            tags::AFFECTED_SOP_CLASS_UID,
            &request.sop_class,
            b'\0',
            64,
        );
    }
    put_ushort(
        &mut body,
        tags::COMMAND_FIELD,
        request.command_field | RESPONSE_BIT,
    );
    put_ushort(
        &mut body,
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        request.message_id,
    );
    put_ushort(&mut body, tags::COMMAND_DATA_SET_TYPE, NO_DATA_SET);
    put_ushort(&mut body, tags::STATUS, status);
    if let Some(comment) = comment {
        put_text(&mut body, tags::ERROR_COMMENT, comment, b' ', 64);
    }
    if !request.sop_instance.is_empty() && request.command_field == C_STORE_RQ {
        put_text(
            &mut body,
            tags::AFFECTED_SOP_INSTANCE_UID,
            &request.sop_instance,
            b'\0',
            64,
        );
    }
    with_group_length(&body)
}

/// A command set: (0000,0000) Command Group Length, then `body`.
pub(crate) fn with_group_length(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    put_header(&mut out, tags::COMMAND_GROUP_LENGTH, 4);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// An element header, implicit VR little endian.
pub(crate) fn put_header(out: &mut Vec<u8>, tag: Tag, length: u32) {
    out.extend_from_slice(&tag.group().to_le_bytes());
    out.extend_from_slice(&tag.element().to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
}

pub(crate) fn put_ushort(out: &mut Vec<u8>, tag: Tag, value: u16) {
    put_header(out, tag, 2);
    out.extend_from_slice(&value.to_le_bytes());
}

/// Printable ASCII without backslash (the value delimiter), at most `max`
/// characters, padded to even length.
fn put_text(out: &mut Vec<u8>, tag: Tag, text: &str, pad: u8, max: usize) {
    let mut value: Vec<u8> = text
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '\\' {
                c as u8
            } else {
                b'?'
            }
        })
        .take(max)
        .collect();
    while value.last() == Some(&b' ') {
        value.pop();
    }
    if value.len() % 2 == 1 {
        value.push(pad);
    }
    put_header(out, tag, value.len() as u32);
    out.extend_from_slice(&value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR};

    fn request() -> Request {
        Request {
            command_field: C_STORE_RQ,
            message_id: 4711,
            sop_class: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance: "1.2.3.4.5".into(),
            has_data_set: true,
        }
    }

    #[test]
    fn response_echoes_the_message_id_and_measures_its_group() {
        let bytes = response(
            &request(),
            0xA900,
            Some("SOP Instance UID differs \\ from request €"),
        );
        let group_length = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(group_length, bytes.len() - 12);
        let obj =
            InMemDicomObject::read_dataset_with_ts(&bytes[..], &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .unwrap();
        assert_eq!(ushort(&obj, tags::COMMAND_FIELD), Some(0x8001));
        assert_eq!(
            ushort(&obj, tags::MESSAGE_ID_BEING_RESPONDED_TO),
            Some(4711)
        );
        assert_eq!(ushort(&obj, tags::STATUS), Some(0xA900));
        assert_eq!(text(&obj, tags::AFFECTED_SOP_INSTANCE_UID), "1.2.3.4.5");
        assert_eq!(
            text(&obj, tags::ERROR_COMMENT),
            "SOP Instance UID differs ? from request ?"
        );
        // UIDs are padded with NUL, not space, to even length
        assert_eq!(bytes.len() % 2, 0);
    }

    #[test]
    fn requests_round_trip() {
        let mut req = request();
        req.command_field = C_ECHO_RQ;
        req.has_data_set = false;
        let obj = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::AFFECTED_SOP_CLASS_UID,
                VR::UI,
                PrimitiveValue::from("1.2.840.10008.1.1"),
            ),
            DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(C_ECHO_RQ)),
            DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(7u16)),
            DataElement::new(
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(NO_DATA_SET),
            ),
        ]);
        let parsed = Request::parse(&encode(obj)).unwrap();
        assert_eq!(parsed.command_field, C_ECHO_RQ);
        assert_eq!(parsed.message_id, 7);
        assert!(!parsed.has_data_set);
        assert!(Request::parse(b"\x01\x02garbage").is_err());
    }

    #[test]
    fn declared_lengths_beyond_the_bytes_are_refused_before_decoding() {
        // (0000,0902) LO claiming 4 GiB, 12 bytes in all
        let mut bytes = vec![0x00, 0x00, 0x02, 0x09];
        bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        bytes.extend_from_slice(b"abcd");
        let err = Request::parse(&bytes).unwrap_err().to_string();
        assert!(err.contains("declares 4294967280 bytes"), "{err}");
        // and a command without its data set type
        let obj = InMemDicomObject::from_element_iter([
            DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(C_ECHO_RQ)),
            DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(7u16)),
        ]);
        assert!(
            Request::parse(&encode(obj))
                .unwrap_err()
                .to_string()
                .contains("Data Set Type")
        );
    }

    fn encode(obj: InMemDicomObject) -> Vec<u8> {
        let mut out = Vec::new();
        obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .unwrap();
        out
    }
}
