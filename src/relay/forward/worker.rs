//! Forwarding as a background job on the work queue.

use std::sync::Arc;
use std::time::Duration;

use super::Forwarder;
use crate::dimse::scu::PacsAddress;
use crate::store::{FileStore, Index, Timestamp};
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// Forwarding as a [`Worker`]: each step sends one due study batch;
/// idle, it waits for `enqueue`, the next retry, or stop. Items left
/// pending by an earlier run are due at once.
pub struct ForwardWorker {
    forwarder: Forwarder,
    pacs: PacsAddress,
    calling_ae: String,
    index: Arc<dyn Index>,
    files: FileStore,
    /// How long to wait when idle (set by the last step).
    idle: Option<Duration>,
}

impl ForwardWorker {
    pub fn new(
        forwarder: Forwarder,
        pacs: PacsAddress,
        calling_ae: String,
        index: Arc<dyn Index>,
        files: FileStore,
    ) -> ForwardWorker {
        tracing::info!(%pacs, "forwarding received studies to the PACS");
        ForwardWorker {
            forwarder,
            pacs,
            calling_ae,
            index,
            files,
            idle: None,
        }
    }
}

impl Worker for ForwardWorker {
    fn name(&self) -> &'static str {
        "forwarder"
    }

    async fn work(&mut self, stop: &Stop) -> Result<Progress, WorkerError> {
        let f = &self.forwarder;
        let now = Timestamp::now();
        let due = match f.blocking(move |f| f.due(now)).await {
            Ok(due) => due,
            Err(e) => {
                // the store may come back: retried, not a failure
                let wait = f.queue.policy().base;
                tracing::error!("{e}; trying again in {wait:?}");
                self.idle = Some(wait);
                return Ok(Progress::Idle);
            }
        };
        let Some(batch) = due.batches.into_iter().next() else {
            self.idle = due
                .next
                .map(|next| Duration::from_millis(next.0.saturating_sub(Timestamp::now().0)));
            return Ok(Progress::Idle);
        };
        let (pacs, ae) = (&self.pacs, self.calling_ae.as_str());
        if let Err(e) = f
            .deliver(batch, pacs, ae, &self.index, &self.files, stop)
            .await
        {
            tracing::error!("{e}");
            self.idle = Some(f.queue.policy().base);
            return Ok(Progress::Idle);
        }
        Ok(Progress::Busy)
    }

    async fn wait_for_work(&mut self) {
        let notify = self.forwarder.notify.clone();
        match self.idle.take() {
            Some(wait) => {
                tokio::select! {
                    () = notify.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
            None => notify.notified().await,
        }
    }
}
