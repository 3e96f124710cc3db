//! DICOM UIDs that are safe to use as path components.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A UID as it may be used in a file name: 1–64 characters, digits and dots,
/// no empty component. Leading zeros inside a component are tolerated (they
/// occur in the wild and are harmless on disk).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uid(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid UID: {reason}")]
pub struct UidError {
    pub value: String,
    pub reason: &'static str,
}

impl Uid {
    /// Parses a UID, dropping the trailing NUL or space padding of the wire.
    pub fn parse(raw: &str) -> Result<Uid, UidError> {
        let value = raw.trim_end_matches(['\0', ' ']).trim_start_matches(' ');
        let fail = |reason| {
            Err(UidError {
                value: value.chars().take(80).collect(),
                reason,
            })
        };
        if value.is_empty() {
            return fail("empty");
        }
        if value.len() > 64 {
            return fail("longer than 64 characters");
        }
        if !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return fail("only digits and dots are allowed");
        }
        if value.split('.').any(str::is_empty) {
            return fail("empty component");
        }
        Ok(Uid(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Uid {
    type Error = UidError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Uid::parse(&value)
    }
}

impl From<Uid> for String {
    fn from(uid: Uid) -> String {
        uid.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", self.0)
    }
}

impl AsRef<str> for Uid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_uids_and_strips_padding() {
        assert_eq!(
            Uid::parse("1.2.840.10008.5.1.4.1.1.2\0").unwrap().as_str(),
            "1.2.840.10008.5.1.4.1.1.2"
        );
        assert_eq!(Uid::parse("1.2.3 ").unwrap().as_str(), "1.2.3");
        assert!(Uid::parse("1.2.040.5").is_ok());
        assert!(Uid::parse(&format!("1.{}", "2".repeat(62))).is_ok());
    }

    #[test]
    fn refuses_anything_unsafe_as_a_file_name() {
        for bad in [
            "",
            "..",
            "../etc/passwd",
            "1.2/3",
            "1..2",
            ".1.2",
            "1.2.",
            "1.2.3a",
            "1 2",
            "1.2\\3",
            "1.2.3\n",
        ] {
            assert!(Uid::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Uid::parse(&format!("1.{}", "2".repeat(63))).is_err());
    }
}
