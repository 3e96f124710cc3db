//! Study stability: a study is complete once `dicom.stable_after` has passed
//! without a new instance. Completion is recorded in the index and
//! announced; a late instance reopens the study (the ingestor announces that).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::events::{Events, StudyEvent};
use crate::store::{Index, Timestamp, Uid};

/// Runs until `shutdown` turns true.
pub async fn run(
    index: Arc<dyn Index>,
    events: Events,
    stable_after: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut rx = events.subscribe();
    let mut open = open_studies(&index).await;
    loop {
        let next_due = open
            .values()
            .min()
            .map(|last| last.saturating_add(stable_after));
        let sleep = match next_due {
            Some(due) => Duration::from_millis(due.0.saturating_sub(Timestamp::now().0)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            event = rx.recv() => match event {
                Ok(StudyEvent::InstanceStored { key, received_at }) => {
                    let last = open.entry(key.study).or_insert(received_at);
                    *last = (*last).max(received_at);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "stability tracker fell behind; rereading the index");
                    open = open_studies(&index).await;
                }
                Err(RecvError::Closed) => return,
            },
            () = tokio::time::sleep(sleep) => {
                complete_due(&index, &events, &mut open, stable_after).await;
            }
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
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
