//! `/console/…` parsed into a [`Route`] first, handled second: one
//! exhaustive match, each section's own `Route` inside it.

use hyper::{Method, Request, Response, StatusCode, header};

use super::{
    Console, Ctx, audit, form, login, oidc, outbox, pages, received, redirect, session, settings,
    share, shares, studies, users,
};
use crate::journal::{ConsoleEvent, Event};
use crate::web::{Body, Inbound, Refusal, WebError, full};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/console/`: to the studies, or to the login page.
    Home,
    /// `/console/static/{name}`: an entry of `pages::ASSETS`.
    Asset(usize),
    Logout,
    Login(login::Route),
    Oidc(oidc::Route),
    Studies(studies::Route),
    Share(share::Route),
    Shares(shares::Route),
    Outbox(outbox::Route),
    Received(received::Route),
    Audit(audit::Route),
    Users(users::Route),
    Settings(settings::Route),
}

pub fn route(method: &Method, path: &str) -> Result<Route, WebError> {
    if path == "/" {
        return Ok(Route::Home);
    }
    let Some(rest) = path.strip_prefix("/console") else {
        return Err(WebError::NotFound);
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let found = match segments.as_slice() {
        [""] if get => Some(Route::Home),
        ["static", name] if get => pages::ASSETS
            .iter()
            .position(|(n, _, _)| n == name)
            .map(Route::Asset),
        ["logout"] if post => Some(Route::Logout),
        [section, rest @ ..] => match *section {
            "login" | "enrol" => login::route(method, &segments).map(Route::Login),
            "oidc" => oidc::route(method, rest).map(Route::Oidc),
            "studies" => studies::route(method, rest).map(Route::Studies),
            "share" => share::route(method, rest).map(Route::Share),
            "shares" => shares::route(method, rest).map(Route::Shares),
            "outbox" => outbox::route(method, rest).map(Route::Outbox),
            "received" => received::route(method, rest).map(Route::Received),
            "audit" => audit::route(method, rest).map(Route::Audit),
            "users" => users::route(method, rest).map(Route::Users),
            "settings" => settings::route(method, rest).map(Route::Settings),
            _ => None,
        },
        [] => None,
    };
    found.ok_or(WebError::NotFound)
}

/// Whether a request is the person's activity, which defers the idle
/// timeout: a console page or form, not a page reloading itself
/// (console.js asks with `?auto=1`), nor what a page loads along (its
/// stylesheet, script, thumbnails), nor a path that is no page (a
/// browser's own `/favicon.ico`), so that a page left open with live
/// counts does not keep the session open.
pub fn is_activity<B>(route: &Result<Route, WebError>, request: &Request<B>) -> bool {
    let page = match route {
        Ok(Route::Asset(_) | Route::Share(share::Route::Thumb(..))) | Err(_) => false,
        Ok(_) => true,
    };
    let reload = request.method() == Method::GET && form::query(request).get("auto") == "1";
    page && !reload
}

pub async fn dispatch(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    Ok(match route {
        Route::Home if ctx.session.is_some() => redirect("/console/studies"),
        Route::Home => redirect("/console/login"),
        Route::Asset(i) => {
            let (_, content_type, text) = pages::ASSETS[i];
            let mut response = full(StatusCode::OK, content_type, text);
            if let Ok(v) = "private, max-age=300".parse() {
                response.headers_mut().insert(header::CACHE_CONTROL, v);
            }
            response
        }
        Route::Logout => logout(console, ctx, request).await?,
        Route::Login(r) => login::handle(console, ctx, r, request).await?,
        Route::Oidc(r) => oidc::handle(console, ctx, r, request).await?,
        Route::Studies(r) => studies::handle(console, ctx, r, request).await?,
        Route::Share(r) => share::handle(console, ctx, r, request).await?,
        Route::Shares(r) => shares::handle(console, ctx, r, request).await?,
        Route::Outbox(r) => outbox::handle(console, ctx, r, request).await?,
        Route::Received(r) => received::handle(console, ctx, r, request).await?,
        Route::Audit(r) => audit::handle(console, ctx, r, request).await?,
        Route::Users(r) => users::handle(console, ctx, r, request).await?,
        Route::Settings(r) => settings::handle(console, ctx, r, request).await?,
    })
}

/// Ends the session (a form with its CSRF token), journaled; then to the
/// login page, or to the identity provider's logout (`oidc::after_logout`).
async fn logout(
    console: &Console,
    ctx: &Ctx,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let origin = console.origin(&request);
    form::posted(ctx, request).await?;
    let mut ended = None;
    if let Some(id) = &ctx.session_id
        && let Some(session) = console.sessions.end(id)
    {
        console
            .app
            .authz
            .journal()
            .append(Event::Console(ConsoleEvent::LoggedOut {
                actor: session.person.actor(),
                from: ctx.from(),
            }));
        ended = Some(session);
    }
    // a login through the provider logs out there too, when it offers that
    let mut response =
        redirect(&oidc::after_logout(console, origin.as_deref(), ended.as_ref()).await);
    if let Ok(v) = session::cleared_cookie().parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}
