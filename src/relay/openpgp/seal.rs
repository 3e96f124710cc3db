//! Sealing a package: encrypt to the peer, sign by us, literal data.
//!
//! Sequoia's `Encryptor` borrows the recipients' keys for as long as the
//! message is being written, which would tie the [`Sealer`] to the
//! recipient `Cert`. Instead we write the PKESK packets ourselves (with
//! owned copies of the keys), then let `Encryptor::with_session_key` write
//! the SEIPD packet with the same session key. The choice between SEIPDv1
//! and SEIPDv2 is Sequoia's: v2 only if the recipient's certificate
//! advertises it; our own keys advertise SEIPDv1 only.

use std::io::{self, Write};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::SystemTime;

use sequoia_openpgp as pgp;

use pgp::Packet;
use pgp::cert::Preferences;
use pgp::crypto::SessionKey;
use pgp::packet::pkesk::{PKESK3, PKESK6};
use pgp::serialize::Serialize;
use pgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};
use pgp::types::{AEADAlgorithm, DataFormat, HashAlgorithm, SymmetricAlgorithm};

use super::{OwnKey, POLICY, PgpError, check_peer_cert, recipient_keys};

/// Symmetric cipher of every package (our keys' first preference; every
/// OpenPGP implementation in use has it).
const SYMMETRIC: SymmetricAlgorithm = SymmetricAlgorithm::AES256;

/// Hash of the package signature. SHA-256 rather than SHA-512: with the
/// SHA extensions (x86 since Ice Lake/Zen, ARMv8) Nettle's SHA-256 is
/// about three times as fast, which took sealing a 263 MB package from
/// 203 to 241 MB/s (and opening from 287 to 361 MB/s). Both are in every
/// current key's preferences, ours included.
const SIGNATURE_HASH: HashAlgorithm = HashAlgorithm::SHA256;

/// Bytes between the signing and the encrypting stage: chunks of this
/// size, at most [`IN_FLIGHT`] of them queued (memory stays bounded).
const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

/// A package being written. Write the plaintext into it (large writes are
/// cheapest), then call [`Sealer::finish`]. Dropping it without `finish`
/// leaves a truncated message that every reader rejects.
///
/// Three stages on three threads: the caller's thread frames the literal
/// data and hashes it for the signature; a second thread encrypts (AES
/// and, for SEIPDv1, the SHA-1 integrity tag, which Sequoia computes with
/// collision detection and which is the largest single cost); a third
/// writes the output into `out` (and whatever `out` does, e.g. hash it).
/// The bytes the encrypting stage receives are the signed message's
/// packets, exactly what the signer would write into an encryptor on one
/// thread; the package is the same.
pub struct Sealer {
    message: Option<Message<'static>>,
    to_encryptor: Option<SyncSender<Chunk>>,
    encryptor: Option<JoinHandle<Result<(), PgpError>>>,
    output: Option<JoinHandle<Result<(), PgpError>>>,
}

enum Chunk {
    Data(Vec<u8>),
    /// The signed message is complete: finalize the encrypted one. A
    /// channel closed without it (the sealer was dropped) is not.
    End,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

/// Starts a package for `recipient`, signed by `own`, whose literal data
/// is named `file_name`; the binary OpenPGP message goes to `out`.
///
/// The session key is encrypted to every live, unrevoked encryption-capable
/// key (transport or storage) of the recipient.
pub fn seal<W: Write + Send + Sync + 'static>(
    own: &OwnKey,
    recipient: &pgp::Cert,
    file_name: &str,
    out: W,
) -> Result<Sealer, PgpError> {
    let write_err = |e: anyhow::Error| PgpError::Write(format!("{e:#}"));
    check_peer_cert(recipient)?;
    let vc = recipient
        .with_policy(&POLICY, None)
        .map_err(|e| PgpError::PeerCert {
            fingerprint: recipient.fingerprint().to_hex(),
            problem: format!("{e:#}"),
        })?;
    let keys = recipient_keys(&vc);
    let seipdv2 = vc
        .features()
        .is_some_and(|features| features.supports_seipdv2());
    let signer = own.signer()?;

    // the output stage
    let (to_output, from_encryptor) = sync_channel::<Chunk>(IN_FLIGHT);
    let output = spawn_stage("seal-output", move || {
        let mut out = out;
        let write_err = |e: io::Error| PgpError::Write(format!("writing the package: {e}"));
        loop {
            match from_encryptor.recv() {
                Ok(Chunk::Data(bytes)) => out.write_all(&bytes).map_err(write_err)?,
                Ok(Chunk::End) => return out.flush().map_err(write_err),
                Err(_) => return Err(abandoned()),
            }
        }
    })?;
    let mut head = ChunkWriter::new(to_output.clone());

    let session_key =
        SessionKey::new(SYMMETRIC.key_size().map_err(write_err)?).map_err(write_err)?;
    for key in &keys {
        let packet = if seipdv2 {
            let mut pkesk = PKESK6::for_recipient(&session_key, key).map_err(write_err)?;
            pkesk.set_recipient(Some(key.fingerprint()));
            Packet::PKESK(pkesk.into())
        } else {
            Packet::PKESK(
                PKESK3::for_recipient(SYMMETRIC, &session_key, key)
                    .map_err(write_err)?
                    .into(),
            )
        };
        packet.serialize(&mut head).map_err(write_err)?;
    }

    // the encrypting stage
    let (tx, rx) = sync_channel::<Chunk>(IN_FLIGHT);
    let encryptor = spawn_stage("seal-encrypt", move || {
        let write_err = |e: anyhow::Error| PgpError::Write(format!("{e:#}"));
        let mut encryptor = Encryptor::with_session_key(Message::new(head), SYMMETRIC, session_key)
            .map_err(write_err)?;
        if seipdv2 {
            encryptor = encryptor.aead_algo(AEADAlgorithm::default());
        }
        let mut message = encryptor.build().map_err(write_err)?;
        loop {
            match rx.recv() {
                Ok(Chunk::Data(bytes)) => message
                    .write_all(&bytes)
                    .map_err(|e| PgpError::Write(e.to_string()))?,
                Ok(Chunk::End) => {
                    // drops `head`, which sends what it holds, before End
                    message.finalize().map_err(write_err)?;
                    return to_output
                        .send(Chunk::End)
                        .map_err(|_| PgpError::Write(OUTPUT_STOPPED.into()));
                }
                Err(_) => return Err(abandoned()),
            }
        }
    });
    let encryptor = match encryptor {
        Ok(handle) => handle,
        Err(e) => {
            let _ = output.join();
            return Err(e);
        }
    };

    // the signing stage, on the caller's thread
    let chunks = ChunkWriter::new(tx.clone());
    let message = Signer::new(Message::new(chunks), signer)
        .map_err(write_err)?
        .hash_algo(SIGNATURE_HASH)
        .map_err(write_err)?
        .build()
        .map_err(write_err)?;
    let message = LiteralWriter::new(message)
        .format(DataFormat::Binary)
        .filename(file_name)
        .map_err(write_err)?
        .date(SystemTime::now())
        .map_err(write_err)?
        .build()
        .map_err(write_err)?;
    Ok(Sealer {
        message: Some(message),
        to_encryptor: Some(tx),
        encryptor: Some(encryptor),
        output: Some(output),
    })
}

impl Sealer {
    /// Writes the signature and the integrity tag, closes the message and
    /// flushes the underlying writer.
    pub fn finish(mut self) -> Result<(), PgpError> {
        let message = self
            .message
            .take()
            .ok_or_else(|| PgpError::Write("the message was already finished".into()))?;
        let signed = message
            .finalize()
            .map_err(|e| PgpError::Write(format!("{e:#}")));
        if signed.is_ok()
            && let Some(tx) = self.to_encryptor.take()
        {
            // a send error means the stage stopped; its own error says why
            let _ = tx.send(Chunk::End);
        }
        self.to_encryptor = None;
        // a stage's own error is the cause ("disk full"); the signing
        // stage then only saw the stage stop
        self.join_stages()?;
        signed
    }

    /// Waits for the encrypting and the output stage; the first error.
    fn join_stages(&mut self) -> Result<(), PgpError> {
        let join = |handle: Option<JoinHandle<Result<(), PgpError>>>| match handle {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(PgpError::Write("a sealing thread panicked".into()))),
            None => Err(PgpError::Write("the sealing stages already ended".into())),
        };
        let encrypted = join(self.encryptor.take());
        let written = join(self.output.take());
        // one stage failing stops the other: report the one that did not
        // merely see its neighbour stop
        match (encrypted, written) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(a), Err(b)) => Err(if is_knock_on(&a) { b } else { a }),
        }
    }

    fn message(&mut self) -> io::Result<&mut Message<'static>> {
        self.message
            .as_mut()
            .ok_or_else(|| io::Error::other("the message was already finished"))
    }

    /// A write failed because the encrypting stage stopped: its error.
    fn stage_error(&mut self, e: io::Error) -> io::Error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return e;
        }
        self.message = None;
        self.to_encryptor = None;
        match self.join_stages() {
            Err(stage) => io::Error::other(stage.to_string()),
            Ok(()) => e,
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // without `finish`: the channel closes without `End`, the stage
        // stops without finalizing, and is waited for
        self.message = None;
        self.to_encryptor = None;
        for handle in [self.encryptor.take(), self.output.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
    }
}

impl Write for Sealer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.message()?.write(buf) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.stage_error(e)),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.message()?.write_all(buf) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.stage_error(e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.message()?.flush()
    }
}

/// The signing stage's output: collects the signed message's bytes into
/// chunks for the encrypting stage. What is left is sent when it is
/// dropped (the message stack drops it when finalized).
struct ChunkWriter {
    tx: Option<SyncSender<Chunk>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn new(tx: SyncSender<Chunk>) -> ChunkWriter {
        ChunkWriter {
            tx: Some(tx),
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        match &self.tx {
            Some(tx) => tx.send(Chunk::Data(chunk)).map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "the encrypting stage stopped")
            }),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed")),
        }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        let _ = self.send();
        self.tx = None;
    }
}

const ABANDONED: &str = "the package was abandoned before its end";
const OUTPUT_STOPPED: &str = "the output stage stopped";

fn abandoned() -> PgpError {
    PgpError::Write(ABANDONED.into())
}

/// An error that only says a neighbouring stage stopped.
fn is_knock_on(e: &PgpError) -> bool {
    matches!(e, PgpError::Write(m) if m == ABANDONED || m == OUTPUT_STOPPED || m.contains("the encrypting stage stopped"))
}

fn spawn_stage(
    name: &str,
    stage: impl FnOnce() -> Result<(), PgpError> + Send + 'static,
) -> Result<JoinHandle<Result<(), PgpError>>, PgpError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(stage)
        .map_err(|e| PgpError::Write(format!("cannot start the {name} thread: {e}")))
}
