//! Opening a package: decrypt with our key, check the sender's signature.
//!
//! The decrypted bytes stream out as they arrive (unverified, see the
//! module docs); the verdict is reached at the end of the message.
//! Sequoia's helper callbacks (`decrypt`, `inspect`, `check`) record what
//! went wrong in a shared [`Report`], so that the caller gets a precise
//! [`PgpError`] from [`open`], from `read` (inside the `io::Error`) and
//! from [`Opened::finish`], not just Sequoia's generic text.

use std::io::{self, Read};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use sequoia_openpgp as pgp;

use pgp::crypto::SessionKey;
use pgp::packet::{PKESK, Packet, SKESK};
use pgp::parse::stream::{
    DecryptionHelper, Decryptor, DecryptorBuilder, MessageLayer, MessageStructure,
    VerificationHelper,
};
use pgp::parse::{PacketParser, Parse};
use pgp::types::SymmetricAlgorithm;
use pgp::{Cert, KeyHandle};

use super::{GoodSignature, OwnKey, POLICY, PgpError, hex_fingerprint, judge_signatures};

/// How much decrypted data Sequoia holds back (and keeps in memory) so
/// that short messages are verified before any byte is released.
const HOLD_BACK: usize = 256 * 1024;

/// What a successfully opened package was: who signed it, when, and the
/// file name its literal data carried (the sender's claim; never use it as
/// a path without sanitizing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Primary key fingerprint of the sender's certificate.
    pub signer: String,
    /// Fingerprint of the (sub)key that made the signature.
    pub signing_key: String,
    /// The signature's creation time.
    pub signed_at: SystemTime,
    /// The literal data packet's file name (lossy UTF-8; empty if none).
    pub file_name: String,
    /// Plaintext bytes handed out by `read` (and drained by `finish`).
    pub bytes: u64,
}

/// A package being decrypted. `Read` yields the literal data, unverified
/// until [`Opened::finish`] returns `Ok`.
pub struct Opened {
    decryptor: Decryptor<'static, OpenHelper>,
    report: Arc<Mutex<Report>>,
    /// The first error; Sequoia's decryptor must not be read after one.
    failed: Option<PgpError>,
    bytes: u64,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("bytes", &self.bytes)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Starts decrypting a package from `input` that must be encrypted to
/// `own` and signed by `sender`. Fails at once if the message is not
/// encrypted to us, not encrypted at all, malformed, or (for messages
/// shorter than 256 KiB, which are checked completely here) anything
/// [`Opened::finish`] would refuse.
pub fn open<R: Read + Send + Sync + 'static>(
    own: &OwnKey,
    sender: &Cert,
    input: R,
) -> Result<Opened, PgpError> {
    let report = Arc::new(Mutex::new(Report::default()));
    let helper = OpenHelper {
        own: own.clone(),
        sender: sender.clone().strip_secret_key_material(),
        report: Arc::clone(&report),
    };
    let decryptor = DecryptorBuilder::from_reader(input)
        .map(|b| b.buffer_size(HOLD_BACK))
        .and_then(|b| b.with_policy(&POLICY, None, helper));
    match decryptor {
        Ok(decryptor) => Ok(Opened {
            decryptor,
            report,
            failed: None,
            bytes: 0,
        }),
        Err(e) => Err(lock(&report)
            .error
            .take()
            .unwrap_or_else(|| PgpError::from_openpgp(&e))),
    }
}

impl Opened {
    /// Reads (and discards) whatever the caller did not read, then returns
    /// the verdict: `Ok` only if the message was encrypted to us with its
    /// integrity intact, had exactly the structure [`super::seal`] makes,
    /// and every signature is good and by the expected sender.
    pub fn finish(mut self) -> Result<Verified, PgpError> {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    return Err(self
                        .failed
                        .take()
                        .unwrap_or_else(|| PgpError::Read(e.to_string())));
                }
            }
        }
        if !self.decryptor.message_processed() {
            return Err(PgpError::Malformed("the message did not end".into()));
        }
        let mut report = lock(&self.report);
        if let Some(e) = report.error.take() {
            return Err(e);
        }
        let signature = report.signature.take().ok_or_else(|| {
            PgpError::Malformed("the message ended before its signatures were checked".into())
        })?;
        Ok(Verified {
            signer: hex_fingerprint(&self.decryptor.helper_ref().sender),
            signing_key: signature.signing_key,
            signed_at: signature.created,
            file_name: report.file_name.take().unwrap_or_default(),
            bytes: self.bytes,
        })
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        let precise = lock(&self.report)
            .error
            .take()
            .unwrap_or_else(|| PgpError::from_io(&e));
        let kind = match precise {
            PgpError::Read(_) => e.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        let io_error = io::Error::new(kind, precise.duplicate());
        self.failed = Some(precise);
        io_error
    }
}

impl Read for Opened {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.duplicate()));
        }
        match self.decryptor.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// What the helper callbacks found out.
#[derive(Default)]
struct Report {
    /// The first precise error a callback raised.
    error: Option<PgpError>,
    decrypted: bool,
    file_name: Option<String>,
    signature: Option<GoodSignature>,
}

fn lock(report: &Mutex<Report>) -> MutexGuard<'_, Report> {
    report
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct OpenHelper {
    own: OwnKey,
    sender: Cert,
    report: Arc<Mutex<Report>>,
}

impl OpenHelper {
    /// Records the first error and hands Sequoia one to abort with.
    fn fail(&self, e: PgpError) -> anyhow::Error {
        let message = e.to_string();
        let mut report = lock(&self.report);
        if report.error.is_none() {
            report.error = Some(e);
        }
        anyhow::anyhow!(message)
    }
}

impl VerificationHelper for OpenHelper {
    fn inspect(&mut self, pp: &PacketParser) -> pgp::Result<()> {
        let depth = pp.recursion_depth();
        match &pp.packet {
            Packet::CompressedData(c) => Err(self.fail(PgpError::UnexpectedStructure(format!(
                "compressed data ({}); packages are not compressed",
                c.algo()
            )))),
            Packet::SEIP(_) if depth > 0 => {
                Err(self.fail(PgpError::UnexpectedStructure("nested encryption".into())))
            }
            Packet::Literal(literal) => {
                if !lock(&self.report).decrypted {
                    return Err(self.fail(PgpError::NotEncrypted));
                }
                if depth != 1 {
                    return Err(self.fail(PgpError::UnexpectedStructure(format!(
                        "literal data at nesting depth {depth}, expected 1"
                    ))));
                }
                lock(&self.report).file_name = literal
                    .filename()
                    .map(|n| String::from_utf8_lossy(n).into_owned());
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn get_certs(&mut self, _ids: &[KeyHandle]) -> pgp::Result<Vec<Cert>> {
        Ok(vec![self.sender.clone()])
    }

    fn check(&mut self, structure: MessageStructure) -> pgp::Result<()> {
        let structure_err = |s: &str| Err(PgpError::UnexpectedStructure(s.into()));
        let mut layers = structure.iter();
        let verdict = match layers.next() {
            Some(MessageLayer::Encryption { .. }) => match (layers.next(), layers.next()) {
                (Some(MessageLayer::SignatureGroup { results }), None) => judge_signatures(results),
                (None, _) => Err(PgpError::Unsigned),
                (Some(MessageLayer::SignatureGroup { .. }), Some(_)) => {
                    structure_err("more than one signature group")
                }
                (Some(MessageLayer::Compression { .. }), _) => {
                    structure_err("compressed data; packages are not compressed")
                }
                (Some(MessageLayer::Encryption { .. }), _) => structure_err("nested encryption"),
            },
            Some(MessageLayer::Compression { .. }) => {
                structure_err("compression outside encryption")
            }
            Some(MessageLayer::SignatureGroup { .. }) | None => Err(PgpError::NotEncrypted),
        };
        match verdict {
            Ok(signature) => {
                lock(&self.report).signature = Some(signature);
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl DecryptionHelper for OpenHelper {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> pgp::Result<Option<Cert>> {
        let keys = self.own.decryption_keys();
        let mut addressed_to_us = None;
        for pkesk in pkesks {
            let recipient = pkesk.recipient();
            for key in &keys {
                let ours = match &recipient {
                    None => true, // anonymous recipient: try every key
                    Some(handle) => handle.aliases(KeyHandle::from(key.fingerprint())),
                };
                if !ours {
                    continue;
                }
                let mut pair = key.clone().into_keypair()?;
                if let Some((algo, session_key)) = pkesk.decrypt(&mut pair, sym_algo)
                    && decrypt(algo, &session_key)
                {
                    lock(&self.report).decrypted = true;
                    return Ok(Some(self.own.cert().clone()));
                }
                if recipient.is_some() {
                    addressed_to_us = Some(key.fingerprint().to_hex());
                }
            }
        }
        if let Some(key) = addressed_to_us {
            return Err(self.fail(PgpError::SessionKey { key }));
        }
        let mut recipients: Vec<String> = pkesks
            .iter()
            .map(|p| {
                p.recipient()
                    .map_or_else(|| "anonymous recipient".to_owned(), |h| h.to_hex())
            })
            .collect();
        if !skesks.is_empty() {
            recipients.push(format!("{} password(s)", skesks.len()));
        }
        Err(self.fail(PgpError::NotForUs {
            ours: keys.iter().map(|k| k.fingerprint().to_hex()).collect(),
            recipients,
        }))
    }
}
