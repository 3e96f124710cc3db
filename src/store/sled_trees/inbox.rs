use crate::store::relations::InboxStore;
use crate::store::trees::{RELAY_ORIGINS, RELAY_RECEIVED};
use crate::store::{StoreError, Uid};

/// `relay_received`: `<sender URA>/<package ID>` → the receipt kept;
/// `relay_origins`: study UID → where it came from.
pub struct SledInbox {
    received: sled::Tree,
    origins: sled::Tree,
    db: sled::Db,
}

impl SledInbox {
    pub fn open(db: &sled::Db) -> Result<SledInbox, StoreError> {
        Ok(SledInbox {
            received: db.open_tree(RELAY_RECEIVED)?,
            origins: db.open_tree(RELAY_ORIGINS)?,
            db: db.clone(),
        })
    }
}

impl InboxStore for SledInbox {
    fn received(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.received.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    fn origin(&self, study: &Uid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .origins
            .get(study.as_str().as_bytes())?
            .map(|v| v.to_vec()))
    }

    fn keep_received(
        &self,
        studies: &[Uid],
        origin: &[u8],
        key: &str,
        receipt: &[u8],
    ) -> Result<(), StoreError> {
        for study in studies {
            self.origins.insert(study.as_str().as_bytes(), origin)?;
        }
        self.received.insert(key.as_bytes(), receipt)?;
        // the sender is answered (and stops resending) only once this is
        // on disk
        self.db.flush()?;
        Ok(())
    }
}
