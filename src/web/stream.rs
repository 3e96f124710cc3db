//! Response bodies produced on a blocking thread (file reads, decoding,
//! ZIP layout) and handed to hyper through a small bounded channel: memory
//! per response stays at a few chunks whatever its size, and a client that
//! stops reading stops the producer (its next send fails).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

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
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")
}

impl Sink {
    fn send(&mut self, chunk: Bytes) -> io::Result<()> {
        let len = chunk.len() as u64;
        self.tx.blocking_send(Ok(chunk)).map_err(|_| gone())?;
        self.sent += len;
        Ok(())
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
            let mut chunk = vec![0; want];
            reader.read_exact(&mut chunk).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a file is shorter than when it was indexed",
                    )
                } else {
                    e
                }
            })?;
            left -= want as u64;
            self.send(Bytes::from(chunk))?;
        }
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.tx.is_closed() {
            return Err(gone());
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= CHUNK {
            self.send_pending()?;
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
pub fn produced<F>(len: Option<u64>, produce: F) -> Body
where
    F: FnOnce(&mut Sink) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            tx: tx.clone(),
            pending: Vec::with_capacity(CHUNK),
            sent: 0,
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
            let _ = tx.blocking_send(Err(e));
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

    #[tokio::test]
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

    #[tokio::test]
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

    #[tokio::test]
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
