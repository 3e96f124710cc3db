//! The address book of peer gateways: who they are (URA), where they are
//! (base URL), what they encrypt to and sign with (OpenPGP certificate) and
//! how their TLS certificate is trusted (a CA file or an SPKI pin).
//!
//! The book is a TOML file (`relay.address_book`), watched and re-applied
//! when it changes; a change that does not validate is refused and the
//! previous book stays in force ([`BookWatcher`]). It may also be synced
//! from a URL with a detached OpenPGP signature by a publisher key
//! ([`sync_once`], [`BookSync`]): a synced book is written to the same file
//! and applied by the watcher, so every book passes one validation path.
//!
//! The same entry decides both directions of TLS: outbound, the peer's
//! server certificate is checked against it ([`Gateway::client_config`]);
//! inbound, the certificate the peer presents as its client certificate
//! (its HTTPS server certificate, see DESIGN.md) is matched against it
//! ([`AddressBook::by_client_chain`]).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::RootCertStore;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::policy::StandardPolicy;
use sequoia_openpgp::types::RevocationStatus;
use serde::Deserialize;
use sha2::{Digest, Sha256};

mod sync;
mod trust;
mod watch;

pub use sync::{
    BookSync, SyncOutcome, load_publisher, roots_client_config, sync_once,
    system_roots_client_config,
};
pub use trust::{spki_pin_base64, spki_pin_of_pem_file, spki_sha256};
pub use watch::BookWatcher;

/// Everything that can go wrong with an address book, its entries, its
/// TLS trust or its sync. Messages name the file, the entry (1-based index
/// and name) and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BookError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    /// The book is not TOML, or has unknown or mistyped top-level keys.
    #[error("address book: {0}")]
    Syntax(String),
    /// One entry is wrong; `field` is the TOML key concerned (or "entry").
    #[error("gateway {index} ({name}): {message}")]
    Entry {
        index: usize,
        name: String,
        field: &'static str,
        message: String,
    },
    /// An error from a book read from `path`.
    #[error("{path}: {error}")]
    InFile {
        path: PathBuf,
        #[source]
        error: Box<BookError>,
    },
    #[error("not an X.509 certificate: {0}")]
    Certificate(String),
    #[error("{path}: no PEM certificate found")]
    NoPem { path: PathBuf },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("publisher certificate {path}: {reason}")]
    Publisher { path: PathBuf, reason: String },
    #[error("watching {path}: {reason}")]
    Watch { path: PathBuf, reason: String },
    #[error("sync from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("sync from {url}: signature refused: {reason}")]
    BadSignature { url: String, reason: String },
    /// The fetched book is signed but does not validate.
    #[error("sync from {url}: {error}")]
    Fetched {
        url: String,
        #[source]
        error: Box<BookError>,
    },
}

impl From<crate::tls::RootsError> for BookError {
    fn from(e: crate::tls::RootsError) -> BookError {
        match e {
            crate::tls::RootsError::Io { path, cause } => BookError::Io { path, cause },
            crate::tls::RootsError::NoPem { path } => BookError::NoPem { path },
            crate::tls::RootsError::Tls(e) => BookError::Tls(e),
        }
    }
}

/// One peer gateway.
#[derive(Clone)]
pub struct Gateway {
    pub name: String,
    /// The organisation's URA number (8 digits).
    pub ura: String,
    /// Base URL, `https://host[:port][/prefix]`, without a trailing slash;
    /// the inbox is `{url}/relay/v1/inbox`.
    pub url: String,
    /// Public certificate only (validated: not revoked or expired, with an
    /// encryption and a signing key under the standard policy at load time).
    pub openpgp: Cert,
    pub trust: TlsTrust,
    host: ServerName<'static>,
    port: u16,
    /// Checks the peer's TLS server certificate (outbound).
    server_verifier: Arc<dyn ServerCertVerifier>,
    /// CA entries: checks a chain for client-auth usage (inbound, for
    /// certificates whose EKU has clientAuth but not serverAuth).
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

/// How a gateway's TLS certificate is trusted.
#[derive(Clone)]
pub enum TlsTrust {
    /// Issued (directly or through intermediates the peer sends) by one of
    /// the CA certificates in `path`, for the host name of the entry's URL.
    Ca {
        path: PathBuf,
        roots: Arc<RootCertStore>,
    },
    /// The end-entity certificate's SubjectPublicKeyInfo has this SHA-256;
    /// nothing else about the certificate is checked.
    Pin { spki_sha256: [u8; 32] },
}

impl fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsTrust::Ca { path, roots } => f
                .debug_struct("Ca")
                .field("path", path)
                .field("roots", &roots.len())
                .finish(),
            TlsTrust::Pin { spki_sha256 } => f
                .debug_struct("Pin")
                .field("spki_sha256", &trust::base64_pin(spki_sha256))
                .finish(),
        }
    }
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("name", &self.name)
            .field("ura", &self.ura)
            .field("url", &self.url)
            .field("openpgp", &self.openpgp.fingerprint().to_hex())
            .field("trust", &self.trust)
            .finish()
    }
}

impl Gateway {
    /// The TLS server name of the entry's URL (SNI and, for CA entries,
    /// the name its certificate must carry).
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.host
    }

    /// The port of the entry's URL (443 if the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL packages are POSTed to.
    pub fn inbox_url(&self) -> String {
        format!("{}/relay/v1/inbox", self.url)
    }

    /// Whether `chain` (end-entity first, then intermediates, as presented
    /// in a TLS handshake) satisfies this entry's trust at time `now`.
    fn accepts_chain(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> bool {
        match chain.split_first() {
            Some((end_entity, intermediates)) => {
                self.accepts_end_entity(end_entity, intermediates, now)
            }
            None => false,
        }
    }

    fn accepts_end_entity(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> bool {
        match &self.trust {
            TlsTrust::Pin { spki_sha256 } => trust::pin_matches(end_entity, spki_sha256),
            TlsTrust::Ca { .. } => {
                // The certificate a gateway presents is its HTTPS server
                // certificate: verify it as one, for this entry's host name.
                if self
                    .server_verifier
                    .verify_server_cert(end_entity, intermediates, &self.host, &[], now)
                    .is_ok()
                {
                    return true;
                }
                // A certificate for client authentication only is accepted
                // too, but it must still name this entry's host: a CA shared
                // by several gateways must not let one pass for another.
                self.client_verifier.as_ref().is_some_and(|verifier| {
                    verifier
                        .verify_client_cert(end_entity, intermediates, now)
                        .is_ok()
                        && trust::names_host(end_entity, &self.host)
                })
            }
        }
    }
}

/// A validated address book.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    /// Version of the book, for sync (a synced book must have a higher one).
    pub serial: u64,
    gateways: Vec<Gateway>,
}

impl AddressBook {
    pub fn by_ura(&self, ura: &str) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.ura == ura)
    }

    /// The entry whose TLS trust the client certificate chain (end-entity
    /// first) satisfies: the end-entity's SPKI matches a pin, or the chain
    /// verifies to the entry's CA and the end-entity certificate is valid
    /// for the host of the entry's URL. The first such entry in book order.
    ///
    /// This does not prove possession of the key: call it with the chain
    /// of a completed TLS handshake (which did).
    pub fn by_client_chain(&self, chain: &[CertificateDer<'_>]) -> Option<&Gateway> {
        let now = UnixTime::now();
        self.gateways.iter().find(|g| g.accepts_chain(chain, now))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Gateway> {
        self.gateways.iter()
    }

    pub fn len(&self) -> usize {
        self.gateways.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty()
    }
}

impl<'a> IntoIterator for &'a AddressBook {
    type Item = &'a Gateway;
    type IntoIter = std::slice::Iter<'a, Gateway>;
    fn into_iter(self) -> Self::IntoIter {
        self.gateways.iter()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBook {
    #[serde(default)]
    serial: u64,
    #[serde(default)]
    gateway: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    name: String,
    ura: String,
    url: String,
    openpgp: String,
    tls_ca: Option<String>,
    tls_spki_sha256: Option<String>,
}

/// Parses and validates a book; relative `tls_ca` paths are relative to
/// `base_dir` (the book file's directory).
pub fn parse(text: &str, base_dir: &Path) -> Result<AddressBook, BookError> {
    let raw: RawBook = toml::from_str(text).map_err(|e| BookError::Syntax(e.to_string()))?;
    let mut gateways: Vec<Gateway> = Vec::with_capacity(raw.gateway.len());
    let mut uras: HashMap<String, usize> = HashMap::new();
    let mut pins: HashMap<[u8; 32], usize> = HashMap::new();
    for (i, table) in raw.gateway.into_iter().enumerate() {
        let index = i + 1;
        let shown_name = match table.get("name").and_then(|v| v.as_str()) {
            Some(name) if !name.trim().is_empty() => name.to_string(),
            _ => "unnamed".to_string(),
        };
        let entry_err = |field: &'static str, message: String| BookError::Entry {
            index,
            name: shown_name.clone(),
            field,
            message,
        };
        let raw: RawGateway = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| entry_err("entry", e.message().to_string()))?;
        let gateway = validate_entry(raw, base_dir).map_err(|(f, m)| entry_err(f, m))?;
        if let Some(&other) = uras.get(&gateway.ura) {
            return Err(entry_err(
                "ura",
                format!(
                    "ura {:?}: already used by gateway {other} ({})",
                    gateway.ura,
                    gateways[other - 1].name
                ),
            ));
        }
        if let TlsTrust::Pin { spki_sha256 } = &gateway.trust {
            if let Some(&other) = pins.get(spki_sha256) {
                return Err(entry_err(
                    "tls_spki_sha256",
                    format!(
                        "tls_spki_sha256: the same pin as gateway {other} ({}); \
                         one TLS key cannot identify two gateways",
                        gateways[other - 1].name
                    ),
                ));
            }
            pins.insert(*spki_sha256, index);
        }
        uras.insert(gateway.ura.clone(), index);
        gateways.push(gateway);
    }
    Ok(AddressBook {
        serial: raw.serial,
        gateways,
    })
}

/// Reads, parses and validates the book at `path`.
pub fn load(path: &Path) -> Result<AddressBook, BookError> {
    let text = read_text(path)?;
    parse(&text, &base_dir_of(path)).map_err(|error| BookError::InFile {
        path: path.to_path_buf(),
        error: Box::new(error),
    })
}

fn read_text(path: &Path) -> Result<String, BookError> {
    let bytes = std::fs::read(path).map_err(|cause| BookError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    String::from_utf8(bytes).map_err(|_| BookError::Io {
        path: path.to_path_buf(),
        cause: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

pub(crate) fn base_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

type FieldError = (&'static str, String);

fn validate_entry(raw: RawGateway, base_dir: &Path) -> Result<Gateway, FieldError> {
    let name = raw.name.trim().to_string();
    if name.is_empty() {
        return Err(("name", "name is empty".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(("name", "name contains control characters".into()));
    }
    let ura = raw.ura.trim().to_string();
    if ura.len() != 8 || !ura.bytes().all(|b| b.is_ascii_digit()) {
        return Err((
            "ura",
            format!("ura {:?}: a URA number has 8 digits", raw.ura),
        ));
    }
    let parsed = HttpsUrl::parse(raw.url.trim())
        .map_err(|reason| ("url", format!("url {:?}: {reason}", raw.url)))?;
    let openpgp = validate_openpgp(&raw.openpgp).map_err(|m| ("openpgp", m))?;
    let provider = crate::tls::crypto_provider();
    let (trust, server_verifier, client_verifier) = match (raw.tls_ca, raw.tls_spki_sha256) {
        (Some(_), Some(_)) => {
            return Err((
                "tls_ca",
                "both tls_ca and tls_spki_sha256 are set; give exactly one \
                 (trust the peer's TLS certificate by CA or pin it)"
                    .into(),
            ));
        }
        (None, None) => {
            return Err((
                "tls_ca",
                "neither tls_ca nor tls_spki_sha256 is set; give exactly one \
                 (trust the peer's TLS certificate by CA or pin it)"
                    .into(),
            ));
        }
        (Some(ca), None) => {
            let path = base_dir.join(ca.trim());
            let roots = trust::load_roots(&path).map_err(|m| ("tls_ca", format!("tls_ca: {m}")))?;
            let (server, client) = trust::ca_verifiers(roots.clone(), provider)
                .map_err(|m| ("tls_ca", format!("tls_ca {}: {m}", path.display())))?;
            (TlsTrust::Ca { path, roots }, server, Some(client))
        }
        (None, Some(pin)) => {
            let spki_sha256 = trust::parse_pin(&pin)
                .map_err(|m| ("tls_spki_sha256", format!("tls_spki_sha256 {pin:?}: {m}")))?;
            let verifier: Arc<dyn ServerCertVerifier> =
                Arc::new(trust::pin_verifier(spki_sha256, provider));
            (TlsTrust::Pin { spki_sha256 }, verifier, None)
        }
    };
    Ok(Gateway {
        name,
        ura,
        url: parsed.base_url(),
        openpgp,
        trust,
        host: parsed.host,
        port: parsed.port,
        server_verifier,
        client_verifier,
    })
}

/// A peer's public certificate: parseable, public only, valid and alive
/// now under the standard policy, with an encryption and a signing key.
fn validate_openpgp(armored: &str) -> Result<Cert, String> {
    let cert = Cert::from_bytes(armored.trim().as_bytes())
        .map_err(|e| format!("openpgp: not an OpenPGP certificate: {e}"))?;
    check_public_cert(&cert, true).map_err(|m| format!("openpgp ({}): {m}", cert.fingerprint()))?;
    Ok(cert)
}

/// Checks a public certificate; `encryption`: also require an encryption
/// key (peers yes, the sync publisher no).
pub(crate) fn check_public_cert(cert: &Cert, encryption: bool) -> Result<(), String> {
    if cert.is_tsk() {
        return Err(
            "contains secret key material; give only the public certificate \
                    (e.g. `sq cert export`, `gpg --export --armor`)"
                .into(),
        );
    }
    let policy = StandardPolicy::new();
    let valid = cert
        .with_policy(&policy, None)
        .map_err(|e| format!("not valid under the standard policy: {e}"))?;
    if let RevocationStatus::Revoked(_) = valid.revocation_status() {
        return Err("the certificate is revoked".into());
    }
    valid
        .alive()
        .map_err(|e| format!("the certificate is expired or not yet valid: {e}"))?;
    let usable = || valid.keys().supported().alive().revoked(false);
    if encryption
        && usable()
            .for_transport_encryption()
            .for_storage_encryption()
            .next()
            .is_none()
    {
        return Err("no valid encryption key (alive, not revoked, standard policy)".into());
    }
    if usable().for_signing().next().is_none() {
        return Err("no valid signing key (alive, not revoked, standard policy)".into());
    }
    Ok(())
}

/// `https://host[:port][/path]`, no user info, query or fragment.
pub(crate) struct HttpsUrl {
    pub(crate) host: ServerName<'static>,
    /// As written in the URL (brackets stripped): what to connect to.
    pub(crate) host_text: String,
    pub(crate) port: u16,
    /// Without a trailing slash; empty for the root.
    pub(crate) path: String,
}

impl HttpsUrl {
    pub(crate) fn parse(url: &str) -> Result<HttpsUrl, String> {
        let rest = match url.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("https://") => &url[8..],
            _ => return Err("must be https://".into()),
        };
        if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a query, fragment or whitespace is not allowed".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("user info is not allowed".into());
        }
        let (host_text, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err("junk after the IPv6 address".into()),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host_text.is_empty() {
            return Err("no host".into());
        }
        let port = match port {
            None => 443,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(format!("bad port {p:?}")),
            },
        };
        let host = ServerName::try_from(host_text.to_string())
            .map_err(|_| format!("{host_text:?} is not a valid host name or IP address"))?;
        Ok(HttpsUrl {
            host,
            host_text: host_text.to_string(),
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    fn authority(&self) -> String {
        let host = if self.host_text.contains(':') {
            format!("[{}]", self.host_text)
        } else {
            self.host_text.to_ascii_lowercase()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn base_url(&self) -> String {
        format!("https://{}{}", self.authority(), self.path)
    }

    /// The request target: the path, `/` for the root.
    pub(crate) fn target(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            &self.path
        }
    }

    /// The Host header value.
    pub(crate) fn host_header(&self) -> String {
        self.authority()
    }
}

/// The live address book: cheap to clone, replaced as a whole when the file
/// changes (readers keep the `Arc` they got).
#[derive(Clone, Default)]
pub struct Book {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    current: RwLock<Arc<AddressBook>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_error: Option<String>,
    /// SHA-256 of the text last applied (to log a reload only if it changed).
    applied_digest: Option<[u8; 32]>,
}

impl fmt::Debug for Book {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current();
        f.debug_struct("Book")
            .field("serial", &current.serial)
            .field("gateways", &current.len())
            .field("last_error", &self.last_error())
            .finish()
    }
}

impl Book {
    /// No gateways (relay without an address book, or before the first sync).
    pub fn empty() -> Book {
        Book::default()
    }

    /// The initial load: a missing or invalid book is an error (the daemon
    /// refuses to start with a broken book).
    pub fn load(path: &Path) -> Result<Book, BookError> {
        let book = Book::empty();
        book.reload(path)?;
        Ok(book)
    }

    /// Like [`Book::load`], but a book file that does not exist (yet) gives
    /// an empty book, e.g. when the book arrives by sync.
    pub fn load_if_exists(path: &Path) -> Result<Book, BookError> {
        match path.try_exists() {
            Ok(false) => Ok(Book::empty()),
            _ => Book::load(path),
        }
    }

    pub fn current(&self) -> Arc<AddressBook> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Why the last reload failed, while the previous book stays in force;
    /// `None` after a successful one.
    pub fn last_error(&self) -> Option<String> {
        self.state().last_error.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Loads `path` and puts it in force; on error keeps the previous book
    /// and records the error ([`Book::last_error`]). Returns the number of
    /// gateways.
    pub fn reload(&self, path: &Path) -> Result<usize, BookError> {
        self.reload_inner(path).map(|(count, _)| count)
    }

    /// Also says whether the text differs from the last applied one.
    fn reload_inner(&self, path: &Path) -> Result<(usize, bool), BookError> {
        let loaded = read_text(path).and_then(|text| {
            let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
            parse(&text, &base_dir_of(path))
                .map(|book| (book, digest))
                .map_err(|error| BookError::InFile {
                    path: path.to_path_buf(),
                    error: Box::new(error),
                })
        });
        let mut state = self.state();
        match loaded {
            Ok((book, digest)) => {
                let count = book.len();
                *self
                    .inner
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(book);
                let changed = state.applied_digest != Some(digest) || state.last_error.is_some();
                state.applied_digest = Some(digest);
                state.last_error = None;
                Ok((count, changed))
            }
            Err(error) => {
                state.last_error = Some(error.to_string());
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests;
