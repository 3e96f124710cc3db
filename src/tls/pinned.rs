//! A server certificate trusted because it is the one expected, not
//! because a CA vouches for it: a peer gateway pinned by the SPKI hash of
//! its address-book entry, and the daemon's own certificate for the CLI.
//! Host name, issuer and validity are not looked at — the pin *is* the
//! trust — but the handshake signatures still are, with the provider's
//! algorithms: that proves the peer holds the pinned key.
//!
//! [`Signatures`] is the one place the handshake signatures are checked
//! for the verifiers pushgate writes itself (this one and the server's
//! `PeerVerifier`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Checks handshake signatures with a provider's algorithms.
#[derive(Debug, Clone)]
pub struct Signatures(pub Arc<CryptoProvider>);

impl Signatures {
    pub fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    pub fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    pub fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Which end-entity certificates a [`PinnedServer`] accepts.
pub type Pin = Box<dyn Fn(&CertificateDer<'_>) -> bool + Send + Sync>;

/// Accepts exactly the server certificates its pin accepts.
pub struct PinnedServer {
    pin: Pin,
    signatures: Signatures,
}

impl PinnedServer {
    pub fn new(pin: Pin, provider: Arc<CryptoProvider>) -> PinnedServer {
        PinnedServer {
            pin,
            signatures: Signatures(provider),
        }
    }

    /// Exactly this certificate, byte for byte.
    pub fn exactly(cert: CertificateDer<'static>, provider: Arc<CryptoProvider>) -> PinnedServer {
        PinnedServer::new(
            Box::new(move |presented| presented.as_ref() == cert.as_ref()),
            provider,
        )
    }
}

impl std::fmt::Debug for PinnedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedServer").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if (self.pin)(end_entity) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}
