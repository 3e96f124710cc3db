//! How much response work the web layer lets run at once. They belong to
//! one server (one `App`), not to the process: two servers in one process
//! (the in-process tests) do not share them, and a test can make them
//! small.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::WebError;
use super::download::Layouts;

/// Streamed responses at once (each holds a blocking thread; tokio's pool
/// has 512, intake needs some).
pub const MAX_STREAMS: usize = 128;
/// Renderings at once; each holds one decoded frame.
pub const MAX_RENDERS: usize = 4;

pub struct Gates {
    streams: Arc<Semaphore>,
    /// Rendered and thumbnail images being made; the others wait.
    pub renders: Semaphore,
    /// Download layouts, made one at a time, and the recent ones kept.
    pub layouts: Layouts,
}

impl Default for Gates {
    fn default() -> Gates {
        Gates::new(MAX_STREAMS, MAX_RENDERS)
    }
}

impl Gates {
    pub fn new(streams: usize, renders: usize) -> Gates {
        Gates {
            streams: Arc::new(Semaphore::new(streams)),
            renders: Semaphore::new(renders),
            layouts: Layouts::default(),
        }
    }

    /// A place for one more streamed response (kept until its body is
    /// dropped), or `Busy` when all are taken: no number of slow or idle
    /// downloads may starve intake of blocking threads.
    pub fn stream(&self) -> Result<OwnedSemaphorePermit, WebError> {
        self.streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| WebError::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::stream::{holding, produced};

    #[test]
    fn streams_are_bounded_and_released_with_their_body() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _guard = runtime.enter();
        let gates = Gates::new(2, 1);
        let first = gates.stream().unwrap();
        let second = gates.stream().unwrap();
        assert!(matches!(gates.stream(), Err(WebError::Busy)));
        let response = holding(hyper::Response::new(produced(None, |_| Ok(()))), first);
        drop(second);
        let third = gates.stream().unwrap();
        assert!(
            gates.stream().is_err(),
            "the response still holds its place"
        );
        drop(response);
        assert!(gates.stream().is_ok());
        drop(third);
    }

    #[test]
    fn each_server_has_its_own() {
        let (a, b) = (Gates::new(1, 1), Gates::new(1, 1));
        let _held = a.stream().unwrap();
        assert!(b.stream().is_ok());
    }
}
