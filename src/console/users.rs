//! Local accounts, for the application manager: the Users page and the
//! admin API's `/admin/v1/users` that `pushgate users` speaks. Adding or
//! resetting an account shows its enrolment link once; disabling or
//! resetting ends the person's sessions at once.

use hyper::{Method, Request, Response, StatusCode, header};
use maud::html;
use serde::{Deserialize, Serialize};

use super::pages::{Head, Section, csrf_field, role_name, when};
use super::{Console, ConsoleError, Ctx, form};
use crate::accounts::local::{AccountError, Enrolment};
use crate::authz::{Denied, Role, StaffAction};
use crate::journal::ActorRecord;
use crate::web::{Body, Form, Inbound, Refusal, WebError, blocking, json, request};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    List,
    Add,
    Disable(String),
    Reset(String),
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match rest {
        [] | [""] if get => Some(Route::List),
        [""] | [] if post => Some(Route::Add),
        [name, "disable"] if post => Some(Route::Disable((*name).to_string())),
        [name, "reset"] if post => Some(Route::Reset((*name).to_string())),
        _ => None,
    }
}

/// The enrolment link for a token: at `console.url`, or else on the host
/// the request came to (the console's own address failing that).
fn enrol_url<B>(console: &Console, request: &Request<B>, token: &str) -> String {
    let origin = console
        .origin(request)
        .unwrap_or_else(|| format!("https://{}", console.config.console.listen));
    format!("{origin}/console/enrol/{token}")
}

fn account_error(e: AccountError) -> Refusal {
    match e {
        AccountError::Store(s) => WebError::Unavailable(s).into(),
        AccountError::Unknown(_) => WebError::NotFound.into(),
        other => ConsoleError::BadForm(other.to_string()).into(),
    }
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let person = console.require(ctx, StaffAction::Users)?.clone();
    let by = person.actor();
    let from = ctx.from();
    match route {
        Route::List => Ok(list_page(console, ctx, None)),
        Route::Add => {
            let url_of = |token: &str| enrol_url(console, &request, token);
            let base = url_of("");
            let fields = form::posted(ctx, request).await?;
            let role = Role::parse(fields.get("role"))
                .ok_or_else(|| ConsoleError::BadForm("choose a role".into()))?;
            let (name, display) = (
                fields.get("name").to_string(),
                fields.get("display_name").to_string(),
            );
            let accounts = console.accounts.clone();
            let enrolment = blocking(move || {
                Ok::<_, WebError>(accounts.local.add(&name, &display, role, &by, &from))
            })
            .await?
            .map_err(account_error)?;
            Ok(list_page(console, ctx, Some((enrolment, base))))
        }
        Route::Disable(name) => {
            form::posted(ctx, request).await?;
            let accounts = console.accounts.clone();
            let n = name.clone();
            blocking(move || Ok::<_, WebError>(accounts.local.disable(&n, &by, &from)))
                .await?
                .map_err(account_error)?;
            console
                .sessions
                .end_all_of(&format!("local:{}", name.to_lowercase()));
            Ok(super::redirect("/console/users"))
        }
        Route::Reset(name) => {
            let base = enrol_url(console, &request, "");
            form::posted(ctx, request).await?;
            let accounts = console.accounts.clone();
            let n = name.clone();
            let enrolment =
                blocking(move || Ok::<_, WebError>(accounts.local.reset(&n, &by, &from)))
                    .await?
                    .map_err(account_error)?;
            console
                .sessions
                .end_all_of(&format!("local:{}", enrolment.name));
            Ok(list_page(console, ctx, Some((enrolment, base))))
        }
    }
}

fn state_name(ctx: &Ctx, state: &str) -> &'static str {
    let lang = ctx.lang;
    match state {
        "enrolling" => lang.pick("wacht op instellen", "waiting for enrolment"),
        "active" => lang.pick("actief", "active"),
        _ => lang.pick("uitgeschakeld", "disabled"),
    }
}

/// The accounts, the form to add one, and (after add or reset) the
/// enrolment link, shown this once.
fn list_page(console: &Console, ctx: &Ctx, made: Option<(Enrolment, String)>) -> Response<Body> {
    let lang = ctx.lang;
    let accounts = console.accounts.local.list();
    let body = html! {
        h1 { (lang.pick("Gebruikers", "Users")) }
        @if let Some((enrolment, base)) = &made {
            section.result aria-labelledby="made" {
                h2 #made { (lang.pick("Inloglink voor ", "Enrolment link for ")) (enrolment.name) }
                p { (lang.pick(
                    "Geef deze link persoonlijk of via een vertrouwd kanaal door. Hij werkt één keer, tot ",
                    "Pass this link on in person or through a trusted channel. It works once, until "
                )) (when(lang, enrolment.expires)) ". "
                (lang.pick("Hij wordt niet nog eens getoond.", "It is not shown again.")) }
                p { output #enrol-link { (base) (enrolment.token) } " "
                    button type="button" data-copy="enrol-link" data-copied=(lang.pick("Gekopieerd", "Copied")) hidden { (lang.pick("Kopiëren", "Copy")) }
                }
            }
        }
        @if accounts.is_empty() {
            p { (lang.pick("Er zijn nog geen lokale accounts.", "There are no local accounts yet.")) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { (lang.pick("Naam", "Name")) }
                    th scope="col" { (lang.pick("Weergavenaam", "Display name")) }
                    th scope="col" { (lang.pick("Rol", "Role")) }
                    th scope="col" { (lang.pick("Status", "State")) }
                    th scope="col" { (lang.pick("Laatst ingelogd", "Last login")) }
                    th scope="col" { span.visually-hidden { (lang.pick("Acties", "Actions")) } }
                } }
                tbody {
                    @for a in &accounts {
                        tr {
                            td { (a.name) }
                            td { (a.display_name) }
                            td { (role_name(lang, a.role)) }
                            td { (state_name(ctx, a.state))
                                @if let Some(until) = a.enrol_expires {
                                    br; small { (lang.pick("link tot ", "link until ")) (when(lang, until)) }
                                }
                            }
                            td { @if let Some(t) = a.last_login { (when(lang, t)) } @else { "—" } }
                            td.actions {
                                form method="post" action={ "/console/users/" (a.name) "/reset" } {
                                    (csrf_field(ctx))
                                    button type="submit" { (lang.pick("Nieuwe inloglink", "New enrolment link")) }
                                }
                                @if a.state != "disabled" {
                                    form method="post" action={ "/console/users/" (a.name) "/disable" } {
                                        (csrf_field(ctx))
                                        button.danger type="submit" { (lang.pick("Uitschakelen", "Disable")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.pick("Account toevoegen", "Add an account")) }
        form.stacked method="post" action="/console/users" {
            (csrf_field(ctx))
            label for="name" { (lang.pick("Inlognaam (kleine letters, cijfers, . - _)", "Login name (lower case, digits, . - _)")) }
            input #name type="text" name="name" pattern="[a-z0-9._\\-]{1,64}" required;
            label for="display_name" { (lang.pick("Naam zoals collega's die lezen", "Name as colleagues read it")) }
            input #display_name type="text" name="display_name" maxlength="100";
            fieldset {
                legend { (lang.pick("Rol", "Role")) }
                label { input type="radio" name="role" value="user" checked; " " (role_name(lang, Role::User)) }
                label { input type="radio" name="role" value="admin"; " " (role_name(lang, Role::Admin)) }
            }
            button type="submit" { (lang.pick("Toevoegen en inloglink maken", "Add and make an enrolment link")) }
        }
    };
    let mut response = console.page(
        ctx,
        lang.pick("Gebruikers", "Users"),
        Section::Users,
        Head::default(),
        body,
    );
    if made.is_some()
        && let Ok(v) = "no-store".parse()
    {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

/// `POST /admin/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    name: String,
    #[serde(default)]
    display_name: String,
    role: String,
}

#[derive(Debug, Serialize)]
struct EnrolmentView {
    name: String,
    /// On the host the request came to (a browser's own address).
    enrol_url: String,
    /// The same without scheme and host, for a client that knows better
    /// where people reach the console (`pushgate users`).
    enrol_path: String,
    expires: crate::store::Timestamp,
}

/// `/admin/v1/users…` with the admin token: what `pushgate users` does.
/// None: not a users path (the general admin API answers it).
pub async fn api(
    console: &Console,
    request: Request<Inbound>,
    peer: std::net::SocketAddr,
) -> Option<Response<Body>> {
    let path = request.uri().path().to_string();
    let rest = path.strip_prefix("/admin/v1/users")?;
    let segments: Vec<String> = rest
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let answer = users_api(console, request, peer, segments).await;
    Some(answer.unwrap_or_else(|refusal| refusal.respond(Form::Json)))
}

async fn users_api(
    console: &Console,
    request: Request<Inbound>,
    peer: std::net::SocketAddr,
    segments: Vec<String>,
) -> Result<Response<Body>, Refusal> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match console
        .app
        .authz
        .admit_admin(&console.app.admin, authorization, peer.ip())
    {
        Ok(()) => {}
        Err(Denied::RateLimited(wait)) => return Err(WebError::TooManyRequests(wait).into()),
        Err(_) => return Err(WebError::Unauthorized.into()),
    }
    let by = ActorRecord::admin_token();
    let from = format!("{} (admin token)", peer.ip());
    let accounts = console.accounts.clone();
    let method = request.method().clone();
    match (method, segments.as_slice()) {
        (Method::GET, []) => Ok(json(StatusCode::OK, &accounts.local.list())),
        (Method::POST, []) => {
            let base = enrol_url(console, &request, "");
            let (_, body) = request::body(request).await?;
            let ask: AddRequest = serde_json::from_slice(&body)
                .map_err(|e| WebError::BadRequest(format!("request body: {e}")))?;
            let role = Role::parse(&ask.role).ok_or_else(|| {
                WebError::BadRequest(format!("role must be user or admin, not {:?}", ask.role))
            })?;
            let made = blocking(move || {
                Ok::<_, WebError>(accounts.local.add(
                    &ask.name,
                    &ask.display_name,
                    role,
                    &by,
                    &from,
                ))
            })
            .await?
            .map_err(api_error)?;
            Ok(json(StatusCode::CREATED, &view(made, &base)))
        }
        (Method::POST, [name, action]) if action == "disable" || action == "reset" => {
            let base = enrol_url(console, &request, "");
            let (name, action) = (name.clone(), action.clone());
            let result = blocking(move || {
                Ok::<_, WebError>(if action == "disable" {
                    accounts.local.disable(&name, &by, &from).map(|()| None)
                } else {
                    accounts.local.reset(&name, &by, &from).map(Some)
                })
            })
            .await?
            .map_err(api_error)?;
            let name = segments[0].to_lowercase();
            console.sessions.end_all_of(&format!("local:{name}"));
            Ok(match result {
                Some(made) => json(StatusCode::OK, &view(made, &base)),
                None => json(
                    StatusCode::OK,
                    &serde_json::json!({ "name": name, "state": "disabled" }),
                ),
            })
        }
        _ => Err(WebError::NotFound.into()),
    }
}

fn view(made: Enrolment, base: &str) -> EnrolmentView {
    EnrolmentView {
        enrol_url: format!("{base}{}", made.token),
        enrol_path: format!("/console/enrol/{}", made.token),
        name: made.name,
        expires: made.expires,
    }
}

fn api_error(e: AccountError) -> Refusal {
    match e {
        AccountError::Store(s) => WebError::Unavailable(s).into(),
        AccountError::Unknown(_) => WebError::NotFound.into(),
        other => WebError::BadRequest(other.to_string()).into(),
    }
}
