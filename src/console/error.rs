//! What the console refuses, each with its status and reason in one place.

use hyper::{Response, StatusCode};

use super::Ctx;
use crate::web::{Body, Form, Refusal, Reply};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// Not logged in: pages redirect to the login page instead.
    #[error("log in first")]
    NotLoggedIn,
    /// The person's role does not allow it (the reason says which).
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "this form has expired or did not come from the console; reload the page and try again"
    )]
    Csrf,
    #[error("a form from another site is refused")]
    CrossSite,
    /// A form field that cannot be used, with what is wrong.
    #[error("{0}")]
    BadForm(String),
}

impl Reply for ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::NotLoggedIn => StatusCode::UNAUTHORIZED,
            ConsoleError::Forbidden(_) | ConsoleError::Csrf | ConsoleError::CrossSite => {
                StatusCode::FORBIDDEN
            }
            ConsoleError::BadForm(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn reason(&self) -> String {
        self.to_string()
    }
}

/// A refusal as a console page; not logged in: to the login page, and
/// back here afterwards.
pub fn answer(ctx: &Ctx, refusal: Refusal) -> Response<Body> {
    if refusal.status() == StatusCode::UNAUTHORIZED && ctx.session.is_none() {
        let next = percent(&ctx.path);
        return super::redirect(&format!("/console/login?next={next}"));
    }
    refusal.respond(Form::Html(ctx.lang))
}

/// A path as a query value.
fn percent(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
