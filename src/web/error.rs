//! Every error that reaches the HTTP edge says what it is through one trait,
//! [`Reply`], and one function, [`respond`], turns it into the response: an
//! HTML page for a person, `{"error": reason}` for a program (the admin
//! API, DICOMweb and the relay inbox always answer that way). Reasons are
//! short and neutral; they never say whether something exists to someone
//! not allowed to know.
//!
//! The `Reply` impls for the errors of other modules (authz, relay, store)
//! live here too, so that one file shows every status the edge can answer.

use std::time::Duration;

use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::dicomweb::DicomWebError;
use super::pages::{self, Lang};
use super::relay::NotReceiving;
use super::{Body, full, json, request};
use crate::authz::{AuthzError, Denied};
use crate::relay::RelayError;
use crate::relay::inbox::InboxError;

/// What an error tells the client: status, a reason a person can read, and
/// the headers that go with the status.
pub trait Reply: std::fmt::Debug {
    fn status(&self) -> StatusCode;
    /// What the client is told; never internal detail.
    fn reason(&self) -> String;
    /// The same for a person reading `lang` (an error page); the fixed
    /// texts are translated, details (a parser's message) stay as they are.
    fn reason_in(&self, _lang: Lang) -> String {
        self.reason()
    }
    /// `Allow`, `WWW-Authenticate`, `Retry-After` …
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        Vec::new()
    }
    /// Fields a program gets besides `error` (a replay's receipt).
    fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
    /// What the operator should see in the log, if anything (called once,
    /// when the answer is made).
    fn log(&self) {}
}

/// How the client wants its refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Json,
    Html(Lang),
}

impl Form {
    /// A browser (Accept: text/html) gets a page, a program JSON.
    pub fn of<B>(request: &Request<B>) -> Form {
        if request::wants_html(request) {
            Form::Html(Lang::from_accept_language(
                request
                    .headers()
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            ))
        } else {
            Form::Json
        }
    }
}

/// Any error of the edge, boxed: what handlers return, so that `?` works on
/// each module's own error.
#[derive(Debug)]
pub struct Refusal(Box<dyn Reply + Send + Sync>);

impl<E: Reply + Send + Sync + 'static> From<E> for Refusal {
    fn from(e: E) -> Self {
        Refusal(Box::new(e))
    }
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }

    pub fn respond(&self, form: Form) -> Response<Body> {
        respond(self.0.as_ref(), form)
    }

    /// What the answer says, for a page that shows it in its own frame.
    pub fn reason(&self) -> String {
        self.0.reason()
    }

    /// The same in `lang`.
    pub fn reason_in(&self, lang: Lang) -> String {
        self.0.reason_in(lang)
    }
}

/// The one place an error becomes a response.
pub fn respond(error: &dyn Reply, form: Form) -> Response<Body> {
    error.log();
    let status = error.status();
    let mut response = match form {
        Form::Html(lang) => full(
            status,
            "text/html; charset=utf-8",
            error_page(lang, status, &error.reason_in(lang)),
        ),
        Form::Json => {
            let mut body = error.details();
            body.insert("error".into(), error.reason().into());
            json(status, &serde_json::Value::Object(body))
        }
    };
    for (name, value) in error.headers() {
        response.headers_mut().insert(name, value);
    }
    response
}

/// A 404 is the neutral page, whatever the reason: nothing under /s/ may
/// tell a valid link from an invalid one.
fn error_page(lang: Lang, status: StatusCode, reason: &str) -> String {
    if status == StatusCode::NOT_FOUND {
        return pages::not_found();
    }
    pages::error_page(lang, status, reason)
}

fn retry_after(seconds: u64) -> (HeaderName, HeaderValue) {
    (header::RETRY_AFTER, HeaderValue::from(seconds))
}

/// The edge's own refusals.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("authorization required")]
    Unauthorized,
    /// Too many failed attempts from this address; try again after this.
    #[error("too many failed attempts; try again later")]
    TooManyRequests(Duration),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("a request from another site is refused")]
    CrossSite,
    #[error("internal error")]
    Internal(String),
    /// Something the request needs is failing (the journal); nothing changed.
    #[error("temporarily unavailable; nothing was changed")]
    Unavailable(String),
    /// Every place for a streamed response is taken: try again shortly.
    #[error("too many downloads at once; try again in a few seconds")]
    Busy,
}

impl Reply for WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::CrossSite => StatusCode::FORBIDDEN,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Unavailable(_) | WebError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn reason(&self) -> String {
        self.to_string()
    }

    fn reason_in(&self, lang: Lang) -> String {
        let nl = match self {
            WebError::NotFound => "niet gevonden".to_string(),
            WebError::MethodNotAllowed { .. } => "dit kan op dit adres niet".into(),
            WebError::Unauthorized => "eerst aanmelden".into(),
            WebError::TooManyRequests(_) => {
                "te veel mislukte pogingen; probeer het later opnieuw".into()
            }
            WebError::BadRequest(detail) => format!("dit verzoek is niet bruikbaar: {detail}"),
            WebError::CrossSite => "een verzoek van een andere website wordt geweigerd".into(),
            WebError::Internal(_) => "interne fout".into(),
            WebError::Unavailable(_) => "tijdelijk niet beschikbaar; er is niets veranderd".into(),
            WebError::Busy => {
                "te veel downloads tegelijk; probeer het over een paar seconden opnieuw".into()
            }
        };
        match lang {
            Lang::Nl => nl,
            Lang::En => self.reason(),
        }
    }

    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            WebError::MethodNotAllowed { allow } => {
                vec![(header::ALLOW, HeaderValue::from_static(allow))]
            }
            WebError::Unauthorized => {
                vec![(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))]
            }
            WebError::TooManyRequests(wait) => {
                vec![retry_after(wait.as_secs_f64().ceil().max(1.0) as u64)]
            }
            WebError::Busy => vec![retry_after(5)],
            _ => Vec::new(),
        }
    }

    fn log(&self) {
        if let WebError::Internal(detail) | WebError::Unavailable(detail) = self {
            tracing::error!("{self}: {detail}");
        }
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<tokio::task::JoinError> for WebError {
    fn from(e: tokio::task::JoinError) -> Self {
        WebError::Internal(e.to_string())
    }
}

/// An authz decision on a holder's request.
impl Reply for Denied {
    fn status(&self) -> StatusCode {
        match self {
            Denied::Neutral(_) => StatusCode::NOT_FOUND,
            Denied::BadCode(_) => StatusCode::BAD_REQUEST,
            Denied::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Denied::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Denied::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn reason(&self) -> String {
        match self {
            // the same words as any other 404: nothing about the token
            Denied::Neutral(_) => WebError::NotFound.to_string(),
            Denied::BadCode(e) => e.to_string(),
            Denied::RateLimited(_) => "too many attempts; try again later".into(),
            Denied::Invalid(message) => message.clone(),
            Denied::Unavailable(_) => "cannot record this now; nothing was changed".into(),
        }
    }

    fn reason_in(&self, lang: Lang) -> String {
        match (lang, self) {
            (Lang::Nl, Denied::RateLimited(_)) => {
                "te veel pogingen; probeer het later opnieuw".into()
            }
            (Lang::Nl, Denied::Unavailable(_)) => {
                "dit kan nu niet worden vastgelegd; er is niets veranderd".into()
            }
            _ => self.reason(),
        }
    }

    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            Denied::RateLimited(wait) => {
                vec![retry_after(wait.max(&Duration::from_secs(1)).as_secs())]
            }
            _ => Vec::new(),
        }
    }

    fn log(&self) {
        if let Denied::Unavailable(detail) = self {
            tracing::error!("a grant change could not be journaled: {detail}");
        }
    }
}

/// The edge's words for an admin's grant change that failed (issue,
/// revoke) and for an admin's push that failed.
macro_rules! reply_as_web {
    ($error:ty, $map:expr) => {
        impl Reply for $error {
            fn status(&self) -> StatusCode {
                $map(self).status()
            }
            fn reason(&self) -> String {
                $map(self).reason()
            }
            fn log(&self) {
                $map(self).log()
            }
        }
    };
}

reply_as_web!(AuthzError, |e: &AuthzError| match e {
    AuthzError::Invalid(message) => WebError::BadRequest(message.clone()),
    AuthzError::NotFound => WebError::NotFound,
    other => WebError::Unavailable(other.to_string()),
});

reply_as_web!(RelayError, |e: &RelayError| match e {
    RelayError::UnknownStudy(_) | RelayError::NoGateway(_) | RelayError::Grant(_) => {
        WebError::BadRequest(e.to_string())
    }
    RelayError::Journal(_) => WebError::Unavailable(e.to_string()),
    e => WebError::Internal(e.to_string()),
});

/// A package a peer gateway delivered, refused by the inbox (the relay
/// module knows nothing of HTTP: its refusals get their status here).
impl Reply for InboxError {
    fn status(&self) -> StatusCode {
        match self {
            InboxError::Refused(_) | InboxError::NotForUs(_) => StatusCode::BAD_REQUEST,
            InboxError::WrongSigner(_) => StatusCode::FORBIDDEN,
            InboxError::Replay { .. } => StatusCode::CONFLICT,
            InboxError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn reason(&self) -> String {
        self.to_string()
    }

    fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut details = serde_json::Map::new();
        // the sender's outbox takes the receipt of the first delivery
        if let InboxError::Replay { receipt, .. } = self {
            details.insert("receipt".into(), receipt.receipt.clone().into());
            details.insert("signature".into(), receipt.signature.clone().into());
        }
        details
    }
}

/// A delivery the inbox was not asked to take.
impl Reply for NotReceiving {
    fn status(&self) -> StatusCode {
        match self {
            NotReceiving::NoCertificate | NotReceiving::UnknownSender => StatusCode::FORBIDDEN,
            NotReceiving::DiskFull | NotReceiving::Receiving => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn reason(&self) -> String {
        self.to_string()
    }

    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            NotReceiving::DiskFull => vec![retry_after(300)],
            NotReceiving::Receiving => vec![retry_after(30)],
            NotReceiving::NoCertificate | NotReceiving::UnknownSender => Vec::new(),
        }
    }
}

/// DICOMweb's refusals carry the reason for the holder (within what the
/// grant covers, so nothing is revealed by it).
impl Reply for DicomWebError {
    fn status(&self) -> StatusCode {
        match self {
            DicomWebError::NotFound(_) => StatusCode::NOT_FOUND,
            DicomWebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            // the decoded form asked for cannot be made; the stored one
            // can always be had: not acceptable, with the reason
            DicomWebError::NotAcceptable(_) | DicomWebError::Undecodable(_) => {
                StatusCode::NOT_ACCEPTABLE
            }
            DicomWebError::Web(e) => e.status(),
        }
    }

    fn reason(&self) -> String {
        match self {
            DicomWebError::Web(e) => e.reason(),
            other => other.to_string(),
        }
    }

    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            DicomWebError::Web(e) => e.headers(),
            _ => Vec::new(),
        }
    }

    fn log(&self) {
        match self {
            DicomWebError::Undecodable(reason) => {
                tracing::warn!(%reason, "stored pixel data could not be decoded");
            }
            DicomWebError::Web(e) => e.log(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: Response<Body>) -> (StatusCode, String, String) {
        use http_body_util::BodyExt;
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[test]
    fn json_carries_the_reason_and_the_headers() {
        let response = respond(&WebError::MethodNotAllowed { allow: "POST" }, Form::Json);
        assert_eq!(response.headers()[header::ALLOW], "POST");
        let (status, content_type, text) = body(response);
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(content_type, "application/json");
        assert_eq!(text, r#"{"error":"method not allowed"}"#);
    }

    #[test]
    fn html_is_a_page_with_the_reason_escaped() {
        let error = Denied::Invalid("<script>x</script>".into());
        let (status, content_type, text) = body(respond(&error, Form::Html(Lang::En)));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(content_type.starts_with("text/html"));
        assert!(text.contains("&lt;script&gt;"), "{text}");
        assert!(!text.contains("<script>"), "{text}");
    }

    #[test]
    fn a_neutral_denial_is_any_404() {
        let denied = Denied::Neutral(crate::journal::DenyReason::UnknownToken);
        for form in [Form::Json, Form::Html(Lang::Nl), Form::Html(Lang::En)] {
            assert_eq!(
                body(respond(&denied, form)),
                body(respond(&WebError::NotFound, form))
            );
        }
    }

    #[test]
    fn rate_limits_say_when_to_come_back() {
        let at_least_a_second =
            respond(&Denied::RateLimited(Duration::from_millis(10)), Form::Json);
        assert_eq!(at_least_a_second.headers()[header::RETRY_AFTER], "1");
        let rounded_up = respond(
            &WebError::TooManyRequests(Duration::from_millis(2500)),
            Form::Json,
        );
        assert_eq!(rounded_up.headers()[header::RETRY_AFTER], "3");
        assert_eq!(
            respond(&WebError::Busy, Form::Json).headers()[header::RETRY_AFTER],
            "5"
        );
    }
}
