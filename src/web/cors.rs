//! CORS for DICOMweb, so that a viewer served from another origin
//! (`http.cors_origins`) can call it with the holder token as a Bearer
//! header. No cookies cross origins: the holder cookie is SameSite=Strict
//! and credentials are never allowed.

use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::{App, Body, full};

/// The request's Origin, if the configuration lets it in.
pub fn allowed_origin<B>(app: &App, request: &Request<B>) -> Option<HeaderValue> {
    let origin = request.headers().get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    app.cors_origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// Adds the CORS answer for an allowed origin.
pub fn decorate(mut response: Response<Body>, origin: Option<HeaderValue>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Length, Content-Type, Warning"),
        );
    }
    response
}

/// The answer to a preflight: the same for every token, so it says
/// nothing about any.
pub fn preflight(origin: Option<HeaderValue>) -> Response<Body> {
    let mut response = full(StatusCode::NO_CONTENT, "text/plain", "");
    if origin.is_some() {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Accept"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    decorate(response, origin)
}
