//! The relations kept beside the index, each behind a small trait: the seam
//! a second backend (PostgreSQL, for a multi-node store) implements. Values
//! are the owning module's serialised records, opaque here: the store keeps
//! and returns bytes, the module above decides what they mean.

use super::{StoreError, Uid};
use crate::base::GrantId;

/// authz's mirror of grant state, rebuilt from the journal: each grant's
/// state by its ID, and how far into the journal it is.
pub trait GrantStore: Send + Sync {
    /// Every grant's state, and the number of the last journal record
    /// applied (0: none).
    fn load(&self) -> Result<(Vec<Vec<u8>>, u64), StoreError>;

    /// Writes the changed grants and the number of the journal record that
    /// changed them together: all or nothing, so that a crash between them
    /// cannot leave a change applied and not counted, or counted and lost.
    fn save(&self, changed: &[(GrantId, Vec<u8>)], applied: u64) -> Result<(), StoreError>;

    /// Forgets every grant (before a rebuild from the whole journal).
    fn clear(&self) -> Result<(), StoreError>;
}

/// What the relay inbox remembers of packages from peers.
pub trait InboxStore: Send + Sync {
    /// The receipt kept for a package, by `<sender URA>/<package ID>`.
    fn received(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Where a study received from a peer came from.
    fn origin(&self, study: &Uid) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records a package as received: `origin` for each of its `studies`
    /// first, then its receipt under `key` (a crash in between leaves it
    /// unreceived, so the sender resends), durable when this returns.
    fn keep_received(
        &self,
        studies: &[Uid],
        origin: &[u8],
        key: &str,
        receipt: &[u8],
    ) -> Result<(), StoreError>;
}

/// The console's local accounts, kept as one small document (a handful to
/// a few hundred accounts): its owner, `accounts::local`, reads it whole
/// at start and writes it whole on every change.
pub trait AccountStore: Send + Sync {
    /// The document as last saved; None before the first account.
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces it, durable when this returns.
    fn save(&self, document: &[u8]) -> Result<(), StoreError>;
}
