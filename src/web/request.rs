//! What handlers need from a request: the caller's credentials, whether it
//! is a browser, and a small body.

use std::net::SocketAddr;

use super::inbound::Inbound;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Request, header};
use serde::de::DeserializeOwned;

use super::WebError;
use crate::authz::{CertIdentity, Credentials};

/// Largest request body accepted (forms and JSON).
const MAX_BODY: usize = 64 * 1024;
/// The holder-token cookie, scoped to its grant's path; the `__Secure-`
/// prefix makes browsers refuse it unless set over HTTPS with `Secure`.
pub const HOLDER_COOKIE: &str = "__Secure-pushgate_holder";
/// How long a request body may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the TLS layer learned about the connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    /// A client certificate that chained to `http.client_ca`.
    pub certificate: Option<CertIdentity>,
    /// The certificate chain the client presented, whoever issued it (a
    /// peer gateway's, checked against the address book).
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The TLS state (`TlsState::generation`) `certificate` was judged by.
    pub generation: u64,
}

/// A browser asks for HTML; programs get JSON.
pub fn wants_html<B>(request: &Request<B>) -> bool {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("text/html") && !accept.starts_with("application/json")
}

/// Credentials: the connection's certificate, and a holder token from
/// `Authorization: Bearer` or the holder cookie.
pub fn credentials<B>(request: &Request<B>, connection: &Connection) -> Credentials {
    let bearer = crate::authz::bearer(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    )
    .and_then(|t| std::str::from_utf8(t).ok())
    .map(str::to_string);
    let cookie = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == HOLDER_COOKIE)
        .map(|(_, value)| value.to_string());
    Credentials {
        certificate: connection.certificate.clone(),
        holder_token: bearer.or(cookie).filter(|t| !t.is_empty()),
    }
}

/// The Set-Cookie value for a holder token, limited to its grant's URLs.
pub fn holder_cookie(token: &str, url_token: &str, expires_at: crate::store::Timestamp) -> String {
    let max_age = expires_at
        .0
        .saturating_sub(crate::store::Timestamp::now().0)
        / 1000;
    format!(
        "{HOLDER_COOKIE}={token}; Path=/s/{url_token}; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.max(60)
    )
}

/// A browser's POST from another site (a form elsewhere aimed at us) is
/// refused. `Sec-Fetch-Site`, which every current browser sends and no page
/// can forge, decides when present: only `same-origin` (our own form) and
/// `none` (typed or bookmarked) pass. Without it, `Origin` must be ours.
/// Our pages set `Referrer-Policy: no-referrer`, under which a browser
/// sends `Origin: null` even for our own forms: that is why `Origin` alone
/// cannot decide, and why `null` without `Sec-Fetch-Site` is refused.
/// Programs send neither header and are not affected.
pub fn cross_site<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    host.is_none_or(|host| origin != format!("https://{host}"))
}

pub async fn body(
    request: Request<Inbound>,
) -> Result<(hyper::http::request::Parts, Bytes), WebError> {
    let (parts, body) = request.into_parts();
    let bytes = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect())
        .await
        .map_err(|_| WebError::BadRequest("request body too slow".into()))?
        .map_err(|e| WebError::BadRequest(format!("request body: {e}")))?
        .to_bytes();
    Ok((parts, bytes))
}

/// Reads a JSON body, or a form (`application/x-www-form-urlencoded`).
pub fn parse<T: DeserializeOwned>(
    parts: &hyper::http::request::Parts,
    bytes: &[u8],
) -> Result<T, WebError> {
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        // an empty form field is a field left out, not an empty value
        let pairs: serde_json::Map<String, serde_json::Value> = form_pairs(bytes)
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(pairs))
            .map_err(|e| WebError::BadRequest(e.to_string()))
    } else if bytes.is_empty() {
        serde_json::from_value(serde_json::json!({}))
            .map_err(|e| WebError::BadRequest(e.to_string()))
    } else {
        serde_json::from_slice(bytes).map_err(|e| WebError::BadRequest(format!("JSON: {e}")))
    }
}

/// The decoded name=value pairs of a query string, in order.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query.map_or_else(Vec::new, |q| form_pairs(q.as_bytes()))
}

pub fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(bytes)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request<()> {
        let mut request = Request::post("/redeem");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

    #[test]
    fn our_own_forms_pass_other_sites_do_not() {
        let host = ("host", "gw.example:8443");
        // what Chromium sends for our form under Referrer-Policy: no-referrer
        assert!(!cross_site(&post(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!cross_site(&post(&[host, ("sec-fetch-site", "none")])));
        assert!(!cross_site(&post(&[host])), "a program");
        assert!(!cross_site(&post(&[
            host,
            ("origin", "https://gw.example:8443")
        ])));
        for site in ["cross-site", "same-site", "bogus"] {
            assert!(
                cross_site(&post(&[host, ("sec-fetch-site", site)])),
                "{site}"
            );
        }
        // even with our Origin, Sec-Fetch-Site decides
        assert!(cross_site(&post(&[
            host,
            ("origin", "https://gw.example:8443"),
            ("sec-fetch-site", "cross-site")
        ])));
        // without Sec-Fetch-Site: Origin must be ours, and null is not
        assert!(cross_site(&post(&[host, ("origin", "null")])));
        assert!(cross_site(&post(&[
            host,
            ("origin", "https://evil.example")
        ])));
    }

    #[test]
    fn forms_decode() {
        assert_eq!(
            form_pairs(b"code=ABCD-EFGH-JKM&message=voor+dr.+de+Vries%2C+spoed&x"),
            vec![
                ("code".into(), "ABCD-EFGH-JKM".into()),
                ("message".into(), "voor dr. de Vries, spoed".into()),
                ("x".into(), "".into())
            ]
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%é1"), "%é1");
    }

    #[test]
    fn credentials_from_bearer_or_cookie() {
        let connection = Connection {
            peer: "127.0.0.1:1".parse().unwrap(),
            certificate: None,
            chain: Vec::new(),
            generation: 0,
        };
        let request = Request::builder()
            .header("Cookie", "a=b; __Secure-pushgate_holder=tok")
            .body(())
            .unwrap();
        assert_eq!(
            credentials(&request, &connection).holder_token.as_deref(),
            Some("tok")
        );
        let request = Request::builder()
            .header("Authorization", "Bearer xyz")
            .header("Cookie", "__Secure-pushgate_holder=tok")
            .body(())
            .unwrap();
        assert_eq!(
            credentials(&request, &connection).holder_token.as_deref(),
            Some("xyz")
        );
    }
}
