//! Deterministic DICOM UIDs.
//!
//! Every UID is `2.25.<decimal>` where the decimal is a 128-bit UUID (RFC 9562
//! version 8, "custom") whose bits come from SHA-256 of a descriptive name.
//! The `2.25` arc is the ISO/IEC 9834-8 / ITU-T X.667 UUID root, so no
//! registered organisation root is needed and the same name always yields the
//! same UID. The longest possible result is 44 characters.

use sha2::{Digest, Sha256};

/// Prefix of every name hashed by this generator, so our UIDs never collide
/// with another tool that uses the same scheme with the same short names.
const NAMESPACE: &str = "pushgate-samples/";

/// UID derived from `name` (see module docs).
pub fn from_name(name: &str) -> String {
    let digest = Sha256::new()
        .chain_update(NAMESPACE.as_bytes())
        .chain_update(name.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122/9562 variant
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

/// Implementation Class UID written into every file meta group.
pub fn implementation_class() -> String {
    from_name("implementation-class-uid")
}

/// Implementation Version Name (SH, at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = "PUSHGATE_SMP_1";

/// PS3.5 9.1 UID syntax: at most 64 characters, numeric components
/// separated by dots, no empty components and no leading zeros.
pub fn is_valid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_stable_and_distinct() {
        let a = from_name("ct/study");
        assert!(is_valid(&a), "{a}");
        assert!(a.len() <= 44);
        assert_eq!(a, from_name("ct/study"));
        assert_ne!(a, from_name("ct/series"));
        assert!(is_valid(&implementation_class()));
        for i in 0..2000 {
            assert!(is_valid(&from_name(&format!("x/{i}"))));
        }
    }

    #[test]
    fn syntax_checks() {
        assert!(is_valid("1.2.840.10008.1.2.1"));
        assert!(is_valid("2.25.0"));
        assert!(!is_valid(""));
        assert!(!is_valid("1..2"));
        assert!(!is_valid("1.02"));
        assert!(!is_valid("1.2."));
        assert!(!is_valid("1.2a"));
        assert!(!is_valid(&format!("1.{}", "2".repeat(63))));
    }
}
