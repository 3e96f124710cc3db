//! The manifest inside every package (`MANIFEST.JSON` in the ZIP): who
//! sends what to whom, and the size and SHA-256 of every other file, so the
//! receiver checks each file before anything is ingested.

use std::fs::File;
use std::io::{self, Read};

use sequoia_openpgp::crypto::hash::Context;
use sequoia_openpgp::types::HashAlgorithm;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::package::{Content, Entry};
use crate::store::Timestamp;

pub const MANIFEST_NAME: &str = "MANIFEST.JSON";
pub const FORMAT: &str = "pushgate-package/1";
/// A manifest larger than this is refused unread (a file line is ~150
/// bytes: this allows 100 000 files).
pub const MAX_MANIFEST: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Acute care (spoed): delivered before anything routine.
    Spoed,
    #[default]
    Routine,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Spoed => "spoed",
            Priority::Routine => "routine",
        }
    }
}

impl std::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Priority, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "spoed" | "urgent" | "stat" => Ok(Priority::Spoed),
            "routine" | "normal" | "" => Ok(Priority::Routine),
            other => Err(format!(
                "priority {other:?}: expected \"spoed\" or \"routine\""
            )),
        }
    }
}

/// An organization and its gateway's OpenPGP key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub ura: String,
    /// OpenPGP fingerprint (hex) of its gateway key.
    pub openpgp: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// 128 random bits (hex): the receiver keeps it to refuse a replay.
    pub package_id: String,
    pub created_at: Timestamp,
    pub sender: Party,
    pub recipient: Party,
    #[serde(default)]
    pub message: String,
    pub priority: Priority,
    /// The grant this push was made for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    pub studies: Vec<String>,
    pub instances: u32,
    /// Every file of the ZIP except this manifest, in archive order.
    pub files: Vec<FileDigest>,
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Size and SHA-256 of an entry's content (a file is read through once).
pub fn digest_entry(entry: &Entry) -> io::Result<FileDigest> {
    let mut hasher = Sha256::new();
    let size = match &entry.content {
        Content::Bytes(bytes) => {
            hasher.update(bytes);
            bytes.len() as u64
        }
        Content::File { path } => {
            let mut file = File::open(path)?;
            let mut buffer = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                match file.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => {
                        hasher.update(&buffer[..n]);
                        total += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            total
        }
    };
    if size != entry.size {
        return Err(io::Error::other(format!(
            "{} is {size} bytes now, {} when laid out",
            entry.name, entry.size
        )));
    }
    Ok(FileDigest {
        name: entry.name.clone(),
        size,
        sha256: hasher.finalize_hex()?,
    })
}

/// SHA-256 for the package's hashes (every file for the manifest, the
/// package as sent and as received): Sequoia's backend (Nettle, with the
/// CPU's SHA extensions) where it has one, which profiled at about 1.7x
/// the speed of the `sha2` crate for the same bytes; `sha2` otherwise.
#[derive(Clone)]
pub(crate) enum Sha256 {
    Backend(Context),
    Rust(sha2::Sha256),
}

impl Sha256 {
    pub fn new() -> Sha256 {
        match HashAlgorithm::SHA256.context() {
            Ok(context) => Sha256::Backend(context.for_digest()),
            Err(_) => Sha256::Rust(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: impl AsRef<[u8]>) {
        match self {
            Sha256::Backend(context) => context.update(data.as_ref()),
            Sha256::Rust(hasher) => hasher.update(data.as_ref()),
        }
    }

    /// The digest, as lowercase hex.
    pub fn finalize_hex(self) -> io::Result<String> {
        match self {
            Sha256::Backend(mut context) => {
                let mut out = [0u8; 32];
                context
                    .digest(&mut out)
                    .map_err(|e| io::Error::other(format!("SHA-256: {e}")))?;
                Ok(hex(&out))
            }
            Sha256::Rust(hasher) => Ok(hex(&hasher.finalize())),
        }
    }
}

impl Default for Sha256 {
    fn default() -> Sha256 {
        Sha256::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_sha256_in_pieces_too() {
        let mut one = Sha256::new();
        assert!(matches!(one, Sha256::Backend(_)), "Nettle's SHA-256 in use");
        one.update(b"abc");
        assert_eq!(
            one.finalize_hex().unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut pieces = Sha256::new();
        for chunk in data.chunks(65_537) {
            pieces.update(chunk);
        }
        assert_eq!(
            pieces.finalize_hex().unwrap(),
            hex(&sha2::Sha256::digest(&data))
        );
    }
}
