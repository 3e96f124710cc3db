//! The drop folder (`import.watch_dir`): DICOM files copied there (a whole CD
//! tree too) are ingested like C-STORE and moved to `done/`, or to `failed/`
//! with a `.reason.txt` beside them. Files present at start-up are processed
//! too.
//!
//! A file is taken only when nothing suggests it is still being written: no
//! write without a close since it was last changed (inotify tells), and its
//! size and modification time held still for `import.settle` (for copies
//! inotify cannot see, such as over a network share). The watcher runs on its
//! own thread: scanning, stat calls and imports are all blocking work.

mod import;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};

pub use import::{Outcome, import};

use super::Ingestor;
use crate::worker::{Progress, Stop, Worker, WorkerError};

const DONE: &str = "done";
const FAILED: &str = "failed";
/// Catches anything a lost notification would miss.
const RESCAN_EVERY: Duration = Duration::from_secs(30);
/// A file reported open for writing but unchanged this long is taken anyway
/// (its close event may have been lost).
const WRITER_GONE_AFTER: Duration = Duration::from_secs(120);

/// The drop folder as a worker: its one step runs the watcher on a thread
/// of its own until stop. A file that cannot be imported or moved is not a
/// failure (it goes to `failed/` or waits); the worker fails only when it
/// cannot watch the folder: the buckets or the watch cannot be set up (at
/// start or when the folder is back), the notifications end, or something
/// other than a directory now stands at `import.watch_dir`. A folder that
/// is merely gone (an unmounted share) is waited for.
pub struct DropFolderWorker {
    dir: PathBuf,
    settle: Duration,
    ingestor: Ingestor,
}

impl DropFolderWorker {
    pub fn new(dir: PathBuf, settle: Duration, ingestor: Ingestor) -> DropFolderWorker {
        DropFolderWorker {
            dir,
            settle,
            ingestor,
        }
    }
}

impl Worker for DropFolderWorker {
    fn name(&self) -> &'static str {
        "dropfolder"
    }

    async fn work(&mut self, stop: &Stop) -> Result<Progress, WorkerError> {
        let (dir, settle, ingestor) = (self.dir.clone(), self.settle, self.ingestor.clone());
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || Watch::new(dir, settle, ingestor)?.run(&stop))
            .await
            .map_err(|e| WorkerError::new(format!("drop folder watcher: {e}")))?
            .map_err(|e| WorkerError::new(format!("drop folder {}: {e}", self.dir.display())))?;
        Ok(Progress::Done)
    }

    async fn wait_for_work(&mut self) {}
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Observation {
    size: u64,
    modified: SystemTime,
    /// When this size and time were first seen.
    since: Instant,
}

struct Watch {
    dir: PathBuf,
    settle: Duration,
    tick: Duration,
    ingestor: Ingestor,
    /// Files waiting to settle.
    pending: HashMap<PathBuf, Observation>,
    /// Written to, and not closed since.
    writing: HashSet<PathBuf>,
    /// Processed but could not be moved away: (size, time) when processed.
    stuck: HashMap<PathBuf, (u64, SystemTime)>,
    last_scan: Instant,
    last_activity: Option<Instant>,
    /// The folder itself is gone (or cannot be looked at): files wait.
    root_gone: bool,
}

/// What an inotify event means for a path.
#[derive(Clone, Copy)]
enum Change {
    Written,
    Closed,
    Directory,
    Gone,
    Other,
}

fn classify(kind: &EventKind) -> Option<Change> {
    Some(match kind {
        // Our own reads and scans: ignoring them keeps the watcher from
        // waking itself forever.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Change::Closed,
        EventKind::Access(_) => return None,
        EventKind::Create(CreateKind::Folder) => Change::Directory,
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_)) => Change::Written,
        // Renamed into place: complete by the writer's own account.
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => Change::Closed,
        EventKind::Remove(_) => Change::Gone,
        _ => Change::Other,
    })
}

/// `<dir>/<bucket>`, made if missing; `dir` itself is never made.
pub(super) fn make_bucket(dir: &Path, bucket: &str) -> io::Result<()> {
    match fs::create_dir(dir.join(bucket)) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.join(bucket).is_dir() => Ok(()),
        other => other,
    }
}

impl Watch {
    fn new(dir: PathBuf, settle: Duration, ingestor: Ingestor) -> io::Result<Watch> {
        Ok(Watch {
            tick: (settle / 2).clamp(Duration::from_millis(100), Duration::from_secs(1)),
            dir,
            settle,
            ingestor,
            pending: HashMap::new(),
            writing: HashSet::new(),
            stuck: HashMap::new(),
            last_scan: Instant::now(),
            last_activity: None,
            root_gone: false,
        })
    }

    fn run(mut self, stop: &Stop) -> io::Result<()> {
        let (tx, rx) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event
                    && let Some(change) = classify(&event.kind)
                {
                    for path in event.paths {
                        let _ = tx.send((path, change));
                    }
                }
            })
            .map_err(io::Error::other)?;
        self.watch_root(&mut watcher)?;
        if !self.root_gone {
            tracing::info!(dir = %self.dir.display(), "watching drop folder");
            self.scan(&self.dir.clone());
        }
        let mut next_tick = Instant::now() + self.tick;
        loop {
            match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok((path, change)) => self.on_event(path, change),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::other("file notifications stopped"));
                }
            }
            if stop.is_set() {
                return Ok(());
            }
            if Instant::now() >= next_tick {
                self.check_root(&mut watcher)?;
                if !self.root_gone {
                    self.on_tick(stop);
                }
                next_tick = Instant::now() + self.tick;
            }
        }
    }

    fn on_event(&mut self, path: PathBuf, change: Change) {
        if !is_candidate(&self.dir, &path) {
            return;
        }
        self.last_activity = Some(Instant::now());
        match change {
            Change::Directory => self.scan(&path),
            Change::Gone => {
                self.pending.remove(&path);
                self.writing.remove(&path);
            }
            Change::Written => {
                self.writing.insert(path.clone());
                self.observe(&path);
            }
            Change::Closed => {
                self.writing.remove(&path);
                self.observe(&path);
            }
            Change::Other => self.observe(&path),
        }
    }

    /// Makes `done/` and `failed/` and watches the folder. A folder that is
    /// not there (a share not mounted yet, or unmounted at that moment) is
    /// gone, waited for like any other time, and never made: made, it would
    /// stand on the disk under the mount point; any other error ends the
    /// watcher.
    fn watch_root(&mut self, watcher: &mut impl Watcher) -> io::Result<()> {
        let set_up = [DONE, FAILED]
            .iter()
            .try_for_each(|bucket| make_bucket(&self.dir, bucket))
            .and_then(|()| {
                watcher
                    .watch(&self.dir, RecursiveMode::Recursive)
                    .map_err(io::Error::other)
            });
        match set_up {
            Ok(()) => Ok(()),
            Err(e) if !self.dir.exists() => {
                tracing::warn!(dir = %self.dir.display(), "drop folder not there ({e}); waiting for it");
                self.root_gone = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The watched folder itself, once a tick (one stat): gone, it is
    /// waited for and watched again when back (inotify dropped the old
    /// watch with it); anything but a directory in its place ends the
    /// watcher (see [`DropFolderWorker`]).
    fn check_root(&mut self, watcher: &mut impl Watcher) -> io::Result<()> {
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => {
                if self.root_gone {
                    let _ = watcher.unwatch(&self.dir);
                    self.root_gone = false;
                    self.watch_root(watcher)?;
                    if !self.root_gone {
                        tracing::info!(dir = %self.dir.display(), "drop folder back; watching it again");
                        self.scan(&self.dir.clone());
                    }
                }
                Ok(())
            }
            Ok(_) => Err(io::Error::other(
                "no longer a directory (import.watch_dir); the drop folder cannot be watched",
            )),
            Err(e) => {
                if !self.root_gone {
                    tracing::warn!(dir = %self.dir.display(), "drop folder not there ({e}); waiting for it");
                    self.root_gone = true;
                }
                Ok(())
            }
        }
    }

    fn on_tick(&mut self, stop: &Stop) {
        // While files arrive, rescan everything on every tick: files created
        // in a new directory before its watch was added send no event of
        // their own (inotify adds watches after the fact).
        let busy = self
            .last_activity
            .is_some_and(|t| t.elapsed() < self.settle * 2 + self.tick);
        if busy || self.last_scan.elapsed() >= RESCAN_EVERY {
            self.scan(&self.dir.clone());
            self.last_scan = Instant::now();
        }
        // Over the disk's high-water mark the files wait where they are,
        // still pending; they are taken once there is room again.
        if self.ingestor.disk().over_high_water() {
            return;
        }
        for path in self.settled() {
            if stop.is_set() {
                return;
            }
            match import(&self.ingestor, &self.dir, &path) {
                Outcome::StillChanging => self.observe(&path),
                Outcome::Stuck => {
                    if let Some(stamp) = stamp(&path) {
                        self.stuck.insert(path, stamp);
                    }
                }
                _ => {}
            }
        }
    }

    fn observe(&mut self, path: &Path) {
        let Ok(meta) = fs::metadata(path) else {
            return;
        };
        if !meta.is_file() {
            return;
        }
        let now = Observation {
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            since: Instant::now(),
        };
        if self.stuck.get(path) == Some(&(now.size, now.modified)) {
            return;
        }
        self.stuck.remove(path);
        self.pending
            .entry(path.to_path_buf())
            .and_modify(|seen| {
                if (seen.size, seen.modified) != (now.size, now.modified) {
                    *seen = now;
                }
            })
            .or_insert(now);
    }

    fn scan(&mut self, from: &Path) {
        let mut stack = vec![from.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !is_candidate(&self.dir, &path) {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else {
                    self.observe(&path);
                }
            }
        }
    }

    /// Files that held still for `settle` and are not open for writing;
    /// they leave `pending`.
    fn settled(&mut self) -> Vec<PathBuf> {
        let (settle, writing) = (self.settle, &mut self.writing);
        let mut ready = Vec::new();
        self.pending.retain(|path, seen| {
            let Some((size, modified)) = stamp(path) else {
                writing.remove(path);
                return false; // gone
            };
            if (size, modified) != (seen.size, seen.modified) {
                *seen = Observation {
                    size,
                    modified,
                    since: Instant::now(),
                };
                return true;
            }
            // A modification time in the future (clock skew, CD time zones)
            // says nothing about quiet; the observed stillness must do.
            let quiet = SystemTime::now()
                .duration_since(modified)
                .unwrap_or(Duration::MAX);
            let still = seen.since.elapsed();
            let open = writing.contains(path) && still < WRITER_GONE_AFTER;
            if still >= settle && quiet >= settle && !open {
                writing.remove(path);
                ready.push(path.clone());
                return false;
            }
            true
        });
        ready.sort();
        ready
    }
}

fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = fs::metadata(path).ok()?;
    Some((
        meta.len(),
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    ))
}

fn is_candidate(watch_dir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(watch_dir) else {
        return false;
    };
    let first = rel
        .components()
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

#[cfg(test)]
mod tests;
