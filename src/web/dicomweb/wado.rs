//! WADO-RS retrieval (PS3.18 §10.4): instances as multipart/related,
//! streamed file by file; metadata from what intake precomputed; bulk data
//! by byte range. `follow=true` keeps a study response open until the study
//! is complete (spoed: images while the scanner still runs).

use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode, header};

use super::accept::{self, EXPLICIT_LE, MediaRange, Packaging, Syntax};
use super::multipart::Multipart;
use super::{Access, DicomWebError, Target};
use crate::ingest::{BULK_URI_PREFIX, StudyEvent};
use crate::journal::AccessKind;
use crate::pixels;
use crate::store::{InstanceKey, InstanceRecord, Uid};
use crate::web::stream::{Sink, produced_while};
use crate::web::{Body, full};

/// The longest a `follow=true` response stays open.
const FOLLOW_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// How one instance will be sent.
#[derive(Debug, Clone, PartialEq)]
enum Send {
    /// The stored file, byte for byte.
    Stored,
    /// Re-encoded (and decompressed) to Explicit VR Little Endian.
    Transcoded,
}

/// The first of the accepted syntaxes this instance can be sent in.
fn plan(record: &InstanceRecord, syntaxes: &[Syntax]) -> Option<Send> {
    syntaxes.iter().find_map(|syntax| match syntax {
        Syntax::Stored => Some(Send::Stored),
        Syntax::Uid(uid) if *uid == record.transfer_syntax => Some(Send::Stored),
        Syntax::Uid(uid) if uid == EXPLICIT_LE && pixels::can_decode(&record.transfer_syntax) => {
            Some(Send::Transcoded)
        }
        Syntax::Uid(_) => None,
    })
}

fn syntax_sent(record: &InstanceRecord, send: &Send) -> String {
    match send {
        Send::Stored => record.transfer_syntax.clone(),
        Send::Transcoded => EXPLICIT_LE.to_string(),
    }
}

fn asked(syntaxes: &[Syntax]) -> String {
    syntaxes
        .iter()
        .map(|s| match s {
            Syntax::Stored => "*".to_string(),
            Syntax::Uid(uid) => uid.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes one instance (stored or transcoded) to the sink.
fn send_instance(
    access: &Access,
    sink: &mut Sink,
    key: &InstanceKey,
    record: &InstanceRecord,
    send: &Send,
) -> io::Result<()> {
    let path = access.path_of(key);
    match send {
        Send::Stored => sink.send_file(&path, 0, record.size),
        Send::Transcoded => pixels::write_explicit_le(&path, record, sink)
            .map(|_| ())
            .map_err(|e| match e {
                pixels::PixelError::Io(e) => e,
                other => io::Error::other(format!("instance {}: {other}", key.sop)),
            }),
    }
}

pub(super) async fn retrieve(
    access: Arc<Access>,
    target: Target,
    ranges: &[MediaRange],
    follow: bool,
) -> Result<Response<Body>, DicomWebError> {
    let single = target.instance().is_some();
    let accepted = accept::dicom(ranges, single).ok_or_else(|| {
        DicomWebError::NotAcceptable(
            "instances are sent as multipart/related; type=\"application/dicom\"".into(),
        )
    })?;
    // subscribe before listing, so nothing stored in between is missed
    let events = follow.then(|| access.app.events.subscribe());
    let a = access.clone();
    let t = target.clone();
    let instances = tokio::task::spawn_blocking(move || a.covered_target(&t))
        .await
        .map_err(|e| crate::web::WebError::Internal(e.to_string()))??;
    let total = instances.len();
    let listed: HashSet<Uid> = instances.iter().map(|(k, _)| k.sop.clone()).collect();
    let planned: Vec<(InstanceKey, InstanceRecord, Send)> = instances
        .into_iter()
        .filter_map(|(key, record)| {
            plan(&record, &accepted.syntaxes).map(|send| (key, record, send))
        })
        .collect();
    if planned.is_empty() {
        return Err(DicomWebError::NotAcceptable(format!(
            "cannot send in the transfer syntax asked for ({}); transfer-syntax=* gives the stored data",
            asked(&accepted.syntaxes)
        )));
    }
    let left_out = total - planned.len();
    let mut response = if accepted.packaging == Packaging::Single {
        single_instance(access, planned.into_iter().next())
    } else {
        let follow = match (events, &target) {
            (Some(events), Target::Study(_)) if !access.study.is_complete() => Some(events),
            _ => None,
        };
        multipart(
            access,
            planned,
            follow.map(|f| (f, listed)),
            accepted.syntaxes,
        )
    };
    if left_out > 0 {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let warning = format!(
            "299 pushgate \"{left_out} instance(s) cannot be sent in the transfer syntax asked for\""
        );
        if let Ok(value) = warning.parse() {
            response.headers_mut().insert(header::WARNING, value);
        }
    }
    Ok(response)
}

fn single_instance(
    access: Arc<Access>,
    planned: Option<(InstanceKey, InstanceRecord, Send)>,
) -> Response<Body> {
    let Some((key, record, send)) = planned else {
        return full(StatusCode::NOT_FOUND, "text/plain", "");
    };
    let len = (send == Send::Stored).then_some(record.size);
    let content_type = format!(
        "application/dicom; transfer-syntax={}",
        syntax_sent(&record, &send)
    );
    let guard = access.guard(AccessKind::Wado);
    let body = produced_while(len, guard, move |sink| {
        let result = send_instance(&access, sink, &key, &record, &send).and_then(|()| sink.flush());
        access.served(AccessKind::Wado, result.is_ok() as u32, sink.sent);
        result
    });
    let mut response = Response::new(body);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn multipart(
    access: Arc<Access>,
    planned: Vec<(InstanceKey, InstanceRecord, Send)>,
    follow: Option<(tokio::sync::broadcast::Receiver<StudyEvent>, HashSet<Uid>)>,
    syntaxes: Vec<Syntax>,
) -> Response<Body> {
    let mp = Multipart::new();
    let part_type = |record: &InstanceRecord, send: &Send| {
        format!(
            "application/dicom; transfer-syntax={}",
            syntax_sent(record, send)
        )
    };
    // every part's size is known when nothing is transcoded or followed
    let len = (follow.is_none() && planned.iter().all(|(_, _, s)| *s == Send::Stored)).then(|| {
        planned
            .iter()
            .map(|(_, record, send)| {
                mp.part_head(&part_type(record, send), None).len() as u64
                    + record.size
                    + Multipart::PART_TAIL.len() as u64
            })
            .sum::<u64>()
            + mp.close().len() as u64
    });
    // one syntax for every part: say it in the response's type too
    let uniform = planned
        .first()
        .map(|(_, r, s)| syntax_sent(r, s))
        .filter(|first| {
            follow.is_none() && planned.iter().all(|(_, r, s)| syntax_sent(r, s) == *first)
        });
    let content_type = mp.content_type(
        "application/dicom",
        uniform.as_deref().map(|ts| ("transfer-syntax", ts)),
    );
    let follow = follow.map(|(events, listed)| {
        (
            forward_events(events, access.study.study_uid.clone()),
            listed,
        )
    });
    let guard = access.guard(AccessKind::Wado);
    let body = produced_while(len, guard, move |sink| {
        let mut sent = HashSet::new();
        let mut write_part =
            |sink: &mut Sink, key: &InstanceKey, record: &InstanceRecord, send: &Send| {
                sink.write_all(&mp.part_head(&part_type(record, send), None))?;
                send_instance(&access, sink, key, record, send)?;
                sink.write_all(Multipart::PART_TAIL)?;
                sent.insert(key.sop.clone());
                Ok::<_, io::Error>(())
            };
        let mut result = planned
            .iter()
            .try_for_each(|(key, record, send)| write_part(sink, key, record, send));
        if let (Ok(()), Some((events, listed))) = (&result, follow) {
            result = follow_study(
                &access,
                sink,
                events,
                listed,
                &syntaxes,
                |sink, key, record, send| write_part(sink, key, record, send),
            );
        }
        let result = result
            .and_then(|()| sink.write_all(&mp.close()))
            .and_then(|()| sink.flush());
        access.served(AccessKind::Wado, sent.len() as u32, sink.sent);
        result
    });
    let mut response = Response::new(body);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// What a following response hears about its study.
enum Heard {
    Stored(InstanceKey),
    Completed,
    /// Events were missed: look at the index again.
    Resync,
}

/// Bridges the async broadcast to the blocking producer, keeping only
/// this study's events.
fn forward_events(
    mut events: tokio::sync::broadcast::Receiver<StudyEvent>,
    study: crate::store::Uid,
) -> std::sync::mpsc::Receiver<Heard> {
    use tokio::sync::broadcast::error::RecvError;
    let (tx, rx) = std::sync::mpsc::channel();
    tokio::spawn(async move {
        loop {
            let heard = match events.recv().await {
                Ok(StudyEvent::InstanceStored { key, .. }) if key.study == study => {
                    Heard::Stored(key)
                }
                Ok(StudyEvent::Completed { study: s }) if s == study => Heard::Completed,
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => Heard::Resync,
                Err(RecvError::Closed) => return,
            };
            if tx.send(heard).is_err() {
                return;
            }
        }
    });
    rx
}

/// Sends the study's new instances as they are stored, until it is
/// complete, the grant ends, the client leaves or the limit passes.
fn follow_study(
    access: &Access,
    sink: &mut Sink,
    events: std::sync::mpsc::Receiver<Heard>,
    mut sent: HashSet<Uid>,
    syntaxes: &[Syntax],
    mut write_part: impl FnMut(&mut Sink, &InstanceKey, &InstanceRecord, &Send) -> io::Result<()>,
) -> io::Result<()> {
    let started = Instant::now();
    let mut send_new = |sink: &mut Sink, sent: &mut HashSet<Uid>| {
        let Ok(Some(study)) = access.app.index.study(&access.study.study_uid) else {
            return Ok(());
        };
        let instances = access
            .app
            .index
            .instances(&study.study_uid, None)
            .map_err(io::Error::other)?;
        for (key, record) in instances {
            if sent.contains(&key.sop)
                || !access
                    .grant
                    .covers_instance(&study, &key, &record.attrs.sop_class_uid)
            {
                continue;
            }
            if !access.still_allowed(AccessKind::Wado) {
                return Err(io::Error::other("the grant is no longer valid"));
            }
            if let Some(send) = plan(&record, syntaxes) {
                write_part(sink, &key, &record, &send)?;
            }
            sent.insert(key.sop);
        }
        sink.flush()
    };
    // anything stored between the listing and the subscription
    send_new(sink, &mut sent)?;
    loop {
        if started.elapsed() > FOLLOW_LIMIT {
            return Ok(());
        }
        match events.recv_timeout(Duration::from_secs(5)) {
            Ok(Heard::Stored(key)) if sent.contains(&key.sop) => {}
            Ok(Heard::Stored(_)) | Ok(Heard::Resync) => send_new(sink, &mut sent)?,
            Ok(Heard::Completed) => return send_new(sink, &mut sent),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // the client may have gone, the grant may have ended
                if sink.client_gone() {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the client went away",
                    ));
                }
                if !access.still_allowed(AccessKind::Wado) {
                    return Err(io::Error::other("the grant is no longer valid"));
                }
                if matches!(access.app.index.study(&access.study.study_uid), Ok(Some(s)) if s.is_complete())
                {
                    return send_new(sink, &mut sent);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// Rewrites the stored placeholders to this link's bulk data URLs.
fn with_bulk_uris(metadata: &[u8], base: &str, key: &InstanceKey) -> Vec<u8> {
    let text = String::from_utf8_lossy(metadata);
    let url = format!(
        "{base}/studies/{}/series/{}/instances/{}/bulkdata/",
        key.study, key.series, key.sop
    );
    text.replace(BULK_URI_PREFIX, &url).into_bytes()
}

pub(super) async fn metadata(
    access: Arc<Access>,
    target: Target,
    ranges: &[MediaRange],
) -> Result<Response<Body>, DicomWebError> {
    let Some(media_type) = accept::choose(ranges, &["application/dicom+json", "application/json"])
    else {
        return Err(DicomWebError::NotAcceptable(
            "metadata is application/dicom+json".into(),
        ));
    };
    let a = access.clone();
    let instances = tokio::task::spawn_blocking(move || a.covered_target(&target))
        .await
        .map_err(|e| crate::web::WebError::Internal(e.to_string()))??;
    let base = access.base();
    let guard = access.guard(AccessKind::Metadata);
    let body = produced_while(None, guard, move |sink| {
        let mut count = 0;
        // journaled however it ends: what went out, went out
        let result = (|| {
            sink.write_all(b"[")?;
            for (key, _) in &instances {
                let Some(metadata) = access.app.index.metadata(key).map_err(io::Error::other)?
                else {
                    continue;
                };
                if count > 0 {
                    sink.write_all(b",")?;
                }
                sink.write_all(&with_bulk_uris(&metadata, &base, key))?;
                count += 1;
            }
            sink.write_all(b"]")?;
            sink.flush()
        })();
        access.served(AccessKind::Metadata, count, sink.sent);
        result
    });
    let mut response = Response::new(body);
    if let Ok(value) = media_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(response)
}
