//! A deliberately low-level SCU for protocol tests: it writes exactly the
//! PDUs a test asks for (fragmented commands, oversized PDUs, aborts
//! mid-instance), which no well-behaved toolkit would.
#![allow(dead_code, clippy::result_large_err)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::pdu::{
    AbortRQSource, AssociationRQ, PDataValue, PDataValueType, Pdu, PresentationContextProposed,
    UserVariableItem,
};

pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

pub struct RawScu {
    pub stream: TcpStream,
    buffer: Vec<u8>,
    pub accepted: Vec<(u8, bool)>,
}

/// A DIMSE response as the test sees it.
#[derive(Debug)]
pub struct Response {
    pub command_field: u16,
    pub message_id: u16,
    pub status: u16,
    pub comment: String,
    pub sop_instance: String,
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    configure(TcpStream::connect(addr).unwrap())
}

/// Connects from `source` (any 127/8 address on loopback), so that a test
/// can be two clients: DCMTK cannot choose its source address.
pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    configure(socket.into())
}

fn configure(stream: TcpStream) -> TcpStream {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

pub fn encode(pdu: &Pdu) -> Vec<u8> {
    let mut out = Vec::new();
    dicom_ul::write_pdu(&mut out, pdu).unwrap();
    out
}

pub fn associate_rq(called: &str, calling: &str, contexts: &[(&str, &[&str])]) -> Pdu {
    Pdu::AssociationRQ(AssociationRQ {
        protocol_version: 1,
        calling_ae_title: calling.into(),
        called_ae_title: called.into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: contexts
            .iter()
            .enumerate()
            .map(|(i, (abstract_syntax, ts))| PresentationContextProposed {
                id: (2 * i + 1) as u8,
                abstract_syntax: abstract_syntax.to_string(),
                transfer_syntaxes: ts.iter().map(|t| t.to_string()).collect(),
            })
            .collect(),
        user_variables: vec![UserVariableItem::MaxLength(65536)],
    })
}

impl RawScu {
    /// Associates; returns the AC or the answer that was not an AC.
    pub fn associate(addr: SocketAddr, contexts: &[(&str, &[&str])]) -> Result<RawScu, Pdu> {
        Self::associate_as(addr, "PUSHGATE", "RAWSCU", contexts)
    }

    pub fn associate_as(
        addr: SocketAddr,
        called: &str,
        calling: &str,
        contexts: &[(&str, &[&str])],
    ) -> Result<RawScu, Pdu> {
        Self::associate_on(connect(addr), called, calling, contexts)
    }

    /// Associates from `source` (see [`connect_from`]).
    pub fn associate_from(
        source: std::net::IpAddr,
        addr: SocketAddr,
        contexts: &[(&str, &[&str])],
    ) -> Result<RawScu, Pdu> {
        Self::associate_on(connect_from(source, addr), "PUSHGATE", "RAWSCU", contexts)
    }

    fn associate_on(
        stream: TcpStream,
        called: &str,
        calling: &str,
        contexts: &[(&str, &[&str])],
    ) -> Result<RawScu, Pdu> {
        let mut scu = RawScu {
            stream,
            buffer: Vec::new(),
            accepted: Vec::new(),
        };
        scu.send_raw(&encode(&associate_rq(called, calling, contexts)));
        match scu.recv().expect("an answer to A-ASSOCIATE-RQ") {
            Pdu::AssociationAC(ac) => {
                scu.accepted = ac
                    .presentation_contexts
                    .iter()
                    .map(|pc| {
                        (
                            pc.id,
                            pc.reason == dicom_ul::pdu::PresentationContextResultReason::Acceptance,
                        )
                    })
                    .collect();
                Ok(scu)
            }
            other => Err(other),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, pdu: &Pdu) {
        self.send_raw(&encode(pdu));
    }

    /// Reads one PDU; Err on EOF or timeout.
    pub fn recv(&mut self) -> std::io::Result<Pdu> {
        loop {
            if let Some(pdu) =
                dicom_ul::read_pdu(&mut std::io::Cursor::new(&self.buffer[..]), 1 << 24, false)
                    .map_err(|e| std::io::Error::other(e.to_string()))?
            {
                let len = 6 + u32::from_be_bytes(self.buffer[2..6].try_into().unwrap()) as usize;
                self.buffer.drain(..len);
                return Ok(pdu);
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn pdv(context: u8, kind: PDataValueType, last: bool, data: &[u8]) -> PDataValue {
        PDataValue {
            presentation_context_id: context,
            value_type: kind,
            is_last: last,
            data: data.to_vec(),
        }
    }

    /// Sends a C-STORE-RQ with `dataset`, in data PDVs of `chunk` bytes.
    pub fn store(
        &mut self,
        context: u8,
        message_id: u16,
        sop_class: &str,
        sop_instance: &str,
        dataset: &[u8],
        chunk: usize,
    ) -> Response {
        self.send_store(context, message_id, sop_class, sop_instance, dataset, chunk);
        self.response()
    }

    pub fn send_store(
        &mut self,
        context: u8,
        message_id: u16,
        sop_class: &str,
        sop_instance: &str,
        dataset: &[u8],
        chunk: usize,
    ) {
        let command = store_rq(message_id, sop_class, sop_instance);
        self.send(&Pdu::PData {
            data: vec![Self::pdv(context, PDataValueType::Command, true, &command)],
        });
        let chunks: Vec<&[u8]> = dataset.chunks(chunk.max(1)).collect();
        for (i, part) in chunks.iter().enumerate() {
            self.send(&Pdu::PData {
                data: vec![Self::pdv(
                    context,
                    PDataValueType::Data,
                    i + 1 == chunks.len(),
                    part,
                )],
            });
        }
    }

    /// Reads PDUs until a command PDV completes; panics on anything else.
    pub fn response(&mut self) -> Response {
        let mut command = Vec::new();
        loop {
            match self.recv().expect("a response") {
                Pdu::PData { data } => {
                    for pdv in data {
                        assert_eq!(pdv.value_type, PDataValueType::Command);
                        command.extend_from_slice(&pdv.data);
                        if pdv.is_last {
                            return parse_response(&command);
                        }
                    }
                }
                other => panic!("expected a response, got {other:?}"),
            }
        }
    }

    pub fn echo(&mut self, context: u8, message_id: u16) -> Response {
        let command = command_set(0x0030, message_id, VERIFICATION, None, false);
        self.send(&Pdu::PData {
            data: vec![Self::pdv(context, PDataValueType::Command, true, &command)],
        });
        self.response()
    }

    pub fn release(mut self) {
        self.send(&Pdu::ReleaseRQ);
        assert!(matches!(self.recv(), Ok(Pdu::ReleaseRP)));
    }

    pub fn abort(mut self) {
        self.send(&Pdu::AbortRQ {
            source: AbortRQSource::ServiceUser,
        });
    }
}

pub fn command_set(
    field: u16,
    message_id: u16,
    sop_class: &str,
    sop_instance: Option<&str>,
    data: bool,
) -> Vec<u8> {
    let mut elements = vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(sop_class),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(field)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(if data { 0x0000u16 } else { 0x0101u16 }),
        ),
    ];
    if field == 0x0001 {
        elements.push(DataElement::new(
            tags::PRIORITY,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    }
    if let Some(uid) = sop_instance {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uid),
        ));
    }
    let mut body = Vec::new();
    InMemDicomObject::from_element_iter(elements)
        .write_dataset_with_ts(&mut body, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    let mut out = vec![0, 0, 0, 0, 4, 0, 0, 0];
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

pub fn store_rq(message_id: u16, sop_class: &str, sop_instance: &str) -> Vec<u8> {
    command_set(0x0001, message_id, sop_class, Some(sop_instance), true)
}

pub fn parse_response(bytes: &[u8]) -> Response {
    let obj =
        InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased()).unwrap();
    let int = |t| {
        obj.get(t)
            .and_then(|e| e.to_int::<u16>().ok())
            .unwrap_or(0xFFFF)
    };
    let text = |t| {
        obj.get(t)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .unwrap_or_default()
    };
    Response {
        command_field: int(tags::COMMAND_FIELD),
        message_id: int(tags::MESSAGE_ID_BEING_RESPONDED_TO),
        status: int(tags::STATUS),
        comment: text(tags::ERROR_COMMENT),
        sop_instance: text(tags::AFFECTED_SOP_INSTANCE_UID),
    }
}

/// A data set (Explicit VR Little Endian) from a Part 10 sample, with
/// `edit` applied.
pub fn dataset_from(path: &std::path::Path, edit: impl FnOnce(&mut InMemDicomObject)) -> Vec<u8> {
    let file = dicom_object::open_file(path).unwrap();
    let mut obj: InMemDicomObject = file.into_inner();
    edit(&mut obj);
    let mut out = Vec::new();
    obj.write_dataset_with_ts(
        &mut out,
        &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
    )
    .unwrap();
    out
}

pub fn set_text(obj: &mut InMemDicomObject, tag: dicom_core::Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}
