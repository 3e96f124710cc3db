//! What the console refuses, each with its status and reason in one place.

use hyper::{Response, StatusCode};

use super::Ctx;
use crate::web::pages::Lang;
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
    /// A gebruiker on an applicatiebeheerder's page.
    #[error("this is for an applicatiebeheerder; you are logged in as gebruiker")]
    NotYourRole,
    /// A gebruiker at a share someone else issued.
    #[error("this share was issued by someone else; a gebruiker may revoke only their own shares")]
    NotYours,
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
            ConsoleError::Forbidden(_)
            | ConsoleError::NotYourRole
            | ConsoleError::NotYours
            | ConsoleError::Csrf
            | ConsoleError::CrossSite => StatusCode::FORBIDDEN,
            ConsoleError::BadForm(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn reason(&self) -> String {
        self.to_string()
    }

    fn reason_in(&self, lang: Lang) -> String {
        let nl = match self {
            ConsoleError::NotLoggedIn => "meld u eerst aan",
            ConsoleError::NotYourRole => {
                "dit is voor een applicatiebeheerder; u bent aangemeld als gebruiker"
            }
            ConsoleError::NotYours => {
                "deze deling is door iemand anders gemaakt; een gebruiker kan alleen de eigen delingen intrekken"
            }
            ConsoleError::Csrf => {
                "dit formulier is verlopen of kwam niet van de console; laad de pagina opnieuw en probeer het nog eens"
            }
            ConsoleError::CrossSite => "een formulier van een andere website wordt geweigerd",
            ConsoleError::Forbidden(_) | ConsoleError::BadForm(_) => return self.to_string(),
        };
        match lang {
            Lang::Nl => nl.to_string(),
            Lang::En => self.to_string(),
        }
    }
}

/// A refusal as a console page, in the console's frame (navigation,
/// logout) so that the person can go on from it; not logged in: to the
/// login page, and back here afterwards.
pub fn answer(console: &super::Console, ctx: &Ctx, refusal: Refusal) -> Response<Body> {
    let status = refusal.status();
    if status == StatusCode::UNAUTHORIZED && ctx.session.is_none() {
        let next = percent(&ctx.path);
        return super::redirect(&format!("/console/login?next={next}"));
    }
    let plain = refusal.respond(Form::Html(ctx.lang));
    let lang = ctx.lang;
    let title = match status {
        StatusCode::FORBIDDEN => lang.pick("Niet toegestaan", "Not allowed"),
        StatusCode::NOT_FOUND => lang.pick("Niet gevonden", "Not found"),
        StatusCode::BAD_REQUEST => lang.pick("Dit kan zo niet", "This cannot be done like this"),
        StatusCode::TOO_MANY_REQUESTS => lang.pick("Even wachten", "Please wait"),
        _ => lang.pick("Er ging iets mis", "Something went wrong"),
    };
    let reason = match status {
        StatusCode::NOT_FOUND => lang
            .pick(
                "Deze pagina bestaat niet (meer).",
                "This page does not exist (any more).",
            )
            .to_string(),
        _ => refusal.reason_in(lang),
    };
    let body = maud::html! {
        h1 { (title) }
        p.error role="alert" { (reason) }
        p { a href="/console/" { (lang.pick("Naar het begin", "To the start")) } }
    };
    let mut response = console.page(
        ctx,
        title,
        super::pages::Section::None,
        super::pages::Head::default(),
        body,
    );
    *response.status_mut() = status;
    // what the plain answer says in its headers (Retry-After, Allow)
    for (name, value) in plain.headers() {
        if name != hyper::header::CONTENT_TYPE && name != hyper::header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// A path as a query value (`/` kept, as `?next=` reads well).
pub fn percent(path: &str) -> String {
    crate::base::percent_encode(path, b"/")
}
