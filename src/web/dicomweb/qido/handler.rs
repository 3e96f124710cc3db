//! The QIDO-RS handler: the covered part of the study (read on the
//! blocking pool) handed to the pure search beside it, the matches sent
//! back as DICOM JSON.

use std::sync::Arc;

use hyper::{Response, StatusCode, header};

use super as qido;
use super::{Covered, Level, PathScope};
use crate::journal::AccessKind;
use crate::store::{SeriesRecord, Uid};
use crate::web::access::blocking;
use crate::web::dicomweb::accept::{self, MediaRange};
use crate::web::dicomweb::{Access, DicomWebError};
use crate::web::{Body, WebError, full};

pub(crate) async fn search(
    access: Arc<Access>,
    level: Level,
    path: PathScope,
    query: Option<String>,
    ranges: &[MediaRange],
) -> Result<Response<Body>, DicomWebError> {
    let media_type = media_type(ranges)?;
    let query = qido::parse(level, query.as_deref())
        .map_err(|e| DicomWebError::BadRequest(e.to_string()))?;
    let warning = query.warning();
    let results = blocking(move || {
        let instances = access.covered(None)?;
        let series: Vec<(&Uid, &SeriesRecord)> = access
            .study
            .series
            .iter()
            .filter(|(uid, _)| instances.iter().any(|(key, _)| key.series == **uid))
            .collect();
        let index = access.app.index.clone();
        let metadata = move |key: &crate::store::InstanceKey| index.metadata(key).ok().flatten();
        let covered = Covered {
            study: &access.study,
            series,
            instances: instances.iter().map(|(k, r)| (k, r)).collect(),
            metadata: &metadata,
        };
        let found = qido::search(&query, &path, &covered, &access.base());
        access.served(AccessKind::Qido, found.len() as u32, 0);
        Ok::<_, DicomWebError>(found)
    })
    .await?;
    let body = serde_json::to_vec(&results).map_err(|e| WebError::Internal(e.to_string()))?;
    let mut response = full(StatusCode::OK, media_type, body);
    if let Some(value) = warning.and_then(|w| w.parse().ok()) {
        response.headers_mut().insert(header::WARNING, value);
    }
    Ok(response)
}

/// The media type of search results the client accepts.
fn media_type(ranges: &[MediaRange]) -> Result<&'static str, DicomWebError> {
    accept::choose(ranges, &["application/dicom+json", "application/json"]).ok_or_else(|| {
        DicomWebError::NotAcceptable("search results are application/dicom+json".into())
    })
}

/// A search that cannot match anything (the study has not arrived): the
/// same `200 []` as a search without matches (CP-2473; dicomweb-client and
/// OHIF take an empty array, not every client a 204), same media type.
pub(crate) fn no_matches(ranges: &[MediaRange]) -> Result<Response<Body>, DicomWebError> {
    Ok(full(StatusCode::OK, media_type(ranges)?, "[]"))
}
