//! A push waiting for its study hears when the study is complete.

use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::Relay;
use crate::ingest::{Events, StudyEvent};
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// Wakes the outbox when a study is complete (or events were missed, to
/// be sure). Done when the events end; nothing here can fail.
pub struct CompletionWaker {
    relay: Arc<Relay>,
    rx: broadcast::Receiver<StudyEvent>,
    due: bool,
    closed: bool,
}

impl CompletionWaker {
    pub fn new(relay: Arc<Relay>, events: &Events) -> CompletionWaker {
        CompletionWaker {
            relay,
            rx: events.subscribe(),
            due: false,
            closed: false,
        }
    }
}

impl Worker for CompletionWaker {
    fn name(&self) -> &'static str {
        "push_wake"
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        if std::mem::take(&mut self.due) {
            self.relay.wake.notify_one();
        }
        Ok(if self.closed {
            Progress::Done
        } else {
            Progress::Idle
        })
    }

    async fn wait_for_work(&mut self) {
        match self.rx.recv().await {
            Ok(StudyEvent::Completed { .. }) | Err(RecvError::Lagged(_)) => self.due = true,
            Ok(_) => {}
            Err(RecvError::Closed) => self.closed = true,
        }
    }
}
