//! A console form as a handler reads it: the body within bounds, refused
//! when it comes from another site or without the session's CSRF token.

use hyper::Request;

use super::{ConsoleError, Ctx};
use crate::web::request;
use crate::web::{Inbound, Refusal};

/// The fields of a posted form, in order (a field may repeat:
/// checkboxes).
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Every value of `name` (ticked checkboxes), trimmed, empty ones left out.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// Reads a form posted by a logged-in person: same site, and carrying the
/// session's CSRF token. Every POST of a logged-in page goes through here.
pub async fn posted(ctx: &Ctx, request: Request<Inbound>) -> Result<Fields, Refusal> {
    if request::cross_site(&request) {
        return Err(ConsoleError::CrossSite.into());
    }
    let (_, body) = request::body(request).await?;
    let fields = Fields(request::form_pairs(&body));
    let Some(session) = &ctx.session else {
        return Err(ConsoleError::NotLoggedIn.into());
    };
    if !super::session::csrf_matches(session, fields.get("csrf")) {
        return Err(ConsoleError::Csrf.into());
    }
    Ok(fields)
}

/// Reads a form posted before login (the login form itself): same site
/// only; the login handlers add their own checks.
#[allow(dead_code)] // the login form (accounts::local) uses it
pub async fn posted_anonymously(request: Request<Inbound>) -> Result<Fields, Refusal> {
    if request::cross_site(&request) {
        return Err(ConsoleError::CrossSite.into());
    }
    let (_, body) = request::body(request).await?;
    Ok(Fields(request::form_pairs(&body)))
}

/// The query string's fields.
pub fn query<B>(request: &Request<B>) -> Fields {
    Fields(request::query_pairs(request.uri().query()))
}
