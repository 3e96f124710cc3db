//! DIMSE command sets (PS3.7 §9, §E): always Implicit VR Little Endian.

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
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
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

fn ushort(obj: &InMemDicomObject, tag: Tag) -> Option<u16> {
    obj.get(tag)?.to_int::<u16>().ok()
}

impl Request {
    pub fn parse(bytes: &[u8]) -> Result<Request, CommandError> {
        let obj =
            InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .map_err(|e| CommandError(e.to_string()))?;
        let command_field = ushort(&obj, tags::COMMAND_FIELD)
            .ok_or_else(|| CommandError("no Command Field".into()))?;
        let message_id =
            ushort(&obj, tags::MESSAGE_ID).ok_or_else(|| CommandError("no Message ID".into()))?;
        Ok(Request {
            command_field,
            message_id,
            sop_class: text(&obj, tags::AFFECTED_SOP_CLASS_UID),
            sop_instance: text(&obj, tags::AFFECTED_SOP_INSTANCE_UID),
            has_data_set: ushort(&obj, tags::COMMAND_DATA_SET_TYPE) != Some(NO_DATA_SET),
        })
    }

    pub fn is_response(&self) -> bool {
        self.command_field & RESPONSE_BIT != 0
    }
}

/// A response to `request` with `status` and an optional Error Comment.
pub fn response(request: &Request, status: u16, comment: Option<&str>) -> Vec<u8> {
    let mut elements = Vec::with_capacity(8);
    if !request.sop_class.is_empty() {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(request.sop_class.as_str()),
        ));
    }
    elements.push(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(request.command_field | RESPONSE_BIT),
    ));
    elements.push(DataElement::new(
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        VR::US,
        PrimitiveValue::from(request.message_id),
    ));
    elements.push(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(NO_DATA_SET),
    ));
    elements.push(DataElement::new(
        tags::STATUS,
        VR::US,
        PrimitiveValue::from(status),
    ));
    if let Some(comment) = comment {
        elements.push(DataElement::new(
            tags::ERROR_COMMENT,
            VR::LO,
            PrimitiveValue::from(error_comment(comment)),
        ));
    }
    if !request.sop_instance.is_empty() && request.command_field == C_STORE_RQ {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(request.sop_instance.as_str()),
        ));
    }
    encode_with_group_length(InMemDicomObject::from_element_iter(elements))
}

/// Error Comment is LO: at most 64 characters, no backslash.
fn error_comment(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\\' || c.is_control() { ' ' } else { c })
        .take(64)
        .collect::<String>()
        .trim_end()
        .to_string()
}

fn encode_with_group_length(obj: InMemDicomObject) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    obj.write_dataset_with_ts(&mut body, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("writing a command set to memory cannot fail");
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Some("SOP Instance UID differs \\ from request"),
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
            "SOP Instance UID differs   from request"
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
        let parsed = Request::parse(&encode_with_group_length(obj)).unwrap();
        assert_eq!(parsed.command_field, C_ECHO_RQ);
        assert_eq!(parsed.message_id, 7);
        assert!(!parsed.has_data_set);
        assert!(Request::parse(b"\x01\x02garbage").is_err());
    }
}
