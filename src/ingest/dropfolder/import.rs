//! Importing one dropped file: ingest it like a C-STORE, then move it to
//! `done/` or to `failed/` with the reason beside it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{DONE, FAILED};
use crate::ingest::{Declared, IngestError, Ingestor, Received, read_part10_header};
use crate::store::Source;

const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";
/// A file that ends early is taken for a copy still in progress (a writer
/// may stall longer than the settle time) until it has been quiet this long;
/// only then is it failed as truncated.
const INCOMPLETE_GRACE: Duration = Duration::from_secs(600);

/// What became of one file.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Imported,
    /// A DICOMDIR: nothing to ingest, moved to `done/`.
    Directory,
    Failed(String),
    /// It changed while being read, or ends early; tried again later.
    StillChanging,
    /// Processed, but it could not be moved away: left alone until it changes.
    Stuck,
}

/// Ingests one file and moves it to `done/` or `failed/`. Blocking.
pub fn import(ingestor: &Ingestor, watch_dir: &Path, path: &Path) -> Outcome {
    let rel = path.strip_prefix(watch_dir).unwrap_or(path).to_path_buf();
    let outcome = match ingest_file(ingestor, path, &rel) {
        Ok(outcome) => outcome,
        Err(IngestError::Unparsable(e))
            if e.is_truncation() && modified_within(path, INCOMPLETE_GRACE) =>
        {
            tracing::info!("drop folder: a file ends early ({e}); waiting for the rest");
            Outcome::StillChanging
        }
        Err(e) => Outcome::Failed(e.to_string()),
    };
    let moved = match &outcome {
        Outcome::Imported | Outcome::Directory => {
            move_under(watch_dir, path, &rel, DONE).map(|_| ())
        }
        Outcome::Failed(reason) => move_under(watch_dir, path, &rel, FAILED).and_then(|dest| {
            let mut name = dest.into_os_string();
            name.push(".reason.txt");
            fs::write(name, format!("{reason}\n"))
        }),
        Outcome::StillChanging | Outcome::Stuck => return outcome,
    };
    // File names may carry patient names: they go to the debug log only.
    tracing::debug!(file = %rel.display(), ?outcome, "drop folder");
    match (&outcome, moved) {
        (_, Err(e)) => {
            tracing::error!("drop folder: cannot move a processed file out of the way: {e}");
            return Outcome::Stuck;
        }
        (Outcome::Failed(reason), Ok(())) => {
            tracing::warn!("drop folder: a file was not imported ({reason}); see failed/")
        }
        (_, Ok(())) => tracing::info!("drop folder: imported a file"),
    }
    prune_empty_dirs(watch_dir, path);
    outcome
}

fn modified_within(path: &Path, limit: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < limit)
}

fn ingest_file(ingestor: &Ingestor, path: &Path, rel: &Path) -> Result<Outcome, IngestError> {
    let mut source = File::open(path).map_err(IngestError::io)?;
    let size = source.metadata().map_err(IngestError::io)?.len();
    let header = read_part10_header(&source)?;
    if header.sop_class == MEDIA_STORAGE_DIRECTORY {
        return Ok(Outcome::Directory);
    }
    let mut temp = ingestor.files().create_temp().map_err(IngestError::io)?;
    io::Seek::seek(&mut source, io::SeekFrom::Start(0)).map_err(IngestError::io)?;
    let copied = io::copy(&mut source, &mut temp).map_err(IngestError::io)?;
    if copied != size || fs::metadata(path).map(|m| m.len()).ok() != Some(size) {
        return Ok(Outcome::StillChanging);
    }
    ingestor.ingest(Received {
        temp,
        dataset_offset: header.dataset_offset,
        transfer_syntax: header.transfer_syntax,
        declared: Some(Declared {
            sop_class: header.sop_class,
            sop_instance: header.sop_instance,
        }),
        source: Source::DropFolder {
            file: rel.display().to_string(),
        },
    })?;
    Ok(Outcome::Imported)
}

/// Moves `path` to `<watch_dir>/<bucket>/<rel>`, never over an existing
/// file, and never making `watch_dir` again should it have gone meanwhile.
pub(super) fn move_under(
    watch_dir: &Path,
    path: &Path,
    rel: &Path,
    bucket: &str,
) -> io::Result<PathBuf> {
    super::make_bucket(watch_dir, bucket)?;
    let mut dest = watch_dir.join(bucket).join(rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut n = 1;
    while dest.exists() {
        let mut name = watch_dir.join(bucket).join(rel).into_os_string();
        name.push(format!(".{n}"));
        dest = PathBuf::from(name);
        n += 1;
    }
    fs::rename(path, &dest)?;
    Ok(dest)
}

/// Removes directories a CD tree leaves empty, up to the watch folder.
pub(super) fn prune_empty_dirs(watch_dir: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == watch_dir || !d.starts_with(watch_dir) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
