//! The outbox worker: takes the next due push (spoed first), waits for its
//! study to be complete, seals the package once, delivers it with an HTTPS
//! POST to the peer's `/relay/v1/inbox` (our certificate as client
//! certificate, the peer's checked against the address book), and keeps
//! the signed receipt. Failures are retried as the queue's policy says
//! (`outbox::POLICY`); a resend is the same package, which the peer
//! recognises.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::{Request, StatusCode, header};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use super::book::{Gateway, HttpsUrl};
use super::manifest::{FORMAT, Manifest};
use super::outbox::{Item, PackageInfo, SignedReceipt, State};
use super::{Relay, RelayError, receipt, seal};
use crate::authz::{GrantId, GrantState, PushDenied};
use crate::http_client::{self, HttpError, Limits, Stage, Target};
use crate::journal::{Event, Relay as RelayEvent};
use crate::package::file_set_instances;
use crate::store::Timestamp;

mod worker;

pub use worker::OutboxWorker;

/// How often a push waits to see whether its study is complete.
const WAITING_POLL: Duration = Duration::from_secs(2);
/// The peer's answer: a receipt or an error, small.
const MAX_ANSWER: usize = 1 << 20;

/// What the peer said.
enum Answer {
    Delivered(SignedReceipt),
    /// It had the package already: its original receipt.
    Duplicate(SignedReceipt),
    /// Refused for good (the same package would be refused again).
    Refused(String),
    /// Worth trying again later.
    Retry(String),
}

#[derive(Deserialize)]
struct ReceiptBody {
    receipt: String,
    signature: String,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RelayError> + Send + 'static,
) -> Result<T, RelayError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RelayError::Internal(e.to_string()))?
}

/// What a push may carry now: the whole study (a push asked for as such),
/// or what its grant covers, if the grant may still carry it.
enum Carries {
    Study,
    Grant(Box<GrantState>),
    Nothing(PushDenied),
}

/// Asks `authz` what the push may carry; an error only if the question
/// could not be asked (then: later).
async fn carries(relay: &Arc<Relay>, item: &Item) -> Result<Carries, RelayError> {
    let Some(grant) = item.job.grant.clone() else {
        return Ok(Carries::Study);
    };
    let (r, study, ura) = (
        relay.clone(),
        item.job.study.clone(),
        item.job.to_ura.clone(),
    );
    // off the async threads: a grant change holds the state while sled
    // saves it
    blocking(move || {
        Ok(
            match r.authz.grant_for_push(&GrantId(grant), &study, &ura) {
                Ok(state) => Carries::Grant(Box::new(state)),
                Err(denied) => Carries::Nothing(denied),
            },
        )
    })
    .await
}

/// Cancels every open push whose grant can no longer carry it (run after
/// each grant change, so a revocation withdraws a push waiting for its
/// study or for its next retry at once).
async fn withdraw_dead(relay: &Arc<Relay>) {
    let r = relay.clone();
    let open = match blocking(move || r.outbox.list()).await {
        Ok(items) => items,
        Err(e) => {
            tracing::error!("outbox: {e}");
            return;
        }
    };
    for item in open
        .into_iter()
        .filter(|i| i.is_open() && i.job.grant.is_some())
    {
        if let Ok(Carries::Nothing(denied)) = carries(relay, &item).await {
            cancel(relay, item, denied).await;
        }
    }
}

/// Withdraws a push its grant no longer carries: recorded with the reason,
/// its package deleted, journaled. Nothing of it is sent.
async fn cancel(relay: &Arc<Relay>, mut item: Item, denied: PushDenied) {
    let reason = denied.to_string();
    item.state = State::Cancelled;
    item.last_error = reason.clone();
    if !save(relay, &item).await {
        return;
    }
    let _ = std::fs::remove_file(relay.package_path(&item.id));
    tracing::warn!(outbox = %item.id, to_ura = %item.job.to_ura, "push cancelled: {reason}");
    let event = Event::Relay(RelayEvent::Cancelled {
        outbox: item.id.clone(),
        to_ura: item.job.to_ura.clone(),
        grant: GrantId(item.job.grant.clone().unwrap_or_default()),
        reason,
    });
    let r = relay.clone();
    if let Err(e) = blocking(move || Ok(r.journal.append_durable(event)?)).await {
        tracing::error!("journal: {e}");
    }
}

/// Whether staff cancelled the push in the console since it was taken up.
async fn withdrawn(relay: &Arc<Relay>, id: &str) -> bool {
    let (r, id) = (relay.clone(), id.to_string());
    matches!(
        blocking(move || r.outbox.get(&id)).await,
        Ok(Some(now)) if now.state == State::Cancelled
    )
}

/// Records the item's state; false if it could not be (logged), or if
/// staff cancelled the push meanwhile.
async fn save(relay: &Arc<Relay>, item: &Item) -> bool {
    let (r, i) = (relay.clone(), item.clone());
    match blocking(move || r.outbox.record_progress(&i)).await {
        Ok(written) => written,
        Err(e) => {
            tracing::error!(outbox = %item.id, "outbox: cannot record progress: {e}");
            tokio::time::sleep(Duration::from_secs(1)).await;
            false
        }
    }
}

async fn work(relay: &Arc<Relay>, mut item: Item) {
    let grant = match carries(relay, &item).await {
        Ok(Carries::Study) => None,
        Ok(Carries::Grant(grant)) => Some(*grant),
        Ok(Carries::Nothing(denied)) => return cancel(relay, item, denied).await,
        Err(e) => return fail(relay, item, e.to_string(), false).await,
    };
    let now = Timestamp::now();
    let study = {
        let (r, s) = (relay.clone(), item.job.study.clone());
        blocking(move || Ok(r.ingestor.index().study(&s)?)).await
    };
    match study {
        Ok(Some(study)) if !study.is_complete() => {
            item.state = State::Waiting;
            item.next_attempt = now.saturating_add(WAITING_POLL);
            save(relay, &item).await;
            return;
        }
        Ok(Some(_)) => item.state = State::Pending,
        Ok(None) => {
            return fail(
                relay,
                item,
                "the study is no longer in the store".into(),
                true,
            )
            .await;
        }
        Err(e) => return fail(relay, item, e.to_string(), false).await,
    }
    let book = relay.book.current();
    let Some(gateway) = book.by_ura(&item.job.to_ura).cloned() else {
        let reason = format!(
            "no gateway with URA {} in the address book",
            item.job.to_ura
        );
        return fail(relay, item, reason, false).await;
    };
    if item.job.package.is_none() || !relay.package_path(&item.id).exists() {
        match make_package(relay, &item, &gateway, grant).await {
            Ok(info) => {
                item.job.package = Some(info);
                if !save(relay, &item).await {
                    // cancelled in the console meanwhile (or not recorded)
                    return;
                }
            }
            Err(e) => {
                return fail(relay, item, format!("cannot make the package: {e}"), false).await;
            }
        }
    }
    let Some(package) = item.job.package.clone() else {
        return;
    };
    // the grant is asked again right before each attempt: one revoked
    // while the package was sealed, or since the last try, stops it here
    match carries(relay, &item).await {
        Ok(Carries::Nothing(denied)) => return cancel(relay, item, denied).await,
        Ok(_) => {}
        Err(e) => return fail(relay, item, e.to_string(), false).await,
    }
    if withdrawn(relay, &item.id).await {
        return;
    }
    item.attempts += 1;
    let answer = deliver(relay, &gateway, &item.id, package.size).await;
    match answer {
        Ok(Answer::Delivered(signed)) => delivered(relay, item, &gateway, signed, false).await,
        Ok(Answer::Duplicate(signed)) => delivered(relay, item, &gateway, signed, true).await,
        Ok(Answer::Refused(reason)) => fail(relay, item, reason, true).await,
        Ok(Answer::Retry(reason)) => fail(relay, item, reason, false).await,
        Err(e) => fail(relay, item, e.to_string(), false).await,
    }
}

/// Lays out, hashes and seals the study (or, with `grant`, exactly what
/// the grant covers) into the outbox file.
async fn make_package(
    relay: &Arc<Relay>,
    item: &Item,
    gateway: &Gateway,
    grant: Option<GrantState>,
) -> Result<PackageInfo, RelayError> {
    let (r, item, gateway) = (relay.clone(), item.clone(), gateway.clone());
    blocking(move || {
        let started = std::time::Instant::now();
        let index = r.ingestor.index();
        let study = index
            .study(&item.job.study)?
            .ok_or_else(|| RelayError::UnknownStudy(item.job.study.to_string()))?;
        let mut instances = index.instances(&item.job.study, None)?;
        if let Some(grant) = &grant {
            instances.retain(|(key, record)| {
                grant.covers_instance(&study, key, &record.attrs.sop_class_uid)
            });
        }
        let members = file_set_instances(index.as_ref(), r.ingestor.files(), &instances)?;
        let manifest = Manifest {
            format: FORMAT.to_string(),
            package_id: super::manifest::hex(&rand::random::<[u8; 16]>()),
            created_at: Timestamp::now(),
            sender: r.us(),
            recipient: super::manifest::Party {
                name: gateway.name.clone(),
                ura: gateway.ura.clone(),
                openpgp: gateway.openpgp.fingerprint().to_hex(),
            },
            message: item.job.message.clone(),
            priority: item.job.priority,
            grant: item.job.grant.clone(),
            studies: vec![item.job.study.to_string()],
            instances: 0,
            files: Vec::new(),
        };
        let readme = readme(&r, &item, &study);
        let listed = started.elapsed();
        let (archive, manifest) = seal::layout(manifest, members, readme)?;
        let hashed = started.elapsed();
        let sealed = seal::seal_to_file(
            &r.key,
            &gateway.openpgp,
            &archive,
            manifest.instances,
            &r.package_path(&item.id),
        )?;
        r.journal.append(Event::Relay(RelayEvent::Sealed {
            outbox: item.id.clone(),
            package: manifest.package_id.clone(),
            to_ura: item.job.to_ura.clone(),
            sha256: sealed.sha256.clone(),
            size: sealed.size,
            instances: sealed.instances,
        }));
        let total = started.elapsed();
        tracing::info!(
            outbox = %item.id, package = %manifest.package_id, bytes = sealed.size,
            instances = sealed.instances,
            list_ms = listed.as_millis() as u64,
            manifest_ms = (hashed - listed).as_millis() as u64,
            seal_ms = (total - hashed).as_millis() as u64,
            "package sealed"
        );
        Ok(PackageInfo {
            id: manifest.package_id,
            sha256: sealed.sha256,
            size: sealed.size,
            instances: sealed.instances,
            sealed_at: Timestamp::now(),
        })
    })
    .await
}

fn readme(relay: &Relay, item: &Item, study: &crate::store::StudyRecord) -> String {
    format!(
        "DICOM images sent by {org} to {to} through pushgate\r\n\
         ====================================================\r\n\r\n\
         Patient:   {patient}\r\n\
         Study:     {date} {description}\r\n\
         Message:   {message}\r\n\r\n\
         This folder is a DICOM file-set, like an image CD: import it by\r\n\
         pointing your PACS or viewer at the DICOMDIR file. MANIFEST.JSON\r\n\
         lists every file with its SHA-256.\r\n\r\n\
         Deze map is een DICOM-bestandsset, zoals een beelden-cd: importeer\r\n\
         hem door uw PACS of viewer naar het bestand DICOMDIR te wijzen.\r\n",
        org = relay.org_name,
        to = item.job.to_name,
        patient = study.patient.name.replace('^', " "),
        date = study.attrs.study_date,
        description = study.attrs.study_description,
        message = item.job.message.replace(['\r', '\n'], " "),
    )
}

async fn delivered(
    relay: &Arc<Relay>,
    mut item: Item,
    gateway: &Gateway,
    signed: SignedReceipt,
    duplicate: bool,
) {
    let Some(package) = item.job.package.clone() else {
        return;
    };
    if let Err(reason) = receipt::verify(&gateway.openpgp, &signed, &package.id, &package.sha256) {
        // an answer we cannot trust is no delivery: try again
        return fail(relay, item, reason, false).await;
    }
    item.state = State::Sent;
    item.job.sent_at = Some(Timestamp::now());
    item.job.receipt = Some(signed);
    item.last_error.clear();
    // the package goes only once "sent" is recorded: otherwise the next
    // run would seal a new package (new ID) and the peer ingest it again
    if save(relay, &item).await {
        let _ = std::fs::remove_file(relay.package_path(&item.id));
    }
    let event = Event::Relay(RelayEvent::Delivered {
        outbox: item.id.clone(),
        package: package.id.clone(),
        to_ura: item.job.to_ura.clone(),
        sha256: package.sha256.clone(),
        duplicate,
    });
    let r = relay.clone();
    if let Err(e) = blocking(move || Ok(r.journal.append_durable(event)?)).await {
        tracing::error!("journal: {e}");
    }
    tracing::info!(outbox = %item.id, package = %package.id, to_ura = %item.job.to_ura, duplicate, "package delivered; receipt verified");
}

async fn fail(relay: &Arc<Relay>, mut item: Item, reason: String, permanent: bool) {
    let now = Timestamp::now();
    let last = if permanent {
        item.state = State::Failed;
        item.last_error = reason.clone();
        true
    } else {
        item.retry_later(&reason, now, relay.outbox.queue().policy())
    };
    if !last {
        crate::metrics::METRICS.outbox_retries.inc();
    }
    save(relay, &item).await;
    if last {
        let _ = std::fs::remove_file(relay.package_path(&item.id));
    }
    tracing::warn!(outbox = %item.id, to_ura = %item.job.to_ura, attempt = item.attempts, last, "push not delivered: {reason}");
    relay.journal.append(Event::Relay(RelayEvent::Failed {
        outbox: item.id.clone(),
        to_ura: item.job.to_ura.clone(),
        attempt: item.attempts,
        reason,
        last,
    }));
}

/// POSTs the package file to the peer's inbox and reads its answer.
async fn deliver(
    relay: &Arc<Relay>,
    gateway: &Gateway,
    outbox_id: &str,
    size: u64,
) -> Result<Answer, RelayError> {
    let tls = relay.client_tls(gateway)?;
    let url = HttpsUrl::parse(&gateway.url)
        .map_err(|e| RelayError::Internal(format!("gateway URL {}: {e}", gateway.url)))?;
    let target = Target {
        host: url.host_text.clone(),
        port: url.port,
        name: url.host.clone(),
    };
    let file = tokio::fs::File::open(relay.package_path(outbox_id))
        .await
        .map_err(RelayError::Io)?;
    let body = StreamBody::new(
        ReaderStream::with_capacity(file, 256 << 10)
            .map(|chunk: std::io::Result<Bytes>| chunk.map(Frame::data)),
    );
    let request = Request::post(format!("{}/relay/v1/inbox", url.path))
        .header(header::HOST, url.host_header())
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, size)
        .header(header::USER_AGENT, http_client::USER_AGENT)
        .body(body)
        .map_err(|e| RelayError::Internal(e.to_string()))?;
    let limits = Limits::upload(size).with_max_body(MAX_ANSWER);
    match http_client::exchange(&target, tls, request, limits).await {
        Ok(answer) => Ok(interpret(answer.status, &answer.body)),
        // every stage failing is worth another try: the peer may be down,
        // restarting or overloaded
        Err(e) => Ok(Answer::Retry(format!(
            "{} ({}): {e}",
            gateway.url,
            stage(&e)
        ))),
    }
}

fn stage(e: &HttpError) -> &'static str {
    match e.stage() {
        Stage::Connect => "connecting",
        Stage::Handshake => "TLS handshake",
        Stage::Exchange => "delivery",
        Stage::Body => "reading the answer",
    }
}

fn interpret(status: StatusCode, body: &[u8]) -> Answer {
    let receipt = || {
        serde_json::from_slice::<ReceiptBody>(body)
            .ok()
            .map(|r| SignedReceipt {
                receipt: r.receipt,
                signature: r.signature,
            })
    };
    let reason = || {
        let text = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned());
        format!("{status}: {text}")
    };
    match status {
        StatusCode::OK | StatusCode::CREATED => match receipt() {
            Some(r) => Answer::Delivered(r),
            None => Answer::Retry(format!("{status} without a receipt")),
        },
        StatusCode::CONFLICT => match receipt() {
            Some(r) => Answer::Duplicate(r),
            None => Answer::Refused(reason()),
        },
        // the peer may not know us yet, or be full or busy: later
        StatusCode::FORBIDDEN
        | StatusCode::REQUEST_TIMEOUT
        | StatusCode::TOO_MANY_REQUESTS
        | StatusCode::PAYLOAD_TOO_LARGE => Answer::Retry(reason()),
        s if s.is_server_error() => Answer::Retry(reason()),
        _ => Answer::Refused(reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let receipt = br#"{"receipt":"{}","signature":"sig"}"#;
        assert!(matches!(
            interpret(StatusCode::OK, receipt),
            Answer::Delivered(_)
        ));
        assert!(matches!(
            interpret(StatusCode::CONFLICT, receipt),
            Answer::Duplicate(_)
        ));
        assert!(matches!(interpret(StatusCode::OK, b"{}"), Answer::Retry(_)));
        match interpret(StatusCode::BAD_REQUEST, br#"{"error":"hash mismatch"}"#) {
            Answer::Refused(r) => assert!(r.contains("hash mismatch"), "{r}"),
            _ => panic!("a 400 is final"),
        }
        assert!(matches!(
            interpret(StatusCode::SERVICE_UNAVAILABLE, b""),
            Answer::Retry(_)
        ));
        assert!(matches!(
            interpret(StatusCode::FORBIDDEN, b""),
            Answer::Retry(_)
        ));
    }
}
