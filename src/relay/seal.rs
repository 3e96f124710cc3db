//! Making a package: the study's DICOM file-set ZIP (the download's, with
//! DICOMDIR) plus `MANIFEST.JSON`, signed by us and encrypted to the peer as
//! one OpenPGP message, written straight into the outbox file. The ZIP and
//! the plaintext never exist anywhere else; memory stays at a few buffers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::manifest::Sha256;
use sequoia_openpgp::Cert;

use super::RelayError;
use super::manifest::{MANIFEST_NAME, Manifest, digest_entry};
use super::openpgp::{OwnKey, Sealer, seal};
use crate::package::{self, Archive, ArchiveOut, Entry, FileSetInstance};
use crate::store::sync_dir;

/// Name of the literal data inside the OpenPGP message: what `gpg
/// --decrypt --use-embedded-filename` writes.
pub const LITERAL_NAME: &str = "pushgate-package.zip";

#[derive(Debug, Clone)]
pub struct Sealed {
    /// SHA-256 (hex) of the OpenPGP message: what the receipt signs.
    pub sha256: String,
    pub size: u64,
    pub instances: u32,
}

impl ArchiveOut for Sealer {}

/// Writes to the outbox file and hashes what it writes.
struct Hashed {
    out: File,
    digest: Arc<Mutex<(Sha256, u64)>>,
    /// Bytes written, and how far write-back was started: the fsync at
    /// the end then finds most pages clean (as intake does).
    written: u64,
    writeback_started: u64,
}

/// Start write-back every this many bytes.
const WRITEBEHIND: u64 = 8 << 20;

impl Write for Hashed {
    // the sealer writes chunks of 1 MiB: no buffering here
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.out.write(data)?;
        let mut digest = self
            .digest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        digest.0.update(&data[..n]);
        digest.1 += n as u64;
        self.written += n as u64;
        if self.written - self.writeback_started >= WRITEBEHIND {
            crate::store::files::start_writeback(
                &self.out,
                self.writeback_started,
                self.written - self.writeback_started,
            );
            self.writeback_started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The file-set with the manifest as its first entry: a receiver reading
/// the ZIP front to back knows what to expect (and refuses what it does
/// not list) before the first byte of any other file. Where an entry sits
/// in a ZIP does not matter to CD import, which looks for DICOMDIR by
/// name. Blocking: reads every file once to hash it.
pub fn layout(
    mut manifest: Manifest,
    instances: Vec<FileSetInstance>,
    readme: String,
) -> Result<(Archive, Manifest), RelayError> {
    let count = instances.len() as u32;
    let mut entries = package::file_set_entries(instances, readme, "PUSHGATE")?;
    manifest.files = digest_all(&entries).map_err(RelayError::Io)?;
    manifest.instances = count;
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| RelayError::Internal(format!("manifest: {e}")))?;
    entries.insert(0, Entry::bytes(MANIFEST_NAME, bytes, manifest.created_at));
    Ok((Archive::new(entries)?, manifest))
}

/// Size and SHA-256 of every entry, in order; the files are split over
/// up to four threads (hashing is most of the manifest's cost).
fn digest_all(entries: &[Entry]) -> io::Result<Vec<super::manifest::FileDigest>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let per = entries.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = entries
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(digest_entry)
                        .collect::<io::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(entries.len());
        for part in parts {
            all.extend(
                part.join()
                    .map_err(|_| io::Error::other("a hashing thread panicked"))??,
            );
        }
        Ok(all)
    })
}

/// Seals `archive` for `recipient` into `out` (via a `.part` file, fsynced
/// and renamed: a crash leaves no half package under the final name).
pub fn seal_to_file(
    own: &OwnKey,
    recipient: &Cert,
    archive: &Archive,
    instances: u32,
    out: &Path,
) -> Result<Sealed, RelayError> {
    let part = out.with_extension("part");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&part)
        .map_err(RelayError::Io)?;
    let digest = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let hashed = Hashed {
        out: file,
        digest: digest.clone(),
        written: 0,
        writeback_started: 0,
    };
    let result = (|| {
        let mut sealer = seal(own, recipient, LITERAL_NAME, hashed)?;
        archive.write_range(0..archive.len(), &mut sealer)?;
        sealer.finish()?;
        File::open(&part)
            .and_then(|f| f.sync_all())
            .map_err(RelayError::Io)?;
        fs::rename(&part, out).map_err(RelayError::Io)?;
        if let Some(dir) = out.parent() {
            sync_dir(dir).map_err(RelayError::Io)?;
        }
        Ok::<(), RelayError>(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    let (hasher, size) = std::mem::take(
        &mut *digest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    Ok(Sealed {
        sha256: hasher.finalize_hex().map_err(RelayError::Io)?,
        size,
        instances,
    })
}
