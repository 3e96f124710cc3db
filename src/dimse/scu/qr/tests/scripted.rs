//! A PACS played by the test on 127.0.0.1 (dicom-ul's server side and
//! hand-made responses), for what real PACSes do not do on demand: a
//! malformed identifier, a cancel we can watch arrive, a failure status
//! with a comment, an abort, silence.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::association::{AsyncServerAssociation, ServerAssociationOptions};
use dicom_ul::pdu::{AbortRQSource, PDataValue, PDataValueType, Pdu};
use tokio::net::{TcpListener, TcpStream};

use super::super::*;
use crate::dimse::command::C_CANCEL_RQ;

type Peer = AsyncServerAssociation<TcpStream>;

async fn listen() -> (TcpListener, PacsAddress) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let pacs = format!("SCRIPTED@127.0.0.1:{port}").parse().unwrap();
    (listener, pacs)
}

async fn accept(listener: &TcpListener) -> Peer {
    let (socket, _) = listener.accept().await.unwrap();
    ServerAssociationOptions::new()
        .accept_any()
        .ae_title("SCRIPTED")
        .with_abstract_syntax(STUDY_ROOT_FIND)
        .with_abstract_syntax(STUDY_ROOT_MOVE)
        .establish_async(socket)
        .await
        .unwrap()
}

/// The next message: context, command set, data set if one came.
async fn receive(peer: &mut Peer) -> (u8, InMemDicomObject, Option<Vec<u8>>) {
    let (mut command, mut data) = (Vec::new(), Vec::new());
    let mut want_data = None;
    loop {
        let Pdu::PData { data: pdvs } = peer.receive().await.unwrap() else {
            panic!("expected P-DATA");
        };
        for pdv in pdvs {
            let context = pdv.presentation_context_id;
            match pdv.value_type {
                PDataValueType::Command => command.extend_from_slice(&pdv.data),
                PDataValueType::Data => data.extend_from_slice(&pdv.data),
            }
            if pdv.is_last && pdv.value_type == PDataValueType::Command {
                let obj = InMemDicomObject::read_dataset_with_ts(
                    &command[..],
                    &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                )
                .unwrap();
                let data_set_type = obj
                    .get(tags::COMMAND_DATA_SET_TYPE)
                    .unwrap()
                    .to_int::<u16>()
                    .unwrap();
                if data_set_type == 0x0101 {
                    return (context, obj, None);
                }
                want_data = Some(obj);
            } else if pdv.is_last {
                return (context, want_data.take().unwrap(), Some(data));
            }
        }
    }
}

fn ushort(obj: &InMemDicomObject, tag: Tag) -> u16 {
    obj.get(tag).unwrap().to_int::<u16>().unwrap()
}

/// A response to message 1 with `status`, optional comment, sub-operation
/// counts and identifier bytes.
async fn respond(
    peer: &mut Peer,
    context: u8,
    field: u16,
    status: u16,
    comment: Option<&str>,
    sub_ops: Option<[u16; 4]>,
    identifier: Option<Vec<u8>>,
) {
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    let mut obj = InMemDicomObject::from_element_iter([
        us(tags::COMMAND_FIELD, field),
        us(tags::MESSAGE_ID_BEING_RESPONDED_TO, 1),
        us(
            tags::COMMAND_DATA_SET_TYPE,
            if identifier.is_some() { 0 } else { 0x0101 },
        ),
        us(tags::STATUS, status),
    ]);
    if let Some(c) = comment {
        obj.put(DataElement::new(
            tags::ERROR_COMMENT,
            VR::LO,
            PrimitiveValue::from(c),
        ));
    }
    if let Some([r, c, f, w]) = sub_ops {
        obj.put(us(tags::NUMBER_OF_REMAINING_SUBOPERATIONS, r));
        obj.put(us(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS, c));
        obj.put(us(tags::NUMBER_OF_FAILED_SUBOPERATIONS, f));
        obj.put(us(tags::NUMBER_OF_WARNING_SUBOPERATIONS, w));
    }
    let mut command = Vec::new();
    obj.write_dataset_with_ts(&mut command, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    let mut data = vec![PDataValue {
        presentation_context_id: context,
        value_type: PDataValueType::Command,
        is_last: true,
        data: command,
    }];
    if let Some(identifier) = identifier {
        data.push(PDataValue {
            presentation_context_id: context,
            value_type: PDataValueType::Data,
            is_last: true,
            data: identifier,
        });
    }
    peer.send(&Pdu::PData { data }).await.unwrap();
}

/// Answers the A-RELEASE-RQ that ends a complete exchange.
async fn released(peer: &mut Peer) {
    assert!(matches!(peer.receive().await.unwrap(), Pdu::ReleaseRQ));
    peer.send(&Pdu::ReleaseRP).await.unwrap();
}

fn transfer_syntax(peer: &Peer, context: u8) -> String {
    let pc = peer
        .presentation_contexts()
        .iter()
        .find(|pc| pc.id == context)
        .unwrap();
    pc.transfer_syntax.trim_end_matches('\0').to_string()
}

fn patient(name: &str, ts: &str) -> Vec<u8> {
    let obj = study_query(&[(tags::PATIENT_NAME, name)]).unwrap();
    identifier::encode(&obj, ts).unwrap()
}

/// Four matches, one of them undecodable, at most three wanted: two
/// collected, one recorded as malformed, the C-CANCEL-RQ arrives, the
/// final Cancel status is awaited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_skips_a_malformed_identifier_and_cancels() {
    let (listener, pacs) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept(&listener).await;
        let (context, rq, data) = receive(&mut peer).await;
        assert_eq!(ushort(&rq, tags::COMMAND_FIELD), wire::C_FIND_RQ);
        let ts = transfer_syntax(&peer, context);
        let sent = identifier::decode(&data.unwrap(), &ts).unwrap();
        assert_eq!(
            sent.get(tags::PATIENT_NAME).unwrap().to_str().unwrap(),
            "Ja*"
        );
        let mut broken = patient("Jansen^Broken", &ts);
        let len = broken.len();
        broken[len - 2..].copy_from_slice(b"\xff\xff"); // a short value cut off
        broken.truncate(len - 1);
        for id in [
            patient("Jansen^A", &ts),
            broken,
            patient("Jansen^B", &ts),
            patient("Jansen^C", &ts),
        ] {
            respond(
                &mut peer,
                context,
                C_FIND_RSP,
                PENDING,
                None,
                None,
                Some(id),
            )
            .await;
        }
        let (_, cancel, _) = receive(&mut peer).await;
        assert_eq!(ushort(&cancel, tags::COMMAND_FIELD), C_CANCEL_RQ);
        assert_eq!(ushort(&cancel, tags::MESSAGE_ID_BEING_RESPONDED_TO), 1);
        respond(&mut peer, context, C_FIND_RSP, CANCELLED, None, None, None).await;
        released(&mut peer).await;
    });
    let identifier = study_query(&[(tags::PATIENT_NAME, "Ja*")]).unwrap();
    let result = find(&pacs, "PUSHGATE", &identifier, 3, Duration::from_secs(10))
        .await
        .unwrap();
    peer.await.unwrap();
    let names: Vec<String> = result
        .matches
        .iter()
        .map(|m| {
            m.get(tags::PATIENT_NAME)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["Jansen^A", "Jansen^B"]);
    assert_eq!(result.malformed.len(), 1, "{:?}", result.malformed);
    assert!(
        result.malformed[0].contains("malformed"),
        "{:?}",
        result.malformed
    );
    assert!(result.truncated);
    assert_eq!(result.final_status, CANCELLED);
}

/// A failure status after a pending response: the progress seen, then the
/// status and its Error Comment in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_failure_status_carries_its_comment() {
    let (listener, pacs) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept(&listener).await;
        let (context, rq, _) = receive(&mut peer).await;
        assert_eq!(ushort(&rq, tags::COMMAND_FIELD), wire::C_MOVE_RQ);
        let destination = rq.get(tags::MOVE_DESTINATION).unwrap().to_str().unwrap();
        assert_eq!(destination.trim(), "ELSEWHERE");
        respond(
            &mut peer,
            context,
            C_MOVE_RSP,
            PENDING,
            None,
            Some([2, 1, 0, 0]),
            None,
        )
        .await;
        let comment = "Move destination ELSEWHERE unknown";
        respond(
            &mut peer,
            context,
            C_MOVE_RSP,
            0xA801,
            Some(comment),
            None,
            None,
        )
        .await;
        released(&mut peer).await;
    });
    let mut seen = Vec::new();
    let identifier = study_query(&[(tags::STUDY_INSTANCE_UID, "1.2.3")]).unwrap();
    let err = move_to(
        &pacs,
        "PUSHGATE",
        "ELSEWHERE",
        &identifier,
        Duration::from_secs(10),
        &mut |ops| seen.push(ops),
    )
    .await
    .unwrap_err();
    peer.await.unwrap();
    assert_eq!(
        seen,
        [SubOps {
            remaining: 2,
            completed: 1,
            failed: 0,
            warning: 0
        }]
    );
    assert!(
        matches!(&err, ScuError::Status { status: 0xA801, comment: Some(c), .. } if c == "Move destination ELSEWHERE unknown"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "C-MOVE to ELSEWHERE at {pacs}: failure status 0xA801: Move destination ELSEWHERE unknown"
        )
    );
}

/// An A-ABORT mid-query and a PACS that goes silent: each named with
/// where it happened, the silence within the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_and_silence_mid_find_are_named() {
    let (listener, pacs) = listen().await;
    let peer = tokio::spawn(async move {
        let mut peer = accept(&listener).await;
        let (context, _, _) = receive(&mut peer).await;
        let ts = transfer_syntax(&peer, context);
        respond(
            &mut peer,
            context,
            C_FIND_RSP,
            PENDING,
            None,
            None,
            Some(patient("A", &ts)),
        )
        .await;
        peer.send(&Pdu::AbortRQ {
            source: AbortRQSource::ServiceUser,
        })
        .await
        .unwrap();
        // the second association: the request read, never answered
        let mut peer = accept(&listener).await;
        let _ = receive(&mut peer).await;
        let _ = peer.receive().await;
    });
    let identifier = study_query(&[(tags::PATIENT_NAME, "*")]).unwrap();
    let err = find(&pacs, "PUSHGATE", &identifier, 10, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ScuError::Aborted { during, .. } if during.starts_with("waiting for C-FIND responses")),
        "{err}"
    );
    let started = std::time::Instant::now();
    let err = find(
        &pacs,
        "PUSHGATE",
        &identifier,
        10,
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ScuError::Timeout { during, .. } if during.starts_with("waiting for C-FIND responses")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    peer.await.unwrap();
}
