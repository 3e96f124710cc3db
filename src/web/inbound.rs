//! The request body as handlers see it, so that what a handler leaves
//! unread is read (bounded) before the answer goes out.
//!
//! Over HTTP/2 an answer sent while the request body is still arriving is
//! followed by RST_STREAM(NO_ERROR) once the body is dropped; curl and
//! other clients still sending then report a stream error instead of the
//! answer. Every early refusal (401, 403, 404, 405 …) would be lost that
//! way, so `handle` reads the rest of the body before answering, in one
//! place for every endpoint.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// Read at most this much of a body nobody wanted: a refusal of a larger
/// upload is sent without waiting for it (the client may see a reset).
const DRAIN_MAX: usize = 1024 * 1024;
/// …and for at most this long.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

type Slot = Arc<Mutex<Option<Incoming>>>;

/// A request body; dropped before its end, it leaves the rest to `Leftover`.
pub struct Inbound {
    body: Option<Incoming>,
    rest: Slot,
    /// The client sent `Expect: 100-continue` and waits for a word before
    /// sending the body: if the handler never read it, the answer goes
    /// out instead of "100 Continue" and there is nothing to drain
    /// (draining would ask for the very upload being refused).
    awaits_continue: bool,
}

/// What the handler did not read, to be drained before answering.
pub struct Leftover(Slot);

impl Inbound {
    pub fn new(body: Incoming, expects_continue: bool) -> (Inbound, Leftover) {
        let rest = Slot::default();
        (
            Inbound {
                body: Some(body),
                rest: rest.clone(),
                awaits_continue: expects_continue,
            },
            Leftover(rest),
        )
    }
}

impl Body for Inbound {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.awaits_continue = false;
        match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for Inbound {
    fn drop(&mut self) {
        if let Some(body) = self.body.take()
            && !body.is_end_stream()
            && !self.awaits_continue
        {
            *self.rest.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
        }
    }
}

impl Leftover {
    /// Reads and drops what is left of the body (after the handler let go
    /// of it), up to `DRAIN_MAX` bytes within `DRAIN_TIMEOUT`.
    pub async fn drain(self) {
        let rest = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut body) = rest else { return };
        let read = async {
            let mut seen = 0usize;
            while seen <= DRAIN_MAX {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        seen += frame.data_ref().map_or(0, Bytes::len);
                    }
                    Some(Err(_)) | None => return,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, read).await;
    }
}
