//! What intake tells the rest of the daemon.

use tokio::sync::broadcast;

use crate::store::{InstanceKey, Timestamp, Uid};

#[derive(Debug, Clone, PartialEq)]
pub enum StudyEvent {
    /// Durable and indexed; retrievable from now on.
    InstanceStored {
        key: InstanceKey,
        received_at: Timestamp,
    },
    /// `dicom.stable_after` passed without a new instance: recipients may be
    /// told about the study now.
    Completed { study: Uid },
    /// A late instance arrived for a complete study.
    Reopened { study: Uid },
    /// The first instance of a study arrived.
    NewStudy { study: Uid },
}

/// A broadcast of study events; subscribers that fall behind are told so
/// (`RecvError::Lagged`) and resynchronise from the index.
#[derive(Clone)]
pub struct Events(broadcast::Sender<StudyEvent>);

impl Events {
    pub fn new() -> Events {
        Events(broadcast::channel(4096).0)
    }

    pub fn publish(&self, event: StudyEvent) {
        // No subscriber is not an error.
        let _ = self.0.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StudyEvent> {
        self.0.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}
