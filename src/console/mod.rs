//! The department's console: pages for the staff who share studies
//! (gebruikers) and for the application manager (applicatiebeheerder), on
//! a listener of its own (`[console] listen`, loopback by default), with
//! the admin API beside it. Who someone is comes from `accounts` (the
//! hospital's identity provider or a local account with TOTP); what they
//! may do is decided in `authz::staff`; every action is journaled with
//! their name.
//!
//! Each section of the console is a module with its own `Route` (parsed
//! from the path, before anything is handled) and `handle`; `router`
//! matches them without a catch-all.

mod error;
mod form;
pub mod pages;
mod router;
pub mod session;

mod audit;
mod login;
mod oidc;
mod outbox;
mod received;
mod settings;
mod share;
mod shares;
mod studies;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::{Request, Response, StatusCode, header};

pub use error::ConsoleError;
pub use form::Fields;
use pages::{Head, Section};
pub use router::Route;
use session::{SESSION_COOKIE, Session, Sessions};
pub use settings::remember_effective;

use crate::accounts::Accounts;
use crate::authz::{Person, StaffAction};
use crate::config::Config;
use crate::tls::TlsState;
use crate::web::pages::Lang;
use crate::web::{App, Body, Connection, Form, Inbound, Refusal, Site, full};

/// The language cookie, set by the switch in the header.
const LANG_COOKIE: &str = "__Host-pushgate_lang";

/// What console handlers share.
pub struct Console {
    /// The public site's state: index, grants, relay, files, gates.
    pub app: Arc<App>,
    pub config: Arc<Config>,
    pub sessions: Sessions,
    pub accounts: Arc<Accounts>,
    /// `console.tls_cert`: its own certificate; None: the public one.
    tls: Option<Arc<TlsState>>,
    /// The study list's summaries, kept current from the index.
    catalogue: Arc<studies::Catalogue>,
    /// How much each grant was used, counted from the journal (shares).
    usage: Arc<shares::UsageCache>,
}

/// Who asks, in which language, from where: what every handler gets.
pub struct Ctx {
    pub session: Option<Session>,
    /// The session cookie's value as presented (for logout and renewal).
    pub session_id: Option<String>,
    pub lang: Lang,
    pub peer: SocketAddr,
    /// The request's path, for links back to it (the language switch).
    pub path: String,
    /// The page answers a form (POST): it must not reload itself, which
    /// would ask its address with GET and lose what it says.
    pub posted: bool,
}

impl Ctx {
    /// The logged-in person.
    pub fn person(&self) -> Result<&Person, Refusal> {
        self.session
            .as_ref()
            .map(|s| &s.person)
            .ok_or_else(|| ConsoleError::NotLoggedIn.into())
    }

    /// The client address, as the journal records it.
    pub fn from(&self) -> String {
        self.peer.ip().to_canonical().to_string()
    }
}

impl Console {
    pub fn new(
        app: Arc<App>,
        config: Arc<Config>,
        accounts: Arc<Accounts>,
        tls: Option<TlsState>,
    ) -> Console {
        Console {
            sessions: Sessions::new(
                config.console.idle_timeout,
                config.console.absolute_lifetime,
            ),
            app,
            config,
            accounts,
            tls: tls.map(Arc::new),
            catalogue: Arc::default(),
            usage: Arc::default(),
        }
    }

    /// Where staff reach the console, for the links it hands out and the
    /// OIDC redirect URI: `console.url`, or else `https://` and the host
    /// the request named (None: no usable one).
    pub fn origin<B>(&self, request: &Request<B>) -> Option<String> {
        match &self.config.console.url {
            Some(url) => Some(url.clone()),
            None => host(request).map(|h| format!("https://{h}")),
        }
    }

    /// The logged-in person, if their role allows `action`; a refusal is
    /// journaled and answered 403 with the reason.
    pub fn require<'c>(&self, ctx: &'c Ctx, action: StaffAction) -> Result<&'c Person, Refusal> {
        let person = ctx.person()?;
        self.app
            .authz
            .staff_may(person, action, ctx.peer.ip().to_canonical())
            .map_err(|_| ConsoleError::NotYourRole)?;
        Ok(person)
    }

    /// A whole page in the console's frame.
    pub fn page(
        &self,
        ctx: &Ctx,
        title: &str,
        section: Section,
        head: Head,
        body: maud::Markup,
    ) -> Response<Body> {
        html(pages::layout(
            ctx,
            &self.config.org_name,
            title,
            section,
            head,
            body,
        ))
    }

    async fn answer(&self, connection: &Connection, request: Request<Inbound>) -> Response<Body> {
        let path = request.uri().path().to_string();
        if path.starts_with("/admin/v1/users") {
            // local accounts live with the console
            if let Some(response) = users::api(self, request, connection.peer).await {
                return response;
            }
            return crate::web::respond(&crate::web::WebError::NotFound, Form::Json);
        }
        if path.starts_with("/admin/") {
            // the admin API: the same handler as on the public listener
            return match crate::web::Endpoint::parse(request.method(), &path) {
                Ok(crate::web::Endpoint::Admin(endpoint)) => {
                    crate::web::admin_api(&self.app, endpoint, request, connection.peer)
                        .await
                        .unwrap_or_else(|refusal| refusal.respond(Form::Json))
                }
                Ok(_) => crate::web::respond(&crate::web::WebError::NotFound, Form::Json),
                Err(e) => crate::web::respond(&e, Form::Json),
            };
        }
        let route = router::route(request.method(), &path);
        let activity = router::is_activity(&route, &request);
        let (ctx, lang_cookie) = self.context(connection, &request, activity);
        let mut response = match route {
            Ok(route) => router::dispatch(self, &ctx, route, request)
                .await
                .unwrap_or_else(|refusal| error::answer(self, &ctx, refusal)),
            Err(e) => error::answer(self, &ctx, e.into()),
        };
        let headers = response.headers_mut();
        if let Ok(csp) = pages::CONSOLE_CSP.parse() {
            headers.insert("content-security-policy", csp);
        }
        if let Some(lang) = lang_cookie
            && let Ok(cookie) = format!(
                "{LANG_COOKIE}={}; Path=/; Secure; SameSite=Strict; Max-Age=31536000",
                lang.code()
            )
            .parse()
        {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }

    /// The session, the language (the switch's `?lang=`, its cookie, or
    /// Accept-Language) and the caller. A session whose person may no
    /// longer log in (an account disabled) ends here; `activity`: the
    /// request is the person's (it defers the idle timeout, see
    /// [`router::is_activity`]). Also returns the language the switch just
    /// chose, for its cookie.
    fn context(
        &self,
        connection: &Connection,
        request: &Request<Inbound>,
        activity: bool,
    ) -> (Ctx, Option<Lang>) {
        let session_id = cookie(request, SESSION_COOKIE);
        let session = session_id.as_deref().and_then(|id| {
            let session = if activity {
                self.sessions.find(id)?
            } else {
                self.sessions.peek(id)?
            };
            if self.accounts.still_active(&session.person) {
                Some(session)
            } else {
                self.sessions.end_all_of(&session.person.id);
                None
            }
        });
        let switched = language(form::query(request).get("lang"));
        let chosen =
            switched.or_else(|| cookie(request, LANG_COOKIE).as_deref().and_then(language));
        let lang = chosen.unwrap_or_else(|| {
            Lang::from_accept_language(
                request
                    .headers()
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            )
        });
        let ctx = Ctx {
            session,
            session_id,
            lang,
            peer: connection.peer,
            path: request.uri().path().to_string(),
            posted: request.method() == hyper::Method::POST,
        };
        (ctx, switched)
    }
}

impl Site for Console {
    fn tls(&self) -> Arc<TlsState> {
        self.tls.clone().unwrap_or_else(|| self.app.tls.load_full())
    }

    async fn answer(
        self: Arc<Self>,
        connection: Arc<Connection>,
        request: Request<Inbound>,
    ) -> Response<Body> {
        Console::answer(&self, &connection, request).await
    }
}

fn language(v: &str) -> Option<Lang> {
    match v {
        "nl" => Some(Lang::Nl),
        "en" => Some(Lang::En),
        _ => None,
    }
}

/// A cookie's value from the request.
pub fn cookie<B>(request: &Request<B>, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

pub fn html(page: String) -> Response<Body> {
    full(StatusCode::OK, "text/html; charset=utf-8", page)
}

/// 303 See Other: after a form, to a page.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = full(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The console's TLS when it has a certificate of its own; None: it uses
/// the public listener's (and follows its reloads). Blocking.
pub fn own_tls(config: &Config) -> Result<Option<TlsState>, crate::tls::TlsError> {
    let Some(files) = config.console.tls.clone() else {
        return Ok(None);
    };
    let mut own = config.clone();
    own.http.tls = Some(files);
    TlsState::load(&own).map(Some)
}

/// The console's host as the browser named it (`Host`, or the HTTP/2
/// authority), when it is a plain host and port.
fn host<B>(request: &Request<B>) -> Option<String> {
    let named = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_string()))?;
    let authority: hyper::http::uri::Authority = named.parse().ok()?;
    (!authority.as_str().contains('@')).then(|| authority.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_as_named() {
        let request = |host: &str| {
            Request::get("/console/oidc/start")
                .header("host", host)
                .body(())
                .unwrap()
        };
        assert_eq!(
            host(&request("127.0.0.1:8444")),
            Some("127.0.0.1:8444".into())
        );
        assert_eq!(
            host(&request("console.zh.local")),
            Some("console.zh.local".into())
        );
        assert_eq!(host(&request("a@b")), None);
        assert_eq!(host(&request("a b")), None);
        assert_eq!(host(&request("a/b")), None);
    }
}
