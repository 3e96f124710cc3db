//! The public name of a grant.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A grant's public name (not a secret: operators see and type it).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GrantId(pub String);

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Any text names a grant: a name that names none is answered as not found
/// (never as malformed, which would tell a guesser about the format).
impl std::str::FromStr for GrantId {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(GrantId(s.to_string()))
    }
}
