//! Reloading the address book when its file changes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Book, BookError, base_dir_of};
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// A burst of changes (an editor's save) is one reload this long after
/// its last event.
const QUIET: Duration = Duration::from_millis(300);

/// Watches the book's directory (editors replace files by rename; the
/// file may also appear later) and reloads ~300 ms after the last change.
/// A book that does not validate is refused: the previous one stays in
/// force and the error is logged and kept ([`Book::last_error`]). It
/// cannot go on (a failure) only if the watch cannot be set up, or the
/// notifications end.
pub struct BookWatcher {
    book: Book,
    path: PathBuf,
    /// Set up by the first step; dropping it ends the watch.
    watching: Option<(
        RecommendedWatcher,
        mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    )>,
    /// A change was seen: reload.
    due: bool,
    /// The notifications ended.
    ended: bool,
}

impl BookWatcher {
    pub fn new(book: Book, path: PathBuf) -> BookWatcher {
        BookWatcher {
            book,
            path,
            watching: None,
            due: false,
            ended: false,
        }
    }

    fn set_up(
        &self,
    ) -> Result<
        (
            RecommendedWatcher,
            mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
        ),
        BookError,
    > {
        let dir = base_dir_of(&self.path);
        let watch_err = |e: notify::Error| BookError::Watch {
            path: dir.clone(),
            reason: e.to_string(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let name = self.path.file_name().map(|n| n.to_os_string());
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // our own reads would otherwise trigger reloads forever;
                // other files in the directory (a log, say) are not the
                // book, except `..data`-style symlink swaps (Kubernetes
                // config maps) that replace it from elsewhere
                let relevant = match &event {
                    Ok(event) => {
                        !matches!(event.kind, EventKind::Access(_))
                            && (event.paths.is_empty()
                                || event.paths.iter().any(|p| {
                                    p.file_name().is_some_and(|n| {
                                        Some(n) == name.as_deref()
                                            || n.to_string_lossy().starts_with("..")
                                    })
                                }))
                    }
                    Err(_) => true,
                };
                if relevant {
                    let _ = tx.send(event);
                }
            })
            .map_err(watch_err)?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(watch_err)?;
        Ok((watcher, rx))
    }
}

impl Worker for BookWatcher {
    fn name(&self) -> &'static str {
        "address_book_watch"
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        if self.ended {
            return Err(WorkerError::new("address book: file notifications stopped"));
        }
        if self.watching.is_none() {
            let watching = self.set_up().map_err(|e| {
                WorkerError::new(format!("address book not watched for changes: {e}"))
            })?;
            self.watching = Some(watching);
            // a change between the initial load and the watch is not lost
            self.due = self.path.exists();
        }
        if std::mem::take(&mut self.due) {
            reload_logged(&self.book, &self.path);
        }
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        let Some((_, rx)) = self.watching.as_mut() else {
            return;
        };
        match rx.recv().await {
            None => self.ended = true,
            Some(Err(e)) => {
                let dir = base_dir_of(&self.path);
                tracing::warn!(dir = %dir.display(), error = %e, "address book watch");
            }
            // Any change in the directory: the book may be a symlink
            // swapped elsewhere in it (e.g. Kubernetes config maps).
            // Unchanged text is reloaded quietly.
            Some(Ok(_)) => {
                while let Ok(Some(_)) = tokio::time::timeout(QUIET, rx.recv()).await {}
                self.due = true;
            }
        }
    }
}

/// Reloads and logs: `info` when a new book is in force, `error` (once per
/// distinct error) when a change is refused.
fn reload_logged(book: &Book, path: &Path) {
    let previous_error = book.last_error();
    match book.reload_inner(path) {
        Ok((count, true)) => {
            let serial = book.current().serial;
            tracing::info!(path = %path.display(), gateways = count, serial, "address book loaded");
        }
        Ok((_, false)) => {
            tracing::debug!(path = %path.display(), "address book unchanged");
        }
        Err(error) => {
            let message = error.to_string();
            if previous_error.as_deref() != Some(message.as_str()) {
                let current = book.current();
                tracing::error!(
                    path = %path.display(),
                    error = %message,
                    kept_serial = current.serial,
                    kept_gateways = current.len(),
                    "address book refused; the previous one stays in force"
                );
            }
        }
    }
}
