//! The inbox: a package from a peer gateway is decrypted as it arrives,
//! every file is checked against the signed manifest and staged, and only
//! when the whole message verifies (our key, the peer's signature, every
//! size and SHA-256, not seen before) is anything ingested. The answer is
//! a receipt signed by us over the package's hash.
//!
//! Staged files are plaintext in the store's `tmp/` (where intake stages
//! every instance); until the signature at the end of the message has been
//! checked they are unverified and are deleted if it fails.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use super::manifest::Sha256;

use super::book::Gateway;
use super::manifest::{self, FileDigest, MANIFEST_NAME, MAX_MANIFEST, Manifest};
use super::openpgp;
use super::outbox::SignedReceipt;
use super::receipt::{self, Receipt};
use super::{Origin, Relay};
use crate::ingest::{Declared, IngestError, Received, read_part10_header};
use crate::journal::{Event, Relay as RelayEvent};
use crate::store::{InboxStore, InstanceKey, ParkedTemp, Source, Timestamp, Uid};

/// A package may be dated this far ahead of our clock.
const CLOCK_SKEW_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboxError {
    /// The package is damaged, malformed or inconsistent.
    #[error("{0}")]
    Refused(String),
    /// Not signed by the gateway whose certificate delivered it.
    #[error("{0}")]
    WrongSigner(String),
    #[error("{0}")]
    NotForUs(String),
    #[error("replayed package {package}: received already at {first}")]
    Replay {
        package: String,
        first: Timestamp,
        receipt: Box<SignedReceipt>,
    },
    /// Our side cannot take it now (disk full, store error): try later.
    #[error("{0}")]
    Unavailable(String),
}

/// Where a received package is remembered: its sender's URA and its ID.
fn received_key(sender_ura: &str, package: &str) -> String {
    format!("{sender_ura}/{package}")
}

fn refused(what: impl std::fmt::Display) -> InboxError {
    InboxError::Refused(what.to_string())
}

fn store_err(e: impl std::fmt::Display) -> InboxError {
    InboxError::Unavailable(format!("store: {e}"))
}

/// What the inbox keeps: receipts by package ID (to recognise a resend),
/// and where each received study came from.
pub(crate) struct Inbox {
    store: Arc<dyn InboxStore>,
    /// Packages being received now: the same package on two connections
    /// at once (a sender restarted while its first upload was still in
    /// flight) is taken once; the second is told to come back, and is
    /// then a replay.
    busy: Arc<Mutex<HashSet<String>>>,
}

/// A package being received; released when dropped.
pub(crate) struct Claim {
    busy: Arc<Mutex<HashSet<String>>>,
    package: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.package);
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    at: Timestamp,
    receipt: SignedReceipt,
}

impl Inbox {
    pub fn new(store: Arc<dyn InboxStore>) -> Inbox {
        Inbox {
            store,
            busy: Arc::default(),
        }
    }

    /// Claims `package` for this connection, unless another has it.
    fn claim(&self, package: &str) -> Result<Claim, InboxError> {
        let mut busy = self
            .busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !busy.insert(package.to_string()) {
            return Err(InboxError::Unavailable(format!(
                "package {package} is being received on another connection; try again shortly"
            )));
        }
        Ok(Claim {
            busy: self.busy.clone(),
            package: package.to_string(),
        })
    }

    fn seen(&self, package: &str) -> Result<Option<Kept>, InboxError> {
        match self.store.received(package).map_err(store_err)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(store_err)?)),
            None => Ok(None),
        }
    }

    pub fn origin(&self, study: &Uid) -> Result<Option<Origin>, String> {
        match self.store.origin(study).map_err(|e| e.to_string())? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }
}

/// Reads through and hashes what it reads: the package's hash is that of
/// the message as it came over the wire.
struct Hashing<R> {
    inner: R,
    digest: Arc<Mutex<(Sha256, u64)>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut d = self
            .digest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        d.0.update(&buf[..n]);
        d.1 += n as u64;
        Ok(n)
    }
}

/// A file staged from the package, checked against the manifest; closed
/// until it is ingested (a study of thousands of files must not hold
/// thousands of descriptors).
struct Staged {
    temp: ParkedTemp,
}

/// Receives one package from `gateway`. Blocking.
pub fn receive<R: Read + Send + Sync + 'static>(
    relay: &Relay,
    gateway: &Gateway,
    body: R,
) -> Result<SignedReceipt, InboxError> {
    let digest = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let input = Hashing {
        inner: body,
        digest: digest.clone(),
    };
    let mut opened = openpgp::open(&relay.key, &gateway.openpgp, input).map_err(pgp_error)?;
    let unpacked = unpack(relay, gateway, &mut opened);
    // the signature comes at the end: nothing counts before it verified
    let verified = opened.finish().map_err(pgp_error);
    // `_claim` is held until the package is recorded (or refused)
    let (manifest, staged, replay, _claim) = match (unpacked, verified) {
        (_, Err(e)) => return Err(e),
        (Err(e), Ok(_)) => return Err(e),
        (Ok(u), Ok(_)) => u,
    };
    let (hasher, size) = std::mem::take(
        &mut *digest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    let sha256 = hasher.finalize_hex().map_err(store_err)?;
    if let Some(kept) = replay {
        return Err(InboxError::Replay {
            package: manifest.package_id,
            first: kept.at,
            receipt: Box::new(kept.receipt),
        });
    }
    let (keys, skipped) = ingest(relay, gateway, staged)?;
    if keys.is_empty()
        && let Some(reason) = skipped.first()
    {
        return Err(refused(format!(
            "no instance of the package was accepted: {reason}"
        )));
    }
    // the files come from another gateway's store, so an instance refused
    // here (a SOP class we do not keep) is rare; it does not hold back the
    // rest of the study, and each one is journaled
    for reason in &skipped {
        tracing::warn!(package = %manifest.package_id, from_ura = %gateway.ura, "instance not accepted: {reason}");
        relay.journal.append(Event::Relay(RelayEvent::Refused {
            from: gateway.name.clone(),
            sender_ura: Some(gateway.ura.clone()),
            package: Some(manifest.package_id.clone()),
            reason: format!("an instance of the package was not accepted: {reason}"),
        }));
    }
    record(relay, gateway, &manifest, &keys, sha256, size)
}

fn pgp_error(e: openpgp::PgpError) -> InboxError {
    match e {
        e @ openpgp::PgpError::WrongSigner { .. } => InboxError::WrongSigner(e.to_string()),
        e @ openpgp::PgpError::NotForUs { .. } => InboxError::NotForUs(e.to_string()),
        e => refused(format!("package rejected: {e}")),
    }
}

type Unpacked = (Manifest, Vec<Staged>, Option<Kept>, Option<Claim>);

/// Reads the ZIP inside the message entry by entry: the manifest first,
/// then every file hashed against it (images staged, the rest discarded).
fn unpack(
    relay: &Relay,
    gateway: &Gateway,
    opened: &mut impl Read,
) -> Result<Unpacked, InboxError> {
    let mut manifest: Option<(Manifest, HashMap<String, FileDigest>)> = None;
    let mut claim = None;
    let mut replay = None;
    let mut staged = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let entry = zip::read::read_zipfile_from_stream(opened).map_err(|e| {
            refused(format!(
                "package rejected: {}",
                crate::base::error_chain(&e)
            ))
        })?;
        let Some(mut entry) = entry else { break };
        let name = entry
            .name()
            .map_err(|e| refused(format!("an entry's name: {}", crate::base::error_chain(&e))))?
            .to_string();
        if entry.compression() != zip::CompressionMethod::Stored {
            return Err(refused(format!("{name}: only stored entries are expected")));
        }
        if name == MANIFEST_NAME {
            if manifest.is_some() {
                return Err(refused("two manifests"));
            }
            let m = read_manifest(relay, gateway, &mut entry)?;
            // keyed by sender and ID: one gateway cannot learn or block
            // another's packages by reusing their IDs
            let key = received_key(&gateway.ura, &m.package_id);
            claim = Some(relay.inbox.claim(&key)?);
            replay = relay.inbox.seen(&key)?;
            let files = m
                .files
                .iter()
                .map(|f| (f.name.clone(), f.clone()))
                .collect::<HashMap<_, _>>();
            if files.len() != m.files.len() {
                return Err(refused("the manifest lists a file twice"));
            }
            manifest = Some((m, files));
            continue;
        }
        let Some((_, files)) = &manifest else {
            return Err(refused(format!("{name} comes before the manifest")));
        };
        let Some(expected) = files.get(&name) else {
            return Err(refused(format!("{name} is not in the manifest")));
        };
        if !seen.insert(name.clone()) {
            return Err(refused(format!("{name} occurs twice")));
        }
        if replay.is_some() || !name.starts_with("DICOM/") {
            check(&name, expected, &mut entry, &mut io::sink())?;
        } else {
            let mut temp = relay
                .ingestor
                .files()
                .create_temp()
                .map_err(|e| InboxError::Unavailable(format!("cannot stage: {e}")))?;
            check(&name, expected, &mut entry, &mut temp)?;
            let temp = temp
                .park()
                .map_err(|e| InboxError::Unavailable(format!("cannot stage: {e}")))?;
            staged.push(Staged { temp });
        }
    }
    // the central directory and the end of the message
    io::copy(opened, &mut io::sink()).map_err(|e| {
        refused(format!(
            "package rejected: {}",
            crate::base::error_chain(&e)
        ))
    })?;
    let Some((manifest, _)) = manifest else {
        return Err(refused("the package has no manifest"));
    };
    if let Some(missing) = manifest.files.iter().find(|f| !seen.contains(&f.name)) {
        return Err(refused(format!(
            "{} is in the manifest but not in the package",
            missing.name
        )));
    }
    Ok((manifest, staged, replay, claim))
}

fn read_manifest(
    relay: &Relay,
    gateway: &Gateway,
    entry: &mut impl Read,
) -> Result<Manifest, InboxError> {
    let mut bytes = Vec::new();
    entry
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            refused(format!(
                "package rejected: {}",
                crate::base::error_chain(&e)
            ))
        })?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(refused("the manifest is larger than 16 MiB"));
    }
    let m: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| refused(format!("manifest: {e}")))?;
    if m.format != manifest::FORMAT {
        return Err(refused(format!("manifest format {:?} unknown", m.format)));
    }
    if m.recipient.ura != relay.org_ura
        || !m
            .recipient
            .openpgp
            .eq_ignore_ascii_case(&relay.key.fingerprint())
    {
        return Err(InboxError::NotForUs(format!(
            "the package is addressed to URA {} (key {}), not to us",
            m.recipient.ura, m.recipient.openpgp
        )));
    }
    let sender_key = gateway.openpgp.fingerprint().to_hex();
    if m.sender.ura != gateway.ura || !m.sender.openpgp.eq_ignore_ascii_case(&sender_key) {
        return Err(InboxError::WrongSigner(format!(
            "the manifest names sender URA {} (key {}), but the client certificate is that of {} (URA {})",
            m.sender.ura, m.sender.openpgp, gateway.name, gateway.ura
        )));
    }
    if m.created_at.0 > Timestamp::now().0 + CLOCK_SKEW_MS {
        return Err(refused(format!(
            "the package is dated in the future ({})",
            m.created_at
        )));
    }
    if m.package_id.len() != 32 || !m.package_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused("the package ID is not 128 bits of hex"));
    }
    Ok(m)
}

/// Copies one entry to `out`, checking its size and SHA-256.
fn check(
    name: &str,
    expected: &FileDigest,
    entry: &mut impl Read,
    out: &mut impl Write,
) -> Result<(), InboxError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = match entry.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(refused(format!(
                    "package rejected: {}",
                    crate::base::error_chain(&e)
                )));
            }
        };
        total += n as u64;
        if total > expected.size {
            return Err(refused(format!(
                "{name} is larger than the manifest says ({} bytes)",
                expected.size
            )));
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n])
            .map_err(|e| InboxError::Unavailable(format!("cannot stage {name}: {e}")))?;
    }
    if total != expected.size {
        return Err(refused(format!(
            "{name} is {total} bytes, the manifest says {}",
            expected.size
        )));
    }
    let found = hasher.finalize_hex().map_err(store_err)?;
    if found != expected.sha256.to_ascii_lowercase() {
        return Err(refused(format!(
            "{name}: SHA-256 {found} does not match the manifest ({})",
            expected.sha256
        )));
    }
    Ok(())
}

/// Ingests the staged instances like C-STORE: each header is read first,
/// so that a package with one unreadable file ingests nothing. An
/// instance the store refuses is skipped with its reason; a store that
/// cannot take more (disk full) stops it all (the sender resends, and
/// what was stored is replaced by the same bytes).
fn ingest(
    relay: &Relay,
    gateway: &Gateway,
    staged: Vec<Staged>,
) -> Result<(Vec<InstanceKey>, Vec<String>), InboxError> {
    let unstaged =
        |e: io::Error| InboxError::Unavailable(format!("cannot reopen a staged file: {e}"));
    let mut ready = Vec::with_capacity(staged.len());
    for (n, s) in staged.into_iter().enumerate() {
        let temp = s.temp.reopen().map_err(unstaged)?;
        let header = read_part10_header(temp.file()).map_err(|e| {
            refused(format!(
                "file {} of the package is not DICOM Part 10: {e}",
                n + 1
            ))
        })?;
        let temp = temp.park().map_err(unstaged)?;
        ready.push((temp, header));
    }
    let sender = format!("{} (URA {})", gateway.name, gateway.ura);
    let mut keys = Vec::with_capacity(ready.len());
    let mut skipped = Vec::new();
    for (temp, header) in ready {
        let sop = header.sop_instance.clone();
        let stored = relay.ingestor.ingest(Received {
            temp: temp.reopen().map_err(unstaged)?,
            dataset_offset: header.dataset_offset,
            transfer_syntax: header.transfer_syntax,
            declared: Some(Declared {
                sop_class: header.sop_class,
                sop_instance: header.sop_instance,
            }),
            source: Source::Relay {
                sender: sender.clone(),
            },
        });
        match stored {
            Ok(stored) => keys.push(stored.key),
            Err(e @ (IngestError::DiskFull(_) | IngestError::Io(_) | IngestError::Index(_))) => {
                return Err(InboxError::Unavailable(e.to_string()));
            }
            Err(e) => skipped.push(format!("{sop}: {e}")),
        }
    }
    Ok((keys, skipped))
}

/// Keeps the receipt (for a resend) and the origin of each study, journals
/// the receipt, queues forwarding; durable before the answer.
fn record(
    relay: &Relay,
    gateway: &Gateway,
    manifest: &Manifest,
    keys: &[InstanceKey],
    sha256: String,
    size: u64,
) -> Result<SignedReceipt, InboxError> {
    let now = Timestamp::now();
    let mut studies: Vec<Uid> = keys.iter().map(|k| k.study.clone()).collect();
    studies.sort();
    studies.dedup();
    let receipt = Receipt {
        format: receipt::FORMAT.to_string(),
        package_id: manifest.package_id.clone(),
        package_sha256: sha256.clone(),
        size,
        received_at: now,
        receiver: relay.us(),
        sender_ura: gateway.ura.clone(),
        studies: studies.iter().map(|s| s.to_string()).collect(),
        instances: keys.len() as u32,
    };
    let signed =
        receipt::sign(&relay.key, &receipt).map_err(|e| InboxError::Unavailable(e.to_string()))?;
    let origin = Origin {
        from_name: gateway.name.clone(),
        from_ura: gateway.ura.clone(),
        message: manifest.message.clone(),
        priority: manifest.priority,
        package: manifest.package_id.clone(),
        received_at: now,
    };
    // queued for the PACS before the package counts as received: a crash
    // in between makes the sender resend (queuing again is harmless),
    // never a received package that does not reach the PACS
    if let Some(forwarder) = &relay.forwarder {
        forwarder.enqueue(keys).map_err(|e| {
            InboxError::Unavailable(format!("cannot queue the study for the PACS: {e}"))
        })?;
    }
    let origin = serde_json::to_vec(&origin).map_err(store_err)?;
    let kept = serde_json::to_vec(&Kept {
        at: now,
        receipt: signed.clone(),
    })
    .map_err(store_err)?;
    relay
        .inbox
        .store
        .keep_received(
            &studies,
            &origin,
            &received_key(&gateway.ura, &manifest.package_id),
            &kept,
        )
        .map_err(store_err)?;
    relay
        .journal
        .append_durable(Event::Relay(RelayEvent::Received {
            package: manifest.package_id.clone(),
            from_ura: gateway.ura.clone(),
            from: gateway.name.clone(),
            studies,
            instances: keys.len() as u32,
            sha256,
        }))
        .map_err(|e| InboxError::Unavailable(e.to_string()))?;
    tracing::info!(package = %manifest.package_id, from_ura = %gateway.ura, instances = keys.len(), "package received");
    Ok(signed)
}
