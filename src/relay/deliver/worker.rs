//! The outbox as a background job on the work queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::super::Relay;
use super::super::outbox::Due;
use super::{blocking, withdraw_dead, work};
use crate::store::Timestamp;
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// The outbox as a [`Worker`]: each step withdraws the pushes whose grant
/// died, then works on the next due push; idle, it waits for the next
/// retry, a new push ([`Relay::wake`], also rung when a study completes)
/// or a grant change.
pub struct OutboxWorker {
    relay: Arc<Relay>,
    grants: watch::Receiver<u64>,
    /// How long to wait when idle (set by the last step).
    idle: Duration,
}

impl OutboxWorker {
    pub fn new(relay: Arc<Relay>) -> OutboxWorker {
        OutboxWorker {
            grants: relay.authz.watch_changes(),
            relay,
            idle: Duration::ZERO,
        }
    }
}

impl Worker for OutboxWorker {
    fn name(&self) -> &'static str {
        "outbox"
    }

    async fn work(&mut self, stop: &Stop) -> Result<Progress, WorkerError> {
        let relay = &self.relay;
        withdraw_dead(relay).await;
        let due = {
            let relay = relay.clone();
            blocking(move || relay.outbox.next_due(Timestamp::now())).await
        };
        self.idle = match due {
            Ok(Due::Now(item)) => {
                // stop cuts a delivery short: it stays pending and the
                // same package goes again after the restart
                tokio::select! {
                    () = work(relay, *item) => {}
                    () = stop.wait() => {}
                }
                return Ok(Progress::Busy);
            }
            Ok(Due::At(at)) => Duration::from_millis(at.0.saturating_sub(Timestamp::now().0)),
            Ok(Due::Idle) => Duration::from_secs(3600),
            Err(e) => {
                // the store may come back (a full disk freed): retried
                tracing::error!("outbox: {e}");
                Duration::from_secs(5)
            }
        };
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::select! {
            () = tokio::time::sleep(self.idle) => {}
            () = self.relay.wake.notified() => {}
            Ok(()) = self.grants.changed() => {}
        }
    }
}
