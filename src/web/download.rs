//! `GET /s/{token}/download.zip`: the covered study as a DICOM file-set in
//! a stored ZIP (DICOMDIR, README, files under DICOM/), laid out before the
//! first byte: Content-Length for real progress, byte ranges to resume, an
//! ETag so that a resume after the study changed starts over.

use std::sync::Arc;

use super::inbound::Inbound;
use hyper::{Method, Request, Response, StatusCode, header};

use super::access::{Access, Presented, blocking};
use super::request::Connection;
use super::stream::produced_while;
use super::{App, Body, Refusal, WebError, full};
use crate::journal::AccessKind;
use crate::package::{self, Archive};

/// A byte range asked for, resolved against the archive's length.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    All,
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range (RFC 9110 §14.1.2); several ranges, or anything
/// else, are served whole (a server may ignore Range).
fn wanted(range: Option<&str>, len: u64) -> Wanted {
    // the range unit is case-insensitive (RFC 9110 §14.1)
    let Some(spec) = range.and_then(|r| {
        let r = r.trim();
        r.get(..6)
            .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
            .map(|_| &r[6..])
    }) else {
        return Wanted::All;
    };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::All;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => Some((a, b.min(len.saturating_sub(1)))),
        (Ok(a), Err(_)) if last.is_empty() => Some((a, len.saturating_sub(1))),
        (Err(_), Ok(n)) if first.is_empty() && n > 0 => Some((len.saturating_sub(n), len - 1)),
        // a suffix of no bytes cannot be satisfied
        (Err(_), Ok(0)) if first.is_empty() => None,
        _ => return Wanted::All,
    };
    match parsed {
        Some((a, b)) if a < len && a <= b => Wanted::Part(a, b + 1),
        _ => Wanted::Unsatisfiable,
    }
}

/// `Jansen^Anna` and `20240312` → `Jansen_Anna_20240312.zip`.
fn file_name(access: &Access) -> String {
    let base = format!(
        "{}_{}",
        access.study.patient.name.split('=').next().unwrap_or(""),
        access.study.attrs.study_date
    );
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let clean = clean.trim_matches('_');
    let clean = if clean.is_empty() { "study" } else { clean };
    // a download of a study still arriving says so in its name
    if access.study.is_complete() {
        format!("{clean}.zip")
    } else {
        format!("{clean}_INCOMPLETE.zip")
    }
}

fn readme(access: &Access, instances: usize) -> String {
    let s = &access.study;
    format!(
        "DICOM images shared by {org} through pushgate\r\n\
         ===============================================\r\n\r\n\
         Patient:   {patient}\r\n\
         Study:     {date} {description}\r\n\
         Images:    {instances}{state}\r\n\
         Message:   {message}\r\n\r\n\
         This folder is a DICOM file-set, like an image CD: import it by\r\n\
         pointing your PACS or viewer at the DICOMDIR file. The images are\r\n\
         under DICOM/ exactly as the sending hospital stored them.\r\n\r\n\
         Deze map is een DICOM-bestandsset, zoals een beelden-cd: importeer\r\n\
         hem door uw PACS of viewer naar het bestand DICOMDIR te wijzen.\r\n",
        org = access.app.org_name,
        patient = s.patient.name.replace('^', " "),
        date = s.attrs.study_date,
        description = s.attrs.study_description,
        message = access.grant.grant.message.replace(['\r', '\n'], " "),
        state = if s.is_complete() {
            ""
        } else {
            " (INCOMPLETE: the study was still arriving; download again later)"
        },
    )
}

/// Lays out the archive of what the grant covers. Blocking.
fn archive(access: &Access) -> Result<(Archive, u32), WebError> {
    let covered = access
        .covered(None)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let instances =
        package::file_set_instances(access.app.index.as_ref(), &access.app.files, &covered)?;
    let count = instances.len() as u32;
    let readme = readme(access, instances.len());
    let archive = package::file_set(instances, readme, "PUSHGATE")
        .map_err(|e| WebError::Internal(format!("laying out the download: {e}")))?;
    Ok((archive, count))
}

type Layout = Arc<(Archive, u32)>;
const KEPT_LAYOUTS: usize = 16;

/// Download layouts: one made at a time, and the recent ones kept by grant
/// and the state of its study, so that a new arrival (or completion)
/// makes a new one. One per server (`Gates::layouts`).
pub struct Layouts {
    making: tokio::sync::Semaphore,
    kept: std::sync::Mutex<Vec<(String, Layout)>>,
}

impl Default for Layouts {
    fn default() -> Layouts {
        Layouts {
            making: tokio::sync::Semaphore::new(1),
            kept: std::sync::Mutex::new(Vec::new()),
        }
    }
}

fn layout_key(access: &Access) -> String {
    format!(
        "{}/{}/{}/{}",
        access.grant.grant.id.0,
        access.study.study_uid,
        access.study.last_arrival.0,
        access.study.is_complete()
    )
}

pub(super) async fn handle(
    app: &Arc<App>,
    token: &str,
    request: Request<Inbound>,
    connection: &Connection,
) -> Result<Response<Body>, Refusal> {
    let presented = Presented::of(&request, connection);
    let access = match Access::decide(app, token, presented, AccessKind::Download).await? {
        Ok(Some(access)) => Arc::new(access),
        // nothing has arrived yet for an accession grant
        Ok(None) => {
            return Ok(full(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "Nog geen beelden · No images yet\n",
            ));
        }
        // whatever the reason: the same 404 as an unknown link
        Err(_) => return Err(WebError::NotFound.into()),
    };
    // one layout at a time: each holds the directory keys of every
    // instance (~15 MB for 500), and eight at once left the heap at 150 MB;
    // a layout takes tens of milliseconds, so the wait is short, and the
    // parallel connections of a download manager or a Range resume find
    // the layout made for the first
    let key = layout_key(&access);
    let layouts = &app.gates.layouts;
    let permit = layouts
        .making
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let cached = layouts
        .kept
        .lock()
        .ok()
        .and_then(|kept| kept.iter().find(|(k, _)| *k == key).map(|(_, l)| l.clone()));
    let layout = match cached {
        Some(layout) => layout,
        None => {
            let a = access.clone();
            let made = blocking(move || archive(&a)).await?;
            let made = Arc::new(made);
            if let Ok(mut kept) = layouts.kept.lock() {
                if kept.len() >= KEPT_LAYOUTS {
                    kept.remove(0);
                }
                kept.push((key, made.clone()));
            }
            made
        }
    };
    drop(permit);
    let count = layout.1;
    if count == 0 {
        return Ok(full(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Nog geen beelden · No images yet\n",
        ));
    }
    let archive = &layout.0;
    let len = archive.len();
    let etag = format!(
        "\"{}\"",
        archive
            .fingerprint()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let header_text = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // a resume of another version of the archive gets the whole new one
    let if_range_ok = header_text(header::IF_RANGE).is_none_or(|v| v == etag);
    let range = if if_range_ok {
        wanted(header_text(header::RANGE).as_deref(), len)
    } else {
        Wanted::All
    };
    let (status, start, end) = match range {
        Wanted::All => (StatusCode::OK, 0, len),
        Wanted::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Wanted::Unsatisfiable => {
            let mut response = full(StatusCode::RANGE_NOT_SATISFIABLE, "text/plain", "");
            if let Ok(value) = format!("bytes */{len}").parse() {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let name = file_name(&access);
    let body = if request.method() == Method::HEAD {
        full(StatusCode::OK, "application/zip", "").into_body()
    } else {
        let guard = access.guard(AccessKind::Download);
        produced_while(Some(end - start), guard, move |sink| {
            let result = layout
                .0
                .write_range(start..end, sink)
                .map(|_| ())
                .and_then(|()| std::io::Write::flush(sink).map_err(package::PackageError::Io));
            // a part of the archive counts its instances only when whole
            let instances = if start == 0 && end == len && result.is_ok() {
                count
            } else {
                0
            };
            access.served(AccessKind::Download, instances, sink.sent);
            result.map_err(|e| match e {
                package::PackageError::Io(e) => e,
                other => std::io::Error::other(other.to_string()),
            })
        })
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, "application/zip".into());
    set(header::CONTENT_LENGTH, (end - start).to_string());
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::ETAG, etag);
    set(
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(wanted(None, 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-9"), 100), Wanted::Part(0, 10));
        assert_eq!(wanted(Some("bytes=90-"), 100), Wanted::Part(90, 100));
        assert_eq!(wanted(Some("bytes=90-500"), 100), Wanted::Part(90, 100));
        assert_eq!(wanted(Some("bytes=-10"), 100), Wanted::Part(90, 100));
        assert_eq!(wanted(Some("Bytes=10-19"), 100), Wanted::Part(10, 20));
        assert_eq!(wanted(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-500"), 100), Wanted::Part(0, 100));
        assert_eq!(wanted(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::All);
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=9-3"), 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=x-3"), 100), Wanted::All);
    }
}
