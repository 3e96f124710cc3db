//! Logging in: the hospital account (OpenID Connect, when configured) or
//! a local account's name, password and TOTP code; and the enrolment page
//! a new local account's link opens (set a password, scan the QR code,
//! prove the first code). Both end in a new session (a new id, whatever
//! cookie the browser came with).

use hyper::{Method, Request, Response, StatusCode, header};
use maud::{Markup, html};

use super::error::percent;
use super::pages::{Head, Section, role_name};
use super::{Console, Ctx, form, redirect};
use crate::accounts::local::{EnrolError, LoginError, MIN_PASSWORD};
use crate::authz::Person;
use crate::web::{Body, Inbound, Refusal, WebError, blocking};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Form,
    Submit,
    Enrol(String),
    EnrolSubmit(String),
}

/// `segments` start with "login" or "enrol".
pub fn route(method: &Method, segments: &[&str]) -> Option<Route> {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match segments {
        ["login"] if get => Some(Route::Form),
        ["login"] if post => Some(Route::Submit),
        ["enrol", token] if get => Some(Route::Enrol((*token).to_string())),
        ["enrol", token] if post => Some(Route::EnrolSubmit((*token).to_string())),
        _ => None,
    }
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    match route {
        Route::Form => {
            let next = safe_next(form::query(&request).get("next"));
            if ctx.session.is_some() {
                return Ok(redirect(&next));
            }
            Ok(login_page(console, ctx, &next, "", None, StatusCode::OK))
        }
        Route::Submit => {
            let fields = form::posted_anonymously(request).await?;
            let next = safe_next(fields.get("next"));
            let (name, password, code) = (
                fields.get("name").to_string(),
                fields
                    .0
                    .iter()
                    .find(|(k, _)| k == "password")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
                fields.get("code").to_string(),
            );
            let accounts = console.accounts.clone();
            let from = ctx.peer.ip().to_canonical();
            let tried = name.clone();
            let result = blocking(move || {
                Ok::<_, WebError>(accounts.local.login(&tried, &password, &code, from))
            })
            .await?;
            match result {
                Ok(person) => Ok(logged_in(console, ctx, person, &next)),
                Err(e) => {
                    let status = match e {
                        LoginError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
                        LoginError::Wrong => StatusCode::UNAUTHORIZED,
                        LoginError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                    };
                    let message = login_message(ctx, &e);
                    Ok(login_page(
                        console,
                        ctx,
                        &next,
                        &name,
                        Some(message),
                        status,
                    ))
                }
            }
        }
        Route::Enrol(token) => match console.accounts.local.pending(&token) {
            Some(_) => Ok(enrol_page(console, ctx, &token, None, StatusCode::OK)),
            None => Ok(no_such_link(console, ctx)),
        },
        Route::EnrolSubmit(token) => {
            let fields = form::posted_anonymously(request).await?;
            let value = |name: &str| {
                fields
                    .0
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let (password, repeat, code) = (value("password"), value("repeat"), value("code"));
            let accounts = console.accounts.clone();
            let from = ctx.peer.ip().to_canonical();
            let t = token.clone();
            let result = blocking(move || {
                Ok::<_, WebError>(accounts.local.enrol(&t, &password, &repeat, &code, from))
            })
            .await?;
            match result {
                Ok(person) => Ok(logged_in(console, ctx, person, "/console/studies")),
                Err(EnrolError::NoSuchLink) => Ok(no_such_link(console, ctx)),
                Err(e) => {
                    let message = enrol_message(ctx, &e);
                    Ok(enrol_page(
                        console,
                        ctx,
                        &token,
                        Some(message),
                        StatusCode::BAD_REQUEST,
                    ))
                }
            }
        }
    }
}

/// A new session (the old cookie's, if any, ends) and on to `next`.
pub fn logged_in(console: &Console, ctx: &Ctx, person: Person, next: &str) -> Response<Body> {
    let (cookie, _) = console.sessions.start(person, ctx.session_id.as_deref());
    let mut response = redirect(next);
    if let Ok(v) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Where to go after login: a console page, never another site.
pub fn safe_next(next: &str) -> String {
    let local = next.starts_with("/console/")
        && !next.contains("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    if local && !next.starts_with("/console/login") {
        next.to_string()
    } else {
        "/console/studies".to_string()
    }
}

fn login_message(ctx: &Ctx, e: &LoginError) -> String {
    let lang = ctx.lang;
    match e {
        LoginError::Wrong => lang
            .pick(
                "De naam, het wachtwoord of de code klopt niet.",
                "The name, password or code is not right.",
            )
            .to_string(),
        LoginError::Limited(wait) => {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            match lang {
                crate::web::pages::Lang::Nl => format!(
                    "Te veel mislukte pogingen. Probeer het over {minutes} minuut/minuten opnieuw."
                ),
                crate::web::pages::Lang::En => {
                    format!("Too many failed attempts. Try again in {minutes} minute(s).")
                }
            }
        }
        LoginError::Store(_) => lang
            .pick(
                "Inloggen lukt nu niet door een storing; meld het bij de applicatiebeheerder.",
                "Logging in is not possible now because of a fault; tell the application manager.",
            )
            .to_string(),
    }
}

fn enrol_message(ctx: &Ctx, e: &EnrolError) -> String {
    let lang = ctx.lang;
    match e {
        EnrolError::TooShort => match lang {
            crate::web::pages::Lang::Nl => {
                format!("Het wachtwoord moet minstens {MIN_PASSWORD} tekens lang zijn.")
            }
            crate::web::pages::Lang::En => {
                format!("The password must be at least {MIN_PASSWORD} characters long.")
            }
        },
        EnrolError::TooLong => lang
            .pick("Het wachtwoord is te lang.", "The password is too long.")
            .into(),
        EnrolError::Mismatch => lang
            .pick(
                "De twee wachtwoorden zijn niet gelijk.",
                "The two passwords are not the same.",
            )
            .into(),
        EnrolError::WrongCode => lang
            .pick(
                "De code uit de app klopt niet. Controleer de klok van de telefoon en probeer de volgende code.",
                "The code from the app is not right. Check the phone's clock and try the next code.",
            )
            .into(),
        _ => e.to_string(),
    }
}

fn login_page(
    console: &Console,
    ctx: &Ctx,
    next: &str,
    name: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response<Body> {
    let lang = ctx.lang;
    let oidc = console.accounts.oidc.is_some();
    let body = html! {
        div.login {
        h1 { (lang.pick("Inloggen", "Log in")) }
        @if let Some(error) = &error {
            p.error role="alert" { (error) }
        }
        @if oidc {
            p {
                a.button href={ "/console/oidc/start?next=" (percent(next)) } {
                    (lang.pick("Inloggen met uw ziekenhuisaccount", "Log in with your hospital account"))
                }
            }
            h2 { (lang.pick("Of met een lokaal account", "Or with a local account")) }
        }
        form.stacked method="post" action="/console/login" {
            input type="hidden" name="next" value=(next);
            label for="name" { (lang.pick("Naam", "Name")) }
            input #name type="text" name="name" value=(name) autocomplete="username" required autofocus[name.is_empty()];
            label for="password" { (lang.pick("Wachtwoord", "Password")) }
            input #password type="password" name="password" autocomplete="current-password" required;
            label for="code" { (lang.pick("Code uit de authenticator-app", "Code from the authenticator app")) }
            input #code type="text" name="code" inputmode="numeric" pattern="[0-9 ]{6,7}" autocomplete="one-time-code" required;
            button type="submit" { (lang.pick("Inloggen", "Log in")) }
        }
        p.hint {
            (lang.pick(
                "Geen account of code kwijt? De applicatiebeheerder van de afdeling maakt een nieuwe inloglink.",
                "No account, or lost the code? The department's application manager makes a new enrolment link."
            ))
        }
        }
    };
    with_status(
        console.page(
            ctx,
            lang.pick("Inloggen", "Log in"),
            Section::None,
            Head::default(),
            body,
        ),
        status,
    )
}

fn enrol_page(
    console: &Console,
    ctx: &Ctx,
    token: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response<Body> {
    let lang = ctx.lang;
    let Some(pending) = console.accounts.local.pending(token) else {
        return no_such_link(console, ctx);
    };
    let uri = console.accounts.local.totp_uri(&pending);
    let secret = crate::accounts::local::spaced_base32(&pending.secret);
    let body = html! {
        h1 { (lang.pick("Account instellen", "Set up your account")) }
        p {
            (lang.pick("Account", "Account")) ": " strong { (pending.name) }
            " (" (pending.display_name) ", " (role_name(lang, pending.role)) ")"
        }
        @if let Some(error) = &error {
            p.error role="alert" { (error) }
        }
        form.enrol method="post" action={ "/console/enrol/" (token) } {
            h2 { "1. " (lang.pick("Kies een wachtwoord", "Choose a password")) }
            p.hint { (lang.pick("Minstens 12 tekens; een zin werkt goed.", "At least 12 characters; a sentence works well.")) }
            label for="password" { (lang.pick("Wachtwoord", "Password")) }
            input #password type="password" name="password" autocomplete="new-password" minlength=(MIN_PASSWORD) required;
            label for="repeat" { (lang.pick("Nogmaals", "Again")) }
            input #repeat type="password" name="repeat" autocomplete="new-password" minlength=(MIN_PASSWORD) required;
            h2 { "2. " (lang.pick("Koppel de authenticator-app", "Link the authenticator app")) }
            p { (lang.pick(
                "Scan deze QR-code met een authenticator-app (bijvoorbeeld Microsoft Authenticator of FreeOTP), of typ de sleutel eronder over.",
                "Scan this QR code with an authenticator app (for example Microsoft Authenticator or FreeOTP), or type in the key below it."
            )) }
            (qr(&uri, lang.pick("QR-code voor de authenticator-app", "QR code for the authenticator app")))
            p { (lang.pick("Sleutel", "Key")) ": " code #secret { (secret) } }
            label for="code" { (lang.pick("De code die de app nu toont", "The code the app shows now")) }
            input #code type="text" name="code" inputmode="numeric" pattern="[0-9 ]{6,7}" autocomplete="one-time-code" required;
            button type="submit" { (lang.pick("Account instellen en inloggen", "Set up and log in")) }
        }
    };
    let mut response = with_status(
        console.page(
            ctx,
            lang.pick("Account instellen", "Set up your account"),
            Section::None,
            Head::default(),
            body,
        ),
        status,
    );
    // the page holds the TOTP secret: nobody keeps a copy
    if let Ok(v) = "no-store".parse() {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

/// A QR code as an image the CSP allows (`img-src data:`).
pub fn qr(text: &str, alt: &str) -> Markup {
    match super::pages::qr_data_uri(text) {
        Some(src) => html! { img.qr src=(src) alt=(alt) width="200" height="200"; },
        None => html! {},
    }
}

fn no_such_link(console: &Console, ctx: &Ctx) -> Response<Body> {
    let lang = ctx.lang;
    let body = html! {
        h1 { (lang.pick("Deze link werkt niet (meer)", "This link does not work (any more)")) }
        p { (lang.pick(
            "Een inloglink werkt één keer en 24 uur lang. Vraag de applicatiebeheerder om een nieuwe.",
            "An enrolment link works once and for 24 hours. Ask the application manager for a new one."
        )) }
        p { a href="/console/login" { (lang.pick("Naar inloggen", "To the login page")) } }
    };
    with_status(
        console.page(
            ctx,
            lang.pick("Link werkt niet", "Link not valid"),
            Section::None,
            Head::default(),
            body,
        ),
        StatusCode::NOT_FOUND,
    )
}

fn with_status(mut response: Response<Body>, status: StatusCode) -> Response<Body> {
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(safe_next("/console/shares?x=1"), "/console/shares?x=1");
        for bad in [
            "https://evil.example/",
            "//evil.example/console/",
            "/console//evil",
            "/console/\\evil",
            "/elsewhere",
            "/console/login",
            "",
        ] {
            assert_eq!(safe_next(bad), "/console/studies", "{bad}");
        }
    }
}
