//! DICOMweb under `/s/{token}/dicomweb/`: WADO-RS and QIDO-RS, limited to
//! what the grant covers. The grant is the authz module's decision; which
//! instances it covers is `GrantState::covers_instance`, the one scope
//! check behind every kind of access. Out of scope and unknown look alike
//! (404).

pub mod accept;
mod bulkdata;
mod frames;
mod multipart;
pub mod qido;
mod rendered;
mod resource;
mod search;
mod single;
mod wado;

use std::net::IpAddr;
use std::sync::Arc;

use super::inbound::Inbound;
use hyper::{Request, Response, StatusCode, header};

use super::request::{self, Connection};
use super::{App, Body, WebError, json, share};
use crate::authz::{Caller, Credentials, Denied, GrantState, Served};
use crate::journal::AccessKind;
use crate::store::{InstanceKey, InstanceRecord, StudyRecord, Uid};
pub use resource::{PathError, Resource, Target};

/// DICOMweb answers its own way: JSON errors with a reason for the holder.
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

impl DicomWebError {
    pub fn into_response(self) -> Response<Body> {
        let (status, message) = match self {
            DicomWebError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            DicomWebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            DicomWebError::NotAcceptable(m) => (StatusCode::NOT_ACCEPTABLE, m),
            // the decoded form asked for cannot be made; the stored one
            // can always be had: not acceptable, with the reason
            DicomWebError::Undecodable(m) => {
                tracing::warn!(reason = %m, "stored pixel data could not be decoded");
                (StatusCode::NOT_ACCEPTABLE, m)
            }
            DicomWebError::Web(e) => return e.into_response(),
        };
        json(status, &serde_json::json!({ "error": message }))
    }
}

impl From<crate::store::StoreError> for DicomWebError {
    fn from(e: crate::store::StoreError) -> Self {
        DicomWebError::Web(e.into())
    }
}

fn not_here() -> DicomWebError {
    DicomWebError::NotFound("not found in what this link shares".into())
}

/// A holder's access to its study: decided once per request, carried by
/// whatever produces the response (and journals what it served).
#[derive(Clone)]
pub(crate) struct Access {
    pub app: Arc<App>,
    pub token: String,
    pub grant: GrantState,
    pub study: StudyRecord,
    credentials: Credentials,
    from: IpAddr,
}

impl Access {
    /// Decides a request: the holder of a live grant, for its study. A
    /// refusal is the neutral answer (or a rate limit).
    pub async fn decide(
        app: &Arc<App>,
        token: &str,
        credentials: Credentials,
        connection: &Connection,
        what: AccessKind,
    ) -> Result<Result<Option<Access>, Denied>, WebError> {
        let from = connection.peer.ip();
        // the check may wait on the grant state's lock while a change is
        // saved: off the reactor
        let (authz, t, c) = (app.authz.clone(), token.to_string(), credentials.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let caller = Caller {
                credentials: &c,
                from,
            };
            authz.check(&t, caller, what)
        })
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
        let allowed = match checked {
            Ok(allowed) => allowed,
            Err(denied) => return Ok(Err(denied)),
        };
        // an accession grant whose study has not arrived yet covers nothing
        let Some(study_uid) = allowed.grant.study_uid().cloned() else {
            return Ok(Ok(None));
        };
        let index = app.index.clone();
        let study = tokio::task::spawn_blocking(move || index.study(&study_uid))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))??;
        Ok(Ok(study.map(|study| Access {
            app: app.clone(),
            token: token.to_string(),
            grant: allowed.grant,
            study,
            credentials,
            from,
        })))
    }

    /// The DICOMweb root URL of this link.
    pub fn base(&self) -> String {
        format!("{}/dicomweb", self.app.authz.url_for(&self.token))
    }

    /// The covered instances of the study (or of one series), in viewing
    /// order: by series number, then instance number. Blocking.
    pub fn covered(
        &self,
        series: Option<&Uid>,
    ) -> Result<Vec<(InstanceKey, InstanceRecord)>, DicomWebError> {
        let mut instances = self.app.index.instances(&self.study.study_uid, series)?;
        instances.retain(|(key, record)| {
            self.grant
                .covers_instance(&self.study, key, &record.attrs.sop_class_uid)
        });
        let series_number = |key: &InstanceKey| {
            self.study
                .series
                .get(&key.series)
                .and_then(|s| s.attrs.series_number)
        };
        instances.sort_by(|(a, ra), (b, rb)| {
            (
                series_number(a),
                &a.series,
                ra.attrs.instance_number,
                &a.sop,
            )
                .cmp(&(
                    series_number(b),
                    &b.series,
                    rb.attrs.instance_number,
                    &b.sop,
                ))
        });
        Ok(instances)
    }

    /// The covered instances a target names; none is a 404.
    pub fn covered_target(
        &self,
        target: &Target,
    ) -> Result<Vec<(InstanceKey, InstanceRecord)>, DicomWebError> {
        if target.study() != &self.study.study_uid {
            return Err(not_here());
        }
        let mut instances = self.covered(target.series())?;
        if let Some(sop) = target.instance() {
            instances.retain(|(key, _)| &key.sop == sop);
        }
        if instances.is_empty() {
            return Err(not_here());
        }
        Ok(instances)
    }

    /// Checks again that the grant is live (a long response that goes on
    /// sending re-asks before each new instance).
    pub fn still_allowed(&self, what: AccessKind) -> bool {
        let caller = Caller {
            credentials: &self.credentials,
            from: self.from,
        };
        self.app.authz.check(&self.token, caller, what).is_ok()
    }

    /// A check for a producer to repeat while it sends (see
    /// `stream::produced_while`).
    pub fn guard(self: &Arc<Self>, what: AccessKind) -> impl Fn() -> bool + Send + 'static {
        let access = self.clone();
        move || access.still_allowed(what)
    }

    /// Journals what was served (never waits).
    pub fn served(&self, what: AccessKind, instances: u32, bytes: u64) {
        let caller = Caller {
            credentials: &self.credentials,
            from: self.from,
        };
        self.app.authz.record_served(
            caller,
            Served {
                grant: &self.grant.grant.id,
                study: Some(&self.study.study_uid),
                what,
                instances,
                bytes,
            },
        );
    }

    pub fn path_of(&self, key: &InstanceKey) -> std::path::PathBuf {
        self.app.files.path_of(key)
    }
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
) -> Result<Response<Body>, WebError> {
    let segments: Vec<&str> = path.split('/').collect();
    let resource = resource::parse(&segments);
    let credentials = request::credentials(&request, connection);
    let what = access_kind(&resource);
    let access = match Access::decide(app, token, credentials, connection, what).await? {
        Ok(access) => access,
        Err(Denied::RateLimited(_)) | Err(_) => return Ok(share::neutral(false)),
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
                | Resource::SearchInstances { .. } => search::no_matches(&ranges),
                _ => Err(DicomWebError::NotFound(
                    "the study has not arrived yet".into(),
                )),
            },
            Some(access) => dispatch(access, resource, &ranges, &query, raw_query).await,
        },
    };
    Ok(result.unwrap_or_else(DicomWebError::into_response))
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
            wado::retrieve(access, target, ranges, follow).await
        }
        Resource::Metadata(target) => wado::metadata(access, target, ranges).await,
        Resource::Bulkdata { instance, path } => {
            bulkdata::bulkdata(access, instance, path, ranges).await
        }
        Resource::SearchStudies => {
            search::search(
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
            search::search(access, qido::Level::Series, path, raw_query, ranges).await
        }
        Resource::SearchInstances { study, series } => {
            let path = qido::PathScope { study, series };
            search::search(access, qido::Level::Instances, path, raw_query, ranges).await
        }
        Resource::Frames { instance, frames } => {
            frames::frames(access, instance, frames, ranges).await
        }
        Resource::Rendered(target) => {
            let what = rendered::What::Rendered {
                target,
                frame: None,
            };
            rendered::render(access, what, ranges, query).await
        }
        Resource::Thumbnail(target) => {
            let what = rendered::What::Thumbnail {
                target,
                frame: None,
            };
            rendered::render(access, what, ranges, query).await
        }
        Resource::RenderedFrames { frames, .. } | Resource::ThumbnailFrames { frames, .. }
            if frames.len() != 1 =>
        {
            Err(DicomWebError::BadRequest(
                "pushgate renders one frame per request".into(),
            ))
        }
        Resource::RenderedFrames { instance, frames } => {
            let what = rendered::What::Rendered {
                target: instance,
                frame: frames.first().copied(),
            };
            rendered::render(access, what, ranges, query).await
        }
        Resource::ThumbnailFrames { instance, frames } => {
            let what = rendered::What::Thumbnail {
                target: instance,
                frame: frames.first().copied(),
            };
            rendered::render(access, what, ranges, query).await
        }
    }
}
