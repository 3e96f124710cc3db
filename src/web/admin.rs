//! The admin API (`/admin/v1/…`, bearer admin token): what has arrived.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use serde::Serialize;

use super::{App, Body, Endpoint, WebError, json, request};
use crate::authz::{AuthzError, GrantId, IssueRequest};
use crate::store::{PatientAttrs, SeriesRecord, StudyRecord, Timestamp, Uid};
use serde::Deserialize;

/// A study as the admin API and `pushgate studies --json` show it.
#[derive(Debug, Serialize)]
pub struct StudyView {
    pub study_uid: String,
    pub patient: PatientAttrs,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub study_description: String,
    pub referring_physician: String,
    pub modalities: Vec<String>,
    pub num_series: usize,
    pub num_instances: u64,
    pub bytes: u64,
    /// "complete" once `dicom.stable_after` passed without new instances,
    /// else "arriving".
    pub state: &'static str,
    pub first_arrival: Timestamp,
    pub last_arrival: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SeriesView>>,
}

#[derive(Debug, Serialize)]
pub struct SeriesView {
    pub series_uid: String,
    #[serde(flatten)]
    pub record: SeriesRecord,
}

impl StudyView {
    pub fn new(study: StudyRecord, with_series: bool) -> StudyView {
        StudyView {
            study_uid: study.study_uid.to_string(),
            modalities: study.modalities().into_iter().map(str::to_string).collect(),
            num_series: study.num_series(),
            num_instances: study.num_instances(),
            bytes: study.bytes(),
            state: if study.is_complete() {
                "complete"
            } else {
                "arriving"
            },
            patient: study.patient,
            study_date: study.attrs.study_date,
            study_time: study.attrs.study_time,
            accession_number: study.attrs.accession_number,
            study_description: study.attrs.study_description,
            referring_physician: study.attrs.referring_physician,
            first_arrival: study.first_arrival,
            last_arrival: study.last_arrival,
            completed_at: study.completed_at,
            sources: study.sources.into_iter().collect(),
            series: with_series.then(|| {
                study
                    .series
                    .into_iter()
                    .map(|(uid, record)| SeriesView {
                        series_uid: uid.to_string(),
                        record,
                    })
                    .collect()
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    by: String,
    #[serde(default)]
    reason: String,
}

pub(super) async fn handle(
    app: &Arc<App>,
    endpoint: Endpoint,
    request: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, WebError> {
    let from = format!("{} (admin token)", peer.ip());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !app.admin.permits(authorization) {
        return Err(WebError::Unauthorized);
    }
    let index = app.index.clone();
    let authz = app.authz.clone();
    match endpoint {
        Endpoint::AdminStudies => {
            let studies = blocking(move || index.studies()).await?;
            let mut views: Vec<StudyView> = studies
                .into_iter()
                .map(|s| StudyView::new(s, false))
                .collect();
            views.sort_by_key(|v| std::cmp::Reverse(v.last_arrival));
            Ok(json(StatusCode::OK, &views))
        }
        Endpoint::AdminStudy(uid) => {
            let uid = Uid::parse(&uid).map_err(|_| WebError::NotFound)?;
            let study = blocking(move || index.study(&uid))
                .await?
                .ok_or(WebError::NotFound)?;
            Ok(json(StatusCode::OK, &StudyView::new(study, true)))
        }
        Endpoint::AdminGrants => Ok(json(StatusCode::OK, &authz.list())),
        Endpoint::AdminGrant(id) => {
            let detail = authz.show(&GrantId(id)).ok_or(WebError::NotFound)?;
            Ok(json(StatusCode::OK, &detail))
        }
        Endpoint::AdminIssue => {
            let (parts, body) = request::body(request).await?;
            let issue: IssueRequest = request::parse(&parts, &body)?;
            let issued = authz_call(move || authz.issue(issue, &from)).await?;
            Ok(json(StatusCode::CREATED, &issued))
        }
        Endpoint::AdminRevoke(id) => {
            let (parts, body) = request::body(request).await?;
            let revoke: RevokeRequest = request::parse(&parts, &body)?;
            let grant = GrantId(id);
            let g = grant.clone();
            let cascade =
                authz_call(move || authz.revoke(&g, &revoke.by, &revoke.reason, &from)).await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "revoked": grant, "cascade": cascade }),
            ))
        }
        _ => Err(WebError::NotFound),
    }
}

/// Runs a grant change (which waits for the journal) off the async threads.
async fn authz_call<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuthzError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(|e| match e {
            AuthzError::Invalid(message) => WebError::BadRequest(message),
            AuthzError::NotFound => WebError::NotFound,
            other => WebError::Unavailable(other.to_string()),
        })
}

/// Runs an index call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(WebError::from)
}
