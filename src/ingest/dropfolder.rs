//! The drop folder (`import.watch_dir`): DICOM files copied there (a whole CD
//! tree too) are ingested like C-STORE and moved to `done/`, or to `failed/`
//! with a `.reason.txt` beside them. A file is taken only after its size and
//! modification time held still for `import.settle`, so a copy in progress
//! is never read half-way. Files present at start-up are processed too.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::{Declared, IngestError, Ingestor, Received, read_part10_header};
use crate::store::Source;

const DONE: &str = "done";
const FAILED: &str = "failed";
/// Catches anything a lost notification would miss.
const RESCAN_EVERY: Duration = Duration::from_secs(30);
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";
/// A file that ends early is taken for a copy still in progress (a writer
/// may stall longer than the settle time) until it has been quiet this long;
/// only then is it failed as truncated.
const INCOMPLETE_GRACE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq)]
struct Observation {
    size: u64,
    modified: SystemTime,
    since: Instant,
}

/// What became of one file.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Imported,
    /// A DICOMDIR: nothing to ingest, moved to `done/`.
    Directory,
    Failed(String),
    /// It changed while being read; tried again later.
    StillChanging,
}

pub async fn run(
    watch_dir: PathBuf,
    settle: Duration,
    ingestor: Ingestor,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    for dir in [watch_dir.join(DONE), watch_dir.join(FAILED)] {
        fs::create_dir_all(dir)?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Our own reads and directory scans show up as access events; only
        // changes matter (else scanning would wake the scanner forever).
        if let Ok(event) = event
            && !matches!(
                event.kind,
                notify::EventKind::Access(
                    notify::event::AccessKind::Open(_)
                        | notify::event::AccessKind::Read
                        | notify::event::AccessKind::Close(
                            notify::event::AccessMode::Read | notify::event::AccessMode::Execute
                        )
                )
            )
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(io::Error::other)?;
    watcher
        .watch(&watch_dir, RecursiveMode::Recursive)
        .map_err(io::Error::other)?;
    tracing::info!(dir = %watch_dir.display(), "watching drop folder");

    let mut pending: HashMap<PathBuf, Observation> = HashMap::new();
    scan(&watch_dir, &mut pending);
    let mut last_scan = Instant::now();
    let mut last_activity: Option<Instant> = None;
    let tick = (settle / 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
    // A fixed-rate tick fires however many events arrive in between.
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(path) = rx.recv() => {
                if is_candidate(&watch_dir, &path) {
                    last_activity = Some(Instant::now());
                    if path.is_dir() {
                        scan_dir(&watch_dir, &path, &mut pending);
                    } else if path.is_file() {
                        pending.remove(&path);
                        observe(&path, &mut pending);
                    }
                }
            }
            _ = ticker.tick() => {
                // While files arrive, rescan everything on every tick: files
                // created in a new directory before its watch was added send
                // no event of their own (inotify adds watches after the fact).
                let busy = last_activity.is_some_and(|t| t.elapsed() < settle * 2 + tick);
                if busy || last_scan.elapsed() >= RESCAN_EVERY {
                    scan(&watch_dir, &mut pending);
                    last_scan = Instant::now();
                }
                for path in settled(&mut pending, settle) {
                    let ingestor = ingestor.clone();
                    let dir = watch_dir.clone();
                    let file = path.clone();
                    let outcome = tokio::task::spawn_blocking(move || import(&ingestor, &dir, &file)).await;
                    match outcome {
                        Ok(Outcome::StillChanging) => observe(&path, &mut pending),
                        Ok(_) => {}
                        Err(e) => tracing::error!(file = %path.display(), "import task failed: {e}"),
                    }
                }
            }
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return Ok(());
        }
    }
}

fn is_candidate(watch_dir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(watch_dir) else {
        return false;
    };
    let mut parts = rel.components();
    let first = parts
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    if matches!(first.as_deref(), Some(DONE | FAILED) | None) {
        return false;
    }
    // Hidden and partial files are what copy tools write before renaming.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    !(name.starts_with('.')
        || name.ends_with(".part")
        || name.ends_with(".tmp")
        || name.ends_with('~'))
}

fn observe(path: &Path, pending: &mut HashMap<PathBuf, Observation>) {
    if let Ok(meta) = fs::metadata(path)
        && meta.is_file()
    {
        let now = Observation {
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            since: Instant::now(),
        };
        pending
            .entry(path.to_path_buf())
            .and_modify(|o| {
                if (o.size, o.modified) != (now.size, now.modified) {
                    *o = now;
                }
            })
            .or_insert(now);
    }
}

fn scan(watch_dir: &Path, pending: &mut HashMap<PathBuf, Observation>) {
    scan_dir(watch_dir, watch_dir, pending);
}

fn scan_dir(watch_dir: &Path, dir: &Path, pending: &mut HashMap<PathBuf, Observation>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !is_candidate(watch_dir, &path) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                observe(&path, pending);
            }
        }
    }
}

/// Files whose size and time held still for `settle`; they leave `pending`.
fn settled(pending: &mut HashMap<PathBuf, Observation>, settle: Duration) -> Vec<PathBuf> {
    let mut ready = Vec::new();
    pending.retain(|path, seen| {
        let Ok(meta) = fs::metadata(path) else {
            return false; // gone
        };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if (meta.len(), modified) != (seen.size, seen.modified) {
            *seen = Observation {
                size: meta.len(),
                modified,
                since: Instant::now(),
            };
            return true;
        }
        let quiet = SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default();
        if seen.since.elapsed() >= settle && quiet >= settle {
            ready.push(path.clone());
            return false;
        }
        true
    });
    ready.sort();
    ready
}

/// Ingests one file and moves it to `done/` or `failed/`. Blocking.
pub fn import(ingestor: &Ingestor, watch_dir: &Path, path: &Path) -> Outcome {
    let rel = path.strip_prefix(watch_dir).unwrap_or(path).to_path_buf();
    let outcome = match ingest_file(ingestor, path, &rel) {
        Ok(outcome) => outcome,
        Err(IngestError::Unparsable(e))
            if e.is_truncation() && modified_within(path, INCOMPLETE_GRACE) =>
        {
            tracing::info!(file = %rel.display(), "drop folder: {e}; waiting for the rest");
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
        Outcome::StillChanging => return outcome,
    };
    match (&outcome, moved) {
        (_, Err(e)) => tracing::error!(file = %path.display(), "cannot move imported file: {e}"),
        (Outcome::Failed(reason), Ok(())) => {
            tracing::warn!(file = %rel.display(), "drop folder: not imported: {reason}")
        }
        (_, Ok(())) => tracing::info!(file = %rel.display(), "drop folder: imported"),
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

/// Moves `path` to `<watch_dir>/<bucket>/<rel>`, never over an existing file.
fn move_under(watch_dir: &Path, path: &Path, rel: &Path, bucket: &str) -> io::Result<PathBuf> {
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
fn prune_empty_dirs(watch_dir: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == watch_dir || !d.starts_with(watch_dir) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_outside_done_and_failed_and_not_partial() {
        let w = Path::new("/in");
        assert!(is_candidate(w, Path::new("/in/CD1/DICOM/IM0001")));
        assert!(is_candidate(w, Path::new("/in/x.dcm")));
        for p in [
            "/in/done/x.dcm",
            "/in/failed/x",
            "/in/.x.dcm",
            "/in/x.dcm.part",
            "/other/x",
            "/in",
        ] {
            assert!(!is_candidate(w, Path::new(p)), "{p}");
        }
    }

    #[test]
    fn moves_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        for round in 0..3 {
            fs::create_dir_all(w.join("CD/DICOM")).unwrap();
            let f = w.join("CD/DICOM/IM1");
            fs::write(&f, format!("{round}")).unwrap();
            move_under(w, &f, Path::new("CD/DICOM/IM1"), DONE).unwrap();
            prune_empty_dirs(w, &f);
        }
        assert_eq!(
            fs::read_to_string(w.join("done/CD/DICOM/IM1")).unwrap(),
            "0"
        );
        assert_eq!(
            fs::read_to_string(w.join("done/CD/DICOM/IM1.2")).unwrap(),
            "2"
        );
        assert!(!w.join("CD").exists());
    }
}
