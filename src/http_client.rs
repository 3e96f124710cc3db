//! The one HTTPS client: the outbox's deliveries, the address book's sync
//! and the CLI's admin calls go through [`exchange`]. One request per
//! connection over HTTP/1.1 (nothing to multiplex), one timeout policy:
//!
//! - [`CONNECT_TIMEOUT`] for the TCP connection,
//! - [`HANDSHAKE_TIMEOUT`] for the TLS handshake,
//! - [`Limits::exchange`] for the whole exchange after it (request sent,
//!   answer and its body read; [`EXCHANGE_TIMEOUT`] unless the caller
//!   uploads: [`Limits::upload`]),
//! - [`Limits::max_body`] on the answer's body ([`MAX_BODY`] by default).
//!
//! An error says which stage failed and with whom.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// The whole exchange after the handshake, for a request without a large
/// upload.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time for a peer to answer an upload after its last byte (it checks the
/// whole package first).
pub const UPLOAD_ANSWER_TIMEOUT: Duration = Duration::from_secs(600);
/// Slowest upload rate allowed for (bytes per second) before the exchange
/// times out.
pub const UPLOAD_MIN_RATE: u64 = 1 << 20;
/// The answer's body, by default.
pub const MAX_BODY: usize = 4 << 20;

/// Where to connect and whom to expect there.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or IP address as connected to (no brackets).
    pub host: String,
    pub port: u16,
    /// The name the server's certificate is checked against.
    pub name: ServerName<'static>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Bounds of one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub exchange: Duration,
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            exchange: EXCHANGE_TIMEOUT,
            max_body: MAX_BODY,
        }
    }
}

impl Limits {
    /// An upload of `bytes`: the default exchange, plus its time at
    /// [`UPLOAD_MIN_RATE`], plus [`UPLOAD_ANSWER_TIMEOUT`].
    pub fn upload(bytes: u64) -> Limits {
        Limits {
            exchange: EXCHANGE_TIMEOUT
                + Duration::from_secs(bytes / UPLOAD_MIN_RATE)
                + UPLOAD_ANSWER_TIMEOUT,
            ..Limits::default()
        }
    }

    pub fn with_max_body(self, max_body: usize) -> Limits {
        Limits { max_body, ..self }
    }
}

/// Which stage of an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Handshake,
    Exchange,
    Body,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error("cannot connect to {target}: {cause}")]
    Connect {
        target: String,
        cause: std::io::Error,
    },
    #[error("cannot connect to {target}: no connection within {}", humantime::format_duration(*.after))]
    ConnectTimeout { target: String, after: Duration },
    #[error("TLS with {target}: {cause}")]
    Handshake {
        target: String,
        cause: std::io::Error,
    },
    #[error("TLS with {target}: no handshake within {}", humantime::format_duration(*.after))]
    HandshakeTimeout { target: String, after: Duration },
    #[error("HTTP with {target}: {cause}")]
    Exchange { target: String, cause: String },
    #[error("HTTP with {target}: no complete answer within {}", humantime::format_duration(*.after))]
    ExchangeTimeout { target: String, after: Duration },
    #[error("the answer of {target}: {cause} (at most {max} bytes are read)")]
    Body {
        target: String,
        cause: String,
        max: usize,
    },
}

impl HttpError {
    pub fn stage(&self) -> Stage {
        match self {
            HttpError::Connect { .. } | HttpError::ConnectTimeout { .. } => Stage::Connect,
            HttpError::Handshake { .. } | HttpError::HandshakeTimeout { .. } => Stage::Handshake,
            HttpError::Exchange { .. } | HttpError::ExchangeTimeout { .. } => Stage::Exchange,
            HttpError::Body { .. } => Stage::Body,
        }
    }
}

/// An answer: its status and its whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Sends `request` to `target` over TLS as `tls` says (ALPN set to
/// http/1.1 here) and reads the answer, within [`CONNECT_TIMEOUT`],
/// [`HANDSHAKE_TIMEOUT`] and `limits`.
pub async fn exchange<B>(
    target: &Target,
    tls: Arc<ClientConfig>,
    request: Request<B>,
    limits: Limits,
) -> Result<Answer, HttpError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let name = target.to_string();
    let connect = tokio::net::TcpStream::connect((target.host.as_str(), target.port));
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(cause)) => {
            return Err(HttpError::Connect {
                target: name,
                cause,
            });
        }
        Err(_) => {
            return Err(HttpError::ConnectTimeout {
                target: name,
                after: CONNECT_TIMEOUT,
            });
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut tls = (*tls).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let handshake = connector.connect(target.name.clone(), tcp);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(cause)) => {
            return Err(HttpError::Handshake {
                target: name,
                cause,
            });
        }
        Err(_) => {
            return Err(HttpError::HandshakeTimeout {
                target: name,
                after: HANDSHAKE_TIMEOUT,
            });
        }
    };
    let answer = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| HttpError::Exchange {
                target: name.clone(),
                cause: crate::base::error_chain(&e),
            })?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| HttpError::Exchange {
                    target: name.clone(),
                    cause: crate::base::error_chain(&e),
                })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), limits.max_body)
                .collect()
                .await
                .map_err(|e| HttpError::Body {
                    target: name.clone(),
                    cause: e.to_string(),
                    max: limits.max_body,
                })?
                .to_bytes();
            Ok(Answer { status, body })
        }
        .await;
        driver.abort();
        result
    };
    tokio::time::timeout(limits.exchange, answer)
        .await
        .map_err(|_| HttpError::ExchangeTimeout {
            target: name.clone(),
            after: limits.exchange,
        })?
}

/// The User-Agent pushgate sends.
pub const USER_AGENT: &str = concat!("pushgate/", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests;
