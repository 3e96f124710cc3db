//! Which client certificates the HTTPS server asks for and accepts.
//!
//! Two kinds of client present certificates: holders with a certificate
//! from `http.client_ca` (UZI passes), and peer gateways delivering to
//! `/relay/v1/inbox` with their own server certificate, trusted by the
//! address book (often self-signed and pinned). The handshake therefore
//! accepts any certificate whose key signs the handshake, and each use
//! decides afterwards what the certificate is worth: a holder identity only
//! if it chains to `http.client_ca` ([`PeerVerifier::chains_to_client_ca`]),
//! a peer gateway only if the address book's entry trusts it.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::pinned::Signatures;

#[derive(Debug)]
pub struct PeerVerifier {
    /// `http.client_ca` (with its CRLs), if any is configured.
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl PeerVerifier {
    pub fn new(
        client_ca: Option<Arc<dyn ClientCertVerifier>>,
        provider: Arc<CryptoProvider>,
    ) -> PeerVerifier {
        PeerVerifier {
            client_ca,
            provider,
        }
    }

    /// Whether `chain` (end-entity first) is a valid client certificate
    /// of `http.client_ca` now.
    pub fn chains_to_client_ca(&self, chain: &[CertificateDer<'_>]) -> bool {
        let (Some(verifier), Some((end, intermediates))) = (&self.client_ca, chain.split_first())
        else {
            return false;
        };
        verifier
            .verify_client_cert(end, intermediates, UnixTime::now())
            .is_ok()
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.client_ca
            .as_ref()
            .map_or(&[], |verifier| verifier.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // possession of the key is proven by the handshake signature,
        // checked below; what the certificate is worth is decided per use
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Signatures(self.provider.clone()).tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Signatures(self.provider.clone()).tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Signatures(self.provider.clone()).schemes()
    }
}
