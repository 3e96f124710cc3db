//! DICOM Application Entity titles (PS3.5 6.2, VR AE).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An AE title as configured: 1–16 characters of the default repertoire, no
/// backslash or control characters; leading and trailing spaces are not
/// significant and are dropped.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AeTitle(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AeTitleError {
    #[error("{0:?}: an AE title has 1 to 16 characters")]
    Length(String),
    #[error("{0:?}: an AE title has printable ASCII characters except '\\'")]
    Characters(String),
}

impl AeTitle {
    pub fn parse(value: &str) -> Result<AeTitle, AeTitleError> {
        let ae = value.trim();
        let shown = || value.chars().take(40).collect();
        if ae.is_empty() || ae.len() > 16 {
            return Err(AeTitleError::Length(shown()));
        }
        if !printable(ae) {
            return Err(AeTitleError::Characters(shown()));
        }
        Ok(AeTitle(ae.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn printable(ae: &str) -> bool {
    ae.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'\\')
}

/// An AE title as the wire carries it (a peer's, or one we call): the same
/// characters, not all spaces, padding counted in the 16.
pub(crate) fn valid_ae(ae: &str) -> bool {
    !ae.trim().is_empty() && ae.len() <= 16 && printable(ae)
}

impl FromStr for AeTitle {
    type Err = AeTitleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AeTitle::parse(s)
    }
}

impl TryFrom<String> for AeTitle {
    type Error = AeTitleError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        AeTitle::parse(&value)
    }
}

impl From<AeTitle> for String {
    fn from(ae: AeTitle) -> String {
        ae.0
    }
}

impl fmt::Display for AeTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AeTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeTitle({})", self.0)
    }
}

/// Compares the title as kept (without padding) with plain text.
impl PartialEq<str> for AeTitle {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for AeTitle {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for AeTitle {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_title_without_its_padding() {
        assert_eq!(AeTitle::parse(" PUSHGATE ").unwrap().as_str(), "PUSHGATE");
        assert_eq!(
            AeTitle::parse("A".repeat(16).as_str())
                .unwrap()
                .to_string()
                .len(),
            16
        );
        let ae: AeTitle = serde_json::from_str("\"STORESCU\"").unwrap();
        assert_eq!(serde_json::to_string(&ae).unwrap(), "\"STORESCU\"");
    }

    #[test]
    fn refuses_empty_long_and_unprintable_titles() {
        for bad in ["", "   ", &"A".repeat(17)] {
            assert!(
                matches!(AeTitle::parse(bad), Err(AeTitleError::Length(_))),
                "{bad:?}"
            );
        }
        for bad in ["A\\B", "A\tB", "Ä"] {
            assert!(
                matches!(AeTitle::parse(bad), Err(AeTitleError::Characters(_))),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<AeTitle>("\"A\\\\B\"").is_err());
    }

    #[test]
    fn wire_titles_count_their_padding() {
        assert!(valid_ae("PACS "));
        assert!(!valid_ae("    "));
        assert!(!valid_ae(&format!("{} ", "A".repeat(16))));
    }
}
