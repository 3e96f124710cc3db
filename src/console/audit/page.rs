//! `GET /console/audit`: the journal, newest first, filtered and in
//! pages, with whether its chain verifies, and links to the exports and
//! the patient report with the same filter.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use maud::{Markup, html};

use super::describe::{Line, describe};
use super::filter::{Chain, Filter, scan};
use super::knowledge::Patient;
use crate::console::pages::{self, Head, Section};
use crate::console::shares::view::person_name;
use crate::console::shares::view::query_string;
use crate::console::{Console, Ctx};
use crate::journal::JournalError;
use crate::store::{Index, Timestamp, Uid};
use crate::web::pages::Lang;

/// Records per page.
pub const PER_PAGE: usize = 100;

/// One record as the page shows it.
pub struct Row {
    pub seq: u64,
    pub at: Timestamp,
    pub line: Line,
    pub study: Option<Uid>,
    pub patient: Option<Patient>,
}

/// A page of the journal, newest first.
pub struct Found {
    pub rows: Vec<Row>,
    /// Records the filter admits in all.
    pub total: u64,
    pub chain: Chain,
}

/// Reads page `page` (1: the newest) of what `filter` admits. Keeps only
/// the newest `page × PER_PAGE` matches while reading. Blocking.
pub fn find(
    dir: &std::path::Path,
    index: &dyn Index,
    filter: &Filter,
    lang: Lang,
    page: usize,
) -> Result<Found, JournalError> {
    let keep = page.saturating_mul(PER_PAGE);
    let mut newest: VecDeque<Row> = VecDeque::with_capacity(keep.min(10_000));
    let mut total = 0u64;
    let chain = scan(dir, index, filter, |record, _, known| {
        total += 1;
        let study = known.studies_of(&record.event).into_iter().next();
        newest.push_back(Row {
            seq: record.seq,
            at: record.at,
            line: describe(lang, &record.event),
            patient: study.as_ref().and_then(|s| known.patient(s)).cloned(),
            study,
        });
        if newest.len() > keep {
            newest.pop_front();
        }
        ControlFlow::Continue(())
    })?;
    let older_pages = (page - 1) * PER_PAGE;
    let shown = newest.len().saturating_sub(older_pages);
    let mut rows: Vec<Row> = newest.into_iter().take(shown).collect();
    rows.reverse();
    Ok(Found { rows, total, chain })
}

pub fn chain_status(lang: Lang, chain: &Chain) -> Markup {
    html! {
        @if chain.intact() {
            p.ok.chain role="status" {
                (lang.pick("Journaal intact: ", "Journal intact: ")) (chain.verified)
                (lang.pick(" records, de keten klopt vanaf het begin.", " records, the chain verifies from its genesis."))
                @if let Some(h) = &chain.head {
                    br; span.muted { (lang.pick("Laatste record ", "Last record ")) code { (h.seq) ":" (h.hash) } }
                }
            }
        } @else {
            div.notice.chain role="alert" {
                strong { (lang.pick("Het journaal klopt NIET: ", "The journal does NOT verify: ")) }
                (chain.verified) (lang.pick(" records geverifieerd.", " records verified."))
                ul { @for p in &chain.problems { li { (p) } } }
                (lang.pick("Zie pushgate audit verify.", "See pushgate audit verify."))
            }
        }
    }
}

fn form(lang: Lang, filter: &Filter) -> Markup {
    html! {
        form.search method="get" action="/console/audit" role="search" {
            label { (lang.pick("Patiënt (naam, ID, BSN)", "Patient (name, ID, BSN)"))
                input type="search" name="patient" value=(filter.patient); }
            label { (lang.pick("Onderzoek (Study UID)", "Study (Study UID)"))
                input type="search" name="study" value=(filter.study); }
            label { (lang.pick("Persoon (naam of id)", "Person (name or id)"))
                input type="search" name="person" value=(filter.person); }
            label { (lang.pick("Van", "From")) input type="date" name="from" value=(filter.from); }
            label { (lang.pick("Tot en met", "Until")) input type="date" name="to" value=(filter.to); }
            button type="submit" { (lang.pick("Zoeken", "Search")) }
        }
    }
}

fn row(lang: Lang, r: &Row) -> Markup {
    html! {
        tr {
            td { (pages::when(lang, r.at)) br; span.muted { "#" (r.seq) } }
            td { code { (r.line.kind) } }
            td {
                (r.line.actor)
                @if !r.line.actor_id.is_empty() && r.line.actor_id != r.line.actor {
                    br; span.muted { (r.line.actor_id) }
                }
            }
            td { @if !r.line.from.is_empty() { code { (r.line.from) } } }
            td {
                @if let Some(p) = &r.patient { (person_name(&p.name)) @if !p.id.is_empty() { br; span.muted { (p.id) } } }
                @else if let Some(s) = &r.study { code.small { (s.to_string()) } }
            }
            td { @if let Some(g) = &r.line.grant {
                a href={ "/console/shares/" (g.0) } title=(g.0) { code { (g.0.get(..9).unwrap_or(&g.0)) "…" } }
            } }
            td {
                @if r.line.outcome.starts_with("denied") || r.line.outcome.starts_with("failed") {
                    span.bad { (r.line.outcome) }
                } @else { (r.line.outcome) }
            }
            td { (r.line.detail) }
        }
    }
}

pub fn page(
    console: &Console,
    ctx: &Ctx,
    filter: &Filter,
    found: &Found,
    page_no: usize,
) -> String {
    let lang = ctx.lang;
    let title = "Audit";
    let query = filter.query();
    let with = |extra: &[(&'static str, String)]| {
        let mut all = query.clone();
        all.extend_from_slice(extra);
        query_string(&all)
    };
    let pages_total = usize::try_from(found.total)
        .unwrap_or(usize::MAX)
        .div_ceil(PER_PAGE)
        .max(1);
    let body = html! {
        h1 { (title) }
        (chain_status(lang, &found.chain))
        (form(lang, filter))
        @for p in &filter.problems { p.error role="alert" { (p) } }
        p.exports {
            (found.total) (lang.pick(" records gevonden. ", " records found. "))
            a href={ "/console/audit/export.jsonl?" (with(&[])) } download { (lang.pick("Exporteren als JSON lines", "Export as JSON lines")) }
            " · "
            a href={ "/console/audit/export.csv?" (with(&[])) } download { (lang.pick("als CSV", "as CSV")) }
            @if !filter.patient.is_empty() {
                " · "
                a href={ "/console/audit/patient?" (query_string(&[("q", filter.patient.clone())])) } {
                    (lang.pick("Inzageverslag voor deze patiënt", "Access report for this patient"))
                }
            }
        }
        @if !found.rows.is_empty() {
            div.scroll { table.audit {
                thead { tr {
                    th { (lang.pick("Wanneer", "When")) }
                    th { (lang.pick("Wat", "What")) }
                    th { (lang.pick("Wie", "Who")) }
                    th { (lang.pick("Vanaf", "From")) }
                    th { (lang.pick("Patiënt", "Patient")) }
                    th { (lang.pick("Gedeeld", "Share")) }
                    th { (lang.pick("Uitkomst", "Outcome")) }
                    th { (lang.pick("Details", "Details")) }
                } }
                tbody { @for r in &found.rows { (row(lang, r)) } }
            } }
            nav.pager aria-label=(lang.pick("Pagina's", "Pages")) {
                span { (lang.pick("pagina ", "page ")) (page_no) " / " (pages_total) }
                @if page_no > 1 {
                    a href={ "/console/audit?" (with(&[("page", (page_no - 1).to_string())])) } { "← " (lang.pick("nieuwer", "newer")) }
                }
                @if page_no < pages_total {
                    a href={ "/console/audit?" (with(&[("page", (page_no + 1).to_string())])) } { (lang.pick("ouder", "older")) " →" }
                }
            }
        }
    };
    pages::layout(
        ctx,
        &console.config.org_name,
        title,
        Section::Audit,
        Head::default(),
        body,
    )
}
