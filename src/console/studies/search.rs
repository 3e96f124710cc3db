//! What a search of the study list asks, read from the query string, and
//! whether a study answers it.
//!
//! - name: case-insensitive; `*` and `?` as wildcards over the whole name,
//!   without them a part of it (`anna` finds `Jansen^Anna`); `^` and
//!   spaces are the same.
//! - patient ID, accession: the whole value (case-insensitive), or a
//!   pattern with `*` and `?`.
//! - BSN: the nine digits (spaces and dots ignored).
//! - from, to: study dates, inclusive (`YYYY-MM-DD` or `YYYYMMDD`); a
//!   study without a date is not in any range.
//! - modality: one of the study's modalities.

use super::catalogue::{Summary, fold};
use crate::console::Fields;

/// Rows on one page of the list.
pub const PAGE: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// As typed (shown back in the form).
    pub name: String,
    pub patient_id: String,
    pub bsn: String,
    pub accession: String,
    /// As typed; `from_da`/`to_da`: as DICOM dates.
    pub from: String,
    pub to: String,
    from_da: Option<String>,
    to_da: Option<String>,
    pub modality: String,
    /// From 1.
    pub page: usize,
}

/// A date from the form as a DICOM date (YYYYMMDD), checked.
fn dicom_date(field: &str, value: &str) -> Result<Option<String>, String> {
    let digits: String = value.chars().filter(|c| *c != '-').collect();
    if value.is_empty() {
        return Ok(None);
    }
    let valid = digits.len() == 8
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(digits[4..6].parse::<u8>(), Ok(1..=12))
        && matches!(digits[6..8].parse::<u8>(), Ok(1..=31));
    if valid {
        Ok(Some(digits))
    } else {
        Err(format!("{field}: {value:?} is not a date (YYYY-MM-DD)"))
    }
}

impl Query {
    /// The query string's search; a date that is not one is refused with
    /// the reason.
    pub fn read(fields: &Fields) -> Result<Query, String> {
        let bounded = |name: &str| fields.get(name).chars().take(64).collect::<String>();
        let from = bounded("from");
        let to = bounded("to");
        let from_da = dicom_date("from", &from)?;
        let to_da = dicom_date("to", &to)?;
        Ok(Query {
            name: bounded("name"),
            patient_id: bounded("patient_id"),
            bsn: bounded("bsn"),
            accession: bounded("accession"),
            from,
            to,
            from_da,
            to_da,
            modality: bounded("modality").to_ascii_uppercase(),
            page: fields.get("page").parse::<usize>().unwrap_or(1).max(1),
        })
    }

    /// Whether anything is asked (beyond the page).
    pub fn is_search(&self) -> bool {
        !(self.name.is_empty()
            && self.patient_id.is_empty()
            && self.bsn.is_empty()
            && self.accession.is_empty()
            && self.from.is_empty()
            && self.to.is_empty()
            && self.modality.is_empty())
    }

    pub fn matches(&self, s: &Summary) -> bool {
        (self.name.is_empty() || name_matches(&fold(&self.name), &s.name_key))
            && (self.patient_id.is_empty() || value_matches(&self.patient_id, &s.patient_id))
            && (self.accession.is_empty() || value_matches(&self.accession, &s.accession))
            && (self.bsn.is_empty() || s.bsn.as_deref() == Some(digits(&self.bsn).as_str()))
            && (self.modality.is_empty() || s.modalities.contains(&self.modality))
            && self.in_range(&s.study_date)
    }

    fn in_range(&self, date: &str) -> bool {
        if self.from_da.is_none() && self.to_da.is_none() {
            return true;
        }
        let date = date.trim();
        if date.len() != 8 {
            return false;
        }
        self.from_da.as_deref().is_none_or(|f| date >= f)
            && self.to_da.as_deref().is_none_or(|t| date <= t)
    }

    /// The query string of this search at `page`, for the pager's links.
    pub fn link(&self, page: usize) -> String {
        let mut pairs: Vec<(&str, String)> = [
            ("name", &self.name),
            ("patient_id", &self.patient_id),
            ("bsn", &self.bsn),
            ("accession", &self.accession),
            ("from", &self.from),
            ("to", &self.to),
            ("modality", &self.modality),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect();
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect();
        if query.is_empty() {
            "/console/studies".into()
        } else {
            format!("/console/studies?{}", query.join("&"))
        }
    }
}

fn digits(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_digit()).collect()
}

fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// A name: a pattern over the whole folded name, or a part of it.
fn name_matches(folded_query: &str, name_key: &str) -> bool {
    if has_wildcard(folded_query) {
        glob(folded_query, name_key)
    } else {
        name_key.contains(folded_query)
    }
}

/// An ID or accession number: the whole value, or a pattern.
fn value_matches(query: &str, value: &str) -> bool {
    let (query, value) = (query.trim().to_lowercase(), value.trim().to_lowercase());
    if has_wildcard(&query) {
        glob(&query, &value)
    } else {
        query == value
    }
}

/// `*` any run of characters, `?` one; the rest as it is. Linear in
/// practice (the last `*` is the only one backtracked to).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A query value, percent-encoded.
pub fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Timestamp, Uid};

    fn study(name: &str, id: &str, acc: &str, date: &str, modalities: &[&str]) -> Summary {
        Summary {
            study_uid: Uid::parse("1.2.3").unwrap(),
            patient_name: name.into(),
            patient_id: id.into(),
            birth_date: String::new(),
            bsn: Some("999911120".into()),
            study_date: date.into(),
            study_time: String::new(),
            description: String::new(),
            accession: acc.into(),
            modalities: modalities.iter().map(|m| m.to_string()).collect(),
            num_series: 1,
            num_instances: 1,
            bytes: 1,
            complete: true,
            last_arrival: Timestamp(1),
            sources: vec![],
            name_key: fold(name),
        }
    }

    fn query(pairs: &[(&str, &str)]) -> Query {
        Query::read(&Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
        .unwrap()
    }

    #[test]
    fn each_criterion_finds_its_study_and_not_the_others() {
        let anna = study("Jansen^Anna", "PAT-1", "ACC-1", "20260105", &["CT", "PR"]);
        let piet = study("de Boer^Piet", "PAT-2", "ACC-22", "20251231", &["MR"]);
        // (query fields, finds anna, finds piet)
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, bool);
        let cases: &[Case<'_>] = &[
            (&[("name", "anna")], true, false),
            (&[("name", "JANSEN anna")], true, false),
            (&[("name", "jansen^anna")], true, false),
            (&[("name", "*boer*")], false, true),
            (&[("name", "de b?er*")], false, true),
            (&[("name", "boer")], false, true),
            (&[("name", "b*r")], false, false),
            (&[("patient_id", "pat-1")], true, false),
            (&[("patient_id", "PAT")], false, false),
            (&[("patient_id", "PAT-*")], true, true),
            (&[("accession", "ACC-2?")], false, true),
            (&[("accession", "acc-1")], true, false),
            (&[("bsn", "9999 11 120")], true, true),
            (&[("bsn", "999911121")], false, false),
            (&[("from", "2026-01-01")], true, false),
            (&[("to", "2025-12-31")], false, true),
            (&[("from", "20251231"), ("to", "2025-12-31")], false, true),
            (&[("modality", "pr")], true, false),
            (&[("modality", "MR"), ("name", "anna")], false, false),
            (&[], true, true),
        ];
        for (pairs, a, p) in cases {
            let q = query(pairs);
            assert_eq!((q.matches(&anna), q.matches(&piet)), (*a, *p), "{pairs:?}");
        }
    }

    #[test]
    fn a_date_that_is_not_one_is_refused_and_undated_studies_are_in_no_range() {
        let bad = Fields(vec![("from".into(), "2026-13-01".into())]);
        assert!(Query::read(&bad).unwrap_err().contains("not a date"));
        let undated = study("A", "1", "", "", &[]);
        assert!(!query(&[("to", "2030-01-01")]).matches(&undated));
    }

    #[test]
    fn links_keep_the_search() {
        let q = query(&[("name", "o'Brien & <x>"), ("page", "3")]);
        assert_eq!(q.page, 3);
        assert_eq!(
            q.link(4),
            "/console/studies?name=o%27Brien%20%26%20%3Cx%3E&page=4"
        );
        assert_eq!(query(&[]).link(1), "/console/studies");
    }

    #[test]
    fn glob_is_anchored() {
        assert!(glob("a*c", "abc") && glob("a*c", "ac") && glob("*", ""));
        assert!(!glob("a*c", "abcd") && !glob("?", ""));
        assert!(glob("*a*a*a*b", "aaaaaaaaab") && !glob("*a*a*a*b", "aaaaaaaaa"));
    }
}
