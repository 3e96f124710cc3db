//! TLS clients that trust certificate authorities: the system's bundle
//! (the address book's sync, the hospital's OpenID provider) or a PEM
//! bundle of one's own. Here, at the bottom, so that any layer may fetch
//! from a server with a public certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::crypto_provider;

/// Debian's bundle of the system's trusted CAs (`ca-certificates`).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoPem { path: PathBuf },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A TLS client trusting the system CA bundle
/// (`/etc/ssl/certs/ca-certificates.crt`).
pub fn system_roots_client_config() -> Result<Arc<ClientConfig>, RootsError> {
    roots_client_config(Path::new(SYSTEM_BUNDLE))
}

/// A TLS client trusting the CA certificates of a PEM bundle; ALPN
/// http/1.1. Certificates of the bundle that cannot be trust anchors are
/// skipped (bundles carry a few); none usable is an error.
pub fn roots_client_config(bundle: &Path) -> Result<Arc<ClientConfig>, RootsError> {
    let io_err = |e: rustls::pki_types::pem::Error| RootsError::Io {
        path: bundle.to_path_buf(),
        cause: match e {
            rustls::pki_types::pem::Error::Io(cause) => cause,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        },
    };
    let certs = CertificateDer::pem_file_iter(bundle)
        .map_err(io_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err)?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(RootsError::NoPem {
            path: bundle.to_path_buf(),
        });
    }
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
