//! Unit tests: keys, packages and receipts, Sequoia against itself.
//! GnuPG and sq interoperability is in `tests_interop.rs`.

use std::io::{Cursor, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use sequoia_openpgp as pgp;

use pgp::Packet;
use pgp::cert::prelude::*;
use pgp::parse::{PacketParser, PacketParserResult, Parse};
use pgp::serialize::SerializeInto;
use pgp::serialize::stream::{Compressor, Encryptor, LiteralWriter, Message, Signer};
use pgp::types::{Features, KeyFlags};

use super::*;

/// A `Write` the test can read back after the sealer consumed it.
#[derive(Clone, Default)]
pub(super) struct SharedVec(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedVec {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn key(name: &str) -> OwnKey {
    OwnKey::generate(
        &format!("{name} <{name}@gw.example>"),
        KeyAlgorithm::Cv25519,
    )
    .unwrap()
}

pub(super) fn peer(k: &OwnKey) -> Cert {
    parse_peer_cert(&k.public_armored()).unwrap()
}

/// Deterministic, incompressible test data.
pub(super) fn data(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

pub(super) fn seal_bytes(own: &OwnKey, to: &Cert, plain: &[u8]) -> Vec<u8> {
    let out = SharedVec::default();
    let mut sealer = seal(own, to, "package.zip", out.clone()).unwrap();
    for chunk in plain.chunks(1 << 20) {
        sealer.write_all(chunk).unwrap();
    }
    sealer.finish().unwrap();
    out.0.lock().unwrap().clone()
}

/// Opens and reads everything; a read error must also fail `finish`.
pub(super) fn open_bytes(
    own: &OwnKey,
    sender: &Cert,
    msg: Vec<u8>,
) -> Result<(Vec<u8>, Verified), PgpError> {
    let mut opened = open(own, sender, Cursor::new(msg))?;
    let mut plain = Vec::new();
    let read = opened.read_to_end(&mut plain);
    let verdict = opened.finish();
    if let Err(e) = &read {
        assert!(verdict.is_err(), "read failed ({e}) but finish said Ok");
    }
    verdict.map(|v| (plain, v))
}

/// Top-level packets of a message: (PKESK versions, SEIPD version).
fn envelope(msg: &[u8]) -> (Vec<u8>, Option<u8>) {
    let mut pkesks = Vec::new();
    let mut seip = None;
    let mut ppr = PacketParser::from_bytes(msg).unwrap();
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            Packet::PKESK(p) => pkesks.push(p.version()),
            Packet::SEIP(s) => seip = Some(s.version()),
            _ => {}
        }
        ppr = pp.next().unwrap().1;
    }
    (pkesks, seip)
}

#[test]
fn round_trip_is_byte_identical_and_names_the_signer() {
    let (a, b) = (key("a"), key("b"));
    for len in [0, 1, 300 * 1024, 3 * 1024 * 1024 + 17] {
        let plain = data(len);
        let msg = seal_bytes(&a, &peer(&b), &plain);
        assert_eq!(envelope(&msg), (vec![3], Some(1)), "PKESKv3 + SEIPDv1");
        let (got, v) = open_bytes(&b, &peer(&a), msg).unwrap();
        assert!(got == plain, "plaintext differs at length {len}");
        assert_eq!(v.signer, a.fingerprint());
        assert_eq!(v.file_name, "package.zip");
        assert_eq!(v.bytes, len as u64);
        let signing = a.signer().unwrap().public().fingerprint().to_hex();
        assert_eq!(v.signing_key, signing);
    }
}

#[test]
fn finish_without_reading_drains_and_verifies() {
    let (a, b) = (key("a"), key("b"));
    let msg = seal_bytes(&a, &peer(&b), &data(2 << 20));
    let opened = open(&b, &peer(&a), Cursor::new(msg)).unwrap();
    assert_eq!(opened.finish().unwrap().bytes, 2 << 20);
}

#[test]
fn tampered_or_truncated_ciphertext_is_refused() {
    let (a, b) = (key("a"), key("b"));
    for len in [1000, 3 << 20] {
        let msg = seal_bytes(&a, &peer(&b), &data(len));
        for at in [msg.len() / 2, msg.len() - 30, msg.len() - 3] {
            let mut bad = msg.clone();
            bad[at] ^= 0x01;
            let r = open_bytes(&b, &peer(&a), bad);
            assert!(r.is_err(), "flip at {at} of {} accepted", msg.len());
            if at == msg.len() / 2 && len > 1000 {
                assert!(matches!(r, Err(PgpError::Tampered)), "{r:?}");
            }
        }
        let r = open_bytes(&b, &peer(&a), msg[..msg.len() - 40].to_vec());
        assert!(r.is_err(), "truncated message accepted");
    }
}

#[test]
fn read_error_then_finish_reports_the_precise_error() {
    let (a, b) = (key("a"), key("b"));
    let mut msg = seal_bytes(&a, &peer(&b), &data(2 << 20));
    let mid = msg.len() / 2;
    msg[mid] ^= 0x80;
    let mut opened = open(&b, &peer(&a), Cursor::new(msg)).unwrap();
    let err = std::io::copy(&mut opened, &mut std::io::sink()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("modified"), "{err}");
    // Reading again does not touch the decryptor (it would panic).
    assert!(opened.read(&mut [0; 16]).is_err());
    assert!(matches!(opened.finish(), Err(PgpError::Tampered)));
}

#[test]
fn wrong_signer_is_named() {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    for len in [10, 1 << 20] {
        let msg = seal_bytes(&c, &peer(&a), &data(len));
        match open_bytes(&a, &peer(&b), msg) {
            Err(PgpError::WrongSigner { found }) => {
                let c_signing = c.signer().unwrap().public().fingerprint().to_hex();
                assert_eq!(found, vec![c_signing]);
            }
            other => panic!("expected WrongSigner, got {other:?}"),
        }
    }
}

#[test]
fn not_encrypted_to_us_is_refused() {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let msg = seal_bytes(&a, &peer(&b), &data(100));
    match open_bytes(&c, &peer(&a), msg) {
        Err(e @ PgpError::NotForUs { .. }) => {
            assert!(e.to_string().contains("not encrypted to us"), "{e}")
        }
        other => panic!("expected NotForUs, got {other:?}"),
    }
}

/// Builds a message with Sequoia directly: optionally encrypted to
/// `to`, optionally compressed, optionally signed by `by`.
fn custom(to: Option<&Cert>, compress: bool, by: Option<&OwnKey>, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut m = Message::new(&mut out);
    let vc = to.map(|to| to.with_policy(&POLICY, None).unwrap());
    if let Some(vc) = &vc {
        let keys = vc.keys().key_flags(encryption_flags());
        m = Encryptor::for_recipients(m, keys).build().unwrap();
    }
    if compress {
        m = Compressor::new(m).build().unwrap();
    }
    if let Some(by) = by {
        m = Signer::new(m, by.signer().unwrap())
            .unwrap()
            .build()
            .unwrap();
    }
    let mut m = LiteralWriter::new(m).build().unwrap();
    m.write_all(plain).unwrap();
    m.finalize().unwrap();
    out
}

#[test]
fn unsigned_unencrypted_and_compressed_messages_are_refused() {
    let (a, b) = (key("a"), key("b"));
    for len in [10, 1 << 20] {
        let plain = data(len);
        let unsigned = custom(Some(&peer(&b)), false, None, &plain);
        let r = open_bytes(&b, &peer(&a), unsigned);
        assert!(matches!(r, Err(PgpError::Unsigned)), "{r:?}");

        let signed_only = custom(None, false, Some(&a), &plain);
        let r = open_bytes(&b, &peer(&a), signed_only);
        assert!(matches!(r, Err(PgpError::NotEncrypted)), "{r:?}");

        let compressed = custom(Some(&peer(&b)), true, Some(&a), &plain);
        let r = open_bytes(&b, &peer(&a), compressed);
        assert!(matches!(r, Err(PgpError::UnexpectedStructure(_))), "{r:?}");

        let good = custom(Some(&peer(&b)), false, Some(&a), &plain);
        assert!(open_bytes(&b, &peer(&a), good).is_ok());
    }
    let r = open_bytes(&b, &peer(&a), b"not OpenPGP at all".to_vec());
    assert!(matches!(r, Err(PgpError::Malformed(_))), "{r:?}");
}

#[test]
fn seipdv2_peer_gets_seipdv2_and_round_trips() {
    let a = key("a");
    let (cert, _) = CertBuilder::general_purpose(Some("v2 <v2@gw.example>"))
        .set_features(Features::sequoia())
        .unwrap()
        .generate()
        .unwrap();
    let v2 = OwnKey { cert };
    let plain = data(500_000);
    let msg = seal_bytes(&a, &peer(&v2), &plain);
    assert_eq!(envelope(&msg), (vec![6], Some(2)));
    assert!(open_bytes(&v2, &peer(&a), msg).unwrap().0 == plain);
}

#[test]
fn receipts_verify_and_modified_receipts_do_not() {
    let (a, b) = (key("a"), key("b"));
    let receipt = br#"{"package":"p1","status":"stored"}"#;
    let sig = sign_detached(&a, receipt).unwrap();
    assert!(sig.starts_with("-----BEGIN PGP SIGNATURE-----"));
    verify_detached(&peer(&a), receipt, &sig).unwrap();
    let r = verify_detached(&peer(&a), br#"{"package":"p1","status":"lost"}"#, &sig);
    assert!(matches!(r, Err(PgpError::BadSignature { .. })), "{r:?}");
    let r = verify_detached(&peer(&b), receipt, &sig);
    assert!(matches!(r, Err(PgpError::WrongSigner { .. })), "{r:?}");
    assert!(verify_detached(&peer(&a), receipt, "garbage").is_err());
}

#[test]
fn generated_key_has_the_promised_shape() {
    let a = key("a");
    let vc = a.cert().with_policy(&POLICY, None).unwrap();
    assert_eq!(a.cert().primary_key().key().version(), 4);
    assert_eq!(vc.features(), Some(Features::empty().set_seipdv1()));
    assert_eq!(
        vc.primary_key().key_flags(),
        Some(KeyFlags::empty().set_certification())
    );
    assert_eq!(vc.keys().subkeys().for_signing().count(), 1);
    let enc = vc.keys().subkeys().key_flags(encryption_flags()).count();
    assert_eq!(enc, 1);
    assert!(vc.primary_key().key_expiration_time().is_none());
    assert_eq!(a.fingerprint().len(), 40);
    assert!(
        a.fingerprint()
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
}

#[test]
fn public_armored_has_no_secrets() {
    let a = key("a");
    let armored = a.public_armored();
    assert!(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(!armored.contains("PRIVATE"));
    let cert = Cert::from_bytes(armored.as_bytes()).unwrap();
    assert!(!cert.is_tsk());
    assert_eq!(cert.fingerprint(), a.cert().fingerprint());
}

#[test]
fn load_or_create_creates_once_with_private_modes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay/key.pgp");
    let (k1, created) =
        OwnKey::load_or_create(&path, "gw <gw@example>", KeyAlgorithm::Cv25519).unwrap();
    assert!(created);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let (k2, created) = OwnKey::load_or_create(&path, "other", KeyAlgorithm::Rsa4096).unwrap();
    assert!(!created);
    assert_eq!(k1.fingerprint(), k2.fingerprint());
    assert!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count() == 1,
        "temp file left"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = OwnKey::load(&path);
    assert!(
        matches!(r, Err(PgpError::InsecureKeyFile { mode: 0o644, .. })),
        "{r:?}"
    );

    std::fs::write(dir.path().join("public.asc"), k1.public_armored()).unwrap();
    let public = dir.path().join("public.asc");
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = OwnKey::load(&public);
    assert!(matches!(r, Err(PgpError::KeyFile { .. })), "{r:?}");
}

#[test]
fn peer_certificates_are_checked() {
    let problem = |r: Result<Cert, PgpError>| match r {
        Err(PgpError::PeerCert { problem, .. }) => problem,
        other => panic!("expected PeerCert error, got {other:?}"),
    };
    let armor = |c: &Cert| String::from_utf8(c.armored().to_vec().unwrap()).unwrap();

    let (no_enc, _) = CertBuilder::new()
        .add_userid("x")
        .add_signing_subkey()
        .generate()
        .unwrap();
    assert_eq!(
        problem(parse_peer_cert(&armor(&no_enc))),
        "no valid encryption subkey"
    );

    let (no_sig, _) = CertBuilder::new()
        .add_userid("x")
        .add_transport_encryption_subkey()
        .generate()
        .unwrap();
    assert_eq!(
        problem(parse_peer_cert(&armor(&no_sig))),
        "no valid signing-capable key"
    );

    let (cert, rev) = CertBuilder::general_purpose(Some("x")).generate().unwrap();
    let revoked = cert.insert_packets(rev).unwrap().0;
    assert_eq!(problem(parse_peer_cert(&armor(&revoked))), "revoked");

    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let (expired, _) = CertBuilder::general_purpose(Some("x"))
        .set_creation_time(past)
        .set_validity_period(std::time::Duration::from_secs(3600))
        .generate()
        .unwrap();
    assert!(problem(parse_peer_cert(&armor(&expired))).starts_with("expired"));

    assert!(matches!(
        parse_peer_cert("hello"),
        Err(PgpError::CertParse(_))
    ));
    // A pasted secret key is accepted as its public part.
    let a = key("a");
    let tsk = String::from_utf8(a.cert().as_tsk().armored().to_vec().unwrap()).unwrap();
    assert!(!parse_peer_cert(&tsk).unwrap().is_tsk());
}

#[test]
fn key_algorithm_parses() {
    assert_eq!("cv25519".parse(), Ok(KeyAlgorithm::Cv25519));
    assert_eq!("Ed25519".parse(), Ok(KeyAlgorithm::Cv25519));
    assert_eq!("rsa4096".parse(), Ok(KeyAlgorithm::Rsa4096));
    assert_eq!("rsa".parse(), Ok(KeyAlgorithm::Rsa4096));
    assert!("dsa".parse::<KeyAlgorithm>().is_err());
    assert_eq!(KeyAlgorithm::default(), KeyAlgorithm::Cv25519);
}

/// A writer that takes `room` bytes, then fails like a full disk.
struct FullAfter {
    room: usize,
}

impl Write for FullAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_output_is_reported_with_its_cause_and_every_stage_ends() {
    let (a, b) = (key("a"), key("b"));
    let plain = data(20 << 20);
    // the disk fills early (while writing) and in the last bytes (while
    // finishing)
    let whole = seal_bytes(&a, &peer(&b), &plain).len();
    for room in [3 << 20, whole - 10] {
        let mut sealer = seal(&a, &peer(&b), "package.zip", FullAfter { room }).unwrap();
        let written = plain
            .chunks(1 << 20)
            .try_for_each(|chunk| sealer.write_all(chunk));
        let error = match written {
            Err(e) => e.to_string(),
            Ok(()) => sealer.finish().unwrap_err().to_string(),
        };
        assert!(
            error.contains("No space left on device"),
            "room {room}: {error}"
        );
    }
    // dropped without finish: returns (the stages are joined), no panic
    let sealer = seal(&a, &peer(&b), "package.zip", SharedVec::default()).unwrap();
    drop(sealer);
}
