//! The HTTPS server (hyper 1 + tokio-rustls): HTTP/1.1 and HTTP/2. A
//! request is parsed into an [`Endpoint`] first (`router`), handled second
//! (`answer`, one exhaustive match); what the caller presented and what
//! authz decided travel in `access`; every error becomes a response in
//! `error::respond`.

mod access;
mod admin;
mod admin_queue;
mod conn;
mod cors;
pub mod dicomweb;
mod download;
mod error;
mod gates;
mod inbound;
mod ops;
pub mod pages;
mod relay;
pub mod request;
mod router;
mod share;
mod stream;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

pub use access::blocking;
pub use admin::{StudyView, handle as admin_api};
pub use conn::Limits;
pub use error::{Form, Refusal, Reply, WebError, respond};
pub use gates::Gates;
pub use router::Endpoint;
pub(crate) use stream::{Sink, produced_while};

use crate::authz::{AdminToken, Authz, CertIdentity};
use crate::store::Index;
use crate::tls;
use crate::worker::{Progress, Stop, Worker, WorkerError};
pub use inbound::Inbound;
pub use request::Connection;

pub type Body = BoxBody<Bytes, io::Error>;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
const H2_KEEPALIVE: Duration = Duration::from_secs(30);
/// How long a connection asked to close may take with nothing in flight.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Connection and request numbers for the log: every line written while
/// serving one carries them (`https{conn=..}:request{id=..}`). Paths are
/// not logged: they carry capability tokens.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// What request handlers share.
pub struct App {
    pub index: Arc<dyn Index>,
    pub admin: AdminToken,
    pub authz: Arc<Authz>,
    pub org_name: String,
    pub files: crate::store::FileStore,
    pub events: crate::ingest::Events,
    /// Origins whose pages may call DICOMweb (a viewer elsewhere); `*`: any.
    pub cors_origins: Vec<String>,
    /// The server certificate and which client certificates name a
    /// holder; SIGHUP replaces it, each new connection takes the current.
    pub tls: arc_swap::ArcSwap<tls::TlsState>,
    /// Gateway push: inbox, outbox, own key.
    pub relay: Arc<crate::relay::Relay>,
    /// The background workers' states, for `/readyz`.
    pub workers: Arc<crate::worker::Health>,
    /// How much response work may run at once (streams, renderings,
    /// download layouts).
    pub gates: Gates,
    /// `admin.on_public_listener`: the admin API answers here too, not
    /// only on the console's listener.
    pub admin_on_public: bool,
}

pub fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => full(status, "application/json", body),
        Err(e) => respond(&WebError::Internal(e.to_string()), Form::Json),
    }
}

/// What a listener serves: the public site ([`App`]: recipients,
/// DICOMweb, relay) or the department's console (`console::Console`). The
/// connection handling — TLS, HTTP/1.1 and /2, limits, idle and drain — is
/// the same for both; the answers are not.
pub trait Site: Send + Sync + 'static {
    /// The TLS a new connection is accepted with and client certificates
    /// are judged by (the current one: SIGHUP may replace it).
    fn tls(&self) -> Arc<tls::TlsState>;

    fn answer(
        self: Arc<Self>,
        connection: Arc<Connection>,
        request: Request<Inbound>,
    ) -> impl std::future::Future<Output = Response<Body>> + Send;
}

impl Site for App {
    fn tls(&self) -> Arc<tls::TlsState> {
        self.tls.load_full()
    }

    async fn answer(
        self: Arc<Self>,
        connection: Arc<Connection>,
        request: Request<Inbound>,
    ) -> Response<Body> {
        answer(&self, &connection, request).await
    }
}

async fn handle<S: Site>(
    site: Arc<S>,
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let connection = current(connection, &site.tls());
    let head = request.method() == hyper::Method::HEAD;
    let (parts, body) = request.into_parts();
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (body, leftover) = Inbound::new(body, expects_continue);
    let response = site
        .answer(connection, Request::from_parts(parts, body))
        .await;
    // a request body left unread makes HTTP/2 reset the stream, and the
    // answer with it: read the rest (bounded) first
    leftover.drain().await;
    let response = secured(response);
    Ok(if head { headless(response) } else { response })
}

async fn answer(
    app: &Arc<App>,
    connection: &Arc<Connection>,
    request: Request<Inbound>,
) -> Response<Body> {
    let endpoint = match router::route(request.method(), request.uri().path()) {
        Ok(endpoint) => endpoint,
        // under /s/ the same 404 as a link that is not the caller's
        Err(e) => return respond(&e, Form::of(&request)),
    };
    let form = if endpoint.for_people() {
        Form::of(&request)
    } else {
        Form::Json
    };
    dispatch(app, connection, endpoint, request)
        .await
        .unwrap_or_else(|refusal| refusal.respond(form))
}

/// Every endpoint, handled: no catch-all, so that a new one does not
/// compile until it is.
async fn dispatch(
    app: &Arc<App>,
    connection: &Arc<Connection>,
    endpoint: Endpoint,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    Ok(match endpoint {
        // For the local monitoring agent; not announced to the network.
        Endpoint::Healthz | Endpoint::Readyz | Endpoint::Metrics
            // An IPv4 client of a dual-stack listener comes as ::ffff:a.b.c.d.
            if !connection.peer.ip().to_canonical().is_loopback() =>
        {
            return Err(WebError::NotFound.into());
        }
        Endpoint::Healthz => full(StatusCode::OK, "text/plain", "ok\n"),
        Endpoint::Readyz => ops::readyz(app).await,
        Endpoint::Metrics => ops::metrics(app).await,
        Endpoint::Favicon => full(StatusCode::NO_CONTENT, "image/x-icon", ""),
        Endpoint::OpenPgpKey => full(
            StatusCode::OK,
            "application/pgp-keys",
            app.relay.key.public_armored(),
        ),
        Endpoint::RelayInbox => relay::inbox(app, connection, request).await?,
        Endpoint::DicomWebPreflight => cors::preflight(cors::allowed_origin(app, &request)),
        Endpoint::Download(token) => {
            let permit = app.gates.stream()?;
            let response = download::handle(app, &token, request, connection).await?;
            stream::holding(response, permit)
        }
        Endpoint::DicomWeb { token, path } => {
            let permit = app.gates.stream()?;
            let origin = cors::allowed_origin(app, &request);
            // a viewer elsewhere must be able to read the refusal too
            let response = dicomweb::handle(app, &token, &path, request, connection)
                .await
                .unwrap_or_else(|refusal| refusal.respond(Form::Json));
            stream::holding(cors::decorate(response, origin), permit)
        }
        // the admin API lives on the console's listener
        Endpoint::Admin(_) if !app.admin_on_public => return Err(WebError::NotFound.into()),
        Endpoint::Admin(endpoint) => admin::handle(app, endpoint, request, connection.peer).await?,
        Endpoint::Recipient(endpoint) => share::handle(app, endpoint, request, connection).await?,
    })
}

/// A HEAD answer: the headers of the GET, its length announced, no body
/// (hyper drops a body on HTTP/1.1 but sends it on HTTP/2, which clients
/// take as a protocol error).
fn headless(response: Response<Body>) -> Response<Body> {
    use hyper::body::Body as _;
    let (mut parts, body) = response.into_parts();
    if let Some(len) = body.size_hint().exact()
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
    {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    }
    Response::from_parts(
        parts,
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    )
}

/// Headers every answer carries: no framing, no sniffing, no referrer,
/// nothing loaded from elsewhere, HTTPS only.
fn secured(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("strict-transport-security", "max-age=31536000"),
        // links, codes and patient data: nothing here is for a cache
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        // a page may set its own policy (the study page allows its one script)
        headers
            .entry(name)
            .or_insert(header::HeaderValue::from_static(value));
    }
    response
}

/// The client's certificate chain, and the identity it names if it chains
/// to `http.client_ca`.
fn client_certificate(
    tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    trust: &tls::TlsState,
) -> (Option<CertIdentity>, Vec<CertificateDer<'static>>) {
    let Some(chain) = tls.get_ref().1.peer_certificates() else {
        return (None, Vec::new());
    };
    let chain: Vec<CertificateDer<'static>> =
        chain.iter().map(|c| c.clone().into_owned()).collect();
    (identity_of(&chain, trust), chain)
}

fn identity_of(chain: &[CertificateDer<'static>], trust: &tls::TlsState) -> Option<CertIdentity> {
    if !trust.clients.chains_to_client_ca(chain) {
        return None;
    }
    match CertIdentity::from_der_trusting(chain[0].as_ref(), trust.uzi_issuers.as_deref()) {
        Ok(identity) => Some(identity),
        Err(e) => {
            tracing::warn!("unreadable client certificate: {e}");
            None
        }
    }
}

/// The connection as this request sees it: if a reload replaced the client
/// CAs or CRLs since the handshake, the certificate is judged again, so a
/// revoked UZI pass on a long-lived HTTP/2 connection stops counting.
fn current(connection: Arc<Connection>, trust: &tls::TlsState) -> Arc<Connection> {
    if trust.generation == connection.generation || connection.chain.is_empty() {
        return connection;
    }
    Arc::new(Connection {
        peer: connection.peer,
        certificate: identity_of(&connection.chain, trust),
        chain: connection.chain.clone(),
        generation: trust.generation,
    })
}

/// An HTTPS listener as a worker (`https` for the public site, `console`
/// for the console): its one step serves until stop and drains. An accept
/// error is retried, never a failure.
pub struct HttpListener<S: Site = App> {
    name: &'static str,
    listener: Option<TcpListener>,
    site: Arc<S>,
    limits: conn::Limits,
    drain: Duration,
}

impl<S: Site> HttpListener<S> {
    pub fn new(
        name: &'static str,
        listener: TcpListener,
        site: Arc<S>,
        limits: conn::Limits,
        drain: Duration,
    ) -> HttpListener<S> {
        HttpListener {
            name,
            listener: Some(listener),
            site,
            limits,
            drain,
        }
    }
}

impl<S: Site> Worker for HttpListener<S> {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn work(&mut self, stop: &Stop) -> Result<Progress, WorkerError> {
        if let Some(listener) = self.listener.take() {
            serve(
                listener,
                self.site.clone(),
                self.limits,
                stop.clone(),
                self.drain,
            )
            .await;
        }
        Ok(Progress::Done)
    }

    async fn wait_for_work(&mut self) {}
}

/// Serves HTTPS on `listener` until `stop`, then lets open requests
/// finish within `drain`.
pub async fn serve<S: Site>(
    listener: TcpListener,
    site: Arc<S>,
    limits: conn::Limits,
    stop: Stop,
    drain: Duration,
) {
    let places = conn::Places::new(limits.max_per_address);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    // Pings find peers that went away; an idle connection is closed by
    // `limits.idle_timeout`, whatever it answers to pings.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEPALIVE))
        .keep_alive_timeout(H2_KEEPALIVE)
        .max_concurrent_streams(100);
    let builder = Arc::new(builder);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::error!("HTTPS accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop.wait() => break,
        };
        let Some(place) = places.admit(peer.ip()) else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        let trust = site.tls();
        let acceptor = TlsAcceptor::from(trust.server.clone());
        let (site, builder, stop) = (site.clone(), builder.clone(), stop.clone());
        let span = tracing::info_span!(
            "https",
            conn = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
            %peer
        );
        tokio::spawn(
            async move {
                let _place = place;
                let activity = conn::Activity::new();
                // the handshake, like the first request, within the idle time
                let handshake = TLS_HANDSHAKE_TIMEOUT.min(limits.idle_timeout);
                let tls = match tokio::time::timeout(handshake, acceptor.accept(socket)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let (certificate, chain) = client_certificate(&tls, &trust);
                let connection = Arc::new(Connection {
                    peer,
                    certificate,
                    chain,
                    generation: trust.generation,
                });
                let requests = activity.clone();
                let service = hyper::service::service_fn(move |request| {
                    let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
                    let busy = requests.begin();
                    let answer = handle(site.clone(), connection.clone(), request);
                    async move { Ok::<_, Infallible>(stream::holding(answer.await?, busy)) }
                        .instrument(tracing::info_span!("request", id))
                });
                let connection = builder.serve_connection(TokioIo::new(tls), service);
                serve_connection(
                    connection,
                    |c| c.graceful_shutdown(),
                    &activity,
                    limits.idle_timeout,
                    stop,
                )
                .await;
            }
            .instrument(span),
        );
    }
    drop(listener);
    if tokio::time::timeout(drain, places.all_closed())
        .await
        .is_err()
    {
        tracing::warn!("HTTPS connections still open after {drain:?}; closing them");
    }
}

/// Runs one connection until it ends, closing it once it has had no
/// request in flight for `idle_timeout`, or at shutdown once its requests
/// are done. Closing is graceful first (HTTP/2 GOAWAY, HTTP/1.1 ends after
/// the current answer); a peer that does not let go while nothing is in
/// flight is dropped after `CLOSE_GRACE`.
async fn serve_connection<C, E>(
    connection: C,
    close_gracefully: impl Fn(std::pin::Pin<&mut C>),
    activity: &conn::Activity,
    idle_timeout: Duration,
    stop: Stop,
) where
    C: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(connection);
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let check = match (closing, activity.quiet_since()) {
            (Some(at), _) => at + CLOSE_GRACE,
            (None, Some(quiet)) => tokio::time::Instant::from_std(quiet) + idle_timeout,
            (None, None) => tokio::time::Instant::now() + idle_timeout,
        };
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!("HTTP connection ended: {e}");
                }
                return;
            }
            () = stop.wait(), if closing.is_none() => {
                close_gracefully(connection.as_mut());
                closing = Some(tokio::time::Instant::now());
            }
            () = tokio::time::sleep_until(check) => {
                let Some(quiet) = activity.quiet_since() else {
                    // a request is in flight: it may finish, closing or not
                    closing = closing.map(|_| tokio::time::Instant::now());
                    continue;
                };
                match closing {
                    Some(_) => {
                        tracing::debug!("HTTP connection dropped: it did not close");
                        return;
                    }
                    None if quiet.elapsed() >= idle_timeout => {
                        tracing::debug!("HTTP connection idle for {idle_timeout:?}: closing");
                        close_gracefully(connection.as_mut());
                        closing = Some(tokio::time::Instant::now());
                    }
                    None => {}
                }
            }
        }
    }
}

/// The address a listener is bound to, for the banner and for tests.
pub fn bound(listener: &TcpListener) -> io::Result<SocketAddr> {
    listener.local_addr()
}
