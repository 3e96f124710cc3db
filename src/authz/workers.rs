//! The grants' background work: journaling expiry as time runs out, and
//! pinning grants made by accession number as their studies arrive.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};

use super::Authz;
use crate::ingest::{Events, StudyEvent};
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// How often expired grants are looked for (their expiry is journaled).
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

/// Journals the expiry of grants, every [`EXPIRY_SWEEP`] (the first time
/// one interval after start). A panic in the sweep is a failure.
pub struct ExpirySweeper {
    authz: Arc<Authz>,
    /// The first step only starts the clock.
    started: bool,
}

impl ExpirySweeper {
    pub fn new(authz: Arc<Authz>) -> ExpirySweeper {
        ExpirySweeper {
            authz,
            started: false,
        }
    }
}

impl Worker for ExpirySweeper {
    fn name(&self) -> &'static str {
        "grant_expiry"
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        if !std::mem::replace(&mut self.started, true) {
            return Ok(Progress::Idle);
        }
        let authz = self.authz.clone();
        let expired = tokio::task::spawn_blocking(move || authz.sweep())
            .await
            .map_err(|e| WorkerError::new(format!("expiry sweep: {e}")))?;
        if expired > 0 {
            tracing::info!(expired, "grants expired");
        }
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(EXPIRY_SWEEP).await;
    }
}

/// Pins grants made by accession number as their studies arrive (and
/// after missed events, to be sure). Done when the events end.
pub struct AccessionResolver {
    authz: Arc<Authz>,
    rx: broadcast::Receiver<StudyEvent>,
    /// A new study arrived (or events were missed): resolve.
    due: bool,
    closed: bool,
}

impl AccessionResolver {
    pub fn new(authz: Arc<Authz>, events: &Events) -> AccessionResolver {
        AccessionResolver {
            authz,
            rx: events.subscribe(),
            due: false,
            closed: false,
        }
    }
}

impl Worker for AccessionResolver {
    fn name(&self) -> &'static str {
        "accessions"
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        if self.closed {
            return Ok(Progress::Done);
        }
        if std::mem::take(&mut self.due) {
            let authz = self.authz.clone();
            tokio::task::spawn_blocking(move || authz.resolve_accessions())
                .await
                .map_err(|e| WorkerError::new(format!("resolving accessions: {e}")))?;
        }
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        match self.rx.recv().await {
            // a new study, and a new instance of one (a scan in progress
            // at the share qualifies with its next instance)
            Ok(
                StudyEvent::NewStudy { .. }
                | StudyEvent::InstanceStored { .. }
                | StudyEvent::Reopened { .. },
            )
            | Err(RecvError::Lagged(_)) => self.due = true,
            Ok(_) => {}
            Err(RecvError::Closed) => self.closed = true,
        }
    }
}
