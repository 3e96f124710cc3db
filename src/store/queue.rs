//! Where the durable work queue (`crate::queue`) keeps its entries: one
//! sled tree, `queue`, keyed `{kind}/{id}`. The queue only sees the
//! [`QueueStore`] trait, the seam a second backend implements.

use std::sync::Arc;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::StoreError;

/// Name of the sled tree.
pub const TREE: &str = super::trees::QUEUE;
/// Old entries moved per transaction by [`SledQueue::adopt`]: each batch
/// is atomic, and bounded in memory.
const ADOPT_BATCH: usize = 512;

/// Key–value storage of queue entries. Every write is durable when it
/// returns. Blocking.
pub trait QueueStore: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError>;
    /// Writes all entries at once (all or none).
    fn put_all(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StoreError>;
    fn remove(&self, key: &str) -> Result<(), StoreError>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Replaces `key`'s value if it is still `old`; false if it changed.
    /// Not on disk until [`QueueStore::flush`]: a batch of outcomes costs
    /// one sync, not one each.
    fn swap(&self, key: &str, old: &[u8], new: Vec<u8>) -> Result<bool, StoreError>;
    /// Puts every change so far on disk.
    fn flush(&self) -> Result<(), StoreError>;
    /// A number higher than any this store gave before.
    fn next_seq(&self) -> Result<u64, StoreError>;
}

/// The sled tree `queue`.
#[derive(Clone)]
pub struct SledQueue {
    db: sled::Db,
    tree: sled::Tree,
}

impl SledQueue {
    /// Opens (or makes) the tree. Blocking.
    pub fn open(db: &sled::Db) -> Result<Arc<SledQueue>, StoreError> {
        Ok(Arc::new(SledQueue {
            db: db.clone(),
            tree: db.open_tree(TREE)?,
        }))
    }

    /// Moves every entry of the older tree `old` into the queue, each as
    /// `convert` rewrites it (new key, new value). Each batch is one
    /// transaction over both trees: an entry is in the old tree or in the
    /// queue, never both or neither, whenever the process dies. Entries
    /// `convert` refuses stay where they are (logged). Returns how many
    /// moved. Blocking.
    pub fn adopt(
        &self,
        old: &str,
        convert: impl Fn(&[u8], &[u8]) -> Result<(String, Vec<u8>), String>,
    ) -> Result<usize, StoreError> {
        if !self
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == old.as_bytes())
        {
            return Ok(0);
        }
        let from = self.db.open_tree(old)?;
        let mut moved = 0;
        let mut kept = 0;
        let mut batch = Vec::with_capacity(ADOPT_BATCH);
        let mut entries = from.iter();
        loop {
            batch.clear();
            for entry in entries.by_ref() {
                let (k, v) = entry?;
                match convert(&k, &v) {
                    Ok((key, value)) => batch.push((k, key, value)),
                    Err(reason) => {
                        kept += 1;
                        tracing::error!(
                            tree = old,
                            key = %String::from_utf8_lossy(&k),
                            "queue upgrade: entry left in place: {reason}"
                        );
                    }
                }
                if batch.len() == ADOPT_BATCH {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            (&from, &self.tree)
                .transaction(|(from, to)| {
                    for (old_key, key, value) in &batch {
                        // taken only if still there, so a second run cannot
                        // copy an entry twice
                        if from.remove(old_key.as_ref())?.is_some() {
                            to.insert(key.as_bytes(), value.as_slice())?;
                        }
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(|e| match e {
                    TransactionError::Storage(e) => StoreError::Index(e),
                    TransactionError::Abort(()) => StoreError::Corrupt("queue upgrade".into()),
                })?;
            moved += batch.len();
            self.db.flush()?;
        }
        if kept == 0 {
            self.db.drop_tree(old)?;
        }
        if moved > 0 {
            tracing::info!(
                tree = old,
                moved,
                "queue upgrade: entries moved into the queue"
            );
        }
        Ok(moved)
    }
}

impl QueueStore for SledQueue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.tree.insert(key.as_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    fn put_all(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, value) in entries {
            batch.insert(key.as_bytes(), value);
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.tree.remove(key.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(prefix.as_bytes()) {
            let (k, v) = entry?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    fn swap(&self, key: &str, old: &[u8], new: Vec<u8>) -> Result<bool, StoreError> {
        let swapped = self
            .tree
            .compare_and_swap(key.as_bytes(), Some(old), Some(new))?
            .is_ok();
        Ok(swapped)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn next_seq(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    #[test]
    fn adopt_moves_each_entry_once_and_keeps_what_it_cannot_read() {
        let db = db();
        let old = db.open_tree("old").unwrap();
        old.insert("a", "1").unwrap();
        old.insert("b", "bad").unwrap();
        old.insert("c", "3").unwrap();
        let q = SledQueue::open(&db).unwrap();
        let convert = |k: &[u8], v: &[u8]| match v {
            b"bad" => Err("unreadable".to_string()),
            _ => Ok((format!("kind/{}", String::from_utf8_lossy(k)), v.to_vec())),
        };
        assert_eq!(q.adopt("old", convert).unwrap(), 2);
        assert_eq!(q.get("kind/a").unwrap().unwrap(), b"1");
        assert_eq!(q.get("kind/c").unwrap().unwrap(), b"3");
        assert!(q.get("kind/b").unwrap().is_none());
        // the unreadable one stays in the old tree, the moved ones left it
        let left: Vec<_> = old.iter().keys().map(|k| k.unwrap().to_vec()).collect();
        assert_eq!(left, vec![b"b".to_vec()]);
        // a second open moves nothing again
        assert_eq!(q.adopt("old", convert).unwrap(), 0);
        assert_eq!(q.scan("kind/").unwrap().len(), 2);
    }

    #[test]
    fn adopt_of_a_missing_tree_makes_none() {
        let db = db();
        let q = SledQueue::open(&db).unwrap();
        assert_eq!(q.adopt("never", |_, _| Err("no".into())).unwrap(), 0);
        assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"never"));
    }

    #[test]
    fn swap_only_over_the_value_read() {
        let q = SledQueue::open(&db()).unwrap();
        q.put("k/1", b"a".to_vec()).unwrap();
        assert!(q.swap("k/1", b"a", b"b".to_vec()).unwrap());
        assert!(!q.swap("k/1", b"a", b"c".to_vec()).unwrap());
        assert_eq!(q.get("k/1").unwrap().unwrap(), b"b");
        assert!(q.next_seq().unwrap() < q.next_seq().unwrap());
    }
}
