//! The local accounts' document as a file of its own in the data
//! directory (`accounts.json`, 0600), not a tree in the index's database:
//! `pushgate reindex` rebuilds that database from the instance files, and
//! accounts are not in the files.

use std::io;
use std::path::PathBuf;

use super::StoreError;
use super::files::replace_durably;
use super::relations::AccountStore;

pub struct FileAccounts {
    path: PathBuf,
}

impl FileAccounts {
    pub fn new(path: PathBuf) -> FileAccounts {
        FileAccounts { path }
    }
}

impl AccountStore for FileAccounts {
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, document: &[u8]) -> Result<(), StoreError> {
        Ok(replace_durably(&self.path, document)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileAccounts::new(dir.path().join("accounts.json"));
        assert_eq!(store.load().unwrap(), None);
        store.save(b"{\"a\":1}").unwrap();
        store.save(b"{\"b\":2}").unwrap();
        assert_eq!(store.load().unwrap().unwrap(), b"{\"b\":2}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("accounts.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only");
    }
}
