//! HTTP errors: one enum, one mapping to a response. Messages are short and
//! neutral; they never say whether something exists to someone not allowed
//! to know.

use hyper::{Response, StatusCode, header};

use super::{Body, json};

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
    TooManyRequests(std::time::Duration),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal(String),
    /// Something the request needs is failing (the journal); nothing changed.
    #[error("temporarily unavailable; nothing was changed")]
    Unavailable(String),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        if let WebError::Internal(detail) | WebError::Unavailable(detail) = &self {
            tracing::error!("{self}: {detail}");
        }
        let mut response = json(
            self.status(),
            &serde_json::json!({ "error": self.to_string() }),
        );
        match &self {
            WebError::MethodNotAllowed { allow } => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            WebError::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            WebError::TooManyRequests(wait) => {
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
            }
            _ => {}
        }
        response
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}
