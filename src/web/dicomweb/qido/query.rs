//! The query string of a QIDO-RS request (PS3.18 §8.3.4), parsed once into
//! a validated [`Query`].

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;

use super::Level;
use super::attributes::{REQUEST_ITEM_KEYS, attribute, known_attribute, vr_of};
use super::matching::{Condition, MatchKey, combine, condition};

/// A parsed search: matching keys, what to return, and which page.
#[derive(Debug, Clone)]
pub struct Query {
    level: Level,
    keys: Vec<MatchKey>,
    /// Attributes asked for by `includefield` or named as matching keys.
    returned: Vec<Tag>,
    include_all: bool,
    fuzzy: bool,
    limit: Option<usize>,
    offset: usize,
    ignored: Vec<String>,
}

/// Why a query string is refused (HTTP 400, with this as the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error(
        "unknown query parameter {0:?}: neither includefield, limit, offset, fuzzymatching nor a DICOM attribute keyword or tag"
    )]
    UnknownParameter(String),
    #[error("includefield: {0:?} is neither \"all\" nor a DICOM attribute keyword or tag")]
    UnknownIncludeField(String),
    #[error("{parameter} must be a non-negative integer, not {value:?}")]
    NotACount {
        parameter: &'static str,
        value: String,
    },
    #[error("fuzzymatching must be true or false, not {0:?}")]
    Fuzzymatching(String),
    #[error("{0} is given more than once")]
    Repeated(&'static str),
    #[error("{key}: {reason}")]
    BadValue { key: String, reason: String },
    #[error("{name:?}: {sequence} is not a sequence")]
    NotASequence { name: String, sequence: String },
    #[error("query string: {0}")]
    Encoding(String),
}

impl Query {
    pub fn level(&self) -> Level {
        self.level
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn fuzzy(&self) -> bool {
        self.fuzzy
    }

    /// Matching keys given a value but not matched on, because the index
    /// does not keep them (as named in the request).
    pub fn ignored_keys(&self) -> &[String] {
        &self.ignored
    }

    /// A `Warning` header value naming the ignored keys, if any.
    pub fn warning(&self) -> Option<String> {
        (!self.ignored.is_empty()).then(|| {
            format!(
                "299 pushgate \"The following attributes are not supported as matching keys and were ignored: {}\"",
                self.ignored.join(", ")
            )
        })
    }

    pub(super) fn keys(&self) -> &[MatchKey] {
        &self.keys
    }

    pub(super) fn returned(&self) -> &[Tag] {
        &self.returned
    }

    pub(super) fn include_all(&self) -> bool {
        self.include_all
    }
}

/// Parses the query string (without `?`) of a search at `level`.
pub fn parse(level: Level, query: Option<&str>) -> Result<Query, QueryError> {
    let mut parsed = Query {
        level,
        keys: Vec::new(),
        returned: Vec::new(),
        include_all: false,
        fuzzy: false,
        limit: None,
        offset: 0,
        ignored: Vec::new(),
    };
    let (mut limit, mut offset, mut fuzzy) = (None, None, None);
    // Matching keys by attribute path, in order; a repeated key (as
    // dicomweb-client sends a list) adds values.
    let mut groups: Vec<(Vec<Tag>, String, Vec<String>)> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(name)?, decode(value)?);
        match name.to_ascii_lowercase().as_str() {
            "includefield" => {
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if field.eq_ignore_ascii_case("all") {
                        parsed.include_all = true;
                        continue;
                    }
                    let path = attribute_path(field).map_err(|e| match e {
                        QueryError::UnknownParameter(f) => QueryError::UnknownIncludeField(f),
                        e => e,
                    })?;
                    parsed.returned.push(path[0]);
                }
            }
            // content negotiation (PS3.18 8.3.3.1), handled by the web layer
            "accept" | "charset" => {}
            "limit" => set_once(&mut limit, "limit", count("limit", &value)?)?,
            "offset" => set_once(&mut offset, "offset", count("offset", &value)?)?,
            "fuzzymatching" => {
                let on = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(QueryError::Fuzzymatching(value)),
                };
                set_once(&mut fuzzy, "fuzzymatching", on)?;
            }
            _ => {
                let path = attribute_path(&name)?;
                match groups.iter_mut().find(|(p, _, _)| *p == path) {
                    Some((_, _, values)) => values.push(value),
                    None => groups.push((path, name, vec![value])),
                }
            }
        }
    }
    parsed.limit = limit;
    parsed.offset = offset.unwrap_or(0);
    parsed.fuzzy = fuzzy.unwrap_or(false);
    let mut request_items = Vec::new();
    for (path, name, values) in groups {
        parsed.returned.push(path[0]);
        let supported = match path.as_slice() {
            [tag] => known_attribute(*tag)
                .filter(|k| k.matchable)
                .map(|k| (k.vr, k.level.unwrap_or(Level::Studies))),
            [tags::REQUEST_ATTRIBUTES_SEQUENCE, item_key] => REQUEST_ITEM_KEYS
                .iter()
                .find(|(t, _)| t == item_key)
                .map(|(_, vr)| (*vr, Level::Series)),
            _ => None,
        };
        let Some((vr, attribute_level)) = supported else {
            if values.iter().any(|v| !v.trim().is_empty()) {
                parsed.ignored.push(name);
            }
            continue;
        };
        let Some(condition) = any_of(vr, &name, &values, parsed.fuzzy)? else {
            continue;
        };
        match path.as_slice() {
            [tag] => parsed.keys.push(MatchKey {
                tag: *tag,
                level: attribute_level,
                condition,
            }),
            _ => request_items.push((path[1], condition)),
        }
    }
    if !request_items.is_empty() {
        parsed.keys.push(MatchKey {
            tag: tags::REQUEST_ATTRIBUTES_SEQUENCE,
            level: Level::Series,
            condition: Condition::Items(request_items),
        });
    }
    combine_date_time(&mut parsed.keys, tags::STUDY_DATE, tags::STUDY_TIME);
    combine_date_time(
        &mut parsed.keys,
        tags::PERFORMED_PROCEDURE_STEP_START_DATE,
        tags::PERFORMED_PROCEDURE_STEP_START_TIME,
    );
    Ok(parsed)
}

/// The condition of all values given for one key (any may match), or
/// `None` if one of them is universal.
fn any_of(
    vr: VR,
    name: &str,
    values: &[String],
    fuzzy: bool,
) -> Result<Option<Condition>, QueryError> {
    let mut alternatives = Vec::new();
    for value in values {
        let parsed = condition(vr, value, fuzzy).map_err(|reason| QueryError::BadValue {
            key: name.to_string(),
            reason,
        })?;
        match parsed {
            Some(c) => alternatives.push(c),
            None => return Ok(None),
        }
    }
    Ok(match alternatives.len() {
        1 => alternatives.pop(),
        _ => Some(Condition::Any(alternatives)),
    })
}

fn combine_date_time(keys: &mut Vec<MatchKey>, date: Tag, time: Tag) {
    let position = |tag| keys.iter().position(|k| k.tag == tag);
    let (Some(d), Some(t)) = (position(date), position(time)) else {
        return;
    };
    if let Some(combined) = combine(&keys[d].condition, time, &keys[t].condition) {
        keys[d].condition = combined;
        keys.remove(t);
    }
}

/// `PatientName`, `00100010`, or a sequence path such as
/// `RequestAttributesSequence.ScheduledProcedureStepID`.
fn attribute_path(name: &str) -> Result<Vec<Tag>, QueryError> {
    let path = name
        .split('.')
        .map(attribute)
        .collect::<Option<Vec<Tag>>>()
        .ok_or_else(|| QueryError::UnknownParameter(name.to_string()))?;
    for (tag, part) in path.iter().zip(name.split('.')).take(path.len() - 1) {
        if vr_of(*tag).is_some_and(|vr| vr != VR::SQ) {
            return Err(QueryError::NotASequence {
                name: name.to_string(),
                sequence: part.to_string(),
            });
        }
    }
    Ok(path)
}

fn count(parameter: &'static str, value: &str) -> Result<usize, QueryError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::NotACount {
            parameter,
            value: value.to_string(),
        });
    }
    // All digits: only too large to fail, which is as good as no limit.
    Ok(value.parse().unwrap_or(usize::MAX))
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), QueryError> {
    if slot.replace(value).is_some() {
        return Err(QueryError::Repeated(name));
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a
/// byte; the result must be UTF-8.
fn decode(raw: &str) -> Result<String, QueryError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let escape = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or_else(|| {
                        let shown: String = raw[i..].chars().take(3).collect();
                        QueryError::Encoding(format!("{shown:?} is not a percent-escape"))
                    })?;
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(escape[0]) * 16 + hex(escape[1]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::Encoding(format!("{raw:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(query: &str) -> QueryError {
        parse(Level::Studies, Some(query)).unwrap_err()
    }

    #[test]
    fn decoding() {
        assert_eq!(decode("de+Boer%2A").unwrap(), "de Boer*");
        assert_eq!(decode("00081030%2C00080060").unwrap(), "00081030,00080060");
        assert_eq!(decode("M%C3%BCller").unwrap(), "Müller");
        assert_eq!(decode("50%25").unwrap(), "50%");
        assert_eq!(decode("%2a").unwrap(), "*");
        assert!(matches!(decode("%zz"), Err(QueryError::Encoding(_))));
        assert!(matches!(decode("abc%2"), Err(QueryError::Encoding(_))));
        assert!(matches!(decode("%+1"), Err(QueryError::Encoding(_))));
        assert!(matches!(decode("%FF"), Err(QueryError::Encoding(_))));
    }

    #[test]
    fn parse_errors_name_what_is_wrong() {
        assert_eq!(err("foo=bar"), QueryError::UnknownParameter("foo".into()));
        assert_eq!(
            err("patientname=x"),
            QueryError::UnknownParameter("patientname".into())
        );
        assert_eq!(
            err("includefield=StudyDescription,Bogus"),
            QueryError::UnknownIncludeField("Bogus".into())
        );
        assert_eq!(
            err("limit=-1"),
            QueryError::NotACount {
                parameter: "limit",
                value: "-1".into()
            }
        );
        assert!(matches!(err("limit="), QueryError::NotACount { .. }));
        assert!(matches!(err("offset=1.5"), QueryError::NotACount { .. }));
        assert!(matches!(err("offset=%2B1"), QueryError::NotACount { .. }));
        assert_eq!(err("limit=1&limit=2"), QueryError::Repeated("limit"));
        assert_eq!(
            err("fuzzymatching=yes"),
            QueryError::Fuzzymatching("yes".into())
        );
        assert_eq!(
            err("fuzzymatching=true&fuzzymatching=true"),
            QueryError::Repeated("fuzzymatching")
        );
        assert!(
            matches!(err("StudyDate=2024-01-01"), QueryError::BadValue { key, .. } if key == "StudyDate")
        );
        assert!(matches!(err("StudyTime=2500"), QueryError::BadValue { .. }));
        assert!(matches!(
            err("StudyInstanceUID=1.2.x"),
            QueryError::BadValue { .. }
        ));
        assert!(
            matches!(err("00200011=one"), QueryError::BadValue { key, .. } if key == "00200011")
        );
        assert!(matches!(
            err("PatientName.PatientID=1"),
            QueryError::NotASequence { .. }
        ));
        assert!(matches!(err("PatientName=%E0"), QueryError::Encoding(_)));
        let message = err("limit=ten").to_string();
        assert!(
            message.contains("limit") && message.contains("ten"),
            "{message}"
        );
    }

    #[test]
    fn pages_and_flags() {
        let q = parse(
            Level::Studies,
            Some("limit=101&offset=0&fuzzymatching=false"),
        )
        .unwrap();
        assert_eq!((q.limit(), q.offset(), q.fuzzy()), (Some(101), 0, false));
        let q = parse(Level::Studies, None).unwrap();
        assert_eq!((q.limit(), q.offset(), q.fuzzy()), (None, 0, false));
        let q = parse(Level::Studies, Some("LIMIT=99999999999999999999999")).unwrap();
        assert_eq!(q.limit(), Some(usize::MAX));
        let q = parse(Level::Studies, Some("&&fuzzymatching=true&")).unwrap();
        assert!(q.fuzzy());
    }

    #[test]
    fn includefield_lists_repeats_and_all() {
        let q = parse(
            Level::Series,
            Some("includefield=00080021,00080031&includefield=SeriesDate&includefield=StudyDescription%2C+00081030"),
        )
        .unwrap();
        assert_eq!(
            q.returned(),
            &[
                tags::SERIES_DATE,
                tags::SERIES_TIME,
                tags::SERIES_DATE,
                tags::STUDY_DESCRIPTION,
                tags::STUDY_DESCRIPTION
            ]
        );
        assert!(!q.include_all());
        assert!(
            parse(Level::Studies, Some("includefield=all"))
                .unwrap()
                .include_all()
        );
        let q = parse(
            Level::Studies,
            Some("includefield=RequestAttributesSequence.RequestedProcedureID"),
        )
        .unwrap();
        assert_eq!(q.returned(), &[tags::REQUEST_ATTRIBUTES_SEQUENCE]);
    }

    #[test]
    fn keys_by_keyword_or_tag_and_repeats_add_values() {
        let q = parse(
            Level::Studies,
            Some("PatientID=a&00100020=b&ModalitiesInStudy="),
        )
        .unwrap();
        assert_eq!(q.keys().len(), 1, "empty value is universal");
        assert!(matches!(&q.keys()[0].condition, Condition::Any(v) if v.len() == 2));
        assert_eq!(q.returned(), &[tags::PATIENT_ID, tags::MODALITIES_IN_STUDY]);
    }

    #[test]
    fn unsupported_attributes_are_ignored_with_a_warning() {
        let q = parse(
            Level::Series,
            Some("SeriesDate=20240312&PatientAge=&NumberOfStudyRelatedInstances=3"),
        )
        .unwrap();
        assert!(q.keys().is_empty());
        assert_eq!(
            q.ignored_keys(),
            &["SeriesDate", "NumberOfStudyRelatedInstances"]
        );
        assert!(q.warning().unwrap().starts_with("299 pushgate \""));
        assert_eq!(
            q.returned(),
            &[
                tags::SERIES_DATE,
                tags::PATIENT_AGE,
                tags::NUMBER_OF_STUDY_RELATED_INSTANCES
            ]
        );
        assert!(parse(Level::Series, None).unwrap().warning().is_none());
    }

    #[test]
    fn request_attribute_keys_become_one_sequence_key() {
        let q = parse(
            Level::Series,
            Some("RequestAttributesSequence.ScheduledProcedureStepID=SPS1&00400275.00401001=RP*"),
        )
        .unwrap();
        assert_eq!(q.keys().len(), 1);
        assert_eq!(q.keys()[0].tag, tags::REQUEST_ATTRIBUTES_SEQUENCE);
        assert!(matches!(&q.keys()[0].condition, Condition::Items(items) if items.len() == 2));
        let q = parse(
            Level::Series,
            Some("RequestAttributesSequence.AccessionNumber=1"),
        )
        .unwrap();
        assert_eq!(
            q.ignored_keys(),
            &["RequestAttributesSequence.AccessionNumber"]
        );
    }

    #[test]
    fn study_date_and_time_combine() {
        let q = parse(
            Level::Studies,
            Some("StudyDate=20240312&StudyTime=0900-1000"),
        )
        .unwrap();
        assert_eq!(q.keys().len(), 1);
        assert!(matches!(q.keys()[0].condition, Condition::DateTime { .. }));
        let q = parse(Level::Studies, Some("StudyDate=20240312&StudyTime=")).unwrap();
        assert!(matches!(q.keys()[0].condition, Condition::Range { .. }));
    }
}
