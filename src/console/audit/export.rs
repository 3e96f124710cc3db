//! `export.jsonl` and `export.csv`: the records the filter admits, streamed
//! (a journal of years does not fit in memory, and need not). JSON lines
//! are the journal's own lines, hash included, each checkable with
//! `pushgate audit verify`'s rule; CSV is for a spreadsheet: one row per
//! record, every field quoted where it must be, and any field a
//! spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, CR in
//! front) defused with a leading apostrophe.

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::Arc;

use hyper::{Response, StatusCode, header};

use super::describe::describe;
use super::filter::{Filter, scan};
use super::knowledge::Knowledge;
use crate::console::shares::view::person_name;
use crate::journal::Record;
use crate::web::pages::Lang;
use crate::web::{App, Body, Refusal, Sink, produced_while};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

/// The CSV's columns.
pub const CSV_HEADER: [&str; 13] = [
    "seq",
    "time",
    "event",
    "actor",
    "actor_id",
    "from",
    "grant",
    "study",
    "patient_name",
    "patient_id",
    "outcome",
    "detail",
    "hash",
];

/// One CSV field: defused if a spreadsheet would evaluate it, quoted if it
/// holds a separator (`,` or, for Dutch spreadsheets, `;`), a quote or a
/// line break.
pub fn csv_field(value: &str) -> String {
    let mut v = String::with_capacity(value.len() + 2);
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        v.push('\'');
    }
    v.push_str(value);
    if v.contains([',', ';', '"', '\n', '\r']) || v.starts_with(' ') || v.ends_with(' ') {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

pub fn csv_row(fields: &[&str]) -> String {
    let mut row = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    row.push_str("\r\n");
    row
}

/// A record as a CSV row.
pub fn csv_record(record: &Record, line: &str, known: &Knowledge) -> String {
    let described = describe(Lang::En, &record.event);
    let studies = known.studies_of(&record.event);
    let study = studies.first();
    let patient = study.and_then(|s| known.patient(s));
    let seq = record.seq.to_string();
    let time = record.at.to_string();
    let grant = described
        .grant
        .as_ref()
        .map(|g| g.0.clone())
        .unwrap_or_default();
    let study_text = study.map(|s| s.to_string()).unwrap_or_default();
    let name = patient.map(|p| person_name(&p.name)).unwrap_or_default();
    let id = patient.map(|p| p.id.clone()).unwrap_or_default();
    let hash = line.get(9..73).unwrap_or_default();
    csv_row(&[
        &seq,
        &time,
        &described.kind,
        &described.actor,
        &described.actor_id,
        &described.from,
        &grant,
        &study_text,
        &name,
        &id,
        &described.outcome,
        &described.detail,
        hash,
    ])
}

/// The export as a streamed download.
pub fn respond(app: &Arc<App>, filter: Filter, format: Format) -> Result<Response<Body>, Refusal> {
    let permit = app.gates.stream()?;
    let app = app.clone();
    let body = produced_while(
        None,
        || true,
        move |sink: &mut Sink| {
            let _permit = permit;
            let mut failed = None;
            if format == Format::Csv {
                sink.write_all(csv_row(&CSV_HEADER).as_bytes())?;
            }
            let chain = scan(
                app.authz.journal().dir(),
                app.index.as_ref(),
                &filter,
                |record, line, known| {
                    let written = match format {
                        Format::Jsonl => sink
                            .write_all(line.as_bytes())
                            .and_then(|()| sink.write_all(b"\n")),
                        Format::Csv => sink.write_all(csv_record(record, line, known).as_bytes()),
                    };
                    match written {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(e) => {
                            failed = Some(e);
                            ControlFlow::Break(())
                        }
                    }
                },
            )
            .map_err(std::io::Error::other)?;
            if let Some(e) = failed {
                return Err(e);
            }
            if !chain.intact() {
                tracing::warn!(
                    problems = chain.problems.len(),
                    "audit export: the journal's chain does not verify"
                );
            }
            Ok(())
        },
    );
    let (content_type, extension) = match format {
        Format::Jsonl => ("application/x-ndjson; charset=utf-8", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8; header=present", "csv"),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"pushgate-audit.{extension}\""),
        ),
        (header::CACHE_CONTROL, "no-store".to_string()),
    ] {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_fields_are_defused_and_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a;b"), "\"a;b\"");
        assert_eq!(csv_field("=a,\"b\""), "\"'=a,\"\"b\"\"\"");
        assert_eq!(csv_row(&["x", "y"]), "x,y\r\n");
    }
}
