use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::*;

/// Counts steps; fails or panics at step `fail_at` when asked to.
struct Counting {
    name: &'static str,
    steps: Arc<AtomicUsize>,
    fail_at: Option<(usize, bool)>,
    wake: Arc<Notify>,
}

impl Worker for Counting {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        let n = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fail_at {
            Some((at, true)) if n == at => panic!("step {n} broke"),
            Some((at, false)) if n == at => Err(WorkerError::new(format!("step {n} failed"))),
            _ if n.is_multiple_of(3) => Ok(Progress::Idle),
            _ => Ok(Progress::Busy),
        }
    }

    async fn wait_for_work(&mut self) {
        self.wake.notified().await;
    }
}

fn counting(
    name: &'static str,
    fail_at: Option<(usize, bool)>,
) -> (Counting, Arc<AtomicUsize>, Arc<Notify>) {
    let steps = Arc::new(AtomicUsize::new(0));
    let wake = Arc::new(Notify::new());
    let w = Counting {
        name,
        steps: steps.clone(),
        fail_at,
        wake: wake.clone(),
    };
    (w, steps, wake)
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn busy_steps_again_idle_waits_for_work() {
    let mut sup = Supervisor::new();
    let (w, steps, wake) = counting("counting", None);
    sup.spawn(w);
    settle().await;
    // steps 1, 2 busy; 3 idle: waits
    assert_eq!(steps.load(Ordering::SeqCst), 3);
    wake.notify_one();
    settle().await;
    assert_eq!(steps.load(Ordering::SeqCst), 6);
    assert!(sup.health().failed().is_empty());
    assert!(sup.stop(Duration::from_secs(1)).await.is_empty());
}

#[tokio::test]
async fn an_error_and_a_panic_are_failures_named_with_why() {
    let mut sup = Supervisor::new();
    let health = sup.health();
    let (erring, _, _) = counting("test-erring", Some((2, false)));
    let (panicking, _, _) = counting("test-panicking", Some((1, true)));
    let (fine, _, _) = counting("test-fine", None);
    sup.spawn(erring);
    sup.spawn(panicking);
    sup.spawn(fine);
    tokio::time::timeout(Duration::from_secs(2), health.first_failure())
        .await
        .expect("a failure is announced");
    settle().await;
    let failed = health.failed();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0].0, "test-erring");
    assert_eq!(failed[0].1, "step 2 failed");
    assert_eq!(failed[1].0, "test-panicking");
    assert!(
        failed[1].1.contains("panicked: step 1 broke"),
        "{}",
        failed[1].1
    );
    // worker names are unique to this test: the registry is process-wide
    let up = |w: &str| {
        let label = crate::metrics::WorkerLabel { worker: w.into() };
        crate::metrics::METRICS
            .worker_up
            .get_or_create(&label)
            .get()
    };
    assert_eq!(up("test-erring"), 0);
    assert_eq!(up("test-panicking"), 0);
    assert_eq!(up("test-fine"), 1);
    assert_eq!(sup.stop(Duration::from_secs(1)).await.len(), 2);
}

/// Serves until stop, ignoring it for `linger`.
struct Stubborn(Duration);

impl Worker for Stubborn {
    fn name(&self) -> &'static str {
        "stubborn"
    }

    async fn work(&mut self, stop: &Stop) -> Result<Progress, WorkerError> {
        stop.wait().await;
        tokio::time::sleep(self.0).await;
        Ok(Progress::Done)
    }

    async fn wait_for_work(&mut self) {}
}

#[tokio::test]
async fn stop_drains_within_the_deadline_and_cuts_off_the_rest() {
    let mut sup = Supervisor::new();
    let health = sup.health();
    sup.spawn(Stubborn(Duration::from_secs(3600)));
    let (w, _, _) = counting("quick", None);
    sup.spawn(w);
    let started = std::time::Instant::now();
    assert!(sup.stop(Duration::from_millis(200)).await.is_empty());
    assert!(started.elapsed() < Duration::from_secs(2));
    let states = health.states();
    assert!(
        states.contains(&("quick", WorkerState::Finished)),
        "{states:?}"
    );
}

#[tokio::test]
async fn a_worker_that_finishes_by_design_is_not_a_failure() {
    let mut sup = Supervisor::new();
    let health = sup.health();
    sup.spawn(Stubborn(Duration::ZERO));
    let stop = sup.stop_handle();
    assert!(!stop.is_set());
    assert!(sup.stop(Duration::from_secs(1)).await.is_empty());
    assert!(stop.is_set());
    assert_eq!(health.states(), vec![("stubborn", WorkerState::Finished)]);
}
