//! DICOMweb under `/s/{token}/dicomweb/`: WADO-RS (`wado/`) and QIDO-RS
//! (`qido/`), each folder with its handlers, limited to what the grant
//! covers; what both use (media types, multipart, resource paths) is here. The grant is the authz module's decision; which
//! instances it covers is `GrantState::covers_instance`, the one scope
//! check behind every kind of access. Out of scope and unknown look alike
//! (404).

pub mod accept;
mod multipart;
pub mod qido;
mod resource;
mod wado;

use std::sync::Arc;

use super::inbound::Inbound;
use hyper::{Request, Response, header};

pub(crate) use super::access::Access;
use super::access::Presented;
use super::request::{self, Connection};
use super::{App, Body, Refusal, WebError};
use crate::journal::AccessKind;
pub use resource::{PathError, Resource, Target};

/// DICOMweb's refusals: JSON with a reason for the holder (their statuses
/// are in `web/error.rs`, with every other refusal's).
#[derive(Debug, thiserror::Error)]
pub enum DicomWebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotAcceptable(String),
    /// Stored data that cannot be decoded or rendered (a defect of the
    /// data, not of the request): 406 with the reason, logged; the stored
    /// form is always available.
    #[error("{0}")]
    Undecodable(String),
    #[error(transparent)]
    Web(#[from] WebError),
}

impl From<crate::store::StoreError> for DicomWebError {
    fn from(e: crate::store::StoreError) -> Self {
        DicomWebError::Web(e.into())
    }
}

pub(crate) fn not_here() -> DicomWebError {
    DicomWebError::NotFound("not found in what this link shares".into())
}

fn access_kind(resource: &Result<Resource, PathError>) -> AccessKind {
    match resource {
        Ok(Resource::SearchStudies | Resource::SearchSeries { .. })
        | Ok(Resource::SearchInstances { .. }) => AccessKind::Qido,
        Ok(Resource::Retrieve(_)) => AccessKind::Wado,
        Ok(Resource::Metadata(_)) => AccessKind::Metadata,
        Ok(Resource::Frames { .. } | Resource::Bulkdata { .. }) => AccessKind::Frames,
        Ok(Resource::Rendered(_) | Resource::RenderedFrames { .. }) => AccessKind::Rendered,
        Ok(Resource::Thumbnail(_) | Resource::ThumbnailFrames { .. }) => AccessKind::Thumbnail,
        Err(_) => AccessKind::Wado,
    }
}

/// The media ranges a request accepts: the `accept` query parameter
/// (PS3.18 §8.3.3.1) before the header.
fn accepted<B>(request: &Request<B>, query: &[(String, String)]) -> Vec<accept::MediaRange> {
    let from_query: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "accept")
        .map(|(_, v)| v.as_str())
        .collect();
    if !from_query.is_empty() {
        return accept::parse(&from_query.join(","));
    }
    accept::parse(
        request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    )
}

/// Handles one DICOMweb request; `path` is what follows `dicomweb/`.
pub(super) async fn handle(
    app: &Arc<App>,
    token: &str,
    path: &str,
    request: Request<Inbound>,
    connection: &Connection,
) -> Result<Response<Body>, Refusal> {
    let segments: Vec<&str> = path.split('/').collect();
    let resource = resource::parse(&segments);
    let presented = Presented::of(&request, connection);
    let what = access_kind(&resource);
    let access = match Access::decide(app, token, presented, what).await? {
        Ok(access) => access,
        // a rate limit too: a 429 here would tell a live token from a dead one
        Err(_) => return Err(WebError::NotFound.into()),
    };
    let raw_query = request.uri().query().map(str::to_string);
    let query = request::query_pairs(raw_query.as_deref());
    let ranges = accepted(&request, &query);
    let result = match resource {
        Err(PathError::Unknown) => Err(DicomWebError::NotFound("no such DICOMweb resource".into())),
        Err(PathError::Invalid(reason)) => Err(DicomWebError::BadRequest(reason)),
        Ok(resource) => match access {
            // an accession grant whose study has not arrived: nothing yet
            None => match resource {
                Resource::SearchStudies
                | Resource::SearchSeries { .. }
                | Resource::SearchInstances { .. } => qido::handler::no_matches(&ranges),
                Resource::Retrieve(_)
                | Resource::Metadata(_)
                | Resource::Bulkdata { .. }
                | Resource::Frames { .. }
                | Resource::Rendered(_)
                | Resource::RenderedFrames { .. }
                | Resource::Thumbnail(_)
                | Resource::ThumbnailFrames { .. } => Err(DicomWebError::NotFound(
                    "the study has not arrived yet".into(),
                )),
            },
            Some(access) => dispatch(access, resource, &ranges, &query, raw_query).await,
        },
    };
    Ok(result?)
}

async fn dispatch(
    access: Access,
    resource: Resource,
    ranges: &[accept::MediaRange],
    query: &[(String, String)],
    raw_query: Option<String>,
) -> Result<Response<Body>, DicomWebError> {
    let access = Arc::new(access);
    match resource {
        Resource::Retrieve(target) => {
            let follow = query
                .iter()
                .any(|(k, v)| k == "follow" && v.eq_ignore_ascii_case("true"));
            wado::retrieve::retrieve(access, target, ranges, follow).await
        }
        Resource::Metadata(target) => wado::retrieve::metadata(access, target, ranges).await,
        Resource::Bulkdata { instance, path } => {
            wado::bulkdata::bulkdata(access, instance, path, ranges).await
        }
        Resource::SearchStudies => {
            qido::handler::search(
                access,
                qido::Level::Studies,
                qido::PathScope::default(),
                raw_query,
                ranges,
            )
            .await
        }
        Resource::SearchSeries { study } => {
            let path = qido::PathScope {
                study,
                series: None,
            };
            qido::handler::search(access, qido::Level::Series, path, raw_query, ranges).await
        }
        Resource::SearchInstances { study, series } => {
            let path = qido::PathScope { study, series };
            qido::handler::search(access, qido::Level::Instances, path, raw_query, ranges).await
        }
        Resource::Frames { instance, frames } => {
            wado::frames::frames(access, instance, frames, ranges).await
        }
        Resource::Rendered(target) => {
            let what = wado::rendered::What::Rendered {
                target,
                frame: None,
            };
            wado::rendered::render(access, what, ranges, query).await
        }
        Resource::Thumbnail(target) => {
            let what = wado::rendered::What::Thumbnail {
                target,
                frame: None,
            };
            wado::rendered::render(access, what, ranges, query).await
        }
        Resource::RenderedFrames { frames, .. } | Resource::ThumbnailFrames { frames, .. }
            if frames.len() != 1 =>
        {
            Err(DicomWebError::BadRequest(
                "pushgate renders one frame per request".into(),
            ))
        }
        Resource::RenderedFrames { instance, frames } => {
            let what = wado::rendered::What::Rendered {
                target: instance,
                frame: frames.first().copied(),
            };
            wado::rendered::render(access, what, ranges, query).await
        }
        Resource::ThumbnailFrames { instance, frames } => {
            let what = wado::rendered::What::Thumbnail {
                target: instance,
                frame: frames.first().copied(),
            };
            wado::rendered::render(access, what, ranges, query).await
        }
    }
}
