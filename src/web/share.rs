//! The recipient's side: the code page, redeeming, binding, the shared
//! study's page, passing a grant on. Every decision is the authz module's;
//! this only turns its answers into HTTP.

use std::sync::Arc;

use super::inbound::Inbound;
use hyper::{Request, Response, StatusCode, header};
use serde::Deserialize;

use super::access::{Presented, decide};
use super::pages::Lang;
use super::request::{self, Connection};
use super::router::Recipient;
use super::{App, Body, Refusal, WebError, full, json, pages};
use crate::authz::{Bound, Denied, Link, Shape};

#[derive(Deserialize)]
struct RedeemForm {
    code: String,
}

/// A refusal by authz. A browser that typed a code that cannot be one gets
/// the code page again, with what is wrong; anything else is answered by
/// `error::respond` (the neutral 404 for a link that is not the caller's).
fn denied(denial: Denied, html: bool, lang: Lang, org: &str) -> Result<Response<Body>, Refusal> {
    match denial {
        Denied::BadCode(e) if html => Ok(full(
            StatusCode::BAD_REQUEST,
            "text/html; charset=utf-8",
            pages::code_entry(lang, org, Some(&e.to_string())),
        )),
        other => Err(other.into()),
    }
}

fn see_other(location: &str, cookie: Option<String>) -> Response<Body> {
    let mut response = full(StatusCode::SEE_OTHER, "text/plain", "");
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(value) = cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// After binding: a browser is sent to the study page with its cookie, a
/// program gets the URL and its holder token.
fn bound(app: &App, bound: Bound, token: &str, html: bool) -> Response<Body> {
    let token = bound.url_token.as_deref().unwrap_or(token);
    let url = app.authz.url_for(token);
    if html {
        let cookie = bound
            .holder_token
            .as_deref()
            .map(|t| request::holder_cookie(t, token, bound.expires_at));
        return see_other(&format!("/s/{token}"), cookie);
    }
    json(
        StatusCode::OK,
        &serde_json::json!({ "url": url, "holder_token": bound.holder_token, "grant": bound.grant }),
    )
}

pub(super) async fn handle(
    app: &Arc<App>,
    endpoint: Recipient,
    request: Request<Inbound>,
    connection: &Connection,
) -> Result<Response<Body>, Refusal> {
    let html = request::wants_html(&request);
    let lang = Lang::from_accept_language(
        request
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let presented = Presented::of(&request, connection);
    let org = app.org_name.clone();
    if request.method() == hyper::Method::POST && request::cross_site(&request) {
        return Err(WebError::CrossSite.into());
    }
    Ok(match endpoint {
        Recipient::Home => full(
            StatusCode::OK,
            "text/html; charset=utf-8",
            pages::code_entry(lang, &org, None),
        ),
        Recipient::Redeem => {
            let (parts, body) = request::body(request).await?;
            let form: RedeemForm = request::parse(&parts, &body)?;
            let result = decide(app, &presented, move |authz, caller| {
                authz.redeem(&form.code, caller)
            })
            .await?;
            match result {
                Ok(b) => bound(app, b, "", html),
                Err(denial) => return denied(denial, html, lang, &org),
            }
        }
        Recipient::Share(token) => {
            let t = token.clone();
            let result = decide(app, &presented, move |authz, caller| {
                authz.open_link(&t, caller).map(|link| match link {
                    Link::Held(allowed) => {
                        let covers = authz.holder_coverage(&allowed.grant);
                        (Link::Held(allowed), Some(covers))
                    }
                    unbound => (unbound, None),
                })
            })
            .await?;
            match result {
                Ok((Link::Unbound(_), _)) if html => full(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    pages::offer_binding(lang, &org, &token),
                ),
                Ok((Link::Unbound(_), _)) => json(
                    StatusCode::OK,
                    &serde_json::json!({ "status": "unbound", "bind": format!("POST /s/{token}") }),
                ),
                Ok((Link::Held(allowed), Some(covers))) => {
                    let dicomweb = format!("{}/dicomweb", app.authz.url_for(&token));
                    if html {
                        let page = pages::StudyPage {
                            org: &org,
                            grant: &allowed.grant,
                            covers: &covers,
                            dicomweb: &dicomweb,
                            token: &token,
                        };
                        let mut response = full(
                            StatusCode::OK,
                            "text/html; charset=utf-8",
                            pages::study_page(lang, &page),
                        );
                        if let Ok(value) = pages::STUDY_PAGE_CSP.parse() {
                            response
                                .headers_mut()
                                .insert(header::CONTENT_SECURITY_POLICY, value);
                        }
                        response
                    } else {
                        let g = &allowed.grant.grant;
                        json(
                            StatusCode::OK,
                            &serde_json::json!({
                                "status": "bound",
                                "from": org,
                                "issuer": g.issuer,
                                "message": g.message,
                                "expires_at": g.expires_at,
                                "may_delegate": g.delegation_depth > 0,
                                "dicomweb": dicomweb,
                                "covers": covers,
                            }),
                        )
                    }
                }
                Ok((Link::Held(_), None)) => return Err(WebError::NotFound.into()),
                Err(denial) => return denied(denial, html, lang, &org),
            }
        }
        Recipient::Bind(token) => {
            let t = token.clone();
            let result = decide(app, &presented, move |authz, caller| {
                authz.bind_link(&t, caller)
            })
            .await?;
            match result {
                Ok(b) => bound(app, b, &token, html),
                Err(denial) => return denied(denial, html, lang, &org),
            }
        }
        Recipient::Delegate(token) => {
            let (parts, body) = request::body(request).await?;
            let shape: Shape = request::parse(&parts, &body)?;
            let result = decide(app, &presented, move |authz, caller| {
                authz.delegate(&token, caller, shape)
            })
            .await?;
            match result {
                Ok(issued) if html => full(
                    StatusCode::CREATED,
                    "text/html; charset=utf-8",
                    pages::delegated(lang, &issued),
                ),
                Ok(issued) => json(StatusCode::CREATED, &issued),
                Err(denial) => return denied(denial, html, lang, &org),
            }
        }
    })
}
