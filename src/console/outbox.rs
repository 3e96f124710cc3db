//! Sent (the outbox): pushes to other gateways with their live state
//! (the page refreshes while any is still open), recipient, study,
//! attempts and last error; a form to send a study to a gateway of the
//! address book, as `pushgate send` does (a gebruiker may: `Work`); and
//! "retry now" and "cancel", which are the applicatiebeheerder's outbox
//! control (`Queue`), journaled with the person. Cancelling asks for
//! confirmation first; retrying does not (it only brings an attempt
//! forward).

use std::collections::HashMap;
use std::sync::Arc;

use hyper::{Method, Request, Response, StatusCode};
use maud::{Markup, html};

use super::pages::{self, Head, Section};
use super::shares::view;
use super::{Console, ConsoleError, Ctx, form, html as html_response, redirect};
use crate::authz::{Person, Role, StaffAction};
use crate::relay::book::AddressBook;
use crate::relay::outbox::{Item, OutboxChange, State};
use crate::relay::{Priority, RelayError, SendRequest};
use crate::store::{StudyRecord, Uid};
use crate::web::pages::Lang;
use crate::web::{Body, Inbound, Refusal, WebError, blocking};

/// Pushes listed (newest first).
const LISTED: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /console/outbox`
    Index,
    /// `POST /console/outbox/send`
    Send,
    /// `POST /console/outbox/{id}/retry`
    Retry(String),
    /// `POST /console/outbox/{id}/cancel`: the confirmation step, and with
    /// `confirm=yes` the cancellation.
    Cancel(String),
}

/// An outbox id as the relay makes them (hex).
fn outbox_id(segment: &str) -> Option<String> {
    (!segment.is_empty() && segment.len() <= 64 && segment.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| segment.to_string())
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match rest {
        [] | [""] if get => Some(Route::Index),
        ["send"] if post => Some(Route::Send),
        [id, "retry"] if post => outbox_id(id).map(Route::Retry),
        [id, "cancel"] if post => outbox_id(id).map(Route::Cancel),
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
        Route::Index => {
            console.require(ctx, StaffAction::Work)?;
            let query = form::query(&request);
            let outbox = gather(console).await?;
            let sent = SendForm {
                study: query.get("study").to_string(),
                ..SendForm::default()
            };
            Ok(page(console, ctx, &outbox, &sent, None, &query))
        }
        Route::Send => {
            let person = console.require(ctx, StaffAction::Work)?.clone();
            let fields = form::posted(ctx, request).await?;
            send(console, ctx, person, &fields).await
        }
        Route::Retry(id) => {
            let person = console.require(ctx, StaffAction::Queue)?.clone();
            form::posted(ctx, request).await?;
            let (relay, from) = (console.app.relay.clone(), ctx.from());
            blocking(move || {
                relay
                    .retry_now(&id, &person.actor(), &from)
                    .map_err(refused)
            })
            .await?;
            Ok(redirect("/console/outbox?retried=1"))
        }
        Route::Cancel(id) => {
            let person = console.require(ctx, StaffAction::Queue)?.clone();
            let fields = form::posted(ctx, request).await?;
            if fields.get("confirm") != "yes" {
                let outbox = gather(console).await?;
                let item = outbox
                    .items
                    .iter()
                    .find(|i| i.id == id)
                    .ok_or(WebError::NotFound)?;
                return Ok(html_response(confirm_cancel(console, ctx, &outbox, item)));
            }
            let reason = fields.get("reason").to_string();
            let (relay, from) = (console.app.relay.clone(), ctx.from());
            blocking(move || {
                relay
                    .cancel_push(&id, &person.actor(), &from, &reason)
                    .map_err(refused)
            })
            .await?;
            Ok(redirect("/console/outbox?cancelled=1"))
        }
    }
}

fn refused(e: OutboxChange) -> Refusal {
    match e {
        OutboxChange::NotFound => WebError::NotFound.into(),
        OutboxChange::Settled(_) => ConsoleError::BadForm(e.to_string()).into(),
        OutboxChange::Relay(e) => e.into(),
    }
}

/// The pushes and what the page shows of them.
struct Outbox {
    items: Vec<Item>,
    studies: HashMap<Uid, StudyRecord>,
    book: Arc<AddressBook>,
}

async fn gather(console: &Console) -> Result<Outbox, Refusal> {
    let app = console.app.clone();
    blocking(move || {
        let mut items = app
            .relay
            .outbox
            .list()
            .map_err(|e| WebError::Internal(e.to_string()))?;
        items.truncate(LISTED);
        let mut studies = HashMap::new();
        for item in &items {
            if !studies.contains_key(&item.job.study)
                && let Ok(Some(s)) = app.index.study(&item.job.study)
            {
                studies.insert(item.job.study.clone(), s);
            }
        }
        Ok::<_, Refusal>(Outbox {
            items,
            studies,
            book: app.relay.book.current(),
        })
    })
    .await
}

/// What the send form holds (again, after a refusal).
#[derive(Debug, Default)]
struct SendForm {
    study: String,
    to_ura: String,
    message: String,
    priority: String,
}

/// `POST /console/outbox/send`: queues the push as `pushgate send` does,
/// with the person as who asked.
async fn send(
    console: &Console,
    ctx: &Ctx,
    person: Person,
    fields: &form::Fields,
) -> Result<Response<Body>, Refusal> {
    let asked = SendForm {
        study: fields.get("study").to_string(),
        to_ura: fields.get("to_ura").to_string(),
        message: fields.get("message").to_string(),
        priority: fields.get("priority").to_string(),
    };
    let problem = match asked.priority.parse::<Priority>() {
        Err(e) => Some(e),
        Ok(_) if asked.study.is_empty() => Some(
            ctx.lang
                .pick("Vul de study UID in.", "Give the study UID.")
                .to_string(),
        ),
        Ok(_) if asked.to_ura.is_empty() => Some(
            ctx.lang
                .pick("Kies een organisatie.", "Choose an organisation.")
                .to_string(),
        ),
        Ok(priority) => {
            let request = SendRequest {
                study: asked.study.clone(),
                to_ura: asked.to_ura.clone(),
                message: asked.message.clone(),
                priority,
                grant: None,
            };
            let relay = console.app.relay.clone();
            let done = blocking(move || {
                Ok::<_, WebError>(relay.enqueue_as(request, "console", Some(person.actor())))
            })
            .await?;
            match done {
                Ok(item) => return Ok(redirect(&format!("/console/outbox?queued={}", item.id))),
                Err(e @ (RelayError::UnknownStudy(_) | RelayError::NoGateway(_))) => {
                    Some(e.to_string())
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let outbox = gather(console).await?;
    let mut response = page(
        console,
        ctx,
        &outbox,
        &asked,
        problem.as_deref(),
        &form::Fields::default(),
    );
    *response.status_mut() = StatusCode::BAD_REQUEST;
    Ok(response)
}

fn state(lang: Lang, item: &Item) -> Markup {
    let (class, text) = match item.state {
        State::Waiting => (
            "arriving",
            lang.pick("wacht op het onderzoek", "waiting for the study"),
        ),
        State::Pending if item.attempts == 0 => ("queued", lang.pick("in de rij", "queued")),
        State::Pending => ("queued", lang.pick("opnieuw proberen", "retrying")),
        State::Sent => ("delivered", lang.pick("afgeleverd", "delivered")),
        State::Failed => ("failed", lang.pick("mislukt", "failed")),
        State::Cancelled => ("revoked", lang.pick("geannuleerd", "cancelled")),
    };
    html! { span class={ "state " (class) } { (text) } }
}

fn who_asked(lang: Lang, item: &Item) -> Markup {
    html! {
        @match &item.job.actor {
            Some(a) => (a.name),
            None => @match item.job.by.as_str() {
                "grant" => span.muted { (lang.pick("bij een gedeeld onderzoek", "with a share")) },
                "cli" => span.muted { "pushgate send" },
                "admin-api" => span.muted { "admin API" },
                other => span.muted { (other) },
            },
        }
    }
}

fn actions(lang: Lang, ctx: &Ctx, item: &Item) -> Markup {
    let can_retry = matches!(item.state, State::Waiting | State::Pending | State::Failed);
    let can_cancel = can_retry;
    html! {
        @if can_retry {
            form.inline method="post" action={ "/console/outbox/" (item.id) "/retry" } {
                (pages::csrf_field(ctx))
                button.secondary type="submit" { (lang.pick("Opnieuw proberen", "Retry now")) }
            }
        }
        @if can_cancel {
            form.inline method="post" action={ "/console/outbox/" (item.id) "/cancel" } {
                (pages::csrf_field(ctx))
                button.danger type="submit" { (lang.pick("Annuleren…", "Cancel…")) }
            }
        }
    }
}

fn row(lang: Lang, ctx: &Ctx, outbox: &Outbox, item: &Item, admin: bool) -> Markup {
    html! {
        tr id={ "push-" (item.id) } {
            td { (pages::when(lang, item.created_at)) br; (who_asked(lang, item)) }
            td {
                @match outbox.studies.get(&item.job.study) {
                    Some(s) => { (view::patient(lang, &s.patient)) br; span.muted { (view::study_line(lang, s)) } }
                    None => span.muted { (lang.pick("niet (meer) in de opslag", "not (or no longer) in the store")) },
                }
                br; code.small { (item.job.study.to_string()) }
            }
            td {
                @if item.job.to_name.is_empty() {
                    @if let Some(g) = outbox.book.by_ura(&item.job.to_ura) { (g.name) }
                } @else { (item.job.to_name) }
                br; span.muted { "URA " (item.job.to_ura) }
            }
            td {
                (state(lang, item))
                @if item.job.priority == Priority::Spoed { " " strong.bad { "spoed" } }
                @if let Some(p) = &item.job.package {
                    br; span.muted { (p.instances) (lang.pick(" beelden · ", " images · ")) (pages::size(p.size)) }
                }
            }
            td { (item.attempts) }
            td {
                @match item.state {
                    State::Sent => @if let Some(at) = item.job.sent_at { (pages::when(lang, at)) },
                    State::Waiting | State::Pending => {
                        span.muted { (lang.pick("volgende poging ", "next attempt ")) } (pages::when(lang, item.next_attempt))
                    }
                    State::Failed | State::Cancelled => {},
                }
                @if !item.last_error.is_empty() {
                    br; span.error { (item.last_error) }
                }
            }
            @if admin { td.no-print { (actions(lang, ctx, item)) } }
        }
    }
}

fn send_form(
    lang: Lang,
    ctx: &Ctx,
    book: &AddressBook,
    asked: &SendForm,
    problem: Option<&str>,
) -> Markup {
    html! {
        h2 #send { (lang.pick("Naar een gateway sturen", "Send to a gateway")) }
        @if book.is_empty() {
            p.muted { (lang.pick("Het adresboek is leeg: er is geen gateway om naar te sturen.",
                "The address book is empty: there is no gateway to send to.")) }
        } @else {
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            form.send method="post" action="/console/outbox/send" {
                (pages::csrf_field(ctx))
                p {
                    label for="study" { "Study Instance UID" } br;
                    input #study type="text" name="study" required value=(asked.study) size="64"
                        pattern="[0-9.]+" inputmode="decimal";
                }
                p {
                    label for="to_ura" { (lang.pick("Organisatie", "Organisation")) } br;
                    select #to_ura name="to_ura" required {
                        option value="" { (lang.pick("— kies —", "— choose —")) }
                        @for g in book.iter() {
                            @if g.ura == asked.to_ura {
                                option value=(g.ura) selected { (g.name) " (URA " (g.ura) ")" }
                            } @else {
                                option value=(g.ura) { (g.name) " (URA " (g.ura) ")" }
                            }
                        }
                    }
                }
                p {
                    label for="priority" { (lang.pick("Prioriteit", "Priority")) } br;
                    select #priority name="priority" {
                        option value="routine" { (lang.pick("routine", "routine")) }
                        @if asked.priority == "spoed" {
                            option value="spoed" selected { "spoed" }
                        } @else {
                            option value="spoed" { "spoed" }
                        }
                    }
                }
                p {
                    label for="message" { (lang.pick("Bericht (optioneel)", "Message (optional)")) } br;
                    textarea #message name="message" maxlength="2000" { (asked.message) }
                }
                button type="submit" { (lang.pick("Versturen", "Send")) }
            }
        }
    }
}

fn page(
    console: &Console,
    ctx: &Ctx,
    outbox: &Outbox,
    asked: &SendForm,
    problem: Option<&str>,
    query: &form::Fields,
) -> Response<Body> {
    let lang = ctx.lang;
    let admin = ctx
        .session
        .as_ref()
        .is_some_and(|s| s.person.role == Role::Admin);
    let live = outbox.items.iter().any(Item::is_open);
    let title = lang.pick("Verzonden", "Sent");
    let body = html! {
        h1 { (title) }
        @if query.has("queued") {
            p.ok role="status" { (lang.pick("In de rij gezet; de status hieronder houdt zich bij.",
                "Queued; the state below keeps itself current.")) }
        }
        @if query.has("retried") {
            p.ok role="status" { (lang.pick("Wordt nu opnieuw geprobeerd.", "Being tried again now.")) }
        }
        @if query.has("cancelled") {
            p.ok role="status" { (lang.pick("Geannuleerd: er wordt niets meer verstuurd.", "Cancelled: nothing more is sent.")) }
        }
        @if outbox.items.is_empty() {
            p { (lang.pick("Er is nog niets naar een andere gateway gestuurd.", "Nothing was sent to another gateway yet.")) }
        } @else {
            table.outbox {
                thead { tr {
                    th { (lang.pick("Gevraagd", "Asked")) }
                    th { (lang.pick("Patiënt en onderzoek", "Patient and study")) }
                    th { (lang.pick("Naar", "To")) }
                    th { (lang.pick("Status", "State")) }
                    th { (lang.pick("Pogingen", "Attempts")) }
                    th { (lang.pick("Afgeleverd / volgende poging", "Delivered / next attempt")) }
                    @if admin { th.no-print { (lang.pick("Acties", "Actions")) } }
                } }
                tbody {
                    @for item in &outbox.items {
                        (row(lang, ctx, outbox, item, admin))
                    }
                }
            }
        }
        (send_form(lang, ctx, &outbox.book, asked, problem))
    };
    let head = Head {
        refresh: live.then_some(5),
        ..Head::default()
    };
    console.page(ctx, title, Section::Outbox, head, body)
}

fn confirm_cancel(console: &Console, ctx: &Ctx, outbox: &Outbox, item: &Item) -> String {
    let lang = ctx.lang;
    let title = lang.pick("Annuleren bevestigen", "Confirm cancellation");
    let body = html! {
        h1 { (title) }
        p { (lang.pick("Deze zending wordt niet meer geprobeerd; wat al is afgeleverd blijft afgeleverd.",
            "This push is not tried any more; what was delivered already stays delivered.")) }
        table.outbox { tbody { (row(lang, ctx, outbox, item, false)) } }
        form method="post" action={ "/console/outbox/" (item.id) "/cancel" } {
            (pages::csrf_field(ctx))
            input type="hidden" name="confirm" value="yes";
            p {
                label for="reason" { (lang.pick("Reden (optioneel, komt in de audit)", "Reason (optional, kept in the audit)")) } br;
                textarea #reason name="reason" maxlength="500" {}
            }
            button.danger type="submit" { (lang.pick("Zending annuleren", "Cancel the push")) }
            " " a.button.secondary href="/console/outbox" { (lang.pick("Terug", "Back")) }
        }
    };
    pages::layout(
        ctx,
        &console.config.org_name,
        title,
        Section::Outbox,
        Head::default(),
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, &[]), Some(Route::Index));
        assert_eq!(route(&Method::POST, &["send"]), Some(Route::Send));
        assert_eq!(
            route(&Method::POST, &["0a1b", "retry"]),
            Some(Route::Retry("0a1b".into()))
        );
        assert_eq!(
            route(&Method::POST, &["0a1b", "cancel"]),
            Some(Route::Cancel("0a1b".into()))
        );
        assert_eq!(route(&Method::GET, &["0a1b", "cancel"]), None);
        assert_eq!(route(&Method::POST, &["../x", "retry"]), None);
    }
}
