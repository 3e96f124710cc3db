//! The HTTPS server's certificate: the operator's (http.tls_cert/tls_key) or
//! a self-signed one generated into the data directory on first start; the
//! client certificates it accepts; the one crypto provider. Used by the
//! HTTPS server (`web`), the relay's deliveries and book sync, and the CLI.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

pub mod peer_verifier;
pub mod pinned;
mod roots;

pub use roots::{RootsError, roots_client_config, system_roots_client_config};

use crate::config::Config;
use peer_verifier::PeerVerifier;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error("{path}: no PEM {what} found")]
    Pem { path: PathBuf, what: &'static str },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
}

/// Where the server certificate and key are, whichever way they came.
pub fn cert_paths(config: &Config) -> (PathBuf, PathBuf) {
    match &config.http.tls {
        Some(files) => (files.cert.clone(), files.key.clone()),
        None => (
            config.tls_dir().join("cert.pem"),
            config.tls_dir().join("key.pem"),
        ),
    }
}

/// ring's suites, AES-128-GCM first: a study is hundreds of megabytes and
/// both ends pay per byte; AES-128 is ~30 % cheaper than AES-256 with
/// AES-NI and keeps a 128-bit security level (the server's order decides,
/// see `ignore_client_order`).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    let rank = |suite: &rustls::SupportedCipherSuite| {
        let name = format!("{:?}", suite.suite());
        match () {
            _ if name.contains("AES_128_GCM") => 0,
            _ if name.contains("AES_256_GCM") => 1,
            _ => 2,
        }
    };
    // stable: TLS 1.3 suites stay before TLS 1.2 ones within each rank
    provider.cipher_suites.sort_by_key(rank);
    Arc::new(provider)
}

/// Generates the self-signed pair if it is configured implicitly and absent.
pub fn ensure_certificate(config: &Config) -> Result<(), TlsError> {
    if config.http.tls.is_some() {
        return Ok(());
    }
    let (cert_path, key_path) = cert_paths(config);
    if cert_path.exists() && key_path.exists() {
        return Ok(());
    }
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = host_of(&config.public_url) {
        names.push(host);
    }
    if let Ok(host) = hostname() {
        names.push(host);
    }
    names.sort();
    names.dedup();
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let dir = config.tls_dir();
    fs::create_dir_all(&dir).map_err(|cause| TlsError::Io {
        path: dir.clone(),
        cause,
    })?;
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
    fs::write(&cert_path, generated.cert.pem()).map_err(|cause| TlsError::Io {
        path: cert_path.clone(),
        cause,
    })?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let io_err = |cause| TlsError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    file.write_all(bytes).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// gethostname(2), not /proc/sys/kernel/hostname: the unit's
/// `ProcSubset=pid` hides /proc/sys.
fn hostname() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).trim().to_string())
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Io {
            path: path.to_path_buf(),
            cause: io::Error::other(e.to_string()),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The SHA-256 fingerprint of a certificate, as operators compare them.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The certificates (DER) of the CAs trusted to issue UZI passes: those of
/// `http.uzi_ca`, or `None` (all of `http.client_ca`) when that is empty.
pub fn uzi_issuers(config: &Config) -> Result<Option<Vec<Vec<u8>>>, TlsError> {
    if config.http.uzi_ca.is_empty() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for path in &config.http.uzi_ca {
        for cert in load_certs(path)? {
            X509Certificate::from_der(cert.as_ref()).map_err(|e| TlsError::ClientCa {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            found.push(cert.as_ref().to_vec());
        }
    }
    Ok(Some(found))
}

/// TLS 1.2 and 1.3, ALPN h2 and http/1.1; client certificates requested but
/// not required when `http.client_ca` is set.
/// The client certificate policy of the HTTPS server: any certificate is
/// asked for; `http.client_ca` decides which name a holder.
pub fn client_verifier(config: &Config) -> Result<Arc<PeerVerifier>, TlsError> {
    if config.http.client_ca.is_empty() {
        return Ok(Arc::new(PeerVerifier::new(None, crypto_provider())));
    }
    let mut roots = RootCertStore::empty();
    for path in &config.http.client_ca {
        for cert in load_certs(path)? {
            roots.add(cert).map_err(|e| TlsError::ClientCa {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    let mut crls = Vec::new();
    for path in &config.http.client_crl {
        let found = CertificateRevocationListDer::pem_file_iter(path)
            .map_err(|e| TlsError::ClientCa {
                path: path.clone(),
                reason: e.to_string(),
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::ClientCa {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        crls.extend(found);
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
        .with_crls(crls)
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::ClientCa {
            path: config.http.client_ca[0].clone(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(PeerVerifier::new(
        Some(verifier),
        crypto_provider(),
    )))
}

/// The server's own certificate chain and key (for the HTTPS server, and
/// as the client certificate when delivering to peer gateways).
pub fn own_identity(
    config: &Config,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    ensure_certificate(config)?;
    let (cert_path, key_path) = cert_paths(config);
    let certs = load_certs(&cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| TlsError::Pem {
        path: key_path.clone(),
        what: "private key",
    })?;
    Ok((certs, key))
}

/// Everything the HTTPS server's TLS takes from the configuration, loaded
/// together so that a reload replaces all of it or nothing.
pub struct TlsState {
    pub server: Arc<rustls::ServerConfig>,
    /// Which client certificates name a holder.
    pub clients: Arc<PeerVerifier>,
    /// The CAs (DER) trusted to issue UZI passes (None: all client CAs).
    pub uzi_issuers: Option<Vec<Vec<u8>>>,
    /// Which load this is: connections judged by an earlier one judge
    /// their certificate again.
    pub generation: u64,
}

impl TlsState {
    /// Blocking (reads files).
    pub fn load(config: &Config) -> Result<TlsState, TlsError> {
        let clients = client_verifier(config)?;
        static GENERATION: AtomicU64 = AtomicU64::new(1);
        Ok(TlsState {
            server: server_config(config, clients.clone())?,
            clients,
            uzi_issuers: uzi_issuers(config)?,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        })
    }
}

pub fn server_config(
    config: &Config,
    clients: Arc<PeerVerifier>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (certs, key) = own_identity(config)?;
    let mut server = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(clients)
        .with_single_cert(certs, key)?;
    server.ignore_client_order = true;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_urls() {
        assert_eq!(
            host_of("https://gw.zkh.example:8443/x").as_deref(),
            Some("gw.zkh.example")
        );
        assert_eq!(host_of("https://localhost").as_deref(), Some("localhost"));
        assert_eq!(host_of("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(host_of("nonsense"), None);
    }

    #[test]
    fn generates_once_with_a_private_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml_str(
            &format!("data_dir = {:?}\n", dir.path().display().to_string()),
            Path::new("t"),
        )
        .unwrap();
        server_config(&config, client_verifier(&config).unwrap()).unwrap();
        let (cert, key) = cert_paths(&config);
        let first = fs::read(&cert).unwrap();
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        server_config(&config, client_verifier(&config).unwrap()).unwrap();
        assert_eq!(fs::read(&cert).unwrap(), first, "not regenerated");
    }
}
