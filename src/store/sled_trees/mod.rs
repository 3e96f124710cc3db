//! The sled side of the relations: one tree per relation, in the database
//! beside the index, named in `trees`.

mod grants;
mod inbox;

use std::sync::Arc;

use super::StoreError;
use super::index::SledIndex;
use super::relations::{GrantStore, InboxStore};

pub use grants::SledGrants;
pub use inbox::SledInbox;

/// The grant mirror in the database of `index` (`reindex` rebuilds it in
/// the new index's database before swapping that in).
pub fn grant_store(index: &SledIndex) -> Result<Arc<dyn GrantStore>, StoreError> {
    Ok(Arc::new(SledGrants::open(index.db())?))
}

pub fn inbox_store(index: &SledIndex) -> Result<Arc<dyn InboxStore>, StoreError> {
    Ok(Arc::new(SledInbox::open(index.db())?))
}

#[cfg(test)]
mod tests;
