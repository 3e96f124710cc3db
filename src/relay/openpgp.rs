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

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

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
use pgp::serialize::SerializeInto;
use pgp::serialize::stream::{Armorer, Message, Signer};
use pgp::types::{Features, HashAlgorithm, KeyFlags, RevocationStatus};

mod open;
mod seal;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_interop;

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

/// Public-key algorithms for our own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// Ed25519 signing, Cv25519 (ECDH) encryption.
    #[default]
    Cv25519,
    /// RSA-4096 for everything, for peers that need RSA.
    Rsa4096,
}

impl FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cv25519" | "ed25519" | "curve25519" | "25519" => Ok(KeyAlgorithm::Cv25519),
            "rsa4096" | "rsa-4096" | "rsa" => Ok(KeyAlgorithm::Rsa4096),
            other => Err(format!(
                "unknown key algorithm {other:?} (expected \"cv25519\" or \"rsa4096\")"
            )),
        }
    }
}

impl KeyAlgorithm {
    fn cipher_suite(self) -> CipherSuite {
        match self {
            KeyAlgorithm::Cv25519 => CipherSuite::Cv25519,
            KeyAlgorithm::Rsa4096 => CipherSuite::RSA4k,
        }
    }
}

/// Uppercase hex, no spaces (what gpg prints in `--with-colons`).
pub(crate) fn hex_fingerprint(cert: &Cert) -> String {
    cert.fingerprint().to_hex()
}

/// The gateway's own key: a certificate with its (unencrypted) secrets.
#[derive(Clone)]
pub struct OwnKey {
    cert: Cert,
}

impl std::fmt::Debug for OwnKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl OwnKey {
    /// A new v4 key without expiry: a certification-only primary key, a
    /// signing subkey and a transport+storage encryption subkey. Features
    /// advertise SEIPDv1 only, so that what peers encrypt to us is
    /// readable by GnuPG 2.2 and sq 0.27 too; preferences AES-256/AES-128
    /// and SHA-512/SHA-256 (Sequoia's defaults).
    pub fn generate(user_id: &str, algorithm: KeyAlgorithm) -> Result<OwnKey, PgpError> {
        let gen_err = |e: anyhow::Error| PgpError::Generate(format!("{e:#}"));
        let (cert, _revocation) = CertBuilder::new()
            .set_cipher_suite(algorithm.cipher_suite())
            .set_features(Features::empty().set_seipdv1())
            .map_err(gen_err)?
            .set_primary_key_flags(KeyFlags::empty().set_certification())
            .set_validity_period(None)
            .add_userid(user_id)
            .add_signing_subkey()
            .add_subkey(
                KeyFlags::empty()
                    .set_transport_encryption()
                    .set_storage_encryption(),
                None,
                None,
            )
            .generate()
            .map_err(gen_err)?;
        let key = OwnKey { cert };
        key.check_usable()
            .map_err(|e| PgpError::Generate(e.to_string()))?;
        Ok(key)
    }

    /// Loads an ASCII-armored (or binary) transferable secret key. Refuses
    /// a file that group or others may access, a certificate without
    /// secrets, and one whose signing or encryption key is unusable.
    pub fn load(path: impl AsRef<Path>) -> Result<OwnKey, PgpError> {
        let path = path.as_ref();
        let file_err = |what| {
            move |source| PgpError::File {
                what,
                path: path.to_owned(),
                source,
            }
        };
        let meta = fs::metadata(path).map_err(file_err("reading key file"))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PgpError::InsecureKeyFile {
                path: path.to_owned(),
                mode,
            });
        }
        let bytes = fs::read(path).map_err(file_err("reading key file"))?;
        let key_file = |problem: String| PgpError::KeyFile {
            path: path.to_owned(),
            problem,
        };
        let cert =
            Cert::from_bytes(&bytes).map_err(|e| key_file(format!("not an OpenPGP key: {e:#}")))?;
        if !cert.is_tsk() {
            return Err(key_file(format!(
                "certificate {} has no secret key material",
                hex_fingerprint(&cert)
            )));
        }
        let key = OwnKey { cert };
        key.check_usable().map_err(|e| key_file(e.to_string()))?;
        Ok(key)
    }

    /// Writes the armored secret key: a 0600 temporary file in the same
    /// directory, fsync, rename over `path`, fsync the directory. Creates
    /// the directory (0700) if it is missing.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), PgpError> {
        write_key_file(path.as_ref(), &self.armored_secret()?, true)
    }

    /// Loads the key at `path`, or generates and saves one if there is no
    /// file there. Returns whether it was created. If another process
    /// creates the file first, that key is loaded instead.
    pub fn load_or_create(
        path: impl AsRef<Path>,
        user_id: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<(OwnKey, bool), PgpError> {
        let path = path.as_ref();
        match fs::symlink_metadata(path) {
            Ok(_) => return Ok((OwnKey::load(path)?, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PgpError::File {
                    what: "checking key file",
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let key = OwnKey::generate(user_id, algorithm)?;
        match write_key_file(path, &key.armored_secret()?, false) {
            Ok(()) => Ok((key, true)),
            Err(PgpError::File { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                Ok((OwnKey::load(path)?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Primary key fingerprint, uppercase hex without spaces.
    pub fn fingerprint(&self) -> String {
        hex_fingerprint(&self.cert)
    }

    /// The certificate. It still holds the secrets; serialize it with
    /// `Cert` serializers (which write public parts only) or use
    /// [`OwnKey::public_armored`].
    pub fn cert(&self) -> &Cert {
        &self.cert
    }

    /// The ASCII-armored public certificate (no secret key material).
    pub fn public_armored(&self) -> String {
        let public = self.cert.clone().strip_secret_key_material();
        let bytes = public
            .armored()
            .to_vec()
            .expect("serializing an in-memory certificate into a Vec cannot fail");
        String::from_utf8(bytes).expect("ASCII armor is UTF-8")
    }

    fn armored_secret(&self) -> Result<Vec<u8>, PgpError> {
        self.cert
            .as_tsk()
            .armored()
            .to_vec()
            .map_err(|e| PgpError::Write(format!("serializing the secret key: {e:#}")))
    }

    fn own_err(&self, problem: impl Into<String>) -> PgpError {
        PgpError::OwnKey {
            fingerprint: self.fingerprint(),
            problem: problem.into(),
        }
    }

    /// A usable signing key with its secret, as a signer.
    pub(crate) fn signer(&self) -> Result<pgp::crypto::KeyPair, PgpError> {
        let vc = self
            .cert
            .with_policy(&POLICY, None)
            .map_err(|e| self.own_err(format!("not valid under the standard policy: {e:#}")))?;
        let ka = vc
            .keys()
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .unencrypted_secret()
            .next()
            .ok_or_else(|| self.own_err("no usable signing key with an unencrypted secret"))?;
        ka.key()
            .clone()
            .into_keypair()
            .map_err(|e| self.own_err(format!("signing key: {e:#}")))
    }

    /// Our encryption keys with their secrets (alive or not: old packages
    /// stay readable), for decryption.
    pub(crate) fn decryption_keys(
        &self,
    ) -> Vec<Key<pgp::packet::key::SecretParts, UnspecifiedRole>> {
        self.cert
            .keys()
            .with_policy(&POLICY, None)
            .supported()
            .key_flags(encryption_flags())
            .unencrypted_secret()
            .map(|ka| ka.key().clone().role_into_unspecified())
            .collect()
    }

    fn check_usable(&self) -> Result<(), PgpError> {
        self.signer()?;
        if self.decryption_keys().is_empty() {
            return Err(self.own_err("no encryption key with an unencrypted secret"));
        }
        Ok(())
    }
}

fn encryption_flags() -> KeyFlags {
    KeyFlags::empty()
        .set_transport_encryption()
        .set_storage_encryption()
}

/// Writes `bytes` to `path` atomically and durably with mode 0600. With
/// `overwrite == false` an existing file is an `AlreadyExists` error (the
/// temporary file is hard-linked into place instead of renamed).
fn write_key_file(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), PgpError> {
    let file_err = |what, p: &Path| {
        let p = p.to_owned();
        move |source| PgpError::File {
            what,
            path: p,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| PgpError::KeyFile {
            path: path.to_owned(),
            problem: "the key path names no file".into(),
        })?
        .to_string_lossy()
        .into_owned();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(file_err("creating key directory", &dir))?;
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(file_err("creating temporary key file", &tmp))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(file_err("writing temporary key file", &tmp))?;
        drop(f);
        if overwrite {
            fs::rename(&tmp, path).map_err(file_err("renaming key file into place", path))?;
        } else {
            fs::hard_link(&tmp, path).map_err(file_err("creating key file", path))?;
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(file_err("syncing key directory", &dir))
    })();
    // After a rename the temporary name is gone; after a link (or a
    // failure) it must go.
    let _ = fs::remove_file(&tmp);
    result
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
    let write_err = |e: anyhow::Error| PgpError::Write(format!("{e:#}"));
    let mut out = Vec::new();
    let message = Message::new(&mut out);
    let message = Armorer::new(message)
        .kind(pgp::armor::Kind::Signature)
        .build()
        .map_err(write_err)?;
    let mut signer = Signer::new(message, own.signer()?)
        .map_err(write_err)?
        .hash_algo(HashAlgorithm::SHA512)
        .map_err(write_err)?
        .detached()
        .build()
        .map_err(write_err)?;
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
