//! One process per data directory: the daemon and `reindex` hold an
//! exclusive lock on `data_dir/pushgate.lock` while they run.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
#[error("{path} is locked: another pushgate (daemon or reindex) is running with this data_dir")]
pub struct Locked {
    pub path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock or says who has it; released when dropped (or when
    /// the process dies, however it dies).
    pub fn acquire(data_dir: &Path) -> io::Result<Result<DataDirLock, Locked>> {
        let path = data_dir.join("pushgate.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Ok(DataDirLock { _file: file }));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(Err(Locked { path }))
        } else {
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap().unwrap();
        assert!(DataDirLock::acquire(dir.path()).unwrap().is_err());
        drop(first);
        assert!(DataDirLock::acquire(dir.path()).unwrap().is_ok());
    }
}
