//! Our own key: generation, the key file (0600, written atomically and
//! durably), and the signing and decryption keys the rest needs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sequoia_openpgp as pgp;

use pgp::Cert;
use pgp::cert::prelude::*;
use pgp::packet::Key;
use pgp::packet::key::{SecretParts, UnspecifiedRole};
use pgp::parse::Parse;
use pgp::serialize::SerializeInto;
use pgp::types::{Features, KeyFlags};

use super::{POLICY, PgpError, encryption_flags, hex_fingerprint};

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

/// The gateway's own key: a certificate with its (unencrypted) secrets.
#[derive(Clone)]
pub struct OwnKey {
    pub(super) cert: Cert,
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
    pub(crate) fn decryption_keys(&self) -> Vec<Key<SecretParts, UnspecifiedRole>> {
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
