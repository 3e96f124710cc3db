//! QIDO-RS search (PS3.18 §10.6) over the part of one study a grant
//! covers. Pure: the [`handler`] resolves what is covered, hands it in,
//! and sends back the JSON; nothing else here does I/O except through the
//! metadata closure.
//!
//! Two steps, as everywhere in pushgate: [`parse`] turns the query string
//! into a validated [`Query`] (a [`QueryError`] is a 400 with a reason),
//! [`search`] matches it against what is covered and renders DICOM JSON.
//!
//! Matching (PS3.4 C.2.2.2) where the standard leaves room:
//! - Person names match case-insensitively, always (C.2.2.2.1.1 allows it),
//!   on the alphabetic group. `fuzzymatching=true` adds an implicit trailing
//!   `*` and also lets the value match any single name component or word,
//!   so `Jans` and `anna` both find `Jansen^Anna`. Other text is exact.
//! - `*` and `?` wildcards in text and code strings; a lone `*` or an empty
//!   value is universal matching.
//! - Several values (`\`-separated; for UIDs, codes and numbers also
//!   `,`-separated; or the key repeated, as dicomweb-client sends lists)
//!   match if any one matches.
//! - Dates and times: a single value matches the whole period it names
//!   (`2024` is the year, `1030` is 10:30:00–10:30:59.999999); ranges
//!   `A-B`, `-B`, `A-`. Study Date with Study Time (and Performed Procedure
//!   Step Start Date with Time) are matched as one date-time range when
//!   both are given (C.2.2.2.5.1 combined matching). A time range may
//!   pass midnight (`2300-0100`).
//! - A stored empty value matches only universal matching.
//! - Keys of a lower level than the query (e.g. `/studies?Modality=CT`)
//!   match when some covered series or instance of the result matches all
//!   of them; upper-level keys at a lower level (e.g.
//!   `/instances?StudyInstanceUID=…&Modality=CT`) match against the
//!   result's study and series.
//! - Valid attributes the index does not keep (e.g. `SeriesDate`) are not
//!   matched; they are returned (from the stored metadata) and listed in
//!   [`Query::ignored_keys`] for a `Warning` header.
//!
//! Nothing outside the grant shows: counts, modalities and SOP classes are
//! computed over covered series and instances only, and a series without a
//! covered instance does not exist here. The BSN never appears except as
//! the Patient ID it was received as (see `render`).

mod attributes;
mod element;
pub(super) mod handler;
mod matching;
mod query;
mod render;
mod rows;
mod temporal;
#[cfg(test)]
mod tests;

use crate::store::{InstanceKey, InstanceRecord, SeriesRecord, StudyRecord, Uid};

pub use query::{Query, QueryError, parse};

/// The level searched: the last path segment of the QIDO-RS resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Studies,
    Series,
    Instances,
}

/// The UIDs in the resource path: `/studies` (none), `/studies/{s}/series`,
/// `/studies/{s}/instances`, `/studies/{s}/series/{se}/instances`,
/// `/series`, `/instances`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathScope {
    pub study: Option<Uid>,
    pub series: Option<Uid>,
}

/// What the grant covers of its study, resolved by the web layer.
pub struct Covered<'a> {
    /// Patient and study attributes. Its `series` map may hold series the
    /// grant does not cover; only `series` below counts.
    pub study: &'a StudyRecord,
    /// The covered series.
    pub series: Vec<(&'a Uid, &'a SeriesRecord)>,
    /// The covered instances (of all covered series).
    pub instances: Vec<(&'a InstanceKey, &'a InstanceRecord)>,
    /// The stored DICOM JSON of one instance, for attributes the records do
    /// not keep.
    pub metadata: &'a dyn Fn(&InstanceKey) -> Option<Vec<u8>>,
}

/// The matching results as a DICOM JSON array (`application/dicom+json`),
/// in a stable order (series by Series Number then UID, instances by
/// series, Instance Number, then UID), `offset` and `limit` applied.
/// A path naming a study or series that is not covered finds nothing.
pub fn search(
    query: &Query,
    path: &PathScope,
    covered: &Covered,
    retrieve_base: &str,
) -> Vec<serde_json::Value> {
    let study = rows::StudyView::new(covered);
    let candidates = study.rows(query.level(), path, retrieve_base);
    candidates
        .into_iter()
        .filter(|row| matching::row_matches(row, query.keys()))
        .skip(query.offset())
        .take(query.limit().unwrap_or(usize::MAX))
        .map(|row| render::render(&row, query, path, covered.metadata))
        .collect()
}
