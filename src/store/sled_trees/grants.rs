use sled::Transactional;

use crate::base::GrantId;
use crate::store::StoreError;
use crate::store::relations::GrantStore;
use crate::store::trees::{GRANTS, GRANTS_META};

/// The key in `grants_meta` of the last journal record applied (u64, big
/// endian).
const APPLIED: &[u8] = b"journal_applied_seq";

/// `grants`: grant ID → authz's JSON of the grant's state.
pub struct SledGrants {
    grants: sled::Tree,
    meta: sled::Tree,
}

impl SledGrants {
    pub fn open(db: &sled::Db) -> Result<SledGrants, StoreError> {
        Ok(SledGrants {
            grants: db.open_tree(GRANTS)?,
            meta: db.open_tree(GRANTS_META)?,
        })
    }
}

impl GrantStore for SledGrants {
    fn load(&self) -> Result<(Vec<Vec<u8>>, u64), StoreError> {
        let mut states = Vec::new();
        for item in self.grants.iter().values() {
            states.push(item?.to_vec());
        }
        let applied = match self.meta.get(APPLIED)? {
            Some(bytes) => u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| {
                StoreError::Corrupt(format!(
                    "grant record: {} is {} bytes, not 8",
                    String::from_utf8_lossy(APPLIED),
                    bytes.len()
                ))
            })?),
            None => 0,
        };
        Ok((states, applied))
    }

    fn save(&self, changed: &[(GrantId, Vec<u8>)], applied: u64) -> Result<(), StoreError> {
        (&self.grants, &self.meta)
            .transaction(|(grants, meta)| {
                for (id, bytes) in changed {
                    grants.insert(id.0.as_bytes(), bytes.as_slice())?;
                }
                meta.insert(APPLIED, &applied.to_be_bytes())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(e) => e,
                sled::transaction::TransactionError::Storage(e) => StoreError::Index(e),
            })
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.grants.clear()?;
        self.meta.clear()?;
        Ok(())
    }
}
