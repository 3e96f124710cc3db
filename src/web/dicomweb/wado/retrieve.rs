//! WADO-RS retrieval (PS3.18 §10.4): instances as multipart/related,
//! streamed file by file; metadata from what intake precomputed; bulk data
//! by byte range. `follow=true` keeps a study response open until the study
//! is complete (spoed: images while the scanner still runs).

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode, header};

use crate::ingest::{BULK_URI_PREFIX, StudyEvent};
use crate::journal::AccessKind;
use crate::pixels;
use crate::store::{InstanceKey, InstanceRecord, Uid};
use crate::web::access::blocking;
use crate::web::dicomweb::accept::{self, EXPLICIT_LE, MediaRange, Packaging, Syntax};
use crate::web::dicomweb::multipart::Multipart;
use crate::web::dicomweb::{Access, DicomWebError, Target};
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

/// The first of the accepted syntaxes this instance can be sent in, or why
/// none: decoding is judged from the instance's header and first frame
/// (`pixels::check_decodable`), so that a response leaves out what it
/// cannot decode before its first byte instead of breaking off half-way.
/// Blocking (reads the file).
fn plan(path: &Path, record: &InstanceRecord, syntaxes: &[Syntax]) -> Result<Send, String> {
    let mut why = None;
    for syntax in syntaxes {
        match syntax {
            Syntax::Stored => return Ok(Send::Stored),
            Syntax::Uid(uid) if *uid == record.transfer_syntax => return Ok(Send::Stored),
            Syntax::Uid(uid) if uid == EXPLICIT_LE => match pixels::check_decodable(path, record) {
                Ok(()) => return Ok(Send::Transcoded),
                Err(e) => {
                    why.get_or_insert_with(|| e.to_string());
                }
            },
            Syntax::Uid(_) => {}
        }
    }
    Err(why.unwrap_or_else(|| format!("stored as {}", record.transfer_syntax)))
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

/// How one instance goes out: the stored file, or a transcoding whose
/// first frame is decoded already.
// one per instance being sent, short-lived: boxing buys nothing
#[allow(clippy::large_enum_variant)]
enum Ready {
    Stored,
    Transcoded(pixels::Transcode),
}

/// Gets one instance ready to send: a transcoding decodes its first frame
/// here, before anything about the instance is written. Blocking.
fn ready(
    access: &Access,
    key: &InstanceKey,
    record: &InstanceRecord,
    send: &Send,
) -> Result<Ready, pixels::PixelError> {
    match send {
        Send::Stored => Ok(Ready::Stored),
        Send::Transcoded => {
            pixels::Transcode::prepare(&access.path_of(key), record).map(Ready::Transcoded)
        }
    }
}

fn instance_error(key: &InstanceKey, e: pixels::PixelError) -> io::Error {
    match e {
        pixels::PixelError::Io(e) => e,
        other => io::Error::other(format!("instance {}: {other}", key.sop)),
    }
}

/// Writes one instance, made ready by [`ready`], to the sink.
fn send_instance(
    access: &Access,
    sink: &mut Sink,
    key: &InstanceKey,
    record: &InstanceRecord,
    ready: Ready,
) -> io::Result<()> {
    match ready {
        Ready::Stored => sink.send_file(&access.path_of(key), 0, record.size),
        Ready::Transcoded(transcode) => transcode
            .write(sink)
            .map(|_| ())
            .map_err(|e| instance_error(key, e)),
    }
}

pub(in crate::web::dicomweb) async fn retrieve(
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
    let syntaxes = accepted.syntaxes.clone();
    let single_part = accepted.packaging == Packaging::Single;
    let (listed, planned, left_out, first) = blocking(move || {
        let instances = a.covered_target(&t)?;
        let listed: HashSet<Uid> = instances.iter().map(|(k, _)| k.sop.clone()).collect();
        let mut planned = Vec::with_capacity(instances.len());
        let mut left_out: Vec<String> = Vec::new();
        for (key, record) in instances {
            match plan(&a.path_of(&key), &record, &syntaxes) {
                Ok(send) => planned.push((key, record, send)),
                Err(why) => left_out.push(why),
            }
        }
        // one instance alone: its transcoding is started here, so that a
        // failure is a status line with the reason, not an empty 200
        let first = match planned.first() {
            Some((key, record, send)) if single_part => {
                Some(ready(&a, key, record, send).map_err(super::frames::pixel_error)?)
            }
            _ => None,
        };
        Ok::<_, DicomWebError>((listed, planned, left_out, first))
    })
    .await?;
    if planned.is_empty() {
        return Err(DicomWebError::NotAcceptable(format!(
            "cannot send in the transfer syntax asked for ({}){}; transfer-syntax=* gives the stored data",
            asked(&accepted.syntaxes),
            left_out
                .first()
                .map(|why| format!(": {why}"))
                .unwrap_or_default()
        )));
    }
    let mut response = if let Some(first) = first {
        single_instance(access, planned.into_iter().next(), first)
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
    if let Some(why) = left_out.first() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        // the reason goes into a quoted-string: no quotes, backslashes or
        // control characters from it
        let why: String = why
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '\''
                } else {
                    c
                }
            })
            .take(200)
            .collect();
        let warning = format!(
            "299 pushgate \"{} instance(s) cannot be sent in the transfer syntax asked for (first: {why})\"",
            left_out.len()
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
    ready: Ready,
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
        let result = send_instance(&access, sink, &key, &record, ready).and_then(|()| sink.flush());
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
                // nothing of the part is written before its first frame
                // decoded: a failure here breaks the response off between
                // parts, visibly (no closing boundary)
                let ready =
                    ready(&access, key, record, send).map_err(|e| instance_error(key, e))?;
                sink.write_all(&mp.part_head(&part_type(record, send), None))?;
                send_instance(&access, sink, key, record, ready)?;
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
            if let Ok(send) = plan(&access.path_of(&key), &record, syntaxes) {
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

pub(in crate::web::dicomweb) async fn metadata(
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
    let instances = blocking(move || a.covered_target(&target)).await?;
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
