//! The admin API (`/admin/v1/…`, bearer admin token): what has arrived.

use std::sync::Arc;

use super::inbound::Inbound;
use hyper::{Request, Response, StatusCode, header};
use serde::Serialize;

use super::access::blocking;
use super::router::Admin;
use super::{App, Body, Refusal, WebError, json, request};
use crate::authz::{Denied, GrantId, IssueRequest};
use crate::journal::ActorRecord;
use crate::relay::SendRequest;
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
    #[serde(default)]
    reason: String,
}

/// Answers an admin API request, whichever listener it came to.
pub async fn handle(
    app: &Arc<App>,
    endpoint: Admin,
    request: Request<Inbound>,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, Refusal> {
    let from = format!("{} (admin token)", peer.ip());
    // the token is the identity: whoever holds it, the journal names it
    let actor = ActorRecord::admin_token();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match app.authz.admit_admin(&app.admin, authorization, peer.ip()) {
        Ok(()) => {}
        Err(Denied::RateLimited(wait)) => return Err(WebError::TooManyRequests(wait).into()),
        Err(_) => return Err(WebError::Unauthorized.into()),
    }
    let index = app.index.clone();
    let authz = app.authz.clone();
    let relay = app.relay.clone();
    Ok(match endpoint {
        Admin::Studies => {
            let studies = blocking(move || {
                index.studies().map_err(WebError::from).map(|studies| {
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
            json(StatusCode::OK, &views)
        }
        Admin::Study(uid) => {
            let uid = Uid::parse(&uid).map_err(|_| WebError::NotFound)?;
            let study = blocking(move || {
                let study = index.study(&uid).map_err(WebError::from)?;
                Ok::<_, WebError>(study.map(|study| {
                    let origin = relay.origin(&study.study_uid);
                    (study, origin)
                }))
            })
            .await?;
            let (study, origin) = study.ok_or(WebError::NotFound)?;
            let mut view = StudyView::new(study, true);
            view.received_from = origin;
            json(StatusCode::OK, &view)
        }
        Admin::Grants => json(StatusCode::OK, &authz.list()),
        Admin::Grant(id) => {
            let detail = authz.show(&GrantId(id)).ok_or(WebError::NotFound)?;
            json(StatusCode::OK, &detail)
        }
        Admin::Issue => {
            let (parts, body) = request::body(request).await?;
            let issue: IssueRequest = request::parse(&parts, &body)?;
            // a grant change waits for the journal
            let issued =
                blocking(move || authz.issue(issue, &actor, &from).map_err(Refusal::from)).await?;
            // a grant for an organization with a gateway is also pushed there
            let id = issued.id.clone();
            let _ = blocking(move || {
                relay.push_for_grant(&id);
                Ok::<_, WebError>(())
            })
            .await;
            json(StatusCode::CREATED, &issued)
        }
        Admin::Revoke(id) => {
            let (parts, body) = request::body(request).await?;
            let revoke: RevokeRequest = request::parse(&parts, &body)?;
            let grant = GrantId(id);
            let g = grant.clone();
            let cascade = blocking(move || {
                authz
                    .revoke(&g, &actor, &revoke.reason, &from)
                    .map_err(Refusal::from)
            })
            .await?;
            json(
                StatusCode::OK,
                &serde_json::json!({ "revoked": grant, "cascade": cascade }),
            )
        }
        Admin::Outbox => {
            let items = blocking(move || {
                relay
                    .outbox
                    .list()
                    .map_err(|e| WebError::Internal(e.to_string()))
            })
            .await?;
            json(StatusCode::OK, &items)
        }
        Admin::Send => {
            let (parts, body) = request::body(request).await?;
            let send: SendRequest = request::parse(&parts, &body)?;
            let item =
                blocking(move || relay.enqueue(send, "admin-api").map_err(Refusal::from)).await?;
            json(StatusCode::ACCEPTED, &item)
        }
        Admin::Queue => super::admin_queue::list(app).await?,
        Admin::Forward => {
            let Some(forwarder) = relay.forwarder.clone() else {
                return Ok(json(StatusCode::OK, &serde_json::json!([])));
            };
            let items = blocking(move || {
                forwarder
                    .status()
                    .map_err(|e| WebError::Internal(e.to_string()))
            })
            .await?;
            json(StatusCode::OK, &items)
        }
    })
}
