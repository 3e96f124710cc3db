//! Data sets re-encoded for a transfer syntax the peer accepted, produced
//! on a blocking thread and handed over in PDU-sized chunks.

use std::io::{self, Write};
use std::path::PathBuf;

use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::wire::PDATA_HEADER;

/// Re-encoding to Implicit VR Little Endian holds the whole data set in
/// memory (twice); larger instances fail instead.
pub(super) const IMPLICIT_MAX_BYTES: usize = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    ExplicitLittle,
    ImplicitLittle,
}

/// Chunks of the re-encoded data set, each with [`PDATA_HEADER`] bytes of
/// room in front and at most `chunk` bytes of value after them, and the
/// producer's end: `Err` with the reason when it failed.
pub(super) struct Transcoded {
    pub chunks: mpsc::Receiver<Vec<u8>>,
    pub done: JoinHandle<Result<(), String>>,
}

pub(super) fn start(path: PathBuf, target: Target, chunk: usize) -> Transcoded {
    let (tx, chunks) = mpsc::channel(4);
    let done = tokio::task::spawn_blocking(move || {
        let mut out = Chunker {
            tx,
            chunk,
            buf: fresh(chunk),
        };
        transcode(&path, target, &mut out)?;
        out.finish().map_err(|e| e.to_string())
    });
    Transcoded { chunks, done }
}

fn transcode(path: &std::path::Path, target: Target, out: &mut Chunker) -> Result<(), String> {
    // the pixel layout the transcoder reads frames by
    let entry = crate::ingest::describe_file(path).map_err(|e| e.to_string())?;
    match target {
        Target::ExplicitLittle => {
            let mut sink = SkipMeta::new(out);
            crate::pixels::write_explicit_le(path, &entry.record, &mut sink)
                .map_err(|e| e.to_string())?;
            sink.check()
        }
        Target::ImplicitLittle => {
            let mut explicit = Capped {
                bytes: Vec::new(),
                max: IMPLICIT_MAX_BYTES,
            };
            let mut sink = SkipMeta::new(&mut explicit);
            crate::pixels::write_explicit_le(path, &entry.record, &mut sink)
                .map_err(|e| e.to_string())?;
            sink.check()?;
            let object = InMemDicomObject::read_dataset_with_ts(
                &explicit.bytes[..],
                &EXPLICIT_VR_LITTLE_ENDIAN.erased(),
            )
            .map_err(|e| crate::base::error_chain(&e))?;
            drop(explicit);
            object
                .write_dataset_with_ts(&mut *out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .map_err(|e| crate::base::error_chain(&e))
        }
    }
}

fn fresh(chunk: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(PDATA_HEADER + chunk);
    buf.resize(PDATA_HEADER, 0);
    buf
}

/// Cuts what is written into chunks for the channel.
struct Chunker {
    tx: mpsc::Sender<Vec<u8>>,
    chunk: usize,
    buf: Vec<u8>,
}

impl Chunker {
    fn send(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.buf, fresh(self.chunk));
        self.tx
            .blocking_send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the transfer was abandoned"))
    }

    fn finish(mut self) -> io::Result<()> {
        if self.buf.len() > PDATA_HEADER {
            self.send()?;
        }
        Ok(())
    }
}

impl Write for Chunker {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = PDATA_HEADER + self.chunk - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PDATA_HEADER + self.chunk {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Vec` that refuses to grow beyond `max`.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + data.len() > self.max {
            return Err(io::Error::other(format!(
                "the data set exceeds {} MiB, too large to re-encode in Implicit VR Little Endian",
                self.max >> 20
            )));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Drops the preamble, `DICM` and the file meta group (its length from
/// (0002,0000)) of a Part 10 stream and passes the data set on.
struct SkipMeta<W> {
    inner: W,
    head: Vec<u8>,
    /// Bytes of the meta group still to drop, once known.
    skip: Option<u64>,
}

/// Preamble, `DICM`, and (0002,0000) UL with its 4-byte value.
const HEAD: usize = 128 + 4 + 12;

impl<W: Write> SkipMeta<W> {
    fn new(inner: W) -> Self {
        SkipMeta {
            inner,
            head: Vec::with_capacity(HEAD),
            skip: None,
        }
    }

    fn check(&self) -> Result<(), String> {
        match self.skip {
            Some(0) => Ok(()),
            _ => Err("the transcoder wrote no complete file meta group".into()),
        }
    }
}

impl<W: Write> Write for SkipMeta<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(skip) = self.skip else {
            let n = data.len().min(HEAD - self.head.len());
            self.head.extend_from_slice(&data[..n]);
            if self.head.len() == HEAD {
                let h = &self.head;
                if &h[128..132] != b"DICM" || h[132..140] != [2, 0, 0, 0, b'U', b'L', 4, 0] {
                    return Err(io::Error::other(
                        "the transcoder's output does not start with a file meta group length",
                    ));
                }
                self.skip = Some(u64::from(u32::from_le_bytes([
                    h[140], h[141], h[142], h[143],
                ])));
            }
            return Ok(n);
        };
        if skip > 0 {
            let n = (data.len() as u64).min(skip) as usize;
            self.skip = Some(skip - n as u64);
            return Ok(n);
        }
        self.inner.write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
