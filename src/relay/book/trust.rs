//! TLS trust of an address-book entry: SPKI pins, CA roots, the verifiers
//! built from them, and the client configuration for delivering to a peer.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{BookError, Gateway};
use crate::tls::crypto_provider;
use crate::tls::pinned::PinnedServer;

/// SHA-256 of the DER SubjectPublicKeyInfo of a certificate (what
/// `tls_spki_sha256` pins; the same value as `openssl x509 -pubkey -noout |
/// openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`).
pub fn spki_sha256(cert_der: &[u8]) -> Result<[u8; 32], BookError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| BookError::Certificate(e.to_string()))?;
    Ok(Sha256::digest(cert.public_key().raw).into())
}

/// The pin of a certificate as the address book writes it (standard
/// base64 with padding).
pub fn spki_pin_base64(cert_der: &[u8]) -> Result<String, BookError> {
    spki_sha256(cert_der).map(|pin| base64_pin(&pin))
}

/// The pin of the first certificate in a PEM file (the end-entity
/// certificate of a chain file), for `tls_spki_sha256`.
pub fn spki_pin_of_pem_file(path: &Path) -> Result<String, BookError> {
    let cert = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .next()
        .ok_or_else(|| BookError::NoPem {
            path: path.to_path_buf(),
        })?
        .map_err(|e| pem_error(path, e))?;
    spki_pin_base64(cert.as_ref())
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> BookError {
    match e {
        rustls::pki_types::pem::Error::Io(cause) => BookError::Io {
            path: path.to_path_buf(),
            cause,
        },
        other => BookError::Io {
            path: path.to_path_buf(),
            cause: std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        },
    }
}

pub(super) fn base64_pin(pin: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(pin)
}

/// Standard base64, padding optional, 32 bytes.
pub(super) fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("looks like hex; give the SHA-256 in base64 \
                    (`pushgate` prints it for a PEM file)"
            .into());
    }
    let bytes = LENIENT
        .decode(text)
        .map_err(|e| format!("not standard base64: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "decodes to {} bytes; a SHA-256 pin is 32 bytes (44 base64 characters)",
            bytes.len()
        )
    })
}

pub(super) fn pin_matches(end_entity: &CertificateDer<'_>, pin: &[u8; 32]) -> bool {
    match spki_sha256(end_entity.as_ref()) {
        Ok(found) => bool::from(found.ct_eq(pin)),
        Err(_) => false,
    }
}

/// Whether the certificate is valid for `host` (DNS or IP SAN).
pub(super) fn names_host(end_entity: &CertificateDer<'_>, host: &ServerName<'_>) -> bool {
    ParsedCertificate::try_from(end_entity)
        .and_then(|parsed| verify_server_name(&parsed, host))
        .is_ok()
}

/// All certificates of a PEM file as trust anchors.
pub(super) fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            format!(
                "{}: certificate {} is not a usable CA certificate: {e}",
                path.display(),
                i + 1
            )
        })?;
    }
    Ok(Arc::new(roots))
}

/// Outbound (server certificate) and inbound (client certificate) checks.
pub(super) type CaVerifiers = (Arc<dyn ServerCertVerifier>, Arc<dyn ClientCertVerifier>);

pub(super) fn ca_verifiers(
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
) -> Result<CaVerifiers, String> {
    let server = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let client = WebPkiClientVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| e.to_string())?;
    Ok((server, client))
}

/// Accepts exactly the server certificate whose SPKI has the pinned hash
/// (see `tls::pinned`: an expired or self-signed certificate with the
/// pinned key is fine, a CA-valid one with another key is not).
pub(super) fn pin_verifier(pin: [u8; 32], provider: Arc<CryptoProvider>) -> PinnedServer {
    PinnedServer::new(Box::new(move |cert| pin_matches(cert, &pin)), provider)
}

impl Gateway {
    /// TLS client configuration for delivering to this gateway: we present
    /// `own_chain`/`own_key` (our HTTPS server certificate) as the client
    /// certificate; the peer's server certificate must satisfy this entry
    /// (CA: WebPKI verification including the host name of `url`; pin: the
    /// SPKI hash only). TLS 1.3 and 1.2, ALPN h2 and http/1.1. Connect with
    /// [`Gateway::server_name`] as the server name.
    pub fn client_config(
        &self,
        own_chain: Vec<CertificateDer<'static>>,
        own_key: PrivateKeyDer<'static>,
    ) -> Result<Arc<ClientConfig>, BookError> {
        let mut config = ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .dangerous()
            .with_custom_certificate_verifier(self.server_verifier.clone())
            .with_client_auth_cert(own_chain, own_key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
