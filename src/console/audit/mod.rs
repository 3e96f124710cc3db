//! Audit (applicatiebeheerder only, `StaffAction::Audit`): the journal,
//! newest first, filtered by patient, study, person and period; its export
//! as JSON lines and CSV with the same filter; and the per-patient report
//! for an inzage request. Every page reads the journal the way `pushgate
//! audit verify` does and says whether the chain holds. Reading the audit
//! is journaled too (`console.audited`): it shows patients' names.
//!
//! Every page reads the whole journal (twice for a patient: once to learn
//! every study the patient had, once to filter): the audit is rare and
//! admin-only, and nothing else indexes the journal.

mod describe;
mod export;
mod filter;
mod knowledge;
mod page;
mod report;

use hyper::{Method, Request, Response};

use super::shares::view::query_string;
use super::{Console, Ctx, form, html};
use crate::authz::{Person, StaffAction};
use crate::journal::{ConsoleEvent, Event};
use crate::web::{Body, Inbound, Refusal, WebError, blocking};
use export::Format;
use filter::Filter;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /console/audit`
    Index,
    /// `GET /console/audit/export.jsonl`
    ExportJsonl,
    /// `GET /console/audit/export.csv`
    ExportCsv,
    /// `GET /console/audit/patient`
    Patient,
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match rest {
        [] | [""] => Some(Route::Index),
        ["export.jsonl"] => Some(Route::ExportJsonl),
        ["export.csv"] => Some(Route::ExportCsv),
        ["patient"] => Some(Route::Patient),
        _ => None,
    }
}

/// Journals that `person` read the audit (`what`, with the filter asked).
fn journal_reading(console: &Console, ctx: &Ctx, person: &Person, what: &str, query: String) {
    console
        .app
        .authz
        .journal()
        .append(Event::Console(ConsoleEvent::Audited {
            actor: person.actor(),
            what: what.to_string(),
            query,
            from: ctx.from(),
        }));
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let person = console.require(ctx, StaffAction::Audit)?.clone();
    let query = form::query(&request);
    let filter = Filter::of(&query);
    let app = console.app.clone();
    let lang = ctx.lang;
    match route {
        Route::Index => {
            let page_no: usize = query
                .get("page")
                .parse()
                .unwrap_or(1usize)
                .clamp(1, 100_000);
            journal_reading(
                console,
                ctx,
                &person,
                "search",
                query_string(&filter.query()),
            );
            let f = filter.clone();
            let found = blocking(move || {
                page::find(
                    app.authz.journal().dir(),
                    app.index.as_ref(),
                    &f,
                    lang,
                    page_no,
                )
                .map_err(|e| WebError::Internal(e.to_string()))
            })
            .await?;
            Ok(html(page::page(console, ctx, &filter, &found, page_no)))
        }
        Route::ExportJsonl | Route::ExportCsv => {
            let (format, what) = match route {
                Route::ExportCsv => (Format::Csv, "export.csv"),
                _ => (Format::Jsonl, "export.jsonl"),
            };
            if let Some(problem) = filter.problems.first() {
                return Err(WebError::BadRequest(problem.clone()).into());
            }
            journal_reading(console, ctx, &person, what, query_string(&filter.query()));
            export::respond(&console.app, filter, format)
        }
        Route::Patient => {
            let q = query.get("q").to_string();
            let key = query.get("key").to_string();
            if !q.is_empty() {
                journal_reading(
                    console,
                    ctx,
                    &person,
                    "patient report",
                    query_string(&[("q", q.clone())]),
                );
            }
            let (f, q2) = (filter.clone(), q.clone());
            let found = blocking(move || {
                report::build(
                    app.authz.journal().dir(),
                    app.index.as_ref(),
                    &q2,
                    &key,
                    &f,
                    lang,
                )
                .map_err(|e| WebError::Internal(e.to_string()))
            })
            .await?;
            Ok(html(report::page(console, ctx, &q, &filter, &found)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, &[]), Some(Route::Index));
        assert_eq!(route(&Method::GET, &["export.csv"]), Some(Route::ExportCsv));
        assert_eq!(
            route(&Method::GET, &["export.jsonl"]),
            Some(Route::ExportJsonl)
        );
        assert_eq!(route(&Method::GET, &["patient"]), Some(Route::Patient));
        assert_eq!(route(&Method::POST, &[]), None);
        assert_eq!(route(&Method::GET, &["export.xlsx"]), None);
    }
}
