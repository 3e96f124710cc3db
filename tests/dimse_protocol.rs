//! The C-STORE SCP at the protocol level: statuses, message IDs, fragmented
//! and shared PDUs, bad input of every kind, limits and timeouts. Each test
//! ends by checking that the daemon still serves and that nothing
//! unacknowledged became visible.

mod common;

use std::io::Write;
use std::time::Duration;

use common::scu::{self, CT, EXPLICIT_LE, IMPLICIT_LE, MR, RawScu, VERIFICATION};
use common::{Daemon, eventually, sample_files};
use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_ul::pdu::{PDataValueType, Pdu};

const STANDARD: &[(&str, &[&str])] = &[
    (VERIFICATION, &[IMPLICIT_LE]),
    (CT, &[EXPLICIT_LE]),
    (MR, &[EXPLICIT_LE]),
];
const ECHO_PC: u8 = 1;
const CT_PC: u8 = 3;

fn ct_sample() -> std::path::PathBuf {
    sample_files()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("ct-phantom") && scu_sop_class(p) == CT)
        .expect("a CT sample")
}

fn scu_sop_class(path: &std::path::Path) -> String {
    let file = std::fs::File::open(path).unwrap();
    pushgate::ingest::read_part10_header(&file)
        .unwrap()
        .sop_class
}

/// A CT data set with a fresh SOP Instance UID.
fn ct_dataset(sop: &str) -> Vec<u8> {
    scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, sop)
    })
}

/// The daemon still answers, and no partial file lingers.
fn assert_healthy(daemon: &mut Daemon) {
    assert!(daemon.is_running(), "daemon died:\n{}", daemon.log());
    let out = daemon.echoscu(&["-aec", "PUSHGATE"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let tmp: Vec<_> = std::fs::read_dir(daemon.data_dir().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "partial files left in tmp/: {tmp:?}");
}

#[test]
fn echo_and_store_answer_with_the_request_message_id() {
    let mut daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    let echo = scu.echo(ECHO_PC, 4711);
    assert_eq!(
        (echo.command_field, echo.message_id, echo.status),
        (0x8030, 4711, 0)
    );
    let stored = scu.store(
        CT_PC,
        815,
        CT,
        "1.2.826.0.1.3680043.10.999.1",
        &ct_dataset("1.2.826.0.1.3680043.10.999.1"),
        16000,
    );
    assert_eq!(
        (stored.command_field, stored.message_id, stored.status),
        (0x8001, 815, 0),
        "{stored:?}"
    );
    assert_eq!(stored.sop_instance, "1.2.826.0.1.3680043.10.999.1");
    scu.release();
    assert_eq!(daemon.instance_count(), 1);
    assert_healthy(&mut daemon);
}

#[test]
fn command_fragments_across_pdus_and_data_sharing_a_pdu_are_understood() {
    let daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    let sop = "1.2.826.0.1.3680043.10.999.2";
    let command = scu::store_rq(9, CT, sop);
    let dataset = ct_dataset(sop);
    let (c1, c2) = command.split_at(10);
    let (d1, d2) = dataset.split_at(dataset.len() / 2);
    // command split over two PDUs; its last fragment shares a PDU with data
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(CT_PC, PDataValueType::Command, false, c1)],
    });
    scu.send(&Pdu::PData {
        data: vec![
            RawScu::pdv(CT_PC, PDataValueType::Command, true, c2),
            RawScu::pdv(CT_PC, PDataValueType::Data, false, d1),
        ],
    });
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(CT_PC, PDataValueType::Data, true, d2)],
    });
    let rsp = scu.response();
    assert_eq!((rsp.message_id, rsp.status), (9, 0), "{rsp:?}");
    let stored = daemon.stored_files();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        common::dataset_bytes(&stored[0]),
        dataset,
        "stored exactly as received"
    );
}

#[test]
fn bad_data_sets_get_precise_statuses_and_the_association_goes_on() {
    let mut daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    let good = "1.2.826.0.1.3680043.10.999.3";

    // SOP Instance UID in the data set differs from the request
    let rsp = scu.store(
        CT_PC,
        1,
        CT,
        good,
        &ct_dataset("1.2.826.0.1.3680043.10.999.4"),
        8192,
    );
    assert_eq!(rsp.status, 0xA900, "{rsp:?}");
    assert!(rsp.comment.contains("SOP Instance UID"), "{rsp:?}");

    // truncated in the middle of the pixel data
    let whole = ct_dataset(good);
    let rsp = scu.store(CT_PC, 2, CT, good, &whole[..whole.len() - 1000], 8192);
    assert_eq!(rsp.status, 0xC000, "{rsp:?}");
    assert!(rsp.comment.contains("truncated"), "{rsp:?}");

    // not DICOM at all
    let rsp = scu.store(CT_PC, 3, CT, good, &[0x42u8; 5000], 8192);
    assert_eq!(rsp.status, 0xC000, "{rsp:?}");

    // a UID that would escape the store directory
    let rsp = scu.store(CT_PC, 4, CT, "../../etc/passwd", &whole, 8192);
    assert_eq!(rsp.status, 0x0117, "{rsp:?}");
    let evil_study = scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, good);
        scu::set_text(obj, tags::STUDY_INSTANCE_UID, VR::UI, "1.2/../../x");
    });
    let rsp = scu.store(CT_PC, 5, CT, good, &evil_study, 8192);
    assert_eq!(rsp.status, 0xA900, "{rsp:?}");
    assert!(rsp.comment.contains("Study Instance UID"), "{rsp:?}");

    // missing Series Instance UID
    let no_series = scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, good);
        obj.remove_element(tags::SERIES_INSTANCE_UID);
    });
    let rsp = scu.store(CT_PC, 6, CT, good, &no_series, 8192);
    assert_eq!(rsp.status, 0xA900, "{rsp:?}");

    // a CT image without pixel data does not match its SOP class
    let no_pixels = scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, good);
        obj.remove_element(tags::PIXEL_DATA);
    });
    let rsp = scu.store(CT_PC, 7, CT, good, &no_pixels, 8192);
    assert_eq!(rsp.status, 0xA900, "{rsp:?}");
    assert!(rsp.comment.contains("Pixel Data"), "{rsp:?}");

    // the command names a SOP class other than the presentation context's
    let rsp = scu.store(CT_PC, 8, MR, good, &whole, 8192);
    assert_eq!(rsp.status, 0x0122, "{rsp:?}");

    // the data set says MR while the request says CT
    let as_mr = scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, good);
        scu::set_text(obj, tags::SOP_CLASS_UID, VR::UI, MR);
    });
    let rsp = scu.store(CT_PC, 9, CT, good, &as_mr, 8192);
    assert_eq!(rsp.status, 0xA900, "{rsp:?}");
    assert!(rsp.comment.contains("SOP Class UID"), "{rsp:?}");

    assert!(
        daemon.stored_files().is_empty(),
        "nothing refused may be stored"
    );
    // and the same association still stores a good instance
    let rsp = scu.store(CT_PC, 10, CT, good, &whole, 8192);
    assert_eq!((rsp.message_id, rsp.status), (10, 0), "{rsp:?}");
    scu.release();
    assert_eq!(daemon.stored_files().len(), 1);
    assert_healthy(&mut daemon);
}

#[test]
fn unknown_sop_classes_are_declined_per_context_and_the_rest_accepted() {
    let daemon = Daemon::start();
    let scu = RawScu::associate(
        daemon.dicom,
        &[
            ("1.2.3.4.5.6.7", &[EXPLICIT_LE]),
            (CT, &[EXPLICIT_LE]),
            (CT, &["1.2.3.999"]),
        ],
    )
    .unwrap();
    // 1: abstract syntax not supported, 3: accepted, 5: no supported transfer syntax
    assert_eq!(scu.accepted, vec![(1, false), (3, true), (5, false)]);
    scu.release();
}

/// DCMTK's own account of the negotiation: every context it proposed comes
/// back in the A-ASSOCIATE-AC with a result, and every storage class it
/// proposes is accepted.
#[test]
fn dcmtk_storescu_proposing_every_class_gets_every_context_answered() {
    let daemon = Daemon::start();
    let out = daemon.storescu(&["-d"], &[ct_sample()]);
    assert!(out.status.success(), "{}", common::text(&out));
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let section = |name: &str| -> String {
        let start = log
            .find(&format!("BEGIN {name}"))
            .unwrap_or_else(|| panic!("{name} in {log}"));
        let end = start + log[start..].find(&format!("END {name}")).unwrap();
        log[start..end].to_string()
    };
    let ids = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once("Context ID:").map(|(_, rest)| rest))
            .map(|rest| rest.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let proposed = ids(&section("A-ASSOCIATE-RQ"));
    let answered = ids(&section("A-ASSOCIATE-AC"));
    assert!(proposed.len() > 100, "storescu proposed {}", proposed.len());
    assert_eq!(proposed, answered);
    let ac = section("A-ASSOCIATE-AC");
    assert_eq!(ac.matches("(Accepted)").count(), proposed.len(), "{ac}");
}

#[test]
fn oversized_pdu_is_aborted_and_others_keep_being_served() {
    let mut daemon =
        Daemon::start_with("[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nmax_pdu = 16384\n");
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    // a P-DATA-TF PDU that claims 100 MB
    let mut header = vec![0x04, 0x00];
    header.extend_from_slice(&100_000_000u32.to_be_bytes());
    scu.send_raw(&header);
    scu.send_raw(&[0u8; 1000]);
    match scu.recv() {
        Ok(Pdu::AbortRQ { .. }) | Err(_) => {}
        other => panic!("expected an abort, got {other:?}"),
    }
    assert!(eventually(Duration::from_secs(5), || daemon
        .log()
        .contains("aborting association")));
    assert_healthy(&mut daemon);
}

#[test]
fn garbage_on_the_port_is_dropped_and_others_keep_being_served() {
    let mut daemon = Daemon::start();
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0xFFu8; 4096][..],
        &[0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF][..],
    ] {
        let mut stream = scu::connect(daemon.dicom);
        let _ = stream.write_all(garbage);
        let mut sink = Vec::new();
        // the daemon closes the connection (it does not hang)
        let _ = std::io::Read::read_to_end(&mut stream, &mut sink);
    }
    assert_healthy(&mut daemon);
}

#[test]
fn abort_or_drop_mid_instance_leaves_nothing_and_only_a_log_line() {
    let mut daemon = Daemon::start();
    let dataset = ct_dataset("1.2.826.0.1.3680043.10.999.5");
    for how in ["abort", "drop"] {
        let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
        scu.send(&Pdu::PData {
            data: vec![RawScu::pdv(
                CT_PC,
                PDataValueType::Command,
                true,
                &scu::store_rq(1, CT, "1.2.826.0.1.3680043.10.999.5"),
            )],
        });
        scu.send(&Pdu::PData {
            data: vec![RawScu::pdv(
                CT_PC,
                PDataValueType::Data,
                false,
                &dataset[..20000],
            )],
        });
        if how == "abort" {
            scu.abort();
        } else {
            drop(scu);
        }
    }
    assert!(
        eventually(Duration::from_secs(5), || {
            let log = daemon.log();
            log.contains("aborted mid-instance") && log.contains("dropped mid-instance")
        }),
        "{}",
        daemon.log()
    );
    assert!(daemon.stored_files().is_empty());
    assert_healthy(&mut daemon);
}

#[test]
fn association_cap_answers_transient_local_limit_exceeded() {
    let mut daemon =
        Daemon::start_with("[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nmax_associations = 2\n");
    let first = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    let second = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    match RawScu::associate(daemon.dicom, STANDARD) {
        Err(Pdu::AssociationRJ(rj)) => {
            let bytes = scu::encode(&Pdu::AssociationRJ(rj));
            // result 2 (transient), source 3 (service provider, presentation), reason 2
            assert_eq!(&bytes[7..10], &[2, 3, 2], "{bytes:?}");
        }
        Err(other) => panic!("expected A-ASSOCIATE-RJ, got {other:?}"),
        Ok(_) => panic!("third association accepted over the cap"),
    }
    first.release();
    // a slot is free again
    assert!(eventually(Duration::from_secs(5), || RawScu::associate(
        daemon.dicom,
        STANDARD
    )
    .map(|s| s.release())
    .is_ok()));
    second.release();
    assert_healthy(&mut daemon);
}

#[test]
fn called_and_calling_ae_titles_are_checked_with_the_right_reasons() {
    let daemon = Daemon::start_with(
        "[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nallowed_calling_aes = [\"CT01\", \"PACS\"]\n",
    );
    let reason = |called: &str, calling: &str| match RawScu::associate_as(
        daemon.dicom,
        called,
        calling,
        STANDARD,
    ) {
        Err(Pdu::AssociationRJ(rj)) => {
            let bytes = scu::encode(&Pdu::AssociationRJ(rj));
            Some((bytes[7], bytes[8], bytes[9]))
        }
        Ok(scu) => {
            scu.release();
            None
        }
        Err(other) => panic!("{other:?}"),
    };
    assert_eq!(reason("PUSHGATE", "CT01"), None);
    // permanent, service user, calling AE not recognized
    assert_eq!(reason("PUSHGATE", "INTRUDER"), Some((1, 1, 3)));
    // permanent, service user, called AE not recognized
    assert_eq!(reason("SOMEONE", "CT01"), Some((1, 1, 7)));
    // DCMTK sees the same
    let out = daemon.echoscu(&["-aec", "PUSHGATE", "-aet", "INTRUDER"]);
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("Calling AE Title Not Recognized"),
        "{}",
        common::text(&out)
    );
}

#[test]
fn a_repeated_sop_instance_replaces_the_old_one_even_across_series() {
    let daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    let sop = "1.2.826.0.1.3680043.10.999.6";
    let first = scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, sop);
        scu::set_text(obj, tags::SERIES_DESCRIPTION, VR::LO, "first");
    });
    assert_eq!(scu.store(CT_PC, 1, CT, sop, &first, 65000).status, 0);
    let second = scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, sop);
        scu::set_text(obj, tags::SERIES_DESCRIPTION, VR::LO, "second");
    });
    assert_eq!(scu.store(CT_PC, 2, CT, sop, &second, 65000).status, 0);
    let files = daemon.stored_files();
    assert_eq!(files.len(), 1);
    assert_eq!(common::dataset_bytes(&files[0]), second);
    // now under another series of the same study: the old file goes
    let moved = scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, sop);
        scu::set_text(
            obj,
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.999.77",
        );
    });
    assert_eq!(scu.store(CT_PC, 3, CT, sop, &moved, 65000).status, 0);
    scu.release();
    let files = daemon.stored_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .to_string_lossy()
            .contains("1.2.826.0.1.3680043.10.999.77")
    );
    let studies = daemon.studies();
    assert_eq!(studies[0]["num_instances"], 1);
    assert_eq!(studies[0]["num_series"], 1);
}

#[test]
fn idle_and_stalled_associations_are_ended_and_nothing_half_written_stays() {
    let mut daemon = Daemon::start_with(
        "[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\ntimeout = \"1s\"\nidle_timeout = \"2s\"\n",
    );
    let mut idle = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    let mut stalled = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    stalled.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            CT_PC,
            PDataValueType::Command,
            true,
            &scu::store_rq(1, CT, "1.2.826.0.1.3680043.10.999.8"),
        )],
    });
    stalled.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            CT_PC,
            PDataValueType::Data,
            false,
            &ct_dataset("1.2.826.0.1.3680043.10.999.8")[..5000],
        )],
    });
    let started = std::time::Instant::now();
    assert!(matches!(stalled.recv(), Ok(Pdu::AbortRQ { .. }) | Err(_)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(idle.recv(), Ok(Pdu::AbortRQ { .. }) | Err(_)));
    let log = daemon.log();
    assert!(
        log.contains("stalled mid-message") && log.contains("idle for"),
        "{log}"
    );
    assert!(daemon.stored_files().is_empty());
    assert_healthy(&mut daemon);
}

/// Transfer syntaxes DCMTK 3.6.7 cannot send (JPEG 2000 needs a commercial
/// module, HTJ2K and JPEG XL are newer than it): an encapsulated data set in
/// each is stored exactly as received.
#[test]
fn jpeg_2000_htj2k_and_jpeg_xl_data_sets_are_stored_as_received() {
    use dicom_core::value::{PixelFragmentSequence, Value};
    let syntaxes = [
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
        "1.2.840.10008.1.2.4.110",
    ];
    let contexts: Vec<(&str, &[&str])> = syntaxes
        .iter()
        .map(|ts| (CT, std::slice::from_ref(ts)))
        .collect();
    let daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, &contexts).unwrap();
    assert!(scu.accepted.iter().all(|(_, ok)| *ok), "{:?}", scu.accepted);
    for (i, ts) in syntaxes.iter().enumerate() {
        let sop = format!("1.2.826.0.1.3680043.10.999.20.{i}");
        // a J2K-looking codestream (SOC, SIZ …); intake does not decode
        let fragment: Vec<u8> = [0xFF, 0x4F, 0xFF, 0x51]
            .iter()
            .copied()
            .chain((0..3000u32).map(|n| n as u8))
            .collect();
        let dataset = scu::dataset_from(&ct_sample(), |obj| {
            scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, &sop);
            obj.put(dicom_core::DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::from(PixelFragmentSequence::new(vec![], vec![fragment.clone()])),
            ));
        });
        let rsp = scu.store((2 * i + 1) as u8, i as u16 + 1, CT, &sop, &dataset, 4096);
        assert_eq!(rsp.status, 0, "{ts}: {rsp:?}");
        let stored = daemon
            .stored_files()
            .into_iter()
            .find(|f| common::sop_instance(f) == sop)
            .unwrap();
        assert_eq!(common::transfer_syntax(&stored), *ts);
        assert_eq!(common::dataset_bytes(&stored), dataset, "{ts}");
    }
    scu.release();
}

#[test]
fn a_command_claiming_gigabytes_is_refused_without_allocating_them() {
    let mut daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    // (0000,0902) LO declaring 4 GiB, in a 20-byte command fragment
    let mut command = vec![0x00, 0x00, 0x02, 0x09];
    command.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    command.extend_from_slice(&[0u8; 12]);
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            ECHO_PC,
            PDataValueType::Command,
            true,
            &command,
        )],
    });
    assert!(matches!(scu.recv(), Ok(Pdu::AbortRQ { .. }) | Err(_)));
    assert!(
        daemon.peak_rss() < 200 * 1024 * 1024,
        "peak RSS {} MB",
        daemon.peak_rss() >> 20
    );
    assert!(eventually(Duration::from_secs(5), || daemon
        .log()
        .contains("declares 4294967280 bytes")));
    assert_healthy(&mut daemon);
}

#[test]
fn out_of_sequence_fragments_end_the_association_and_nothing_else() {
    let mut daemon = Daemon::start();
    let sop = "1.2.826.0.1.3680043.10.999.30";
    let dataset = ct_dataset(sop);
    // data before any command
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            CT_PC,
            PDataValueType::Data,
            true,
            &dataset[..100],
        )],
    });
    assert!(matches!(scu.recv(), Ok(Pdu::AbortRQ { .. }) | Err(_)));
    // a context that was not accepted
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            7,
            PDataValueType::Command,
            true,
            &scu::store_rq(1, CT, sop),
        )],
    });
    assert!(matches!(scu.recv(), Ok(Pdu::AbortRQ { .. }) | Err(_)));
    // a new command in the middle of a data set
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            CT_PC,
            PDataValueType::Command,
            true,
            &scu::store_rq(1, CT, sop),
        )],
    });
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            CT_PC,
            PDataValueType::Data,
            false,
            &dataset[..1000],
        )],
    });
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            CT_PC,
            PDataValueType::Command,
            true,
            &scu::store_rq(2, CT, sop),
        )],
    });
    assert!(matches!(scu.recv(), Ok(Pdu::AbortRQ { .. }) | Err(_)));
    let log = daemon.log();
    for reason in [
        "Data fragment out of sequence",
        "not accepted",
        "Command fragment out of sequence",
    ] {
        assert!(log.contains(reason), "{reason}: {log}");
    }
    assert!(daemon.stored_files().is_empty());
    assert_healthy(&mut daemon);
}

#[test]
fn other_dimse_requests_get_unrecognized_operation_with_their_message_id() {
    let daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    // C-FIND-RQ (0x0020) with an identifier, on the CT context
    let command = scu::command_set(0x0020, 77, CT, None, true);
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(CT_PC, PDataValueType::Command, true, &command)],
    });
    scu.send(&Pdu::PData {
        data: vec![RawScu::pdv(
            CT_PC,
            PDataValueType::Data,
            true,
            &[0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0],
        )],
    });
    let rsp = scu.response();
    assert_eq!(
        (rsp.command_field, rsp.message_id, rsp.status),
        (0x8020, 77, 0x0211),
        "{rsp:?}"
    );
    // and the association still works
    assert_eq!(scu.echo(ECHO_PC, 78).status, 0);
    scu.release();
}

/// Error Comments quote values from the data set; whatever their character
/// set, the response is plain ASCII and the association survives.
#[test]
fn non_latin1_values_in_an_error_comment_do_not_break_the_response() {
    let mut daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    let sop = "1.2.826.0.1.3680043.10.999.31";
    let mut dataset = scu::dataset_from(&ct_sample(), |obj| {
        scu::set_text(obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        scu::set_text(obj, tags::SOP_INSTANCE_UID, VR::UI, sop);
        scu::set_text(obj, tags::STUDY_INSTANCE_UID, VR::UI, "1.2.XXX.3");
    });
    // UTF-8 "€" in place of XXX (same length); no encoder would write it
    let at = dataset.windows(3).position(|w| w == b"XXX").unwrap();
    dataset[at..at + 3].copy_from_slice("€".as_bytes());
    let rsp = scu.store(CT_PC, 5, CT, sop, &dataset, 16384);
    assert_eq!(rsp.status, 0xA900, "{rsp:?}");
    assert!(
        rsp.comment.is_ascii() && rsp.comment.contains("Study Instance UID"),
        "{rsp:?}"
    );
    assert_eq!(scu.echo(ECHO_PC, 6).status, 0);
    scu.release();
    assert_healthy(&mut daemon);
}

/// Half a million empty sequence items (4 MB on the wire) must not become
/// gigabytes of memory.
#[test]
fn an_item_bomb_is_refused_in_bounded_memory() {
    let mut daemon = Daemon::start();
    let mut scu = RawScu::associate(daemon.dicom, STANDARD).unwrap();
    let sop = "1.2.826.0.1.3680043.10.999.32";
    let mut dataset = ct_dataset(sop);
    // prepend (0008,1115) SQ of empty items: tags must ascend, and (0008,1115)
    // sorts before most of a CT header, so splice it in at its place
    let mut bomb = vec![
        0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    for _ in 0..500_000 {
        bomb.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    }
    bomb.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    let at = dataset
        .windows(4)
        .position(|w| w == [0x10, 0x00, 0x10, 0x00])
        .unwrap();
    dataset.splice(at..at, bomb);
    let rsp = scu.store(CT_PC, 1, CT, sop, &dataset, 65000);
    assert_eq!(rsp.status, 0xC000, "{rsp:?}");
    assert!(rsp.comment.contains("too complex"), "{rsp:?}");
    scu.release();
    assert!(
        daemon.peak_rss() < 150 * 1024 * 1024,
        "peak RSS {} MB",
        daemon.peak_rss() >> 20
    );
    assert_healthy(&mut daemon);
}
