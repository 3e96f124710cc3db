//! The index key of one stored instance.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::base::Uid;

/// Where one instance lives: study, series, SOP instance.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct InstanceKey {
    pub study: Uid,
    pub series: Uid,
    pub sop: Uid,
}

impl InstanceKey {
    /// The sled key: components joined by `/` so that a prefix scan on
    /// `study/` or `study/series/` yields exactly that study or series.
    pub fn index_key(&self) -> Vec<u8> {
        format!("{}/{}/{}", self.study, self.series, self.sop).into_bytes()
    }

    pub fn from_index_key(key: &[u8]) -> Option<InstanceKey> {
        let text = std::str::from_utf8(key).ok()?;
        let mut parts = text.split('/');
        let key = InstanceKey {
            study: Uid::parse(parts.next()?).ok()?,
            series: Uid::parse(parts.next()?).ok()?,
            sop: Uid::parse(parts.next()?).ok()?,
        };
        parts.next().is_none().then_some(key)
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.study, self.series, self.sop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_round_trip() {
        let key = InstanceKey {
            study: Uid::parse("1.2.3").unwrap(),
            series: Uid::parse("1.2.3.4").unwrap(),
            sop: Uid::parse("1.2.3.4.5").unwrap(),
        };
        assert_eq!(InstanceKey::from_index_key(&key.index_key()), Some(key));
        assert_eq!(InstanceKey::from_index_key(b"1.2/3"), None);
    }
}
