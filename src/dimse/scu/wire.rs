//! What the SCU puts on the wire by hand: the C-STORE-RQ command set
//! (Implicit VR Little Endian), P-DATA-TF PDUs with one PDV each, and the
//! parsing of a C-STORE-RSP.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

use crate::dimse::command::{
    C_CANCEL_RQ, C_STORE_RQ, NO_DATA_SET, check_lengths, put_header, put_ushort, with_group_length,
};

/// PDU type, reserved byte, PDU length (4), PDV item length (4), context
/// ID, message control header.
pub(super) const PDATA_HEADER: usize = 12;
/// The PDV item header counted in the PDU length: item length, context ID,
/// message control header.
const PDV_HEADER: u32 = 6;
/// Command Data Set Type: a data set follows.
const DATA_SET_PRESENT: u16 = 0x0000;
pub(super) const C_STORE_RSP: u16 = C_STORE_RQ | 0x8000;

/// Largest PDV value that fits in a PDU of `max_pdu` (the peer's Maximum
/// Length Received: the largest PDU-length field it takes).
pub(super) fn max_pdv_value(max_pdu: u32) -> usize {
    max_pdu.saturating_sub(PDV_HEADER).max(1) as usize
}

/// Fills the first [`PDATA_HEADER`] bytes of `pdu` for the value that
/// follows them.
pub(super) fn pdata_header(pdu: &mut [u8], context: u8, command: bool, last: bool) {
    let value = (pdu.len() - PDATA_HEADER) as u32;
    pdu[0] = 0x04;
    pdu[1] = 0;
    pdu[2..6].copy_from_slice(&(value + PDV_HEADER).to_be_bytes());
    pdu[6..10].copy_from_slice(&(value + 2).to_be_bytes());
    pdu[10] = context;
    pdu[11] = u8::from(command) | (u8::from(last) << 1);
}

/// The C-STORE-RQ command set, priority medium.
pub(super) fn c_store_rq(message_id: u16, sop_class: &str, sop_instance: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(200);
    put_uid(&mut body, tags::AFFECTED_SOP_CLASS_UID, sop_class);
    put_ushort(&mut body, tags::COMMAND_FIELD, C_STORE_RQ);
    put_ushort(&mut body, tags::MESSAGE_ID, message_id);
    put_ushort(&mut body, tags::PRIORITY, 0);
    put_ushort(&mut body, tags::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT);
    put_uid(&mut body, tags::AFFECTED_SOP_INSTANCE_UID, sop_instance);
    with_group_length(&body)
}

/// C-GET-RQ, C-FIND-RQ and C-MOVE-RQ Command Fields.
pub(super) const C_GET_RQ: u16 = 0x0010;
pub(super) const C_FIND_RQ: u16 = 0x0020;
pub(super) const C_MOVE_RQ: u16 = 0x0021;

/// A C-FIND-RQ, C-GET-RQ or C-MOVE-RQ (with `move_destination`, an AE
/// title checked by the caller) command set, priority medium; the
/// identifier follows it.
pub(super) fn query_rq(
    command_field: u16,
    message_id: u16,
    sop_class: &str,
    move_destination: Option<&str>,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(160);
    put_uid(&mut body, tags::AFFECTED_SOP_CLASS_UID, sop_class);
    put_ushort(&mut body, tags::COMMAND_FIELD, command_field);
    put_ushort(&mut body, tags::MESSAGE_ID, message_id);
    if let Some(ae) = move_destination {
        let mut value = ae.as_bytes().to_vec();
        if value.len() % 2 == 1 {
            value.push(b' ');
        }
        put_header(&mut body, tags::MOVE_DESTINATION, value.len() as u32);
        body.extend_from_slice(&value);
    }
    put_ushort(&mut body, tags::PRIORITY, 0);
    put_ushort(&mut body, tags::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT);
    with_group_length(&body)
}

/// The C-CANCEL-RQ for the request `message_id`.
pub(super) fn c_cancel_rq(message_id: u16) -> Vec<u8> {
    let mut body = Vec::with_capacity(40);
    put_ushort(&mut body, tags::COMMAND_FIELD, C_CANCEL_RQ);
    put_ushort(&mut body, tags::MESSAGE_ID_BEING_RESPONDED_TO, message_id);
    put_ushort(&mut body, tags::COMMAND_DATA_SET_TYPE, NO_DATA_SET);
    with_group_length(&body)
}

/// UIDs are checked by the caller (digits and dots); NUL-padded to even.
pub(super) fn put_uid(out: &mut Vec<u8>, tag: Tag, uid: &str) {
    let padded = uid.len() + uid.len() % 2;
    put_header(out, tag, padded as u32);
    out.extend_from_slice(uid.as_bytes());
    if uid.len() % 2 == 1 {
        out.push(0);
    }
}

/// A UID fit for a command set: 1–64 characters, digits and dots.
pub(super) fn valid_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The fields of a response (C-STORE-RSP, C-FIND-RSP, C-MOVE-RSP,
/// C-GET-RSP) the SCU acts on.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Response {
    pub message_id: u16,
    pub status: u16,
    pub comment: Option<String>,
    /// A data set (an identifier) follows the command.
    pub has_data_set: bool,
    /// Number of Remaining, Completed, Failed and Warning Sub-operations
    /// (C-MOVE, C-GET), each if present.
    pub sub_ops: [Option<u16>; 4],
}

/// The Command Field of a command set, to tell a response from a request
/// arriving on the same association (C-GET's C-STORE sub-operations).
pub(super) fn command_field(bytes: &[u8]) -> Result<u16, String> {
    let obj = read_command(bytes)?;
    obj.get(tags::COMMAND_FIELD)
        .and_then(|e| e.to_int::<u16>().ok())
        .ok_or_else(|| "no Command Field".to_string())
}

fn read_command(bytes: &[u8]) -> Result<InMemDicomObject, String> {
    check_lengths(bytes).map_err(|e| e.to_string())?;
    InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| format!("unreadable command set: {e}"))
}

/// Parses the response command set whose Command Field must be
/// `expected`; anything else is an error naming what it was.
pub(super) fn parse_response(bytes: &[u8], expected: u16) -> Result<Response, String> {
    let obj = read_command(bytes)?;
    let ushort = |tag| obj.get(tag).and_then(|e| e.to_int::<u16>().ok());
    let field = ushort(tags::COMMAND_FIELD).ok_or("no Command Field in the response")?;
    if field != expected {
        return Err(format!(
            "expected command field {expected:#06x}, got {field:#06x}"
        ));
    }
    let message_id = ushort(tags::MESSAGE_ID_BEING_RESPONDED_TO)
        .ok_or("no Message ID Being Responded To in the response")?;
    let status = ushort(tags::STATUS).ok_or("no Status in the response")?;
    // required, but a C-STORE-RSP without it has no data set either
    let has_data_set = ushort(tags::COMMAND_DATA_SET_TYPE).is_some_and(|t| t != NO_DATA_SET);
    let comment = obj
        .get(tags::ERROR_COMMENT)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(['\0', ' ']).to_string())
        .filter(|s| !s.is_empty());
    let sub_ops = [
        tags::NUMBER_OF_REMAINING_SUBOPERATIONS,
        tags::NUMBER_OF_COMPLETED_SUBOPERATIONS,
        tags::NUMBER_OF_FAILED_SUBOPERATIONS,
        tags::NUMBER_OF_WARNING_SUBOPERATIONS,
    ]
    .map(ushort);
    Ok(Response {
        message_id,
        status,
        comment,
        has_data_set,
        sub_ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimse::command::{Request, response};

    #[test]
    fn c_store_rq_parses_as_a_request() {
        let bytes = c_store_rq(9, "1.2.840.10008.5.1.4.1.1.2", "1.2.3");
        let group = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(group, bytes.len() - 12);
        let req = Request::parse(&bytes).unwrap();
        assert_eq!(req.command_field, C_STORE_RQ);
        assert_eq!(req.message_id, 9);
        assert_eq!(req.sop_class, "1.2.840.10008.5.1.4.1.1.2");
        assert_eq!(req.sop_instance, "1.2.3");
        assert!(req.has_data_set);
    }

    #[test]
    fn our_scp_responses_parse() {
        let req = Request::parse(&c_store_rq(3, "1.2.840.10008.5.1.4.1.1.2", "1.2.3")).unwrap();
        let rsp = parse_response(&response(&req, 0xA700, Some("disk full")), C_STORE_RSP).unwrap();
        assert_eq!(
            rsp,
            Response {
                message_id: 3,
                status: 0xA700,
                comment: Some("disk full".into()),
                has_data_set: false,
                sub_ops: [None; 4],
            }
        );
        assert!(parse_response(&c_store_rq(3, "1.2", "1.3"), C_STORE_RSP).is_err());
        assert!(parse_response(b"\x00\x00\x00\x09\xff\xff\xff\x0f", C_STORE_RSP).is_err());
    }

    #[test]
    fn query_commands_are_well_formed() {
        let bytes = query_rq(C_MOVE_RQ, 7, "1.2.840.10008.5.1.4.1.2.2.2", Some("DEST"));
        let group = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(group, bytes.len() - 12);
        let req = Request::parse(&bytes).unwrap();
        assert_eq!(req.command_field, C_MOVE_RQ);
        assert_eq!(req.message_id, 7);
        assert_eq!(req.sop_class, "1.2.840.10008.5.1.4.1.2.2.2");
        assert!(req.has_data_set);
        let obj = read_command(&bytes).unwrap();
        assert_eq!(
            obj.get(tags::MOVE_DESTINATION).unwrap().to_str().unwrap(),
            "DEST"
        );
        assert_eq!(command_field(&c_cancel_rq(7)).unwrap(), C_CANCEL_RQ);
        let cancel = read_command(&c_cancel_rq(7)).unwrap();
        assert_eq!(
            cancel
                .get(tags::MESSAGE_ID_BEING_RESPONDED_TO)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            7
        );
    }

    #[test]
    fn pdata_header_counts_the_pdv() {
        let mut pdu = vec![0u8; PDATA_HEADER + 5];
        pdata_header(&mut pdu, 3, false, true);
        assert_eq!(&pdu[..PDATA_HEADER], &[4, 0, 0, 0, 0, 11, 0, 0, 0, 7, 3, 2]);
        assert_eq!(max_pdv_value(16384), 16378);
    }
}
