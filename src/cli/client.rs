//! A client for the daemon's own admin API: HTTPS to the local listener,
//! trusting exactly the daemon's certificate (read from its file, so a
//! self-signed certificate needs no CA), with the admin token from the same
//! configuration.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode, header};
use rustls::pki_types::ServerName;

use crate::authz::{AdminTokenError, read_token};
use crate::config::Config;
use crate::http_client::{self, HttpError, Limits, Target};
use crate::tls;
use crate::tls::pinned::PinnedServer;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error(transparent)]
    Token(#[from] AdminTokenError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(
        "cannot reach pushgate at {addr} ({cause}); is `pushgate serve` running with this configuration?"
    )]
    Connect { addr: String, cause: std::io::Error },
    #[error("HTTPS to pushgate: {0}")]
    Http(String),
    #[error("pushgate answered {status}: {body}")]
    Status { status: StatusCode, body: String },
}

pub struct AdminClient {
    addr: std::net::SocketAddr,
    token: String,
    tls: Arc<rustls::ClientConfig>,
}

/// Largest answer read: listings of a busy gateway.
const MAX_ANSWER: usize = 64 << 20;

impl AdminClient {
    pub fn new(config: &Config) -> Result<AdminClient, ClientError> {
        let token = read_token(&config.admin.token_file)?;
        // the console's own certificate, or the public listener's
        let cert_path = match &config.console.tls {
            Some(files) => files.cert.clone(),
            None => tls::cert_paths(config).0,
        };
        let cert = tls::load_certs(&cert_path)?.remove(0);
        let provider = tls::crypto_provider();
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Http(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer::exactly(cert, provider)))
            .with_no_client_auth();
        Ok(AdminClient {
            addr: config.local_console_addr(),
            token,
            tls: Arc::new(client),
        })
    }

    /// GETs `path` and returns the JSON body.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.call(Method::GET, path, None).await
    }

    /// POSTs a JSON body to `path` and returns the JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// One exchange through the one HTTPS client, within its timeouts.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let target = Target {
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            name: ServerName::try_from("localhost")
                .map_err(|e| ClientError::Http(e.to_string()))?,
        };
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, http_client::USER_AGENT)
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let limits = Limits::default().with_max_body(MAX_ANSWER);
        let answer = http_client::exchange(&target, self.tls.clone(), request, limits)
            .await
            .map_err(|e| match e {
                HttpError::Connect { target, cause } => ClientError::Connect {
                    addr: target,
                    cause,
                },
                other => ClientError::Http(other.to_string()),
            })?;
        let (status, body) = (answer.status, answer.body);
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Status {
                status,
                body: message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Http(format!("bad JSON: {e}")))
    }
}
