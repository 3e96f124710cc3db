//! A test CA issuing UZI-style client certificates: the UZI identity string
//! in subjectAltName otherName 2.5.5.5 as an IA5String, as the UZI register
//! writes it (rcgen writes only UTF8String other names, so the extension is
//! encoded here).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pub dir: PathBuf,
    pub ca_pem: PathBuf,
}

/// A client certificate and key on disk, for curl's --cert/--key.
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=127 => vec![len as u8],
        128..=255 => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// subjectAltName with one otherName { 2.5.5.5, [0] IA5String text }.
fn uzi_san(text: &str) -> CustomExtension {
    let oid = tlv(0x06, &[0x55, 0x05, 0x05]);
    let value = tlv(0xA0, &tlv(0x16, text.as_bytes()));
    let other_name = tlv(0xA0, &[oid, value].concat());
    CustomExtension::from_oid_content(&[2, 5, 29, 17], tlv(0x30, &other_name))
}

/// The UZI identity string of a pass.
pub fn uzi_string(uzi_number: &str, ura: &str, role: &str) -> String {
    format!("2.16.528.1.1003.1.3.5.5.2-1-{uzi_number}-Z-{ura}-{role}-00000000")
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        let mut params = CertificateParams::new(vec![]).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "TEST UZI-register Zorgverlener CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ca_pem = dir.join("ca.pem");
        std::fs::write(&ca_pem, cert.pem()).unwrap();
        TestCa {
            params,
            key,
            dir: dir.to_path_buf(),
            ca_pem,
        }
    }

    /// A client certificate named `name`; with `uzi` (UZI number, URA,
    /// role) it carries the UZI identity.
    pub fn issue(&self, name: &str, uzi: Option<(&str, &str, &str)>) -> ClientCert {
        let mut params = CertificateParams::new(vec![]).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if let Some((number, ura, role)) = uzi {
            params
                .custom_extensions
                .push(uzi_san(&uzi_string(number, ura, role)));
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let stem = self.dir.join(name.replace(' ', "_"));
        let out = ClientCert {
            cert: stem.with_extension("crt"),
            key: stem.with_extension("key"),
        };
        std::fs::write(&out.cert, cert.pem()).unwrap();
        std::fs::write(&out.key, key.serialize_pem()).unwrap();
        out
    }
}
