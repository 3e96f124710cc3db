//! Received: studies other gateways pushed to us, with their sender (as
//! the address book and the signed package named it), its message and
//! priority, and their forwarding to the local PACS (`forward.pacs`) per
//! instance with the PACS's answer. The page refreshes while something is
//! still arriving or on its way to the PACS.

use std::collections::BTreeMap;

use hyper::{Method, Request, Response};
use maud::{Markup, html};

use super::pages::{self, Head, Section};
use super::shares::view;
use super::{Console, Ctx};
use crate::authz::StaffAction;
use crate::relay::forward::{ForwardItem, ForwardState};
use crate::relay::{Origin, Priority};
use crate::store::{StudyRecord, Uid};
use crate::web::pages::Lang;
use crate::web::{Body, Inbound, Refusal, WebError, blocking};

/// Studies listed, newest first.
const LISTED: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /console/received`
    Index,
    /// `GET /console/received/{study}`: forwarding per instance.
    Study(Uid),
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match rest {
        [] | [""] => Some(Route::Index),
        [uid] => Uid::parse(uid).ok().map(Route::Study),
        _ => None,
    }
}

/// Forwarding of one study's instances, counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
}

impl Forwarding {
    fn add(&mut self, item: &ForwardItem) {
        match item.state {
            ForwardState::Pending => self.pending += 1,
            ForwardState::Sent { .. } => self.sent += 1,
            ForwardState::Failed { .. } => self.failed += 1,
        }
    }
}

/// A study pushed to us.
struct ReceivedStudy {
    study: StudyRecord,
    origin: Option<Origin>,
    forwarding: Forwarding,
}

fn pushed_to_us(study: &StudyRecord) -> bool {
    study.sources.iter().any(|s| s.starts_with("relay:"))
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    _request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    console.require(ctx, StaffAction::Work)?;
    let app = console.app.clone();
    let pacs = console.config.forward.pacs.as_ref().map(|p| p.to_string());
    match route {
        Route::Index => {
            let studies = blocking(move || {
                let mut forwarding: BTreeMap<Uid, Forwarding> = BTreeMap::new();
                if let Some(f) = &app.relay.forwarder {
                    for item in f.status().map_err(|e| WebError::Internal(e.to_string()))? {
                        forwarding
                            .entry(item.key.study.clone())
                            .or_default()
                            .add(&item);
                    }
                }
                let mut found: Vec<ReceivedStudy> = app
                    .index
                    .studies()
                    .map_err(WebError::from)?
                    .into_iter()
                    .filter(pushed_to_us)
                    .map(|study| ReceivedStudy {
                        origin: app.relay.origin(&study.study_uid),
                        forwarding: forwarding
                            .get(&study.study_uid)
                            .copied()
                            .unwrap_or_default(),
                        study,
                    })
                    .collect();
                found.sort_by_key(|r| {
                    std::cmp::Reverse(
                        r.origin
                            .as_ref()
                            .map_or(r.study.last_arrival, |o| o.received_at),
                    )
                });
                found.truncate(LISTED);
                Ok::<_, Refusal>(found)
            })
            .await?;
            Ok(index(console, ctx, &studies, pacs.as_deref()))
        }
        Route::Study(uid) => {
            let (study, items) = blocking(move || {
                let study = app
                    .index
                    .study(&uid)
                    .map_err(WebError::from)?
                    .filter(pushed_to_us);
                let Some(study) = study else {
                    return Err(WebError::NotFound.into());
                };
                let items: Vec<ForwardItem> = match &app.relay.forwarder {
                    Some(f) => f
                        .status()
                        .map_err(|e| WebError::Internal(e.to_string()))?
                        .into_iter()
                        .filter(|i| i.key.study == uid)
                        .collect(),
                    None => Vec::new(),
                };
                let received = ReceivedStudy {
                    origin: app.relay.origin(&uid),
                    forwarding: items.iter().fold(Forwarding::default(), |mut f, i| {
                        f.add(i);
                        f
                    }),
                    study,
                };
                Ok::<_, Refusal>((received, items))
            })
            .await?;
            Ok(detail(console, ctx, &study, &items, pacs.as_deref()))
        }
    }
}

fn sender(lang: Lang, r: &ReceivedStudy) -> Markup {
    html! {
        @match &r.origin {
            Some(o) => {
                (o.from_name) br; span.muted { "URA " (o.from_ura) }
            }
            None => {
                @for s in r.study.sources.iter().filter_map(|s| s.strip_prefix("relay:")) { (s) br; }
                span.muted { (lang.pick("(afzender niet bewaard)", "(sender not kept)")) }
            }
        }
    }
}

fn forwarding(lang: Lang, f: Forwarding, pacs: Option<&str>) -> Markup {
    html! {
        @if pacs.is_none() && f == Forwarding::default() {
            span.muted { (lang.pick("doorsturen staat uit", "forwarding is off")) }
        } @else {
            @if f.sent > 0 { span class="state delivered" { (f.sent) (lang.pick(" in het PACS", " in the PACS")) } " " }
            @if f.pending > 0 { span class="state queued" { (f.pending) (lang.pick(" onderweg", " on their way")) } " " }
            @if f.failed > 0 { span class="state failed" { (f.failed) (lang.pick(" mislukt", " failed")) } }
            @if f == Forwarding::default() { span.muted { (lang.pick("niets doorgestuurd", "nothing forwarded")) } }
        }
    }
}

fn arriving(lang: Lang, s: &StudyRecord) -> Markup {
    html! {
        @if s.completed_at.is_none() {
            span class="state arriving" { (lang.pick("komt nog binnen", "still arriving")) }
        } @else {
            span class="state complete" { (lang.pick("compleet", "complete")) }
        }
    }
}

fn index(
    console: &Console,
    ctx: &Ctx,
    studies: &[ReceivedStudy],
    pacs: Option<&str>,
) -> Response<Body> {
    let lang = ctx.lang;
    let live = studies
        .iter()
        .any(|r| r.forwarding.pending > 0 || r.study.completed_at.is_none());
    let title = lang.pick("Ontvangen", "Received");
    let body = html! {
        h1 { (title) }
        p.muted {
            (lang.pick("Onderzoeken die andere gateways naar ons stuurden.", "Studies other gateways pushed to us."))
            " "
            @match pacs {
                Some(p) => { (lang.pick("Ze worden doorgestuurd naar het PACS ", "They are forwarded to the PACS ")) code { (p) } "." }
                None => (lang.pick("Doorsturen naar een PACS staat uit (forward.pacs).", "Forwarding to a PACS is off (forward.pacs).")),
            }
        }
        @if studies.is_empty() {
            p { (lang.pick("Er is nog niets ontvangen.", "Nothing was received yet.")) }
        } @else {
            table.received {
                thead { tr {
                    th { (lang.pick("Ontvangen", "Received")) }
                    th { (lang.pick("Patiënt en onderzoek", "Patient and study")) }
                    th { (lang.pick("Van", "From")) }
                    th { (lang.pick("Bericht", "Message")) }
                    th { (lang.pick("Beelden", "Images")) }
                    th { (lang.pick("Naar het PACS", "To the PACS")) }
                } }
                tbody {
                    @for r in studies {
                        tr {
                            td {
                                (pages::when(lang, r.origin.as_ref().map_or(r.study.last_arrival, |o| o.received_at)))
                                @if r.origin.as_ref().is_some_and(|o| o.priority == Priority::Spoed) {
                                    br; strong.bad { "spoed" }
                                }
                            }
                            td {
                                a.open href={ "/console/received/" (r.study.study_uid.to_string()) } {
                                    (view::patient(lang, &r.study.patient))
                                }
                                br; span.muted { (view::study_line(lang, &r.study)) }
                            }
                            td { (sender(lang, r)) }
                            td { @if let Some(o) = &r.origin { (o.message) } }
                            td { (r.study.num_instances()) br; (arriving(lang, &r.study)) }
                            td { (forwarding(lang, r.forwarding, pacs)) }
                        }
                    }
                }
            }
        }
    };
    let head = Head {
        refresh: live.then_some(5),
        ..Head::default()
    };
    console.page(ctx, title, Section::Received, head, body)
}

fn instance_state(lang: Lang, item: &ForwardItem) -> Markup {
    html! {
        @match &item.state {
            ForwardState::Pending => {
                span class="state queued" { (lang.pick("onderweg", "on its way")) }
                @if let Some(at) = item.next_attempt {
                    br; span.muted { (lang.pick("volgende poging ", "next attempt ")) (pages::when(lang, at)) }
                }
            }
            ForwardState::Sent { status, at } => {
                span class="state delivered" { (lang.pick("in het PACS", "in the PACS")) }
                " " span.muted { "status " (format!("{status:#06X}")) }
                br; span.muted { (pages::when(lang, *at)) }
            }
            ForwardState::Failed { reason, at, .. } => {
                span class="state failed" { (lang.pick("mislukt", "failed")) }
                br; span.error { (reason) }
                br; span.muted { (pages::when(lang, *at)) }
            }
        }
    }
}

fn detail(
    console: &Console,
    ctx: &Ctx,
    r: &ReceivedStudy,
    items: &[ForwardItem],
    pacs: Option<&str>,
) -> Response<Body> {
    let lang = ctx.lang;
    let live = r.forwarding.pending > 0 || r.study.completed_at.is_none();
    let title = lang.pick("Ontvangen onderzoek", "Received study");
    let body = html! {
        p.no-print { a href="/console/received" { "← " (lang.pick("Ontvangen", "Received")) } }
        h1 { (title) }
        div.patient { (view::patient(lang, &r.study.patient)) br; (view::study_line(lang, &r.study)) }
        dl.facts {
            dt { (lang.pick("Van", "From")) } dd { (sender(lang, r)) }
            @if let Some(o) = &r.origin {
                dt { (lang.pick("Ontvangen", "Received")) } dd { (pages::when(lang, o.received_at)) }
                dt { (lang.pick("Prioriteit", "Priority")) } dd { (o.priority.as_str()) }
                @if !o.message.is_empty() { dt { (lang.pick("Bericht", "Message")) } dd { (o.message) } }
                dt { (lang.pick("Pakket", "Package")) } dd { code { (o.package) } }
            }
            dt { (lang.pick("Beelden", "Images")) } dd { (r.study.num_instances()) " · " (pages::size(r.study.bytes())) " " (arriving(lang, &r.study)) }
            dt { (lang.pick("Naar het PACS", "To the PACS")) } dd { (forwarding(lang, r.forwarding, pacs)) }
        }
        @if !items.is_empty() {
            h2 { (lang.pick("Per beeld", "Per instance")) }
            table.forwarding {
                thead { tr {
                    th { (lang.pick("Serie", "Series")) }
                    th { "SOP Instance UID" }
                    th { (lang.pick("Status", "State")) }
                    th { (lang.pick("Pogingen", "Attempts")) }
                } }
                tbody {
                    @for item in items {
                        tr {
                            td {
                                @match r.study.series.get(&item.key.series) {
                                    Some(s) => { (s.attrs.modality) " " (s.attrs.series_description) }
                                    None => code.small { (item.key.series.to_string()) },
                                }
                            }
                            td { code.small { (item.key.sop.to_string()) } }
                            td { (instance_state(lang, item)) }
                            td { (item.attempts) }
                        }
                    }
                }
            }
        }
    };
    let head = Head {
        refresh: live.then_some(5),
        ..Head::default()
    };
    console.page(ctx, title, Section::Received, head, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, &[]), Some(Route::Index));
        assert_eq!(
            route(&Method::GET, &["1.2.3"]),
            Some(Route::Study(Uid::parse("1.2.3").unwrap()))
        );
        assert_eq!(route(&Method::GET, &["<x>"]), None);
        assert_eq!(route(&Method::POST, &[]), None);
    }
}
