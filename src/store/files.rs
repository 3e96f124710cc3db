//! Instance files on disk: the source of truth for images.
//!
//! Layout: `instances/<study>/<series>/<sop>.dcm`, Part 10 files. A new file
//! is written under `tmp/`, synced, renamed into place and its directory
//! synced: a crash leaves either the whole file or none of it visible.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use rand::Rng;

use super::key::InstanceKey;
use crate::base::Uid;

/// Bytes buffered before a write system call.
const WRITE_BUFFER: usize = 256 * 1024;
/// Writeback of this many bytes is started while the rest still arrives, so
/// that the final fsync has little left to do.
const WRITEBEHIND_CHUNK: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct FileStore {
    instances: PathBuf,
    tmp: PathBuf,
    /// Where reindex puts the older of two files with one SOP Instance UID.
    orphaned: PathBuf,
}

impl FileStore {
    /// Opens (creating if needed) the directories under `data_dir` and clears
    /// partial files a previous run left in `tmp/`.
    pub fn open(instances: PathBuf, tmp: PathBuf) -> io::Result<FileStore> {
        private_dir(&instances)?;
        private_dir(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "part") {
                tracing::info!(path = %path.display(), "removing partial file of an earlier run");
                fs::remove_file(&path)?;
            }
        }
        let orphaned = instances.with_file_name("orphaned");
        Ok(FileStore {
            instances,
            tmp,
            orphaned,
        })
    }

    pub fn instances_dir(&self) -> &Path {
        &self.instances
    }

    pub fn path_of(&self, key: &InstanceKey) -> PathBuf {
        self.instances
            .join(key.study.as_str())
            .join(key.series.as_str())
            .join(format!("{}.dcm", key.sop))
    }

    /// A new, empty temporary file; it disappears when dropped unless
    /// installed.
    pub fn create_temp(&self) -> io::Result<TempFile> {
        let name = format!("{:032x}.part", rand::rng().random::<u128>());
        let path = self.tmp.join(name);
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o640)
            .open(&path)?;
        Ok(TempFile {
            path: Some(path),
            file,
            buffer: Vec::with_capacity(WRITE_BUFFER),
            written: 0,
            writeback_started: 0,
            crc: crc32fast::Hasher::new(),
        })
    }

    /// Makes `temp` durable as the file of `key`, replacing any file there.
    pub fn install(&self, mut temp: TempFile, key: &InstanceKey) -> io::Result<PathBuf> {
        temp.flush()?;
        temp.file.sync_data()?;
        let series_dir = self.ensure_dir(&key.study, &key.series)?;
        let target = series_dir.join(format!("{}.dcm", key.sop));
        let from = temp
            .path
            .take()
            .ok_or_else(|| io::Error::other("temp file already used"))?;
        let mut renamed = fs::rename(&from, &target);
        if renamed
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        {
            // The series directory was pruned (its last instance moved away)
            // between ensure_dir and here: make it again, once.
            self.ensure_dir(&key.study, &key.series)?;
            renamed = fs::rename(&from, &target);
        }
        if let Err(e) = renamed {
            let _ = fs::remove_file(&from);
            return Err(e);
        }
        sync_dir(&series_dir)?;
        Ok(target)
    }

    /// Moves the file of `key` out of the store into `orphaned/`, keeping
    /// its path; never overwrites.
    pub fn orphan(&self, key: &InstanceKey) -> io::Result<PathBuf> {
        let from = self.path_of(key);
        let relative = from
            .strip_prefix(&self.instances)
            .map_err(io::Error::other)?;
        let mut to = self.orphaned.join(relative);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut n = 1;
        while to.exists() {
            to = self.orphaned.join(format!("{}.{n}", relative.display()));
            n += 1;
        }
        fs::rename(&from, &to)?;
        if let Some(parent) = from.parent() {
            sync_dir(parent)?;
        }
        tracing::warn!(instance = %key, to = %to.display(), "older duplicate moved out of the store");
        Ok(to)
    }

    /// Removes the file of `key` durably and prunes emptied directories.
    pub fn remove(&self, key: &InstanceKey) -> io::Result<()> {
        let path = self.path_of(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        let series_dir = path.parent().unwrap_or(&self.instances).to_path_buf();
        sync_dir(&series_dir)?;
        // Directories only need to go if they are empty; failure is harmless.
        if fs::remove_dir(&series_dir).is_ok()
            && let Some(study_dir) = series_dir.parent()
            && fs::remove_dir(study_dir).is_ok()
        {
            sync_dir(&self.instances)?;
        }
        Ok(())
    }

    /// Creates study and series directories; a directory just created is made
    /// durable in its parent.
    fn ensure_dir(&self, study: &Uid, series: &Uid) -> io::Result<PathBuf> {
        let study_dir = self.instances.join(study.as_str());
        if create_dir(&study_dir)? {
            sync_dir(&self.instances)?;
        }
        let series_dir = study_dir.join(series.as_str());
        if create_dir(&series_dir)? {
            sync_dir(&study_dir)?;
        }
        Ok(series_dir)
    }

    /// Every instance file, with the key its path names. Files whose names
    /// are not UIDs are reported as errors, not skipped silently.
    pub fn walk(&self) -> io::Result<Vec<Result<(InstanceKey, PathBuf), PathBuf>>> {
        let mut out = Vec::new();
        for study in sorted_entries(&self.instances)? {
            let Some(study_uid) = uid_of(&study) else {
                out.push(Err(study));
                continue;
            };
            if !study.is_dir() {
                out.push(Err(study));
                continue;
            }
            for series in sorted_entries(&study)? {
                let Some(series_uid) = uid_of(&series).filter(|_| series.is_dir()) else {
                    out.push(Err(series));
                    continue;
                };
                for file in sorted_entries(&series)? {
                    let sop = file
                        .extension()
                        .filter(|e| *e == "dcm")
                        .and_then(|_| file.file_stem())
                        .and_then(|s| s.to_str())
                        .and_then(|s| Uid::parse(s).ok());
                    match sop {
                        Some(sop) => out.push(Ok((
                            InstanceKey {
                                study: study_uid.clone(),
                                series: series_uid.clone(),
                                sop,
                            },
                            file,
                        ))),
                        None => out.push(Err(file)),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether any instance file exists (to refuse starting on a lost index).
    pub fn has_instances(&self) -> io::Result<bool> {
        for study in fs::read_dir(&self.instances)? {
            let study = study?.path();
            if !study.is_dir() {
                continue;
            }
            for series in fs::read_dir(&study)? {
                let series = series?.path();
                if series.is_dir() && fs::read_dir(&series)?.next().is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

fn uid_of(path: &Path) -> Option<Uid> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| Uid::parse(n).ok())
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// Returns whether the directory was created (false: it existed).
fn create_dir(dir: &Path) -> io::Result<bool> {
    match std::fs::DirBuilder::new().mode(0o750).create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates a directory only its owner (and group) may enter: it holds
/// patient data.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces the small file at `path` with `bytes`, readable by its owner
/// only, durably: a temporary file beside it, synced, renamed over it, the
/// directory synced. A crash leaves the old file or the new, never half.
pub fn replace_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.new"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path)?;
    sync_dir(dir)
}

/// A file being received. Writes are buffered; writeback to disk starts
/// while data still arrives. Dropped without `install`, it is deleted.
#[derive(Debug)]
pub struct TempFile {
    path: Option<PathBuf>,
    file: File,
    buffer: Vec<u8>,
    written: u64,
    writeback_started: u64,
    /// CRC-32 of every byte accepted: the ZIP download needs it before the
    /// first byte, and computing it here costs no extra read.
    crc: crc32fast::Hasher,
}

impl TempFile {
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Bytes accepted so far (buffered or written).
    pub fn len(&self) -> u64 {
        self.written + self.buffer.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// CRC-32 (ZIP's) of the bytes accepted so far.
    pub fn crc32(&self) -> u32 {
        self.crc.clone().finalize()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.file.write_all(&self.buffer)?;
            self.written += self.buffer.len() as u64;
            self.buffer.clear();
        }
        self.start_writeback();
        Ok(())
    }

    /// Writes out what is buffered and closes the file, keeping it on
    /// disk: for many files staged at once (the relay inbox stages a whole
    /// package before ingesting it), which must hold neither a descriptor
    /// nor a buffer each.
    pub fn park(mut self) -> io::Result<ParkedTemp> {
        self.flush()?;
        Ok(ParkedTemp {
            path: self.path.take(),
            written: self.written,
            crc: self.crc.clone(),
        })
    }

    fn start_writeback(&mut self) {
        let pending = self.written - self.writeback_started;
        if pending >= WRITEBEHIND_CHUNK {
            start_writeback(&self.file, self.writeback_started, pending);
            self.writeback_started = self.written;
        }
    }
}

impl Write for TempFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.crc.update(data);
        if self.buffer.len() + data.len() > WRITE_BUFFER {
            self.flush()?;
        }
        if data.len() >= WRITE_BUFFER {
            self.file.write_all(data)?;
            self.written += data.len() as u64;
            self.start_writeback();
        } else {
            self.buffer.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        TempFile::flush(self)
    }
}

/// A temporary file written and closed; [`ParkedTemp::reopen`] gives the
/// [`TempFile`] back. Removed when dropped.
pub struct ParkedTemp {
    path: Option<PathBuf>,
    written: u64,
    crc: crc32fast::Hasher,
}

impl ParkedTemp {
    pub fn reopen(mut self) -> io::Result<TempFile> {
        let path = self
            .path
            .take()
            .ok_or_else(|| io::Error::other("temp file already used"))?;
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) => {
                self.path = Some(path);
                return Err(e);
            }
        };
        Ok(TempFile {
            path: Some(path),
            file,
            buffer: Vec::new(),
            written: self.written,
            writeback_started: self.written,
            crc: self.crc.clone(),
        })
    }
}

impl Drop for ParkedTemp {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Asks the kernel to start writing a range back now (no waiting); the fsync
/// before acknowledgement then finds most pages already clean.
#[cfg(target_os = "linux")]
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    // SAFETY: sync_file_range only reads its integer arguments; the fd is
    // owned by `file` and valid for the duration of the call.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(study: &str, series: &str, sop: &str) -> InstanceKey {
        InstanceKey {
            study: Uid::parse(study).unwrap(),
            series: Uid::parse(series).unwrap(),
            sop: Uid::parse(sop).unwrap(),
        }
    }

    #[test]
    fn temp_files_vanish_unless_installed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("i"), dir.path().join("t")).unwrap();
        let mut t = store.create_temp().unwrap();
        t.write_all(b"abc").unwrap();
        let path = t.path().unwrap().to_path_buf();
        t.flush().unwrap();
        assert!(path.exists());
        drop(t);
        assert!(!path.exists());
    }

    #[test]
    fn install_replaces_and_walk_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("i"), dir.path().join("t")).unwrap();
        let k = key("1.2", "1.2.3", "1.2.3.4");
        for content in [&b"first"[..], &vec![7u8; 3 * 1024 * 1024][..]] {
            let mut t = store.create_temp().unwrap();
            t.write_all(content).unwrap();
            let path = store.install(t, &k).unwrap();
            assert_eq!(fs::read(&path).unwrap(), content);
        }
        let found = store.walk().unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].as_ref().unwrap().0, k);
        assert!(fs::read_dir(dir.path().join("t")).unwrap().next().is_none());
        store.remove(&k).unwrap();
        assert!(!store.has_instances().unwrap());
    }

    #[test]
    fn the_crc_covers_every_byte_buffered_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("i"), dir.path().join("t")).unwrap();
        let mut t = store.create_temp().unwrap();
        t.write_all(b"12345").unwrap();
        t.write_all(b"6789").unwrap();
        // the CRC-32 check value (ISO-HDLC, as ZIP uses it)
        assert_eq!(t.crc32(), 0xCBF4_3926);
        let big = vec![0x5a; 3 * WRITE_BUFFER];
        t.write_all(&big).unwrap();
        t.flush().unwrap();
        let written = fs::read(t.path().unwrap()).unwrap();
        let mut expected = crc32fast::Hasher::new();
        expected.update(&written);
        assert_eq!(t.crc32(), expected.finalize());
    }

    #[test]
    fn leftover_partial_files_are_cleared_on_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("t")).unwrap();
        fs::write(dir.path().join("t/abc.part"), b"half").unwrap();
        FileStore::open(dir.path().join("i"), dir.path().join("t")).unwrap();
        assert!(!dir.path().join("t/abc.part").exists());
    }

    #[test]
    fn walk_reports_strange_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("i"), dir.path().join("t")).unwrap();
        fs::create_dir_all(dir.path().join("i/1.2/3.4")).unwrap();
        fs::write(dir.path().join("i/1.2/3.4/notes.txt"), b"x").unwrap();
        let found = store.walk().unwrap();
        assert!(matches!(&found[..], [Err(p)] if p.ends_with("notes.txt")));
    }
}
