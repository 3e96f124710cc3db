//! Who a recipient is: a client certificate that chains to `http.client_ca`
//! (a UZI pass, or any other certificate), or a holder token.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// subjectAltName otherName type of the UZI register's identity string.
pub const UZI_OTHER_NAME_OID: &str = "2.5.5.5";

/// The fields of a UZI pass (UZI-register certificate policy): the otherName
/// `<OID CA>-<version>-<UZI nr>-<pass type>-<subscriber nr (URA)>-<role>-<AGB>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uzi {
    pub ca_oid: String,
    pub version: String,
    pub uzi_number: String,
    /// Z (zorgverlenerpas), N (medewerkerpas, named), M (medewerkerpas,
    /// unnamed), S (servercertificaat).
    pub pass_type: String,
    /// Subscriber number: the organization's URA.
    pub ura: String,
    /// Role code, e.g. `01.039` (radiologist); `00.000` when none.
    pub role: String,
    pub agb: String,
}

impl Uzi {
    pub fn parse(text: &str) -> Option<Uzi> {
        let parts: Vec<&str> = text.trim().split('-').collect();
        let [ca_oid, version, uzi_number, pass_type, ura, role, agb] = parts.as_slice() else {
            return None;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let valid = ca_oid.split('.').all(digits)
            && digits(uzi_number)
            && matches!(*pass_type, "Z" | "N" | "M" | "S")
            && ura.len() == 8
            && digits(ura)
            && role.split('.').all(digits);
        valid.then(|| Uzi {
            ca_oid: ca_oid.to_string(),
            version: version.to_string(),
            uzi_number: uzi_number.to_string(),
            pass_type: pass_type.to_string(),
            ura: ura.to_string(),
            role: role.to_string(),
            agb: agb.to_string(),
        })
    }
}

/// A verified client certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertIdentity {
    pub subject: String,
    /// SHA-256 of the SubjectPublicKeyInfo, hex.
    pub spki_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uzi: Option<Uzi>,
}

#[derive(Debug, thiserror::Error)]
#[error("client certificate: {0}")]
pub struct IdentityError(String);

impl CertIdentity {
    /// Reads the identity of a certificate the TLS layer already verified.
    pub fn from_der(der: &[u8]) -> Result<CertIdentity, IdentityError> {
        Self::from_der_trusting(der, None)
    }

    /// As `from_der`, but a UZI identity is believed only from a
    /// certificate signed by one of `uzi_issuers` (the DER of the CAs that
    /// issue UZI passes): any other CA in `http.client_ca` could write the
    /// same otherName, and could copy a UZI CA's name too, but not its key.
    pub fn from_der_trusting(
        der: &[u8],
        uzi_issuers: Option<&[Vec<u8>]>,
    ) -> Result<CertIdentity, IdentityError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| IdentityError(e.to_string()))?;
        let issuer_trusted = uzi_issuers.is_none_or(|issuers| {
            issuers.iter().any(|ca| {
                X509Certificate::from_der(ca)
                    .is_ok_and(|(_, ca)| cert.verify_signature(Some(ca.public_key())).is_ok())
            })
        });
        let spki = Sha256::digest(cert.public_key().raw);
        let mut uzi = None;
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::OtherName(oid, value) = name
                    && oid.to_id_string() == UZI_OTHER_NAME_OID
                    && issuer_trusted
                {
                    uzi = explicit_string(value).and_then(|s| Uzi::parse(&s));
                }
            }
        }
        Ok(CertIdentity {
            subject: cert.subject().to_string(),
            spki_sha256: super::secret::hex(&spki),
            uzi,
        })
    }

    /// Whether two certificates are the same holder: for UZI passes the UZI
    /// number within the organization (a renewed pass keeps it), otherwise
    /// the subject and the key.
    pub fn same_holder(&self, other: &CertIdentity) -> bool {
        match (&self.uzi, &other.uzi) {
            (Some(a), Some(b)) => {
                bool::from(a.uzi_number.as_bytes().ct_eq(b.uzi_number.as_bytes()))
                    & bool::from(a.ura.as_bytes().ct_eq(b.ura.as_bytes()))
            }
            (None, None) => {
                bool::from(
                    self.spki_sha256
                        .as_bytes()
                        .ct_eq(other.spki_sha256.as_bytes()),
                ) & (self.subject == other.subject)
            }
            _ => false,
        }
    }
}

/// The content of `[0] EXPLICIT <string>` (IA5String, UTF8String or
/// PrintableString), as an otherName value is encoded.
fn explicit_string(der: &[u8]) -> Option<String> {
    let (tag, inner, _) = tlv(der)?;
    if tag != 0xA0 {
        return None;
    }
    let (tag, value, _) = tlv(inner)?;
    matches!(tag, 0x16 | 0x0C | 0x13)
        .then(|| String::from_utf8(value.to_vec()).ok())
        .flatten()
}

/// One DER tag-length-value: (tag, value, rest).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *der.first()?;
    let first = *der.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let len = der
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    let value = der.get(header..header.checked_add(len)?)?;
    Some((tag, value, &der[header + len..]))
}

/// Who holds a bound grant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Holder {
    Certificate(CertIdentity),
    /// A holder token, kept as its SHA-256.
    Token {
        hash: String,
    },
}

impl fmt::Debug for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Certificate(c) => write!(f, "Certificate({})", c.subject),
            Holder::Token { .. } => f.write_str("Token(..)"),
        }
    }
}

impl Holder {
    /// For the audit trail and the admin view: who, without secrets.
    pub fn describe(&self) -> String {
        match self {
            Holder::Certificate(CertIdentity { uzi: Some(u), .. }) => {
                format!(
                    "UZI {} ({}, URA {}, role {})",
                    u.uzi_number, u.pass_type, u.ura, u.role
                )
            }
            Holder::Certificate(c) => format!("certificate {}", c.subject),
            Holder::Token { hash } => format!("holder token {}…", &hash[..hash.len().min(12)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uzi_strings() {
        let uzi =
            Uzi::parse("2.16.528.1.1003.1.3.5.5.2-1-12345678-Z-90000380-01.039-00000000").unwrap();
        assert_eq!(uzi.uzi_number, "12345678");
        assert_eq!(uzi.pass_type, "Z");
        assert_eq!(uzi.ura, "90000380");
        assert_eq!(uzi.role, "01.039");
        for bad in [
            "",
            "2.16.528-1-1-Z-9000038-01.039-0",
            "2.16.528-1-123-Q-90000380-01.039-0",
            "2.16.528-1-123-Z-90000380-01.039",
            "2.16.528-1-12a-Z-90000380-01.039-0",
        ] {
            assert!(Uzi::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn explicit_strings() {
        // [0] { IA5String "abc" }
        assert_eq!(
            explicit_string(&[0xA0, 5, 0x16, 3, b'a', b'b', b'c']).as_deref(),
            Some("abc")
        );
        assert_eq!(
            explicit_string(&[0xA0, 5, 0x0C, 3, b'a', b'b', b'c']).as_deref(),
            Some("abc")
        );
        assert_eq!(explicit_string(&[0xA0, 9, 0x16, 3, b'a']), None);
        assert_eq!(explicit_string(&[0x30, 5, 0x16, 3, b'a', b'b', b'c']), None);
    }
}
