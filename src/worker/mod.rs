//! One shape for background work (after garage's `BgRunner`): a worker does
//! one step of work at a time and says whether it is busy, idle or done; the
//! [`Supervisor`] runs the steps, waits for more work when idle, honours the
//! stop request between steps, and notices a worker that fails or panics —
//! `/readyz` then names it, `pushgate_worker_up{worker}` drops to 0, the
//! watchdog stops pinging and the daemon exits non-zero after the drain, so
//! that systemd restarts it. A gateway that silently stopped delivering must
//! not look healthy.
//!
//! Adding a background job: implement [`Worker`] (a `name`, one `work` step,
//! `wait_for_work`) and hand it to `Supervisor::spawn` in `daemon::start`.

mod supervisor;

use std::future::Future;

use tokio::sync::watch;

pub use supervisor::{Health, Supervisor, WorkerState};

/// What one step of work found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// It did something and may have more: step again at once.
    Busy,
    /// Nothing to do now: wait for work (or stop).
    Idle,
    /// Finished for good (by design, not by failure).
    Done,
}

/// Why a worker could not go on. It stops; the supervisor reports it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WorkerError(pub String);

impl WorkerError {
    pub fn new(what: impl std::fmt::Display) -> WorkerError {
        WorkerError(what.to_string())
    }
}

/// A background job.
///
/// `work` should return within a bounded time unless it serves until stop
/// (the listeners); it may watch `stop` to cut a long step short. Errors a
/// worker can retry (a peer down) are not failures: it records them and
/// returns `Idle` or `Busy`. Only what it cannot get past is an `Err`.
pub trait Worker: Send + 'static {
    /// A stable name: the `worker` label and what `/readyz` names.
    fn name(&self) -> &'static str;

    /// One step of work.
    fn work(&mut self, stop: &Stop) -> impl Future<Output = Result<Progress, WorkerError>> + Send;

    /// Resolves when there may be work again (after `Idle`). The supervisor
    /// races it against the stop request.
    fn wait_for_work(&mut self) -> impl Future<Output = ()> + Send;
}

/// The stop request, as every worker and listener sees it.
#[derive(Clone, Debug)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A stop request and the handle that makes it.
    pub fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Whether stop has been asked for.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stop is asked for (or the asker is gone).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // Err: the sender is gone, which also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// The watch receiver, for code that selects on `changed()`.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests;
