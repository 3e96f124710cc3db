//! `GET /console/shares`: the shares as a table, each with the grants
//! passed on from it as a tree beneath; search, a state filter, pages.

use std::collections::HashSet;

use hyper::Response;
use maud::{Markup, html};

use super::view::query_string;
use super::{Listing, href, view};
use crate::authz::{GrantId, GrantView, Recipient, Role};
use crate::console::form::Fields;
use crate::console::pages::{self, Head, Section};
use crate::console::{Console, Ctx};
use crate::web::Body;
use crate::web::pages::Lang;

/// Shares per page.
const PER_PAGE: usize = 50;
/// Delegation trees are at most this deep (delegation depth is at most 5).
const MAX_DEPTH: usize = 8;

/// What the filter asks for.
struct Filter {
    text: String,
    state: String,
    page: usize,
}

impl Filter {
    fn of(query: &Fields) -> Filter {
        Filter {
            text: query.get("q").to_string(),
            state: match query.get("state") {
                s @ ("open" | "active" | "bound" | "expired" | "revoked") => s.to_string(),
                _ => String::new(),
            },
            page: query.get("page").parse().unwrap_or(1usize).max(1),
        }
    }

    fn state_matches(&self, status: &str) -> bool {
        match self.state.as_str() {
            "" => true,
            "open" => matches!(status, "active" | "bound"),
            s => s == status,
        }
    }

    /// Case-insensitive: the patient's name, ID or BSN, the study UID or
    /// accession number, the recipient's URA or name, the issuer.
    fn text_matches(&self, listing: &Listing, v: &GrantView) -> bool {
        if self.text.is_empty() {
            return true;
        }
        let needle = self.text.to_lowercase();
        let mut hay: Vec<String> = vec![v.issuer.clone(), v.id.0.clone()];
        if let Some(a) = &v.issued_by {
            hay.push(a.name.clone());
        }
        match &v.target {
            crate::authz::Target::Study(uid) => hay.push(uid.to_string()),
            crate::authz::Target::Accession(a) => hay.push(a.number.clone()),
        }
        if let Recipient::Organization { ura, .. } = &v.recipient {
            hay.push(ura.clone());
            if let Some(g) = listing.book.by_ura(ura) {
                hay.push(g.name.clone());
            }
        }
        if let Some(p) = &v.patient {
            hay.push(view::searchable_name(&p.name));
            hay.push(p.id.clone());
            hay.extend(p.bsn.clone());
        }
        if let Some(s) = listing.studies.get(&v.id) {
            hay.push(view::searchable_name(&s.patient.name));
            hay.push(s.patient.id.clone());
            hay.extend(s.patient.bsn.clone());
            hay.push(s.attrs.accession_number.clone());
            hay.push(s.study_uid.to_string());
        }
        hay.iter().any(|h| h.to_lowercase().contains(&needle))
    }
}

/// The roots: grants whose parent the person cannot see (or that have none).
fn roots(listing: &Listing) -> Vec<&GrantView> {
    let visible: HashSet<&GrantId> = listing.views.iter().map(|v| &v.id).collect();
    listing
        .views
        .iter()
        .filter(|v| v.parent.as_ref().is_none_or(|p| !visible.contains(p)))
        .collect()
}

pub fn page(console: &Console, ctx: &Ctx, listing: &Listing, query: &Fields) -> Response<Body> {
    let lang = ctx.lang;
    let filter = Filter::of(query);
    let admin = ctx
        .session
        .as_ref()
        .is_some_and(|s| s.person.role == Role::Admin);
    let matching: Vec<&GrantView> = roots(listing)
        .into_iter()
        .filter(|v| filter.state_matches(v.status) && filter.text_matches(listing, v))
        .collect();
    let pages_total = matching.len().div_ceil(PER_PAGE).max(1);
    let page_no = filter.page.min(pages_total);
    let shown = matching
        .iter()
        .skip((page_no - 1) * PER_PAGE)
        .take(PER_PAGE);
    let title = lang.pick("Gedeeld", "Shares");
    let body = html! {
        h1 { (title) }
        p.muted {
            @if admin {
                (lang.pick("Alle gedeelde onderzoeken van de afdeling.", "Every share of the department."))
            } @else {
                (lang.pick("De onderzoeken die u deelde, met wat daarvan werd doorgegeven.",
                    "The studies you shared, with what was passed on from them."))
            }
        }
        (search(lang, &filter))
        @if matching.is_empty() {
            p { (lang.pick("Geen gedeelde onderzoeken gevonden.", "No shares found.")) }
        } @else {
            table.shares {
                thead { tr {
                    th { (lang.pick("Patiënt en onderzoek", "Patient and study")) }
                    th { (lang.pick("Voor", "For")) }
                    th { (lang.pick("Houder", "Holder")) }
                    th { (lang.pick("Status", "State")) }
                    th { (lang.pick("Gebruikt", "Used")) }
                    th { (lang.pick("Geldig tot", "Expires")) }
                    th { (lang.pick("Gedeeld door", "Shared by")) }
                } }
                tbody {
                    @for v in shown {
                        (row(lang, listing, v))
                    }
                }
            }
            (pager(lang, &filter, page_no, pages_total, matching.len()))
        }
    };
    console.page(ctx, title, Section::Shares, Head::default(), body)
}

fn search(lang: Lang, filter: &Filter) -> Markup {
    let option = |value: &str, nl: &str, en: &str| {
        html! {
            @if filter.state == value {
                option value=(value) selected { (lang.pick(nl, en)) }
            } @else {
                option value=(value) { (lang.pick(nl, en)) }
            }
        }
    };
    html! {
        form.search method="get" action="/console/shares" role="search" {
            label {
                (lang.pick("Zoeken", "Search"))
                input type="search" name="q" value=(filter.text)
                    placeholder=(lang.pick("patiënt, ID, BSN, UID, ontvanger", "patient, ID, BSN, UID, recipient"));
            }
            label {
                (lang.pick("Status", "State"))
                select name="state" {
                    (option("", "alle", "all"))
                    (option("open", "bruikbaar", "usable"))
                    (option("active", "actief", "active"))
                    (option("bound", "gebonden", "bound"))
                    (option("expired", "verlopen", "expired"))
                    (option("revoked", "ingetrokken", "revoked"))
                }
            }
            button type="submit" { (lang.pick("Zoeken", "Search")) }
        }
    }
}

fn study_cell(lang: Lang, listing: &Listing, v: &GrantView) -> Markup {
    html! {
        @match listing.studies.get(&v.id) {
            Some(s) => {
                (view::patient(lang, &s.patient)) br;
                span.muted { (view::study_line(lang, s)) }
            }
            None => @match &v.target {
                crate::authz::Target::Study(uid) => {
                    @if let Some(p) = &v.patient { strong { (view::person_name(&p.name)) } " · " span.muted { "ID " (p.id) } br; }
                    span.muted { (lang.pick("niet (meer) in de opslag", "not (or no longer) in the store")) }
                    br; code { (uid.to_string()) }
                }
                crate::authz::Target::Accession(a) => {
                    (lang.pick("accessienummer ", "accession ")) code { (a.number) }
                    @if let Some(id) = &a.patient_id { " · " span.muted { "ID " (id) } }
                    @if let Some(bsn) = &a.bsn { " · " span.muted { "BSN " (bsn) } }
                    br; span.muted { (lang.pick("nog niet binnen", "not arrived yet")) }
                }
            },
        }
    }
}

fn row(lang: Lang, listing: &Listing, v: &GrantView) -> Markup {
    html! {
        tr {
            td {
                a.open href=(href(&v.id)) { (study_cell(lang, listing, v)) }
            }
            td { (view::recipient(lang, &v.recipient, &listing.book)) }
            td { (view::holder(lang, v)) }
            td { (view::grant_state(lang, v.status)) }
            td { (view::usage(lang, listing.usage.get(&v.id))) }
            td { (pages::when(lang, v.expires_at)) }
            td { (view::issuer(lang, v)) br; span.muted { (pages::when(lang, v.created_at)) } }
        }
        @if !v.children.is_empty() {
            tr.delegations {
                td colspan="7" {
                    span.muted { (lang.pick("Doorgegeven:", "Passed on:")) }
                    (tree(lang, listing, &v.children, 0))
                }
            }
        }
    }
}

/// The grants passed on from one, and from those, as nested lists.
pub fn tree(lang: Lang, listing: &Listing, children: &[GrantId], depth: usize) -> Markup {
    html! {
        @if depth < MAX_DEPTH {
            ul.tree {
                @for child in children {
                    @if let Some(c) = listing.by_id(child) {
                        li {
                            a href=(href(&c.id)) { (view::grant_state(lang, c.status)) }
                            " " (view::recipient(lang, &c.recipient, &listing.book))
                            " · " (view::holder(lang, c))
                            " · " (view::usage(lang, listing.usage.get(&c.id)))
                            " · " span.muted { (lang.pick("tot ", "until ")) (pages::when(lang, c.expires_at)) }
                            @if !c.children.is_empty() {
                                (tree(lang, listing, &c.children, depth + 1))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn pager(lang: Lang, filter: &Filter, page: usize, total: usize, count: usize) -> Markup {
    let link = |n: usize| {
        let mut pairs = vec![("page", n.to_string())];
        if !filter.text.is_empty() {
            pairs.push(("q", filter.text.clone()));
        }
        if !filter.state.is_empty() {
            pairs.push(("state", filter.state.clone()));
        }
        format!("/console/shares?{}", query_string(&pairs))
    };
    html! {
        nav.pager aria-label=(lang.pick("Pagina's", "Pages")) {
            span { (crate::console::studies::count(lang, count as u64, ("deling", "delingen"), ("share", "shares"))) " · "
                (lang.pick("pagina ", "page ")) (page) " / " (total) }
            @if page > 1 { a href=(link(page - 1)) { "← " (lang.pick("nieuwer", "newer")) } }
            @if page < total { a href=(link(page + 1)) { (lang.pick("ouder", "older")) " →" } }
        }
    }
}
