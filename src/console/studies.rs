//! `GET /console/studies`: what arrived — patient, study, modalities,
//! counts, complete or still arriving (the page refreshes itself while a
//! study on it is), where it came from (the calling AE, or the gateway
//! that pushed it with its message) — searchable by patient name, patient
//! ID, BSN, accession number, study date range and modality, 50 to a
//! page, each with a link to share it. The list comes from the in-memory
//! [`Catalogue`], kept current from the index's change count.

mod catalogue;
mod search;

use std::sync::Arc;

use hyper::{Method, Request, Response, StatusCode};
use maud::{Markup, html};

pub use catalogue::{Catalogue, Summary};
pub use search::percent;
use search::{PAGE, Query};

use super::pages::{self, Head, Section};
use super::{Console, Ctx, form};
use crate::authz::StaffAction;
use crate::relay::Origin;
use crate::web::pages::{Dicom, Lang, displayable};
use crate::web::{Body, Inbound, Refusal, WebError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    List,
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    let get = method == Method::GET || method == Method::HEAD;
    match rest {
        [] | [""] if get => Some(Route::List),
        _ => None,
    }
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    console.require(ctx, StaffAction::Work)?;
    match route {
        Route::List => list(console, ctx, &request).await,
    }
}

/// One page of the list, with the origins of its pushed studies.
struct Found {
    total: usize,
    rows: Vec<(Arc<Summary>, Option<Origin>)>,
    modalities: Vec<String>,
}

/// Runs `f` on the blocking pool (index reads are sled calls).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f).await?
}

async fn list(
    console: &Console,
    ctx: &Ctx,
    request: &Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let lang = ctx.lang;
    let (query, problem) = match Query::read(&form::query(request)) {
        Ok(q) => (q, None),
        Err(reason) => (Query::default(), Some(reason)),
    };
    let catalogue = console.catalogue.clone();
    let index = console.app.index.clone();
    let relay = console.app.relay.clone();
    let q = query.clone();
    let found = blocking(move || {
        let all = catalogue.current(index.as_ref())?;
        let mut modalities: Vec<String> = all
            .iter()
            .flat_map(|s| s.modalities.iter().cloned())
            .collect();
        modalities.sort();
        modalities.dedup();
        let matching: Vec<&Arc<Summary>> = all.iter().filter(|s| q.matches(s)).collect();
        let rows = matching
            .iter()
            .skip((q.page - 1) * PAGE)
            .take(PAGE)
            .map(|s| {
                let pushed = s.sources.iter().any(|x| x.starts_with("relay:"));
                let origin = if pushed {
                    relay.origin(&s.study_uid)
                } else {
                    None
                };
                ((*s).clone(), origin)
            })
            .collect();
        Ok(Found {
            total: matching.len(),
            rows,
            modalities,
        })
    })
    .await?;
    let live = found.rows.iter().any(|(s, _)| !s.complete);
    let title = lang.pick("Onderzoeken", "Studies");
    let body = html! {
        h1 { (title) }
        p.muted {
            a href="/console/share" {
                (lang.pick("Delen op accessienummer (spoed, onderzoek nog niet binnen)",
                           "Share by accession number (urgent, study not here yet)"))
            }
        }
        (search_form(lang, &query, &found.modalities))
        @if let Some(problem) = &problem {
            p.error role="alert" { (problem) }
        }
        (summary_line(lang, &query, found.total))
        @if !found.rows.is_empty() {
            (table(lang, &found.rows))
            (pager(lang, &query, found.total))
        }
    };
    let head = Head {
        refresh: live.then_some(5),
        ..Head::default()
    };
    let mut response = console.page(ctx, title, Section::Studies, head, body);
    if problem.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

fn search_form(lang: Lang, q: &Query, modalities: &[String]) -> Markup {
    html! {
        form.search method="get" action="/console/studies" role="search" {
            label { (lang.pick("Naam patiënt", "Patient name"))
                input type="search" name="name" value=(q.name) placeholder=(lang.pick("bijv. jansen*", "e.g. jansen*")); }
            label { (lang.pick("Patiënt-ID", "Patient ID"))
                input type="text" name="patient_id" value=(q.patient_id); }
            label { "BSN"
                input type="text" name="bsn" value=(q.bsn) inputmode="numeric"; }
            label { (lang.pick("Accessienummer", "Accession number"))
                input type="text" name="accession" value=(q.accession); }
            label { (lang.pick("Datum vanaf", "Date from"))
                input type="date" name="from" value=(q.from); }
            label { (lang.pick("tot en met", "to"))
                input type="date" name="to" value=(q.to); }
            label { (lang.pick("Modaliteit", "Modality"))
                select name="modality" {
                    option value="" { (lang.pick("alle", "all")) }
                    @for m in modalities {
                        option value=(m) selected[*m == q.modality] { (m) }
                    }
                }
            }
            button type="submit" { (lang.pick("Zoeken", "Search")) }
            @if q.is_search() {
                a.button.secondary href="/console/studies" { (lang.pick("Alles tonen", "Show all")) }
            }
        }
    }
}

fn summary_line(lang: Lang, q: &Query, total: usize) -> Markup {
    let pages = total.div_ceil(PAGE).max(1);
    html! {
        p #found aria-live="polite" {
            @if total == 0 && q.is_search() {
                (lang.pick("Geen onderzoeken gevonden.", "No studies found."))
            } @else if total == 0 {
                (lang.pick("Er zijn nog geen onderzoeken binnengekomen.", "No studies have arrived yet."))
            } @else {
                (count(lang, total as u64, ("onderzoek", "onderzoeken"), ("study", "studies")))
                @if pages > 1 {
                    " · " (lang.pick("pagina", "page")) " " (q.page.min(pages)) " / " (pages)
                }
            }
        }
    }
}

fn table(lang: Lang, rows: &[(Arc<Summary>, Option<Origin>)]) -> Markup {
    html! {
        table.studies {
            thead { tr {
                th scope="col" { (lang.pick("Patiënt", "Patient")) }
                th scope="col" { (lang.pick("Onderzoek", "Study")) }
                th scope="col" { (lang.pick("Modaliteit", "Modality")) }
                th scope="col" { (lang.pick("Beelden", "Images")) }
                th scope="col" { (lang.pick("Status", "State")) }
                th scope="col" { (lang.pick("Bron", "Source")) }
                th scope="col" { span.visually-hidden { (lang.pick("Actie", "Action")) } }
            } }
            tbody {
                @for (s, origin) in rows {
                    tr {
                        td {
                            strong.name { (patient_name(lang, &s.patient_name)) }
                            br;
                            span.muted {
                                (lang.pick("ID", "ID")) " " (text(&s.patient_id))
                                @if !s.birth_date.trim().is_empty() {
                                    " · " (lang.pick("geb.", "born")) " " (pages::dicom_date(lang, &s.birth_date))
                                }
                                @if let Some(bsn) = &s.bsn {
                                    " · BSN " (bsn)
                                }
                            }
                        }
                        td {
                            (study_date(lang, &s.study_date, &s.study_time))
                            br;
                            (text(&s.description))
                            @if !s.accession.trim().is_empty() {
                                br; span.muted { (lang.pick("Acc.", "Acc.")) " " (text(&s.accession)) }
                            }
                        }
                        td { (s.modalities.join(", ")) }
                        td {
                            (s.num_series) " " (lang.pick("series", "series")) br;
                            (images(lang, s.num_instances)) br;
                            span.muted { (pages::size(s.bytes)) }
                        }
                        td { (state(lang, s)) }
                        td { (source(lang, s, origin.as_ref())) }
                        td {
                            a.button href={ "/console/share/" (s.study_uid) } {
                                (lang.pick("Delen", "Share"))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn pager(lang: Lang, q: &Query, total: usize) -> Markup {
    let pages = total.div_ceil(PAGE).max(1);
    let page = q.page.min(pages);
    html! {
        @if pages > 1 {
            nav.pager aria-label=(lang.pick("Pagina's", "Pages")) {
                @if page > 1 {
                    a href=(q.link(page - 1)) rel="prev" { "← " (lang.pick("Vorige", "Previous")) }
                }
                span { (page) " / " (pages) }
                @if page < pages {
                    a href=(q.link(page + 1)) rel="next" { (lang.pick("Volgende", "Next")) " →" }
                }
            }
        }
    }
}

/// Complete, or still arriving with the count so far.
pub(super) fn state(lang: Lang, s: &Summary) -> Markup {
    html! {
        @if s.complete {
            span.state.complete { (lang.pick("compleet", "complete")) }
        } @else {
            span.state.arriving {
                (lang.pick("komt binnen", "arriving")) ": " (images(lang, s.num_instances))
            }
            br;
            span.muted { (lang.pick("laatste", "last")) " " (pages::when(lang, s.last_arrival)) }
        }
    }
}

/// Where a study came from: the calling AE titles, the drop folder, or
/// the gateway that pushed it with its message.
pub(super) fn source(lang: Lang, s: &Summary, origin: Option<&Origin>) -> Markup {
    html! {
        @for label in &s.sources {
            @if let Some(ae) = label.strip_prefix("dicom:") {
                span.source { "DICOM " code { (ae) } } br;
            } @else if let Some(sender) = label.strip_prefix("relay:") {
                @if let Some(o) = origin {
                    span.source {
                        (lang.pick("Gateway", "Gateway")) " " strong { (o.from_name) }
                        " (URA " (o.from_ura) ")"
                        @if o.priority == crate::relay::Priority::Spoed { " · " strong { "spoed" } }
                    }
                    @if !o.message.trim().is_empty() {
                        br; q.message { (o.message) }
                    }
                    br;
                } @else {
                    span.source { (lang.pick("Gateway", "Gateway")) " " (sender) } br;
                }
            } @else if label == "drop-folder" {
                span.source { (lang.pick("Dropmap", "Drop folder")) } br;
            } @else {
                span.source { (label) } br;
            }
        }
    }
}

/// "1 beeld", "3 beelden": a number with its noun.
pub(super) fn count(lang: Lang, n: u64, nl: (&str, &str), en: (&str, &str)) -> String {
    let (one, many) = match lang {
        Lang::Nl => nl,
        Lang::En => en,
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "1 beeld", "17 beelden" / "1 image", "17 images".
pub(super) fn images(lang: Lang, n: u64) -> String {
    count(lang, n, ("beeld", "beelden"), ("image", "images"))
}

/// A patient name as a person reads it (invisible characters dropped,
/// bounded, `Family, Given`).
pub(super) fn patient_name(lang: Lang, pn: &str) -> String {
    displayable(Some(pn), Dicom::PersonName, lang)
}

/// A DICOM text value, cleaned and bounded; a dash for nothing.
pub(super) fn text(value: &str) -> String {
    displayable(Some(value), Dicom::Text, Lang::En)
}

/// A study date and time ("7 december 2026, 14:05"), as far as known.
pub(super) fn study_date(lang: Lang, da: &str, tm: &str) -> String {
    let day = pages::dicom_date(lang, da);
    let tm = tm.trim();
    if day.is_empty() {
        return "—".into();
    }
    if tm.len() >= 4 && tm.bytes().take(4).all(|b| b.is_ascii_digit()) {
        format!("{day}, {}:{}", &tm[..2], &tm[2..4])
    } else {
        day
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::Priority;
    use crate::store::{Timestamp, Uid};

    fn summary(sources: &[&str]) -> Summary {
        Summary {
            study_uid: Uid::parse("1.2.3").unwrap(),
            patient_name: String::new(),
            patient_id: String::new(),
            birth_date: String::new(),
            bsn: None,
            study_date: String::new(),
            study_time: String::new(),
            description: String::new(),
            accession: String::new(),
            modalities: vec![],
            num_series: 1,
            num_instances: 1,
            bytes: 1,
            complete: true,
            last_arrival: Timestamp(1),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            name_key: String::new(),
        }
    }

    #[test]
    fn the_source_names_the_ae_or_the_gateway_with_its_message() {
        let ae = source(Lang::Nl, &summary(&["dicom:CT_SCANNER1"]), None).into_string();
        assert!(ae.contains("DICOM <code>CT_SCANNER1</code>"), "{ae}");
        let origin = Origin {
            from_name: "Ziekenhuis <B>".into(),
            from_ura: "87654321".into(),
            message: "Graag \"spoed\" <script>x</script>".into(),
            priority: Priority::Spoed,
            package: "p1".into(),
            received_at: Timestamp(1),
        };
        let pushed = source(Lang::En, &summary(&["relay:87654321"]), Some(&origin)).into_string();
        assert!(
            pushed.contains("Gateway <strong>Ziekenhuis &lt;B&gt;</strong> (URA 87654321)"),
            "{pushed}"
        );
        assert!(pushed.contains("<strong>spoed</strong>"), "{pushed}");
        assert!(pushed.contains("&lt;script&gt;x&lt;/script&gt;") && !pushed.contains("<script>"));
        let unknown = source(Lang::En, &summary(&["relay:87654321"]), None).into_string();
        assert!(unknown.contains("Gateway 87654321"), "{unknown}");
    }

    #[test]
    fn counts_take_their_noun() {
        assert_eq!(images(Lang::Nl, 1), "1 beeld");
        assert_eq!(images(Lang::Nl, 0), "0 beelden");
        assert_eq!(images(Lang::En, 17), "17 images");
    }
}
