//! Admission to the C-STORE SCP under attack (issue #12, item 8): TCP
//! connections that never send an A-ASSOCIATE-RQ, PDUs dribbled a few bytes
//! at a time, one address taking every slot. The attacker connects from
//! 127.0.0.2 (its socket bound there); the modality is DCMTK's storescu from
//! 127.0.0.1 (it cannot choose its source address). Each test ends with the
//! modality getting in.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::scu::{self, CT, EXPLICIT_LE, IMPLICIT_LE, RawScu, VERIFICATION};
use common::{Daemon, eventually};
use dicom_ul::pdu::Pdu;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const CONTEXTS: &[(&str, &[&str])] = &[(VERIFICATION, &[IMPLICIT_LE]), (CT, &[EXPLICIT_LE])];

fn ct_file() -> std::path::PathBuf {
    common::samples().join("ct-phantom/CT000011.dcm")
}

/// The modality stores an instance and hears success.
fn modality_stores(daemon: &Daemon) {
    let out = daemon.storescu(&[], &[ct_file()]);
    assert!(
        out.status.success(),
        "storescu from 127.0.0.1: {}\n{}",
        common::text(&out),
        daemon.log()
    );
}

/// Whether the daemon has closed `stream` (EOF or reset), without waiting.
fn closed_by_daemon(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = match (&*stream).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// Waits (up to `limit`) for the daemon to end `stream`; returns when it
/// did, or None if it still had not.
fn ended_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return Some(started.elapsed()),
            // an A-ABORT or A-ASSOCIATE-RJ may come first
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// As many silent connections as there are association slots, all from one
/// address: before the fix they took every slot for `dicom.timeout` (60 s).
#[test]
fn silent_connections_from_one_address_leave_intake_open() {
    let daemon = Daemon::start();
    let held: Vec<TcpStream> = (0..64)
        .map(|_| scu::connect_from(ATTACKER, daemon.dicom))
        .collect();
    // the daemon has accepted them all
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    modality_stores(&daemon);
    // within the request deadline (5 s): the silent ones are still there
    assert!(started.elapsed() < Duration::from_secs(3));
    let open = held.iter().filter(|s| !closed_by_daemon(s)).count();
    assert!(
        open >= 16,
        "only {open} silent connections were still open while storescu stored"
    );
    assert_eq!(daemon.instance_count(), 1);
}

/// No complete A-ASSOCIATE-RQ within `dicom.request_timeout` (5 s) of the
/// TCP accept closes the connection: silent ones, and one that dribbles its
/// request a byte at a time. Before the fix the wait was `dicom.timeout`
/// (60 s).
#[test]
fn connections_without_a_request_are_closed_at_the_request_deadline() {
    let daemon = Daemon::start();
    let mut silent: Vec<TcpStream> = (0..3)
        .map(|_| scu::connect_from(ATTACKER, daemon.dicom))
        .collect();
    let mut dribbler = scu::connect_from(ATTACKER, daemon.dicom);
    let accepted = Instant::now();
    let request = scu::encode(&scu::associate_rq("PUSHGATE", "SLOW", CONTEXTS));
    let mut writer = dribbler.try_clone().unwrap();
    let dribbling = std::thread::spawn(move || {
        for byte in request {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    for stream in silent.iter_mut().chain(std::iter::once(&mut dribbler)) {
        let limit = Duration::from_secs(10).saturating_sub(accepted.elapsed());
        assert!(
            ended_within(stream, limit).is_some(),
            "still open {:?} after accept:\n{}",
            accepted.elapsed(),
            daemon.log()
        );
        let at = accepted.elapsed();
        assert!(
            (Duration::from_millis(4500)..Duration::from_secs(8)).contains(&at),
            "closed {at:?} after accept"
        );
    }
    dribbling.join().unwrap();
    assert!(
        eventually(Duration::from_secs(2), || daemon
            .log()
            .contains("no complete A-ASSOCIATE-RQ within 5s")),
        "{}",
        daemon.log()
    );
    modality_stores(&daemon);
}

/// A PDU, once begun, must be complete within `dicom.timeout`, whether the
/// association was idle (allowed to wait `dicom.idle_timeout` for the next
/// PDU) or mid-message. Before the fix an idle association could take
/// `idle_timeout` (5 min) to finish a PDU, three bytes every 1.6 s.
#[test]
fn a_dribbled_pdu_is_aborted_at_the_pdu_deadline() {
    let daemon =
        Daemon::start_with("[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\ntimeout = \"2s\"\n");
    for mid_message in [false, true] {
        let mut scu = RawScu::associate_from(ATTACKER, daemon.dicom, CONTEXTS).unwrap();
        if mid_message {
            scu.send(&Pdu::PData {
                data: vec![RawScu::pdv(
                    3,
                    dicom_ul::pdu::PDataValueType::Command,
                    false,
                    &scu::store_rq(1, CT, "1.2.826.0.1.3680043.10.999.40")[..20],
                )],
            });
        }
        // a P-DATA-TF of 1000 bytes, three bytes every 0.8 x timeout
        let mut pdu = vec![0x04, 0x00];
        pdu.extend_from_slice(&1000u32.to_be_bytes());
        pdu.extend_from_slice(&[0u8; 1000]);
        let mut writer = scu.stream.try_clone().unwrap();
        let dribbling = std::thread::spawn(move || {
            for chunk in pdu.chunks(3) {
                if writer.write_all(chunk).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1600));
            }
        });
        let ended = ended_within(&mut scu.stream, Duration::from_secs(8));
        assert!(
            ended.is_some_and(|at| at < Duration::from_secs(4)),
            "mid_message={mid_message}: association ended {ended:?} after the PDU began\n{}",
            daemon.log()
        );
        drop(scu);
        dribbling.join().unwrap();
    }
    let log = daemon.log();
    assert_eq!(
        log.matches("PDU not complete within 2s").count(),
        2,
        "{log}"
    );
    modality_stores(&daemon);
}

/// One address gets `dicom.max_associations_per_address` (16 of the 64 by
/// default); beyond it A-ASSOCIATE-RJ transient, service provider
/// (presentation), local limit exceeded, while others still get in.
#[test]
fn one_address_gets_its_share_of_the_slots_then_a_transient_rejection() {
    let daemon = Daemon::start();
    let held: Vec<RawScu> = (0..16)
        .map(|i| {
            RawScu::associate_from(ATTACKER, daemon.dicom, CONTEXTS)
                .unwrap_or_else(|rj| panic!("association {i} of 16: {rj:?}"))
        })
        .collect();
    match RawScu::associate_from(ATTACKER, daemon.dicom, CONTEXTS) {
        Err(Pdu::AssociationRJ(rj)) => {
            let bytes = scu::encode(&Pdu::AssociationRJ(rj));
            // result 2 (transient), source 3 (service provider, presentation), reason 2
            assert_eq!(&bytes[7..10], &[2, 3, 2], "{bytes:?}");
        }
        Err(other) => panic!("expected A-ASSOCIATE-RJ, got {other:?}"),
        Ok(_) => panic!("a 17th association from one address was accepted"),
    }
    assert!(
        eventually(Duration::from_secs(2), || daemon
            .log()
            .contains("dicom.max_associations_per_address")),
        "{}",
        daemon.log()
    );
    modality_stores(&daemon);
    // a released association frees the address's slot
    held.into_iter().next().unwrap().release();
    assert!(eventually(Duration::from_secs(5), || {
        RawScu::associate_from(ATTACKER, daemon.dicom, CONTEXTS).is_ok()
    }));
}

/// On a dual-stack listener an IPv4 client arrives as ::ffff:a.b.c.d; it
/// counts (and is logged) as the IPv4 address it is.
#[test]
fn ipv4_mapped_peers_count_as_their_ipv4_address() {
    let daemon = Daemon::start_with(
        "[dicom]\nlisten = \"[::]:DICOM_PORT\"\nmax_associations_per_address = 2\n",
    );
    let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), daemon.dicom.port());
    let _held: Vec<RawScu> = (0..2)
        .map(|_| RawScu::associate_from(ATTACKER, v4, CONTEXTS).unwrap())
        .collect();
    assert!(matches!(
        RawScu::associate_from(ATTACKER, v4, CONTEXTS),
        Err(Pdu::AssociationRJ(_))
    ));
    assert!(
        RawScu::associate(v4, CONTEXTS).is_ok(),
        "127.0.0.1 is someone else"
    );
    // the refusal is logged as the rejection goes out: wait for the line
    let logged = |log: &str| {
        log.lines()
            .find(|l| l.contains("dicom.max_associations_per_address"))
            .map(str::to_string)
    };
    assert!(
        common::eventually(std::time::Duration::from_secs(5), || logged(&daemon.log())
            .is_some()),
        "{}",
        daemon.log()
    );
    let line = logged(&daemon.log()).unwrap();
    assert!(
        line.contains("127.0.0.2") && !line.contains("::ffff:"),
        "{line}"
    );
}
