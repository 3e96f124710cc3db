//! The identity provider's endpoints as pushgate reaches them: HTTPS
//! through the one client (`http_client`, the system's CA bundle), or
//! plain HTTP to a loopback address only (a provider on the same host, a
//! test). Every fetch is bounded: [`TIMEOUT`] for the whole exchange,
//! [`MAX_ANSWER`] bytes of answer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use crate::http_client::{self, Limits, Target};

/// The whole exchange with the provider, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read (a discovery document, a JWKS, a token answer).
pub const MAX_ANSWER: usize = 512 << 10;

/// An endpoint URL, checked: `https://`, or `http://` to a loopback host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub uri: Uri,
    https: bool,
    host: String,
    port: u16,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url:?}: only https:// is used")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("{url:?}: user info in a URL is not used"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !https && !is_loopback(&host) {
            return Err(format!(
                "{url:?}: plain http:// only to a loopback address; use https://"
            ));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Endpoint {
            uri,
            https,
            host,
            port,
        })
    }

    fn path_and_query(&self) -> String {
        self.uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
    }

    fn host_header(&self) -> String {
        self.uri
            .authority()
            .map_or_else(String::new, |a| a.as_str().to_string())
    }
}

/// `localhost` or a loopback IP address (IPv4 or IPv6).
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// A request's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// GET `endpoint`, asking for JSON.
pub async fn get(endpoint: &Endpoint, tls: Option<&Arc<ClientConfig>>) -> Result<Answer, String> {
    let request = base(endpoint, hyper::Method::GET)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    send(endpoint, tls, request).await
}

/// POST a form to `endpoint`, with an `Authorization` header if given.
pub async fn post_form(
    endpoint: &Endpoint,
    tls: Option<&Arc<ClientConfig>>,
    form: String,
    authorization: Option<String>,
) -> Result<Answer, String> {
    let mut builder = base(endpoint, hyper::Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(authorization) = authorization {
        builder = builder.header(header::AUTHORIZATION, authorization);
    }
    let request = builder
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| e.to_string())?;
    send(endpoint, tls, request).await
}

fn base(endpoint: &Endpoint, method: hyper::Method) -> hyper::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(endpoint.path_and_query())
        .header(header::HOST, endpoint.host_header())
        .header(header::USER_AGENT, http_client::USER_AGENT)
        .header(header::ACCEPT, "application/json")
}

async fn send(
    endpoint: &Endpoint,
    tls: Option<&Arc<ClientConfig>>,
    request: Request<Full<Bytes>>,
) -> Result<Answer, String> {
    let exchange = async {
        if endpoint.https {
            let tls = tls.ok_or("no CA bundle to check the provider's certificate with")?;
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|e| format!("{}: {e}", endpoint.host))?;
            let target = Target {
                host: endpoint.host.clone(),
                port: endpoint.port,
                name,
            };
            let limits = Limits {
                exchange: TIMEOUT,
                max_body: MAX_ANSWER,
            };
            let answer = http_client::exchange(&target, tls.clone(), request, limits)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Answer {
                status: answer.status,
                body: answer.body,
            })
        } else {
            plain(endpoint, request).await
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{}: no answer within {TIMEOUT:?}", endpoint.uri))?
}

/// HTTP/1.1 without TLS, to a loopback address (checked by [`Endpoint::parse`]).
async fn plain(endpoint: &Endpoint, request: Request<Full<Bytes>>) -> Result<Answer, String> {
    let tcp = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", endpoint.uri))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP with {}: {e}", endpoint.uri))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = async {
        let response = sender.send_request(request).await.map_err(|e| {
            format!(
                "HTTP with {}: {}",
                endpoint.uri,
                crate::base::error_chain(&e)
            )
        })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                format!(
                    "the answer of {}: {e} (at most {MAX_ANSWER} bytes)",
                    endpoint.uri
                )
            })?
            .to_bytes();
        Ok(Answer { status, body })
    }
    .await;
    driver.abort();
    result
}

/// `application/x-www-form-urlencoded` of one value (RFC 6749 appendix B;
/// also what goes into a query string).
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `name=value&…`, each encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_to_loopback() {
        assert!(Endpoint::parse("https://login.example.org/t/v2.0").is_ok());
        assert!(Endpoint::parse("http://127.0.0.1:8080/x").is_ok());
        assert!(Endpoint::parse("http://[::1]:8080/x").is_ok());
        assert!(Endpoint::parse("http://localhost/x").is_ok());
        assert!(Endpoint::parse("http://login.example.org/x").is_err());
        assert!(Endpoint::parse("http://10.0.0.1/x").is_err());
        assert!(Endpoint::parse("ftp://127.0.0.1/x").is_err());
        assert!(Endpoint::parse("https://user@login.example.org/x").is_err());
        assert!(Endpoint::parse("/relative").is_err());
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form(&[("a b", "c&d=e/f"), ("x", "ü")]),
            "a%20b=c%26d%3De%2Ff&x=%C3%BC"
        );
    }
}
