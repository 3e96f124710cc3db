//! Sharing a study from the console: the form (`GET /console/share/{study}`:
//! the series with thumbnails, presentation states and other modalities of
//! `console.exclude_by_default` unticked, a live summary of what leaves
//! the house, recipient, expiry, message, how often it may be passed on,
//! the legal basis), the grant issued through `authz::issue` exactly as the
//! admin API issues one, and the result (`/console/share/done/{grant}`: the
//! link, the code, where to enter it, a QR code, copy buttons, a printable
//! referral sheet).
//!
//! By accession number (`GET /console/share?accession=…`, spoed): one study
//! with that number here (complete or still arriving): its form; several:
//! the study list for that number, to choose; none yet: a grant by
//! accession number, for the first study with it to arrive (minus the
//! modalities left out), which the recipient can open from the moment it
//! is here.
//!
//! The link and the code exist in clear only in the answer to `issue`; the
//! grant keeps their hashes. The console keeps them with the session that
//! issued the grant (`session::IssuedSecret`, in memory, until the session
//! ends) so its result page and sheet can show them; anyone else — an
//! applicatiebeheerder looking later, the same person after a new login —
//! sees the share without them.

mod draft;
mod page;
mod result;
mod thumb;

use hyper::{Method, Request, Response, StatusCode};

use super::session::IssuedSecret;
use super::studies::{blocking, percent};
use super::{Console, ConsoleError, Ctx, form, redirect};
use crate::authz::{AuthzError, GrantId, StaffAction};
use crate::store::{StudyRecord, Uid};
use crate::web::{Body, Inbound, Refusal, WebError};
use draft::Draft;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /console/share[?accession=…]`
    ByAccession,
    /// `POST /console/share`: a grant by accession number.
    IssueByAccession,
    /// `GET /console/share/{study}`
    Form(String),
    /// `POST /console/share/{study}`
    Issue(String),
    /// `GET /console/share/{study}/thumb/{series}`
    Thumb(String, String),
    /// `GET /console/share/done/{grant}`
    Done(String),
    /// `GET /console/share/done/{grant}/sheet`
    Sheet(String),
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let named = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match rest {
        [] | [""] if get => Some(Route::ByAccession),
        [] | [""] if post => Some(Route::IssueByAccession),
        ["done", id] if get => named(id).map(Route::Done),
        ["done", id, "sheet"] if get => named(id).map(Route::Sheet),
        [study] if get => named(study).map(Route::Form),
        [study] if post => named(study).map(Route::Issue),
        [study, "thumb", series] if get => Some(Route::Thumb(named(study)?, named(series)?)),
        _ => None,
    }
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    console.require(ctx, StaffAction::Work)?;
    match route {
        Route::ByAccession => by_accession(console, ctx, &request).await,
        Route::IssueByAccession => {
            let fields = form::posted(ctx, request).await?;
            let accession = fields.get("accession").to_string();
            if accession.is_empty() || accession.chars().count() > 16 {
                return Err(ConsoleError::BadForm(
                    ctx.lang
                        .pick(
                            "Geef het accessienummer (ten hoogste 16 tekens).",
                            "Give the accession number (at most 16 characters).",
                        )
                        .into(),
                )
                .into());
            }
            issue(console, ctx, None, Some(accession), Draft::read(&fields)).await
        }
        Route::Form(uid) => {
            let study = study(console, &uid).await?;
            let draft = Draft::initial(Some(&study), &console.config.console.exclude_by_default);
            Ok(page::form(console, ctx, Some(&study), None, &draft, &[]))
        }
        Route::Issue(uid) => {
            let fields = form::posted(ctx, request).await?;
            let study = study(console, &uid).await?;
            issue(console, ctx, Some(study), None, Draft::read(&fields)).await
        }
        Route::Thumb(study, series) => thumb::thumbnail(console, &study, &series).await,
        Route::Done(id) => result::page(console, ctx, &GrantId(id), false).await,
        Route::Sheet(id) => result::page(console, ctx, &GrantId(id), true).await,
    }
}

/// The study a path names; 404 when it is not (or no longer) here.
async fn study(console: &Console, uid: &str) -> Result<StudyRecord, Refusal> {
    let uid = Uid::parse(uid).map_err(|_| WebError::NotFound)?;
    let index = console.app.index.clone();
    let study = blocking(move || Ok(index.study(&uid)?)).await?;
    Ok(study.ok_or(WebError::NotFound)?)
}

async fn by_accession(
    console: &Console,
    ctx: &Ctx,
    request: &Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let accession = form::query(request).get("accession").to_string();
    if accession.is_empty() {
        return Ok(page::ask_accession(console, ctx, "", None));
    }
    if accession.chars().count() > 16 {
        let problem = ctx.lang.pick(
            "Een accessienummer heeft ten hoogste 16 tekens.",
            "An accession number has at most 16 characters.",
        );
        let mut response = page::ask_accession(console, ctx, &accession, Some(problem));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(response);
    }
    let index = console.app.index.clone();
    let acc = accession.clone();
    let found = blocking(move || Ok(index.studies_by_accession(&acc)?)).await?;
    Ok(match found.as_slice() {
        [one] => redirect(&format!("/console/share/{one}")),
        [] => {
            let draft = Draft::initial(None, &console.config.console.exclude_by_default);
            page::form(console, ctx, None, Some(&accession), &draft, &[])
        }
        _ => redirect(&format!(
            "/console/studies?accession={}",
            percent(&accession)
        )),
    })
}

/// Issues the grant the form asks for, as its person, through the same
/// `authz::issue` as the admin API (and pushes it to the organisation's
/// gateway, as the admin API does); keeps its link and code with the
/// session; to the result. What is wrong: the form again, 400, with why.
async fn issue(
    console: &Console,
    ctx: &Ctx,
    study: Option<StudyRecord>,
    accession: Option<String>,
    draft: Draft,
) -> Result<Response<Body>, Refusal> {
    let person = console.require(ctx, StaffAction::Work)?;
    let refused = |problems: Vec<String>| {
        let mut response = page::form(
            console,
            ctx,
            study.as_ref(),
            accession.as_deref(),
            &draft,
            &problems,
        );
        *response.status_mut() = StatusCode::BAD_REQUEST;
        Ok(response)
    };
    let asked = match draft.request(
        ctx.lang,
        study.as_ref(),
        accession.as_deref(),
        console.config.grants.max_ttl,
        &console.config.console.exclude_by_default,
    ) {
        Ok(asked) => asked,
        Err(problems) => return refused(problems),
    };
    let authz = console.app.authz.clone();
    let actor = person.actor();
    let from = ctx.from();
    let outcome = tokio::task::spawn_blocking(move || authz.issue(asked, &actor, &from))
        .await
        .map_err(WebError::from)?;
    let issued = match outcome {
        Ok(issued) => issued,
        Err(AuthzError::Invalid(reason)) => return refused(vec![reason]),
        Err(e) => return Err(e.into()),
    };
    let relay = console.app.relay.clone();
    let id = issued.id.clone();
    let _ = blocking(move || {
        relay.push_for_grant(&id);
        Ok(())
    })
    .await;
    if let Some(session_id) = &ctx.session_id {
        console.sessions.remember_issued(
            session_id,
            IssuedSecret {
                grant: issued.id.clone(),
                url: issued.url.clone(),
                code: issued.code.clone(),
            },
        );
    }
    Ok(redirect(&format!("/console/share/done/{}", issued.id)))
}
