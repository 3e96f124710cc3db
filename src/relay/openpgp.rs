//! OpenPGP for gateway push: our own key, peers' certificates, packages
//! (signed by us, then encrypted to the peer) and receipts (detached
//! signatures).
//!
//! Everything uses Sequoia under its [`StandardPolicy`] and produces
//! OpenPGP that GnuPG 2.2 and `sq` 0.27 read: v4 keys, SEIPDv1 (with MDC)
//! for peers that do not advertise SEIPDv2, AES-256, SHA-512, no
//! compression.
//!
//! # Packages are streams; their content is unverified until `finish`
//!
//! [`seal`] returns a [`Sealer`] to write the package's bytes into;
//! [`Sealer::finish`] writes the signature and closes the message.
//! [`open`] returns an [`Opened`] that yields the decrypted bytes as they
//! arrive, with memory bounded by a 256 KiB hold-back buffer however large
//! the message is. An OpenPGP signature and the SEIPDv1 integrity check
//! (MDC) can only be checked at the end of the message, so **bytes read
//! from an [`Opened`] are unverified**: the caller stages them (a temporary
//! file, a staging directory) and uses them only after [`Opened::finish`]
//! returned `Ok`. Any error (from `read` or from `finish`) means the whole
//! package must be discarded. Messages shorter than the hold-back buffer
//! are verified before the first byte is handed out.
//!
//! What [`Opened::finish`] accepts is exactly what [`seal`] produces: one
//! encryption layer (to one of our keys), inside it one signature group
//! whose signatures are all good and all by the expected sender, and the
//! literal data. Compressed, unencrypted, unsigned, doubly encrypted or
//! foreign-signed messages are refused with a precise [`PgpError`].

use std::io::{self, Write};
use std::path::PathBuf;

use sequoia_openpgp as pgp;

use pgp::Cert;
use pgp::cert::prelude::*;
use pgp::packet::key::{PublicParts, UnspecifiedRole};
use pgp::packet::{Key, Signature};
use pgp::parse::Parse;
use pgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationError, VerificationHelper,
};
use pgp::policy::StandardPolicy;
use pgp::serialize::stream::{Armorer, Message, Signer};
use pgp::types::{HashAlgorithm, KeyFlags, RevocationStatus};

mod key;
mod open;
mod seal;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_interop;

pub use key::{KeyAlgorithm, OwnKey};
pub use open::{Opened, Verified, open};
pub use seal::{Sealer, seal};

/// The one policy everything here is checked against.
pub(crate) static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// What went wrong, precisely enough to tell an operator (or a peer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgpError {
    /// A file or directory operation failed.
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The key file exists but is not a usable secret key.
    #[error("key file {}: {problem}", path.display())]
    KeyFile { path: PathBuf, problem: String },
    /// The key file may be read by other users; we refuse to use it.
    #[error(
        "key file {} is accessible by group or others (mode {mode:04o}); run `chmod 600` on it",
        path.display()
    )]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    /// Generating a key failed.
    #[error("generating the OpenPGP key failed: {0}")]
    Generate(String),
    /// Our own key cannot do what is asked of it.
    #[error("our key {fingerprint}: {problem}")]
    OwnKey {
        fingerprint: String,
        problem: String,
    },
    /// The text is not one OpenPGP certificate.
    #[error("not an OpenPGP certificate: {0}")]
    CertParse(String),
    /// A peer's certificate is unusable (revoked, expired, no keys...).
    #[error("peer certificate {fingerprint}: {problem}")]
    PeerCert {
        fingerprint: String,
        problem: String,
    },
    /// Writing the message failed (the sink's error, or a serializer's).
    #[error("writing the OpenPGP message failed: {0}")]
    Write(String),
    /// Reading the message's bytes failed (the source's I/O error).
    #[error("reading the OpenPGP message failed: {0}")]
    Read(String),
    /// The message carries no encryption layer.
    #[error("message is not encrypted")]
    NotEncrypted,
    /// None of the message's recipients is one of our keys.
    #[error(
        "message is not encrypted to us (our encryption keys: {ours:?}; message is for: {recipients:?})"
    )]
    NotForUs {
        ours: Vec<String>,
        recipients: Vec<String>,
    },
    /// The session key addressed to our key could not be decrypted.
    #[error("could not decrypt the session key addressed to our key {key}")]
    SessionKey { key: String },
    /// The integrity check (MDC or AEAD tag) failed: modified or truncated.
    #[error("message was modified or truncated (integrity check failed)")]
    Tampered,
    /// Not a well-formed OpenPGP message.
    #[error("malformed OpenPGP message: {0}")]
    Malformed(String),
    /// Well-formed, but not the structure we produce and accept.
    #[error("unexpected message structure: {0}")]
    UnexpectedStructure(String),
    /// Rejected by the standard policy (weak algorithm, ...).
    #[error("rejected by policy: {0}")]
    Policy(String),
    /// The message (or receipt) carries no signature.
    #[error("message is not signed")]
    Unsigned,
    /// Signed, but by someone other than the expected sender.
    #[error("signed by {found:?}, not by the expected sender")]
    WrongSigner { found: Vec<String> },
    /// A signature by the expected sender does not verify.
    #[error("bad signature: {reason}")]
    BadSignature { reason: String },
}

impl PgpError {
    /// Classifies an error from Sequoia's parser or decryptor.
    pub(crate) fn from_openpgp(e: &anyhow::Error) -> PgpError {
        if let Some(p) = e.downcast_ref::<PgpError>() {
            return p.duplicate();
        }
        if let Some(oe) = e.downcast_ref::<pgp::Error>() {
            return match oe {
                pgp::Error::ManipulatedMessage => PgpError::Tampered,
                pgp::Error::PolicyViolation(..) => PgpError::Policy(oe.to_string()),
                _ => PgpError::Malformed(format!("{e:#}")),
            };
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return PgpError::from_io(io);
        }
        PgpError::Malformed(format!("{e:#}"))
    }

    /// Classifies an `io::Error` from Sequoia's reader: the source's own
    /// I/O errors, or Sequoia's errors wrapped (as `Other`, in a box
    /// that cannot be downcast; hence the comparison of messages).
    pub(crate) fn from_io(e: &io::Error) -> PgpError {
        if let Some(p) = e.get_ref().and_then(|i| i.downcast_ref::<PgpError>()) {
            return p.duplicate();
        }
        let manipulated = pgp::Error::ManipulatedMessage.to_string();
        match e.get_ref() {
            Some(inner) if inner.to_string() == manipulated => PgpError::Tampered,
            _ if e.kind() == io::ErrorKind::UnexpectedEof => PgpError::Malformed(format!(
                "message ends early (truncated, or not OpenPGP): {e}"
            )),
            Some(_) if e.kind() == io::ErrorKind::Other => PgpError::Malformed(e.to_string()),
            _ => PgpError::Read(e.to_string()),
        }
    }

    /// A copy, for errors that are both reported by `read` and kept for
    /// `finish` (io::Error is not `Clone`, so `File` keeps kind and text).
    pub(crate) fn duplicate(&self) -> PgpError {
        use PgpError::*;
        match self {
            File { what, path, source } => File {
                what,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            KeyFile { path, problem } => KeyFile {
                path: path.clone(),
                problem: problem.clone(),
            },
            InsecureKeyFile { path, mode } => InsecureKeyFile {
                path: path.clone(),
                mode: *mode,
            },
            Generate(s) => Generate(s.clone()),
            OwnKey {
                fingerprint,
                problem,
            } => OwnKey {
                fingerprint: fingerprint.clone(),
                problem: problem.clone(),
            },
            CertParse(s) => CertParse(s.clone()),
            PeerCert {
                fingerprint,
                problem,
            } => PeerCert {
                fingerprint: fingerprint.clone(),
                problem: problem.clone(),
            },
            Write(s) => Write(s.clone()),
            Read(s) => Read(s.clone()),
            NotEncrypted => NotEncrypted,
            NotForUs { ours, recipients } => NotForUs {
                ours: ours.clone(),
                recipients: recipients.clone(),
            },
            SessionKey { key } => SessionKey { key: key.clone() },
            Tampered => Tampered,
            Malformed(s) => Malformed(s.clone()),
            UnexpectedStructure(s) => UnexpectedStructure(s.clone()),
            Policy(s) => Policy(s.clone()),
            Unsigned => Unsigned,
            WrongSigner { found } => WrongSigner {
                found: found.clone(),
            },
            BadSignature { reason } => BadSignature {
                reason: reason.clone(),
            },
        }
    }
}

/// Uppercase hex, no spaces (what gpg prints in `--with-colons`).
pub(crate) fn hex_fingerprint(cert: &Cert) -> String {
    cert.fingerprint().to_hex()
}

pub(crate) fn encryption_flags() -> KeyFlags {
    KeyFlags::empty()
        .set_transport_encryption()
        .set_storage_encryption()
}

/// Parses a peer's public certificate and checks that it is usable now:
/// valid under the standard policy, not revoked, not expired, with a live
/// signing-capable key and a live encryption-capable key. Secret key
/// material, if the peer pasted a TSK, is stripped (with a warning).
pub fn parse_peer_cert(armored: &str) -> Result<Cert, PgpError> {
    let cert =
        Cert::from_bytes(armored.as_bytes()).map_err(|e| PgpError::CertParse(format!("{e:#}")))?;
    let cert = if cert.is_tsk() {
        tracing::warn!(
            fingerprint = %hex_fingerprint(&cert),
            "peer certificate contains secret key material; ignoring it (the peer should publish its public key only)"
        );
        cert.strip_secret_key_material()
    } else {
        cert
    };
    check_peer_cert(&cert)?;
    Ok(cert)
}

/// The checks of [`parse_peer_cert`], for a certificate already parsed.
pub(crate) fn check_peer_cert(cert: &Cert) -> Result<(), PgpError> {
    let problem = |p: String| PgpError::PeerCert {
        fingerprint: hex_fingerprint(cert),
        problem: p,
    };
    let vc = cert
        .with_policy(&POLICY, None)
        .map_err(|e| problem(format!("not valid under the standard policy: {e:#}")))?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err(problem("revoked".into()));
    }
    vc.alive()
        .map_err(|e| problem(format!("expired or not yet valid: {e:#}")))?;
    if vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .next()
        .is_none()
    {
        return Err(problem("no valid signing-capable key".into()));
    }
    if recipient_keys(&vc).is_empty() {
        return Err(problem("no valid encryption subkey".into()));
    }
    Ok(())
}

/// The live, unrevoked, supported encryption-capable keys of a valid
/// certificate (transport or storage), as owned public keys.
pub(crate) fn recipient_keys(vc: &ValidCert<'_>) -> Vec<Key<PublicParts, UnspecifiedRole>> {
    vc.keys()
        .supported()
        .alive()
        .revoked(false)
        .key_flags(encryption_flags())
        .map(|ka| ka.key().clone().role_into_unspecified())
        .collect()
}

/// Signs a receipt: an ASCII-armored detached signature over `data`.
pub fn sign_detached(own: &OwnKey, data: &[u8]) -> Result<String, PgpError> {
    sign(own, data, false)
}

/// Signs text in the clear (`-----BEGIN PGP SIGNED MESSAGE-----`): one file
/// that `gpg --verify` and `sq verify` check and a person can read, such as
/// the journal's published head.
pub fn sign_cleartext(own: &OwnKey, text: &[u8]) -> Result<String, PgpError> {
    sign(own, text, true)
}

fn sign(own: &OwnKey, data: &[u8], cleartext: bool) -> Result<String, PgpError> {
    let write_err = |e: anyhow::Error| PgpError::Write(format!("{e:#}"));
    let mut out = Vec::new();
    let message = Message::new(&mut out);
    // a cleartext signature is its own armor
    let message = if cleartext {
        message
    } else {
        Armorer::new(message)
            .kind(pgp::armor::Kind::Signature)
            .build()
            .map_err(write_err)?
    };
    let signer = Signer::new(message, own.signer()?)
        .map_err(write_err)?
        .hash_algo(HashAlgorithm::SHA512)
        .map_err(write_err)?;
    let signer = if cleartext {
        signer.cleartext()
    } else {
        signer.detached()
    };
    let mut signer = signer.build().map_err(write_err)?;
    signer
        .write_all(data)
        .map_err(|e| PgpError::Write(e.to_string()))?;
    signer.finalize().map_err(write_err)?;
    String::from_utf8(out).map_err(|e| PgpError::Write(e.to_string()))
}

/// Verifies a receipt: `armored_sig` must hold at least one signature,
/// every one of them good and by `signer`.
pub fn verify_detached(signer: &Cert, data: &[u8], armored_sig: &str) -> Result<(), PgpError> {
    let mut helper = SignerCheck {
        sender: signer.clone(),
        outcome: None,
    };
    let verified = DetachedVerifierBuilder::from_bytes(armored_sig.as_bytes())
        .and_then(|b| b.with_policy(&POLICY, None, &mut helper))
        .and_then(|mut v| v.verify_bytes(data));
    match (helper.outcome, verified) {
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(_)), Ok(())) => Ok(()),
        (_, Err(e)) => Err(PgpError::from_openpgp(&e)),
        (None, Ok(())) => Err(PgpError::Unsigned),
    }
}

/// A good signature by the expected sender.
#[derive(Debug, Clone)]
pub(crate) struct GoodSignature {
    pub signing_key: String,
    pub created: std::time::SystemTime,
}

/// Judges one signature group: `Ok` only if it holds at least one
/// signature and every signature is good and by the expected sender.
pub(crate) fn judge_signatures(
    results: &[Result<pgp::parse::stream::GoodChecksum<'_>, VerificationError<'_>>],
) -> Result<GoodSignature, PgpError> {
    if results.is_empty() {
        return Err(PgpError::Unsigned);
    }
    let mut good = None;
    let mut foreign = Vec::new();
    let mut bad = Vec::new();
    for r in results {
        match r {
            Ok(gc) => {
                good = Some(GoodSignature {
                    signing_key: gc.ka.key().fingerprint().to_hex(),
                    created: gc
                        .sig
                        .signature_creation_time()
                        .unwrap_or(std::time::UNIX_EPOCH),
                })
            }
            Err(VerificationError::MissingKey { sig }) => match issuers(sig) {
                found if found.is_empty() => bad.push("signature names no issuer".to_owned()),
                found => foreign.extend(found),
            },
            Err(e) => bad.push(e.to_string()),
        }
    }
    if !foreign.is_empty() {
        return Err(PgpError::WrongSigner { found: foreign });
    }
    if !bad.is_empty() {
        return Err(PgpError::BadSignature {
            reason: bad.join("; "),
        });
    }
    good.ok_or(PgpError::Unsigned)
}

/// Issuer fingerprints of a signature, or its key IDs if it names none.
fn issuers(sig: &Signature) -> Vec<String> {
    let fprs: Vec<String> = sig.issuer_fingerprints().map(|f| f.to_hex()).collect();
    if !fprs.is_empty() {
        return fprs;
    }
    sig.issuers().map(|k| k.to_hex()).collect()
}

/// Verification helper that knows one certificate (the expected signer)
/// and records its verdict.
pub(crate) struct SignerCheck {
    pub sender: Cert,
    pub outcome: Option<Result<GoodSignature, PgpError>>,
}

impl VerificationHelper for &mut SignerCheck {
    fn get_certs(&mut self, _ids: &[pgp::KeyHandle]) -> pgp::Result<Vec<Cert>> {
        Ok(vec![self.sender.clone()])
    }

    fn check(&mut self, structure: MessageStructure) -> pgp::Result<()> {
        let mut layers = structure.iter();
        let verdict = match (layers.next(), layers.next()) {
            (Some(MessageLayer::SignatureGroup { results }), None) => judge_signatures(results),
            _ => Err(PgpError::UnexpectedStructure(
                "a detached signature must be one signature group".into(),
            )),
        };
        let result = match &verdict {
            Ok(_) => Ok(()),
            Err(e) => Err(anyhow::anyhow!(e.to_string())),
        };
        self.outcome = Some(verdict);
        result
    }
}
