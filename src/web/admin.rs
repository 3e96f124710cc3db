//! The admin API (`/admin/v1/…`, bearer admin token): what has arrived.

use std::sync::Arc;

use super::inbound::Inbound;
use hyper::{Request, Response, StatusCode, header};
use serde::Serialize;

use super::{App, Body, Endpoint, WebError, json, request};
use crate::authz::{AuthzError, Denied, GrantId, IssueRequest};
use crate::relay::{RelayError, SendRequest};
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
    /// The gateway that pushed it, with its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_from: Option<crate::relay::Origin>,
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
            received_from: None,
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
    request: Request<Inbound>,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, WebError> {
    let from = format!("{} (admin token)", peer.ip());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match app.authz.admit_admin(&app.admin, authorization, peer.ip()) {
        Ok(()) => {}
        Err(Denied::RateLimited(wait)) => return Err(WebError::TooManyRequests(wait)),
        Err(_) => return Err(WebError::Unauthorized),
    }
    let index = app.index.clone();
    let authz = app.authz.clone();
    match endpoint {
        Endpoint::AdminStudies => {
            let relay = app.relay.clone();
            let studies = blocking(move || {
                index.studies().map(|studies| {
                    studies
                        .into_iter()
                        .map(|s| {
                            let origin = relay.origin(&s.study_uid);
                            (s, origin)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .await?;
            let mut views: Vec<StudyView> = studies
                .into_iter()
                .map(|(s, origin)| {
                    let mut view = StudyView::new(s, false);
                    view.received_from = origin;
                    view
                })
                .collect();
            views.sort_by_key(|v| std::cmp::Reverse(v.last_arrival));
            Ok(json(StatusCode::OK, &views))
        }
        Endpoint::AdminStudy(uid) => {
            let uid = Uid::parse(&uid).map_err(|_| WebError::NotFound)?;
            let study = blocking(move || index.study(&uid))
                .await?
                .ok_or(WebError::NotFound)?;
            let mut view = StudyView::new(study, true);
            let (relay, uid) = (app.relay.clone(), view.study_uid.clone());
            view.received_from = tokio::task::spawn_blocking(move || {
                Uid::parse(&uid).ok().and_then(|uid| relay.origin(&uid))
            })
            .await
            .ok()
            .flatten();
            Ok(json(StatusCode::OK, &view))
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
            // a grant for an organization with a gateway is also pushed there
            let (relay, id) = (app.relay.clone(), issued.id.clone());
            let _ = tokio::task::spawn_blocking(move || relay.push_for_grant(&id)).await;
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
        Endpoint::AdminOutbox => {
            let relay = app.relay.clone();
            let items = tokio::task::spawn_blocking(move || relay.outbox.list())
                .await
                .map_err(|e| WebError::Internal(e.to_string()))?
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(json(StatusCode::OK, &items))
        }
        Endpoint::AdminSend => {
            let (parts, body) = request::body(request).await?;
            let send: SendRequest = request::parse(&parts, &body)?;
            let relay = app.relay.clone();
            let item = tokio::task::spawn_blocking(move || relay.enqueue(send, "admin-api"))
                .await
                .map_err(|e| WebError::Internal(e.to_string()))?
                .map_err(|e| match e {
                    RelayError::UnknownStudy(_)
                    | RelayError::NoGateway(_)
                    | RelayError::Grant(_) => WebError::BadRequest(e.to_string()),
                    RelayError::Journal(_) => WebError::Unavailable(e.to_string()),
                    e => WebError::Internal(e.to_string()),
                })?;
            Ok(json(StatusCode::ACCEPTED, &item))
        }
        Endpoint::AdminQueue => super::admin_queue::list(app).await,
        Endpoint::AdminForward => {
            let Some(forwarder) = app.relay.forwarder.clone() else {
                return Ok(json(StatusCode::OK, &serde_json::json!([])));
            };
            let items = tokio::task::spawn_blocking(move || forwarder.status())
                .await
                .map_err(|e| WebError::Internal(e.to_string()))?
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(json(StatusCode::OK, &items))
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
