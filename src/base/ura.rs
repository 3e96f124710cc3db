//! URA: the eight-digit number of a Dutch healthcare organisation (UZI
//! register), on which grants for an organisation and gateway push are bound.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ura(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a URA is eight digits")]
pub struct UraError;

impl Ura {
    /// Surrounding spaces are dropped (configs and forms carry them).
    pub fn parse(value: &str) -> Result<Ura, UraError> {
        let ura = value.trim();
        if ura.len() != 8 || !ura.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UraError);
        }
        Ok(Ura(ura.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Ura {
    type Err = UraError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ura::parse(s)
    }
}

impl TryFrom<String> for Ura {
    type Error = UraError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Ura::parse(&value)
    }
}

impl From<Ura> for String {
    fn from(ura: Ura) -> String {
        ura.0
    }
}

impl fmt::Display for Ura {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Ura {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ura({})", self.0)
    }
}

/// Compares the number as kept (without spaces) with plain text.
impl PartialEq<str> for Ura {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Ura {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for Ura {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_digits_and_nothing_else() {
        assert_eq!(Ura::parse(" 12345678 ").unwrap().as_str(), "12345678");
        for bad in [
            "",
            "1234567",
            "123456789",
            "1234567a",
            "1234 678",
            "١٢٣٤٥٦٧٨",
        ] {
            assert_eq!(Ura::parse(bad), Err(UraError), "{bad:?}");
        }
        let ura: Ura = serde_json::from_str("\"00000001\"").unwrap();
        assert_eq!(serde_json::to_string(&ura).unwrap(), "\"00000001\"");
        assert!(serde_json::from_str::<Ura>("\"1\"").is_err());
    }
}
