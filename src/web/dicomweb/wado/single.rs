//! Single-part answers (PS3.18 §8.7.3.1, §8.7.4): when a client names a
//! bare media type (`application/octet-stream`, `application/pdf`,
//! `image/jpeg` …) rather than `multipart/related`, frames and bulk data
//! come back as that one payload with its media type as Content-Type. Only
//! one part fits in such an answer: asking for more with a single-part
//! type is refused with what to ask instead.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::{Response, StatusCode, header};

use crate::journal::AccessKind;
use crate::web::Body;
use crate::web::dicomweb::{Access, DicomWebError};
use crate::web::stream::produced_while;

/// The refusal for `count` parts asked under a single-part media type.
pub(super) fn too_many(count: usize, what: &str, part_type: &str) -> DicomWebError {
    DicomWebError::NotAcceptable(format!(
        "a single-part media type carries one {what}; this answer has {count}: \
         accept multipart/related; type=\"{part_type}\""
    ))
}

/// The answer whose body is `ranges` of `file`, in order.
pub(super) fn from_file(
    access: Arc<Access>,
    kind: AccessKind,
    content_type: &str,
    file: PathBuf,
    ranges: Vec<(u64, u64)>,
) -> Response<Body> {
    let len = ranges.iter().map(|(_, l)| l).sum();
    let guard = access.guard(kind);
    let body = produced_while(Some(len), guard, move |sink| {
        let result = (|| {
            for (offset, length) in &ranges {
                sink.send_file(&file, *offset, *length)?;
            }
            sink.flush()
        })();
        access.served(kind, 1, sink.sent);
        result
    });
    with_type(Response::new(body), content_type)
}

/// The answer whose body is `bytes` (a frame decoded before the status
/// line).
pub(super) fn from_bytes(
    access: Arc<Access>,
    kind: AccessKind,
    content_type: &str,
    bytes: Vec<u8>,
) -> Response<Body> {
    let guard = access.guard(kind);
    let body = produced_while(Some(bytes.len() as u64), guard, move |sink| {
        let result = sink.write_all(&bytes).and_then(|()| sink.flush());
        access.served(kind, 1, sink.sent);
        result
    });
    with_type(Response::new(body), content_type)
}

fn with_type(mut response: Response<Body>, content_type: &str) -> Response<Body> {
    *response.status_mut() = StatusCode::OK;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
