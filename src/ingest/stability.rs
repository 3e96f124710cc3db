//! Study stability: a study is complete once `dicom.stable_after` has passed
//! without a new instance. Completion is recorded in the index and
//! announced; a late instance reopens the study (the ingestor announces that).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};

use super::events::{Events, StudyEvent};
use crate::store::{Index, Timestamp, Uid};
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// Tracks open studies and completes them once they held still for
/// `dicom.stable_after`. Nothing it meets stops it: a failed read or mark
/// is logged and retried.
pub struct StabilityWorker {
    index: Arc<dyn Index>,
    events: Events,
    stable_after: Duration,
    rx: broadcast::Receiver<StudyEvent>,
    /// Studies not yet complete, with their last arrival; `None` until the
    /// first step has read them from the index.
    open: Option<HashMap<Uid, Timestamp>>,
    /// What woke it: an event to take in, or a study falling due.
    woke: Option<Wake>,
}

enum Wake {
    Event(Result<StudyEvent, RecvError>),
    Due,
}

impl StabilityWorker {
    pub fn new(index: Arc<dyn Index>, events: Events, stable_after: Duration) -> StabilityWorker {
        // Subscribed before the index is read: nothing stored in between
        // is missed.
        let rx = events.subscribe();
        StabilityWorker {
            index,
            events,
            stable_after,
            rx,
            open: None,
            woke: None,
        }
    }
}

impl Worker for StabilityWorker {
    fn name(&self) -> &'static str {
        "stability"
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        let Some(open) = self.open.as_mut() else {
            self.open = Some(open_studies(&self.index).await);
            return Ok(Progress::Idle);
        };
        match self.woke.take() {
            Some(Wake::Event(Ok(StudyEvent::InstanceStored { key, received_at }))) => {
                let last = open.entry(key.study).or_insert(received_at);
                *last = (*last).max(received_at);
            }
            Some(Wake::Event(Ok(_))) | None => {}
            Some(Wake::Event(Err(RecvError::Lagged(missed)))) => {
                tracing::warn!(missed, "stability tracker fell behind; rereading the index");
                *open = open_studies(&self.index).await;
            }
            Some(Wake::Event(Err(RecvError::Closed))) => return Ok(Progress::Done),
            Some(Wake::Due) => {
                complete_due(&self.index, &self.events, open, self.stable_after).await;
            }
        }
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        let next_due = self
            .open
            .iter()
            .flat_map(|open| open.values())
            .min()
            .map(|last| last.saturating_add(self.stable_after));
        let sleep = match next_due {
            Some(due) => Duration::from_millis(due.0.saturating_sub(Timestamp::now().0)),
            None => Duration::from_secs(3600),
        };
        self.woke = Some(tokio::select! {
            event = self.rx.recv() => Wake::Event(event),
            () = tokio::time::sleep(sleep) => Wake::Due,
        });
    }
}

/// Studies not yet complete, with the time of their last instance.
async fn open_studies(index: &Arc<dyn Index>) -> HashMap<Uid, Timestamp> {
    let index = index.clone();
    let studies = tokio::task::spawn_blocking(move || index.studies()).await;
    match studies {
        Ok(Ok(studies)) => studies
            .into_iter()
            .filter(|s| !s.is_complete())
            .map(|s| (s.study_uid, s.last_arrival))
            .collect(),
        Ok(Err(e)) => {
            tracing::error!("cannot read studies for stability tracking: {e}");
            HashMap::new()
        }
        Err(e) => {
            tracing::error!("stability scan failed: {e}");
            HashMap::new()
        }
    }
}

async fn complete_due(
    index: &Arc<dyn Index>,
    events: &Events,
    open: &mut HashMap<Uid, Timestamp>,
    stable_after: Duration,
) {
    let now = Timestamp::now();
    let due: Vec<(Uid, Timestamp)> = open
        .iter()
        .filter(|(_, last)| last.saturating_add(stable_after) <= now)
        .map(|(s, l)| (s.clone(), *l))
        .collect();
    for (study, last) in due {
        open.remove(&study);
        let idx = index.clone();
        let uid = study.clone();
        let marked = tokio::task::spawn_blocking(move || idx.mark_complete(&uid, last, now)).await;
        match marked {
            Ok(Ok(true)) => {
                tracing::info!(study = %study, "study complete");
                crate::metrics::METRICS.studies_completed.inc();
                events.publish(StudyEvent::Completed { study });
            }
            // Not marked: something arrived meanwhile (its event may still
            // be on its way), the study is gone, or marking failed. Track it
            // again from what the index says, so it cannot stall.
            outcome => {
                if !matches!(outcome, Ok(Ok(false))) {
                    tracing::error!(study = %study, "cannot mark study complete: {outcome:?}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let idx = index.clone();
                let uid = study.clone();
                if let Ok(Ok(Some(record))) =
                    tokio::task::spawn_blocking(move || idx.study(&uid)).await
                    && !record.is_complete()
                {
                    open.insert(study, record.last_arrival);
                }
            }
        }
    }
}
