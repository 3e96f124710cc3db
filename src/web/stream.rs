//! Response bodies produced on a blocking thread (file reads, decoding,
//! ZIP layout) and handed to hyper through a small bounded channel: memory
//! per response stays at a few chunks whatever its size, and a client that
//! stops reading stops the producer (its next send fails, or times out
//! after [`STALL`]).
//!
//! A producer holds a thread of tokio's blocking pool, which DICOM intake
//! uses too: `Gates::stream` bounds the streamed responses at once, so
//! that no number of slow or idle downloads can starve intake. A guarded producer
//! ([`produced_while`]) re-checks its access every [`RECHECK`]: a grant
//! revoked or expired mid-download stops the download.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::Pin;

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

use super::Body;

/// Bytes per chunk: large enough that per-chunk overhead vanishes, small
/// enough that a few in flight cost little.
pub const CHUNK: usize = 256 * 1024;
/// Chunks in flight per response.
const DEPTH: usize = 4;
/// A client that takes nothing for this long is dropped.
pub const STALL: Duration = Duration::from_secs(120);
/// How often a guarded producer re-checks that it may go on.
pub const RECHECK: Duration = Duration::from_secs(2);
/// `response` keeps `permit` (a place among the streams, a request in
/// flight on its connection) until its body is dropped: sent, failed, or
/// abandoned by the client.
pub fn holding<P: Send + Sync + Unpin + 'static>(
    response: hyper::Response<Body>,
    permit: P,
) -> hyper::Response<Body> {
    response.map(|inner| {
        Holding {
            inner,
            _permit: permit,
        }
        .boxed()
    })
}

/// A body that holds something until it is dropped (its size hint intact,
/// so that Content-Length survives).
struct Holding<P> {
    inner: Body,
    _permit: P,
}

impl<P: Unpin> hyper::body::Body for Holding<P> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    len: Option<u64>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|next| next.map(|chunk| chunk.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        self.len
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// The producer's end: a `Write` that sends full chunks.
pub struct Sink {
    tx: mpsc::Sender<io::Result<Bytes>>,
    pending: Vec<u8>,
    /// Bytes handed to the client so far.
    pub sent: u64,
    runtime: tokio::runtime::Handle,
    allowed: Box<dyn Fn() -> bool + Send>,
    checked_at: Instant,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")
}

impl Sink {
    fn send(&mut self, chunk: Bytes) -> io::Result<()> {
        if self.checked_at.elapsed() >= RECHECK {
            self.check()?;
        }
        let len = chunk.len() as u64;
        let sent = self
            .runtime
            .block_on(self.tx.send_timeout(Ok(chunk), STALL));
        match sent {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err(gone()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading",
                ));
            }
        }
        self.sent += len;
        Ok(())
    }

    /// Whether the client has gone away (for producers that wait).
    pub fn client_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// Fails once the producer may no longer go on (grant revoked or
    /// expired).
    pub fn check(&mut self) -> io::Result<()> {
        self.checked_at = Instant::now();
        if (self.allowed)() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "access ended while sending (revoked or expired)",
            ))
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(CHUNK),
        ));
        self.send(chunk)
    }

    /// Sends `len` bytes of `path` from `offset`, read straight into the
    /// chunks that go out. Fails if the file is shorter than that.
    pub fn send_file(&mut self, path: &Path, offset: u64, len: u64) -> io::Result<()> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        self.send_from(&mut file, len)
    }

    /// Sends exactly `len` bytes read from `reader`.
    pub fn send_from(&mut self, reader: &mut impl Read, len: u64) -> io::Result<()> {
        self.send_pending()?;
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            // read into fresh capacity: no zeroing, handed over whole
            let mut chunk = Vec::with_capacity(want);
            reader.by_ref().take(want as u64).read_to_end(&mut chunk)?;
            if chunk.len() != want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a file is shorter than when it was indexed",
                ));
            }
            left -= want as u64;
            self.send(Bytes::from(chunk))?;
        }
        Ok(())
    }
}

impl crate::package::ArchiveOut for Sink {
    fn write_chunk(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.send_pending()?;
        self.send(Bytes::from(chunk))
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.tx.is_closed() {
            return Err(gone());
        }
        // fill chunks to exactly CHUNK: never grow (and reallocate) one
        let mut rest = data;
        while !rest.is_empty() {
            let take = (CHUNK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() >= CHUNK {
                self.send_pending()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

/// A body written by `produce` on a blocking thread. `len`, when known,
/// is announced (Content-Length) and must be what `produce` writes; an
/// error from `produce` aborts the response, so the client sees a broken
/// transfer, never a short one that looks complete.
#[cfg(test)]
pub fn produced<F>(len: Option<u64>, produce: F) -> Body
where
    F: FnOnce(&mut Sink) -> io::Result<()> + Send + 'static,
{
    produced_while(len, || true, produce)
}

/// [`produced`], stopping (a broken transfer) once `allowed` says no; it is
/// asked every [`RECHECK`] while the body is sent.
pub fn produced_while<F>(
    len: Option<u64>,
    allowed: impl Fn() -> bool + Send + 'static,
    produce: F,
) -> Body
where
    F: FnOnce(&mut Sink) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(DEPTH);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            tx: tx.clone(),
            pending: Vec::with_capacity(CHUNK),
            sent: 0,
            runtime,
            allowed: Box::new(allowed),
            checked_at: Instant::now(),
        };
        let result = produce(&mut sink).and_then(|()| sink.flush());
        let result = result.and_then(|()| match len {
            Some(len) if len != sink.sent => Err(io::Error::other(format!(
                "announced {len} bytes, produced {}",
                sink.sent
            ))),
            _ => Ok(()),
        });
        if let Err(e) = result {
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::warn!("response aborted: {e}");
            }
            // the error must reach the client, or hyper ends the body as if
            // complete: wait for room as for any chunk
            let _ = sink.runtime.block_on(tx.send_timeout(Err(e), STALL));
        }
    });
    ChannelBody { rx, len }.boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: Body) -> io::Result<Vec<u8>> {
        Ok(body.collect().await?.to_bytes().to_vec())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_and_file_ranges_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| i as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let p = path.clone();
        let body = produced(Some(5 + content.len() as u64 - 10), move |sink| {
            sink.write_all(b"head:")?;
            sink.send_file(&p, 10, 3 * CHUNK as u64 + 7)
        });
        let got = collect(body).await.unwrap();
        assert_eq!(&got[..5], b"head:");
        assert_eq!(&got[5..], &content[10..]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_producer_breaks_the_body() {
        let body = produced(None, |sink| {
            sink.write_all(&[1; 10])?;
            Err(io::Error::other("disk gone"))
        });
        assert!(collect(body).await.is_err());
        // a file shorter than announced
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        std::fs::write(&path, b"abc").unwrap();
        let body = produced(Some(10), move |sink| sink.send_file(&path, 0, 10));
        assert!(collect(body).await.is_err());
        // a producer writing less than announced
        let body = produced(Some(10), |sink| sink.write_all(b"abc"));
        assert!(collect(body).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn access_that_ends_mid_body_breaks_it() {
        let allowed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = allowed.clone();
        let body = produced_while(
            None,
            move || flag.load(std::sync::atomic::Ordering::SeqCst),
            move |sink| {
                sink.write_all(&[1; CHUNK])?;
                allowed.store(false, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(RECHECK + Duration::from_millis(100));
                sink.write_all(&[2; CHUNK])?;
                sink.write_all(&[3; CHUNK])
            },
        );
        assert!(collect(body).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_goes_away_stops_the_producer() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let body = produced(None, move |sink| {
            let mut result = Ok(());
            for _ in 0..1000 {
                result = sink.write_all(&[0; CHUNK]);
                if result.is_err() {
                    break;
                }
            }
            let _ = done_tx.send(result.is_err());
            result
        });
        drop(body);
        let stopped = tokio::task::spawn_blocking(move || {
            done_rx.recv_timeout(std::time::Duration::from_secs(5))
        })
        .await
        .unwrap();
        assert_eq!(stopped, Ok(true));
    }
}
