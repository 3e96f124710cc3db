//! Logging in with the hospital account: `GET /console/oidc/start?next=…`
//! sends the browser to the identity provider; `GET /console/oidc/callback`
//! takes its answer, starts the session and journals the login (or the
//! failure, with a page saying what went wrong: never a token or a code).
//! The flow itself is `accounts::oidc`.
//!
//! The provider's redirect back is a top-level navigation from another
//! site, so the browser binding cookie (`__Host-pushgate_oidc`) is
//! `SameSite=Lax`, and the callback answers with a page that moves on to
//! `next` itself: a redirect there would still count as cross-site and the
//! browser would not send the new `SameSite=Strict` session cookie with it.
//!
//! The callback's URL (the `redirect_uri`, to be registered at the
//! provider) is `{origin}/console/oidc/callback`, where the origin is
//! `console.url` or else `https://` and the console's host as the browser
//! named it (`Console::origin`); after logout the provider is asked to send
//! the browser to `{origin}/console/login`. A forged Host only makes the
//! provider refuse the unregistered address.

use hyper::{Method, Request, Response, StatusCode, header};
use maud::{DOCTYPE, Markup, html};

use super::pages::{Head, Section, role_name};
use super::session::{IdTokenHint, Session};
use super::{Console, Ctx, cookie, form};
use crate::accounts::oidc::{Callback, OidcError};
use crate::journal::{ConsoleEvent, Event};
use crate::web::{Body, Inbound, Refusal, WebError, full};

/// Binds a login in progress to the browser that started it.
pub const BINDING_COOKIE: &str = "__Host-pushgate_oidc";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Start,
    Callback,
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    if method != Method::GET {
        return None;
    }
    match rest {
        ["start"] => Some(Route::Start),
        ["callback"] => Some(Route::Callback),
        _ => None,
    }
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let Some(oidc) = console.accounts.oidc.as_ref() else {
        return Err(WebError::NotFound.into());
    };
    let Some(origin) = console.origin(&request) else {
        return Err(WebError::BadRequest("no usable Host".into()).into());
    };
    let query = form::query(&request);
    let binding = cookie(&request, BINDING_COOKIE);
    match route {
        Route::Start => {
            let from = ctx.peer.ip().to_canonical();
            if let Err(wait) = console.app.authz.staff_login_may_start(from) {
                return Err(WebError::TooManyRequests(wait).into());
            }
            let next = local_next(query.get("next"));
            let callback = format!("{origin}/console/oidc/callback");
            match oidc.begin(&callback, &next, binding.as_deref()).await {
                Ok(started) => {
                    let mut response = super::redirect(&started.location);
                    set_cookie(
                        &mut response,
                        &format!(
                            "{BINDING_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
                            started.binding,
                            crate::accounts::oidc::PENDING_FOR.as_secs()
                        ),
                    );
                    Ok(response)
                }
                Err(e) => Ok(failed(console, ctx, &e)),
            }
        }
        Route::Callback => {
            let state = query.get("state");
            let answer = if query.has("error") {
                Callback::Error {
                    error: query.get("error"),
                    description: query.get("error_description"),
                }
            } else {
                Callback::Code {
                    code: query.get("code"),
                    iss: query.has("iss").then(|| query.get("iss")),
                }
            };
            match oidc.finish(state, binding.as_deref(), answer).await {
                Ok(done) => Ok(logged_in(console, ctx, done)),
                Err(e) => Ok(failed(console, ctx, &e)),
            }
        }
    }
}

/// The session started, journaled; a page that moves on to `next`.
fn logged_in(
    console: &Console,
    ctx: &Ctx,
    done: crate::accounts::oidc::LoggedIn,
) -> Response<Body> {
    let (cookie, session) = console.sessions.start_with_id_token(
        done.person,
        ctx.session_id.as_deref(),
        Some(IdTokenHint(done.id_token)),
    );
    console
        .app
        .authz
        .journal()
        .append(Event::Console(ConsoleEvent::LoggedIn {
            actor: session.person.actor(),
            via: "oidc".into(),
            from: ctx.from(),
        }));
    tracing::info!(person = %session.person.id, from = %ctx.from(), "console login (oidc)");
    let lang = ctx.lang;
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="referrer" content="no-referrer";
                meta http-equiv="refresh" content={ "0; url=" (done.next) };
                title { (lang.pick("Ingelogd", "Logged in")) " — pushgate" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                main #main {
                    h1 { (lang.pick("Ingelogd", "Logged in")) }
                    p.who {
                        (session.person.name) " · " (role_name(lang, session.person.role))
                    }
                    p { a href=(done.next) { (lang.pick("Verder", "Continue")) } }
                }
            }
        }
    };
    let mut response = full(
        StatusCode::OK,
        "text/html; charset=utf-8",
        page.into_string(),
    );
    set_cookie(&mut response, &cookie);
    set_cookie(&mut response, &cleared_binding());
    if let Ok(v) = "no-store".parse() {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

/// A login that did not succeed: journaled (bounded per address, like
/// every refusal) and explained.
fn failed(console: &Console, ctx: &Ctx, error: &OidcError) -> Response<Body> {
    let reason = error.to_string();
    console.app.authz.journal_refusal(
        ctx.peer.ip().to_canonical(),
        Event::Console(ConsoleEvent::LoginFailed {
            account: error.account().to_string(),
            via: "oidc".into(),
            reason: reason.clone(),
            from: ctx.from(),
        }),
    );
    tracing::info!(%reason, from = %ctx.from(), "console login (oidc) refused");
    let lang = ctx.lang;
    let explained = match lang {
        crate::web::pages::Lang::Nl => error.nl(),
        crate::web::pages::Lang::En => reason,
    };
    let status = match error {
        OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::FORBIDDEN,
    };
    let body = failure_body(ctx, &explained);
    let title = lang.pick("Inloggen mislukt", "Login failed");
    // the language switch goes to the login page: the callback's answer is used up
    let frame = Ctx {
        session: ctx.session.clone(),
        session_id: ctx.session_id.clone(),
        lang,
        peer: ctx.peer,
        path: "/console/login".into(),
        posted: ctx.posted,
    };
    let mut response = console.page(&frame, title, Section::None, Head::default(), body);
    *response.status_mut() = status;
    set_cookie(&mut response, &cleared_binding());
    response
}

fn failure_body(ctx: &Ctx, explained: &str) -> Markup {
    let lang = ctx.lang;
    html! {
        h1 { (lang.pick("Inloggen mislukt", "Login failed")) }
        p.error role="alert" { (explained) }
        p {
            a href="/console/login" {
                (lang.pick("Terug naar het inloggen", "Back to the login page"))
            }
        }
    }
}

/// Where logout sends the browser: the provider's `end_session_endpoint`
/// for a session that came from it (with `id_token_hint` and back to the
/// login page), else the login page.
pub async fn after_logout(
    console: &Console,
    origin: Option<&str>,
    ended: Option<&Session>,
) -> String {
    let local = "/console/login".to_string();
    let (Some(oidc), Some(origin), Some(hint)) = (
        console.accounts.oidc.as_ref(),
        origin,
        ended.and_then(|s| s.id_token.as_ref()),
    ) else {
        return local;
    };
    let back = format!("{origin}/console/login");
    oidc.end_session_url(&hint.0, &back).await.unwrap_or(local)
}

/// `next` when it is a page of the console (no other site, no way out of
/// `/console/`, nothing that needs escaping in a URL); else the console's
/// home.
pub fn local_next(next: &str) -> String {
    let plain = next
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.~?=&%+,:".contains(&b));
    let inside = (next == "/console" || next.starts_with("/console/"))
        && !next.contains("//")
        && !next.contains("/..")
        && !next.starts_with("/console/oidc/")
        && !next.starts_with("/console/logout");
    if plain && inside && next.len() <= 1000 {
        next.to_string()
    } else {
        "/console/".to_string()
    }
}

fn cleared_binding() -> String {
    format!("{BINDING_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

fn set_cookie(response: &mut Response<Body>, value: &str) {
    if let Ok(v) = value.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        for good in [
            "/console/",
            "/console/studies",
            "/console/shares?state=active&q=de%20Vries",
        ] {
            assert_eq!(local_next(good), good);
        }
        for bad in [
            "",
            "/",
            "https://evil.example/console/",
            "//evil.example/console/",
            "/console//evil.example",
            "/console/../admin/v1/grants",
            "/consolex",
            "/console/\\evil",
            "/console/\"><script>",
            "/console/ x",
            "/console/oidc/start",
            "/console/logout",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_next(bad), "/console/", "{bad}");
        }
    }

    #[test]
    fn the_routes() {
        assert_eq!(route(&Method::GET, &["start"]), Some(Route::Start));
        assert_eq!(route(&Method::GET, &["callback"]), Some(Route::Callback));
        assert_eq!(route(&Method::POST, &["callback"]), None);
        assert_eq!(route(&Method::GET, &["callback", "x"]), None);
    }
}
