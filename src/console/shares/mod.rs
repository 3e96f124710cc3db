//! Shares: every grant a member of staff may see (an applicatiebeheerder
//! all, a gebruiker the shares they issued — decided in authz), with its
//! state, recipient, holder, the grants passed on from it as a tree, how
//! much it was used, and revocation with a reason, the cascade shown on a
//! confirmation step before the final POST.

mod detail;
mod list;
pub mod usage;
pub mod view;

use std::collections::HashMap;
use std::sync::Arc;

use hyper::{Method, Request, Response};

pub use usage::UsageCache;

use super::{Console, ConsoleError, Ctx, form};
use crate::authz::{GrantId, GrantView, Person, StaffAction, StaffDenied, Target};
use crate::relay::book::AddressBook;
use crate::store::{StudyRecord, Uid};
use crate::web::{App, Body, Inbound, Refusal, WebError, blocking};
use usage::Usage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /console/shares`
    Index,
    /// `GET /console/shares/{id}`
    Detail(GrantId),
    /// `POST /console/shares/{id}/revoke`: without `confirm=yes` the
    /// confirmation step, with it the revocation.
    Revoke(GrantId),
}

/// A grant id as authz makes them (`g` and hex); anything else is no route.
fn grant_id(segment: &str) -> Option<GrantId> {
    (!segment.is_empty()
        && segment.len() <= 64
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| GrantId(segment.to_string()))
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match rest {
        [] | [""] if get => Some(Route::Index),
        [id] if get => grant_id(id).map(Route::Detail),
        [id, "revoke"] if post => grant_id(id).map(Route::Revoke),
        _ => None,
    }
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let person = console.require(ctx, StaffAction::Work)?.clone();
    match route {
        Route::Index => {
            let query = form::query(&request);
            let listing = gather(console, person, None).await?;
            Ok(list::page(console, ctx, &listing, &query))
        }
        Route::Detail(id) => {
            let query = form::query(&request);
            let detail = detail::gather(console, ctx, person, id).await?;
            Ok(detail::page(console, ctx, &detail, &query))
        }
        Route::Revoke(id) => {
            let fields = form::posted(ctx, request).await?;
            detail::revoke(console, ctx, person, id, &fields).await
        }
    }
}

/// The grants a person may see, with what the pages show of them.
pub struct Listing {
    /// Newest first.
    pub views: Vec<GrantView>,
    pub usage: HashMap<GrantId, Usage>,
    /// The study each grant is for, if it is (still) in the store.
    pub studies: HashMap<GrantId, StudyRecord>,
    pub book: Arc<AddressBook>,
}

impl Listing {
    pub fn by_id(&self, id: &GrantId) -> Option<&GrantView> {
        self.views.iter().find(|v| &v.id == id)
    }
}

/// The study a grant is for: named, or pinned by its accession number.
fn study_uid(app: &App, v: &GrantView) -> Option<Uid> {
    match &v.target {
        Target::Study(uid) => Some(uid.clone()),
        Target::Accession(_) => app
            .authz
            .grant_state(&v.id)
            .and_then(|s| s.study_uid().cloned()),
    }
}

/// Reads what the list (or, with `only`, one share's tree) needs, off the
/// async threads.
pub async fn gather(
    console: &Console,
    person: Person,
    only: Option<Vec<GrantView>>,
) -> Result<Listing, Refusal> {
    let app = console.app.clone();
    let usage_dir = app.authz.journal().dir().to_path_buf();
    let book = app.relay.book.current();
    let cache = console.usage.clone();
    blocking(move || {
        let views = only.unwrap_or_else(|| app.authz.staff_grants(&person));
        let ids: Vec<GrantId> = views.iter().map(|v| v.id.clone()).collect();
        let usage = cache.of(&usage_dir, &ids);
        let mut records: HashMap<Uid, Option<StudyRecord>> = HashMap::new();
        let mut studies = HashMap::new();
        for v in &views {
            let Some(uid) = study_uid(&app, v) else {
                continue;
            };
            let record = records
                .entry(uid.clone())
                .or_insert_with(|| app.index.study(&uid).ok().flatten());
            if let Some(record) = record {
                studies.insert(v.id.clone(), record.clone());
            }
        }
        Ok::<_, Refusal>(Listing {
            views,
            usage,
            studies,
            book,
        })
    })
    .await
}

/// authz's refusal as the console answers it.
fn refused(e: StaffDenied) -> Refusal {
    match e {
        StaffDenied::NotFound => WebError::NotFound.into(),
        StaffDenied::NotYours => ConsoleError::NotYours.into(),
        StaffDenied::Invalid(message) => ConsoleError::BadForm(message).into(),
        StaffDenied::Authz(e) => e.into(),
    }
}

/// `/console/shares/{id}`
pub fn href(id: &GrantId) -> String {
    format!("/console/shares/{}", id.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, &[]), Some(Route::Index));
        assert_eq!(
            route(&Method::GET, &["g0a1b"]),
            Some(Route::Detail(GrantId("g0a1b".into())))
        );
        assert_eq!(
            route(&Method::POST, &["g0a1b", "revoke"]),
            Some(Route::Revoke(GrantId("g0a1b".into())))
        );
        assert_eq!(route(&Method::GET, &["g0a1b", "revoke"]), None);
        assert_eq!(route(&Method::POST, &[]), None);
        assert_eq!(route(&Method::GET, &["a b"]), None);
        assert_eq!(route(&Method::GET, &["g", "x", "y"]), None);
    }
}
