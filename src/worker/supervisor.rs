//! Runs workers, keeps their state for `/readyz` and `/metrics`, and drains
//! them at stop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Progress, Stop, Worker};
use crate::metrics::{METRICS, WorkerLabel};

/// Where a worker is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerState {
    Running,
    /// Finished by design (`Progress::Done`, or stopped when asked).
    Finished,
    /// Returned an error or panicked: the reason.
    Failed(String),
}

/// The workers' states, shared with `/readyz`, the watchdog and `main`.
#[derive(Debug)]
pub struct Health {
    workers: Mutex<BTreeMap<&'static str, WorkerState>>,
    /// Flips to true at the first failure.
    failed: watch::Sender<bool>,
}

impl Health {
    fn new() -> Health {
        Health {
            workers: Mutex::new(BTreeMap::new()),
            failed: watch::channel(false).0,
        }
    }

    fn set(&self, name: &'static str, state: WorkerState) {
        let up = i64::from(!matches!(state, WorkerState::Failed(_)));
        METRICS
            .worker_up
            .get_or_create(&WorkerLabel {
                worker: name.to_string(),
            })
            .set(up);
        let failed = matches!(state, WorkerState::Failed(_));
        self.lock().insert(name, state);
        if failed {
            self.failed.send_replace(true);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, WorkerState>> {
        // A poisoned map is still a map: the states are plain values.
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The workers that failed, with why, by name.
    pub fn failed(&self) -> Vec<(&'static str, String)> {
        self.lock()
            .iter()
            .filter_map(|(name, state)| match state {
                WorkerState::Failed(why) => Some((*name, why.clone())),
                _ => None,
            })
            .collect()
    }

    /// Every worker and its state, by name.
    pub fn states(&self) -> Vec<(&'static str, WorkerState)> {
        self.lock().iter().map(|(n, s)| (*n, s.clone())).collect()
    }

    /// Resolves at the first failure of any worker.
    pub async fn first_failure(&self) {
        let mut rx = self.failed.subscribe();
        let _ = rx.wait_for(|failed| *failed).await;
    }
}

/// Starts workers and stops them.
pub struct Supervisor {
    tasks: JoinSet<()>,
    health: Arc<Health>,
    ask: watch::Sender<bool>,
    stop: Stop,
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor::new()
    }
}

impl Supervisor {
    pub fn new() -> Supervisor {
        let (ask, stop) = Stop::new();
        Supervisor {
            tasks: JoinSet::new(),
            health: Arc::new(Health::new()),
            ask,
            stop,
        }
    }

    /// The stop request every worker and listener honours.
    pub fn stop_handle(&self) -> Stop {
        self.stop.clone()
    }

    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Runs `worker` until it is done, fails, or stop is asked for.
    pub fn spawn<W: Worker>(&mut self, worker: W) {
        let name = worker.name();
        let health = self.health.clone();
        let stop = self.stop.clone();
        health.set(name, WorkerState::Running);
        // The steps run in a task of their own, so that a panic ends that
        // task only and is seen here as a JoinError.
        let steps = tokio::spawn(run(worker, stop));
        let cut_off = AbortOnDrop(steps.abort_handle());
        self.tasks.spawn(async move {
            let _cut_off = cut_off;
            let state = match steps.await {
                Ok(Ok(())) => WorkerState::Finished,
                Ok(Err(why)) => WorkerState::Failed(why),
                Err(e) if e.is_panic() => {
                    WorkerState::Failed(format!("panicked: {}", panic_text(e)))
                }
                Err(e) => WorkerState::Failed(format!("cancelled: {e}")),
            };
            if let WorkerState::Failed(why) = &state {
                tracing::error!(worker = name, "worker failed: {why}");
            }
            health.set(name, state);
        });
    }

    /// Asks every worker to stop and waits up to `drain` for them; those
    /// still busy then are cut off (and named in the log). Returns the
    /// workers that failed during the run.
    pub async fn stop(mut self, drain: Duration) -> Vec<(&'static str, String)> {
        self.ask.send_replace(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(drain, all).await.is_err() {
            let busy: Vec<_> = self
                .health
                .states()
                .into_iter()
                .filter(|(_, s)| *s == WorkerState::Running)
                .map(|(n, _)| n)
                .collect();
            tracing::warn!(workers = ?busy, "workers still busy after the drain; cut off");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        self.health.failed()
    }
}

/// Aborting the watching task (at the end of the drain) aborts the steps.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The step loop.
async fn run<W: Worker>(mut worker: W, stop: Stop) -> Result<(), String> {
    loop {
        if stop.is_set() {
            return Ok(());
        }
        match worker.work(&stop).await {
            Ok(Progress::Busy) => tokio::task::yield_now().await,
            Ok(Progress::Idle) => {
                tokio::select! {
                    () = worker.wait_for_work() => {}
                    () = stop.wait() => return Ok(()),
                }
            }
            Ok(Progress::Done) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}
