//! Which journal records the audit shows: by patient (name, ID, BSN), by
//! study, by person (a member of staff's id or name, a holder's
//! identity), by period; and the one way the journal is read for the page,
//! the exports and the patient report — `journal::read`, which checks
//! every record's hash and its link to the one before, as `pushgate audit
//! verify` does, so every page says whether the chain holds.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;

use super::describe::people;
use super::knowledge::Knowledge;
use crate::console::form::Fields;
use crate::journal::{self, Head, JournalError, Record};
use crate::store::{Index, Timestamp, Uid};

/// What the filter form asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub patient: String,
    pub study: String,
    pub person: String,
    /// As typed (YYYY-MM-DD), for the form.
    pub from: String,
    pub to: String,
    /// From the start of `from`, local time.
    pub since: Option<Timestamp>,
    /// Until the end of `to`, local time (exclusive).
    pub until: Option<Timestamp>,
    /// Fields that could not be used, said why.
    pub problems: Vec<String>,
}

/// The start of a local day, `YYYY-MM-DD`; `next`: of the day after.
pub fn local_day(text: &str, next: bool) -> Option<Timestamp> {
    let date: jiff::civil::Date = text.trim().parse().ok()?;
    let date = if next { date.tomorrow().ok()? } else { date };
    let zoned = date.to_zoned(jiff::tz::TimeZone::system()).ok()?;
    u64::try_from(zoned.timestamp().as_millisecond())
        .ok()
        .map(Timestamp)
}

impl Filter {
    pub fn of(query: &Fields) -> Filter {
        let mut filter = Filter {
            patient: query.get("patient").to_string(),
            study: query.get("study").to_string(),
            person: query.get("person").to_string(),
            from: query.get("from").to_string(),
            to: query.get("to").to_string(),
            ..Filter::default()
        };
        if !filter.from.is_empty() {
            filter.since = local_day(&filter.from, false);
            if filter.since.is_none() {
                filter.problems.push(format!(
                    "from: {:?} is not a date (YYYY-MM-DD)",
                    filter.from
                ));
            }
        }
        if !filter.to.is_empty() {
            filter.until = local_day(&filter.to, true);
            if filter.until.is_none() {
                filter
                    .problems
                    .push(format!("to: {:?} is not a date (YYYY-MM-DD)", filter.to));
            }
        }
        if !filter.study.is_empty() && Uid::parse(&filter.study).is_err() {
            filter
                .problems
                .push(format!("study: {:?} is not a UID", filter.study));
        }
        filter
    }

    /// The filter as a query string (for the pager and the exports).
    pub fn query(&self) -> Vec<(&'static str, String)> {
        [
            ("patient", &self.patient),
            ("study", &self.study),
            ("person", &self.person),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect()
    }

    fn matches(&self, record: &Record, known: &Knowledge, patient_studies: &HashSet<Uid>) -> bool {
        if self.since.is_some_and(|t| record.at < t) || self.until.is_some_and(|t| record.at >= t) {
            return false;
        }
        let needs_studies = !self.study.is_empty() || !self.patient.is_empty();
        let studies = if needs_studies {
            known.studies_of(&record.event)
        } else {
            Vec::new()
        };
        if !self.study.is_empty() && !studies.iter().any(|s| s.as_str() == self.study.trim()) {
            return false;
        }
        if !self.patient.is_empty() && !studies.iter().any(|s| patient_studies.contains(s)) {
            return false;
        }
        if !self.person.is_empty() {
            let needle = self.person.trim().to_lowercase();
            if !people(&record.event)
                .iter()
                .any(|p| p.to_lowercase().contains(&needle))
            {
                return false;
            }
        }
        true
    }
}

/// What reading the journal showed of its chain.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// Records that verified.
    pub verified: u64,
    /// The last of them.
    pub head: Option<Head>,
    /// Gaps, renamed segments, the record where it breaks: as `audit
    /// verify` names them.
    pub problems: Vec<String>,
}

impl Chain {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The hash a line carries in front (`{"hash":"…",`).
fn hash_of(line: &str) -> String {
    line.get(9..73).unwrap_or_default().to_string()
}

/// Everything the journal in `dir` and the index say of grants, pushes
/// and the patients of studies. Blocking.
pub fn learn_all(dir: &Path, index: &dyn Index) -> Result<Knowledge, JournalError> {
    let mut known = Knowledge::from_index(index);
    if dir.exists() {
        for (record, _) in journal::read(dir, 1)?.flatten() {
            known.learn(&record.event);
        }
    }
    Ok(known)
}

/// Reads the whole journal in `dir`, checking the chain, and hands every
/// record `filter` admits to `each` (in journal order) with what is known
/// then of its grants, studies and patients. A patient filter reads the
/// journal twice: first to learn every study the patient had (also those
/// retention deleted since), then to filter. Blocking.
pub fn scan(
    dir: &Path,
    index: &dyn Index,
    filter: &Filter,
    mut each: impl FnMut(&Record, &str, &Knowledge) -> ControlFlow<()>,
) -> Result<Chain, JournalError> {
    let mut known = Knowledge::from_index(index);
    let mut chain = Chain::default();
    if !dir.exists() {
        return Ok(chain);
    }
    let patient_studies: HashSet<Uid> = if filter.patient.is_empty() {
        HashSet::new()
    } else {
        known = learn_all(dir, index)?;
        known
            .studies_of_patient(&filter.patient)
            .into_iter()
            .map(|(uid, _)| uid)
            .collect()
    };
    let mut stopped = false;
    for item in journal::read(dir, 1)? {
        match item {
            Ok((record, line)) => {
                chain.verified += 1;
                chain.head = Some(Head {
                    seq: record.seq,
                    hash: hash_of(&line),
                });
                known.learn(&record.event);
                if !stopped
                    && filter.matches(&record, &known, &patient_studies)
                    && each(&record, &line, &known).is_break()
                {
                    // the rest is still read: the chain is checked to its end
                    stopped = true;
                }
            }
            Err(e) => chain.problems.push(e.to_string()),
        }
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_period_is_whole_local_days() {
        let f = Filter::of(&fields(&[("from", "2026-12-07"), ("to", "2026-12-07")]));
        let (since, until) = (f.since.unwrap(), f.until.unwrap());
        assert!(f.problems.is_empty());
        // a day is 23, 24 or 25 hours
        let hours = (until.0 - since.0) / 3_600_000;
        assert!((23..=25).contains(&hours), "{hours}");
        let bad = Filter::of(&fields(&[("from", "7-12-2026"), ("study", "<x>")]));
        assert_eq!(bad.problems.len(), 2, "{:?}", bad.problems);
        assert_eq!(Filter::of(&fields(&[])), Filter::default());
    }
}
