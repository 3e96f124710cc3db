//! Matching one key against one attribute (PS3.4 C.2.2.2), and a result
//! against all keys. The choices the standard leaves open are listed in
//! the module documentation of `qido`.

use dicom_core::{Tag, VR};

use super::Level;
use super::element::{Element, Values};
use super::rows::Row;
use super::temporal::Temporal;

/// A non-universal matching key.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MatchKey {
    pub tag: Tag,
    /// The level of the attribute (a Request Attributes Sequence key is a
    /// series key).
    pub level: Level,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Condition {
    /// Single value or wildcard matching of text.
    Text(Pattern),
    /// One UID of a list.
    Uid(String),
    Number(i64),
    /// Date (`YYYYMMDD`) or time (`HHMMSS.FFFFFF`) bounds, inclusive,
    /// in the fixed-width form `Temporal::normalize` gives.
    Range {
        kind: Temporal,
        low: Option<String>,
        high: Option<String>,
    },
    /// This date key with the `time` key as one date-time range
    /// (C.2.2.2.5.1): bounds are `YYYYMMDDHHMMSS.FFFFFF`.
    DateTime {
        time: Tag,
        low: Option<String>,
        high: Option<String>,
    },
    /// Sequence matching: some item matches every key.
    Items(Vec<(Tag, Condition)>),
    /// Several values: any one.
    Any(Vec<Condition>),
}

/// The condition a query value sets, or `None` for universal matching
/// (empty, or a lone `*`). `Err` is the reason the value is malformed.
pub(super) fn condition(vr: VR, value: &str, fuzzy: bool) -> Result<Option<Condition>, String> {
    let separators: &[char] = match vr {
        VR::UI | VR::CS | VR::IS | VR::US => &['\\', ','],
        _ => &['\\'],
    };
    let mut alternatives = Vec::new();
    for part in value.split(separators).map(str::trim) {
        if part.is_empty() {
            continue;
        }
        match atom(vr, part, fuzzy)? {
            Some(condition) => alternatives.push(condition),
            None => return Ok(None),
        }
    }
    Ok(match alternatives.len() {
        0 => None,
        1 => alternatives.pop(),
        _ => Some(Condition::Any(alternatives)),
    })
}

fn atom(vr: VR, value: &str, fuzzy: bool) -> Result<Option<Condition>, String> {
    if value.chars().all(|c| c == '*') {
        return Ok(None);
    }
    match vr {
        VR::UI => crate::store::Uid::parse(value)
            .map(|_| Some(Condition::Uid(value.to_string())))
            .map_err(|_| format!("{value:?} is not a UID")),
        VR::IS | VR::US => value
            .parse::<i64>()
            .map(|n| Some(Condition::Number(n)))
            .map_err(|_| format!("{value:?} is not an integer")),
        VR::DA => range(Temporal::Date, value),
        VR::TM => range(Temporal::Time, value),
        VR::PN => Ok(Some(Condition::Text(Pattern::person_name(value, fuzzy)))),
        _ => Ok(Some(Condition::Text(Pattern::exact(value)))),
    }
}

/// `A`, `A-B`, `-B`, `A-`: a single value is the period it names.
fn range(kind: Temporal, value: &str) -> Result<Option<Condition>, String> {
    let (low, high) = match value.split_once('-') {
        None => (Some(value), Some(value)),
        Some((_, b)) if b.contains('-') => {
            return Err(format!("{value:?} is not a range: more than one '-'"));
        }
        Some((a, b)) => (
            Some(a).filter(|s| !s.is_empty()),
            Some(b).filter(|s| !s.is_empty()),
        ),
    };
    let low = low.map(|a| kind.bound(a, false)).transpose()?;
    let high = high.map(|b| kind.bound(b, true)).transpose()?;
    // A time range may pass midnight (`2300-0100`); a date range may not.
    if let (Temporal::Date, Some(a), Some(b)) = (kind, &low, &high)
        && a > b
    {
        return Err(format!("{value:?} ends before it starts"));
    }
    if low.is_none() && high.is_none() {
        return Ok(None);
    }
    Ok(Some(Condition::Range { kind, low, high }))
}

/// Text with `*` (any run) and `?` (one character) wildcards.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pattern {
    chars: Vec<char>,
    person_name: bool,
    fuzzy: bool,
}

impl Pattern {
    pub fn exact(value: &str) -> Pattern {
        Pattern {
            chars: value.chars().collect(),
            person_name: false,
            fuzzy: false,
        }
    }

    /// Case-insensitive; trailing empty components (`Jansen^Anna^^`) do
    /// not count.
    pub fn person_name(value: &str, fuzzy: bool) -> Pattern {
        let mut chars: Vec<char> = value.trim_end_matches('^').to_lowercase().chars().collect();
        if fuzzy && chars.last() != Some(&'*') {
            chars.push('*');
        }
        Pattern {
            chars,
            person_name: true,
            fuzzy,
        }
    }

    pub fn matches(&self, value: &str) -> bool {
        if !self.person_name {
            let value: Vec<char> = value.chars().collect();
            return wildcard(&self.chars, &value);
        }
        let lowered = value.to_lowercase();
        // Without '=' in the query, a name is its alphabetic group.
        let name = if self.chars.contains(&'=') {
            lowered.as_str()
        } else {
            lowered.split('=').next().unwrap_or("")
        };
        let name = name.trim_end_matches('^');
        let whole: Vec<char> = name.chars().collect();
        wildcard(&self.chars, &whole)
            || (self.fuzzy
                && name
                    .split(['^', ' '])
                    .filter(|w| !w.is_empty())
                    .any(|word| wildcard(&self.chars, &word.chars().collect::<Vec<_>>())))
    }
}

fn wildcard(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

fn in_range(value: &str, low: &Option<String>, high: &Option<String>) -> bool {
    low.as_deref().is_none_or(|l| value >= l) && high.as_deref().is_none_or(|h| value <= h)
}

fn texts(element: &Element) -> &[String] {
    match &element.values {
        Values::Text(values) => values,
        _ => &[],
    }
}

impl Condition {
    /// Whether some value of `element` matches. An empty value matches
    /// nothing (universal matching never gets here).
    pub fn matches(&self, element: &Element) -> bool {
        match self {
            Condition::Any(alternatives) => alternatives.iter().any(|c| c.matches(element)),
            Condition::Text(pattern) => texts(element).iter().any(|v| pattern.matches(v)),
            Condition::Uid(uid) => texts(element).iter().any(|v| v == uid),
            Condition::Number(n) => match &element.values {
                Values::Numbers(values) => values.contains(n),
                Values::Text(values) => values.iter().any(|v| v.parse() == Ok(*n)),
                Values::Items(_) => false,
            },
            Condition::Range { kind, low, high } => texts(element)
                .iter()
                .filter_map(|v| kind.normalize(v))
                .any(|v| match (low, high) {
                    (Some(l), Some(h)) if l > h => v >= *l || v <= *h,
                    _ => in_range(&v, low, high),
                }),
            Condition::Items(keys) => match &element.values {
                Values::Items(items) => items.iter().any(|item| {
                    keys.iter().all(|(tag, condition)| {
                        item.iter()
                            .find(|(t, _)| t == tag)
                            .is_some_and(|(_, e)| condition.matches(e))
                    })
                }),
                _ => false,
            },
            // Needs two attributes: see `key_matches`.
            Condition::DateTime { .. } => false,
        }
    }
}

/// Study Date with Study Time given as ranges become one date-time range.
pub(super) fn combine(
    date: &Condition,
    time: Tag,
    time_condition: &Condition,
) -> Option<Condition> {
    let (
        Condition::Range {
            kind: Temporal::Date,
            low: date_low,
            high: date_high,
        },
        Condition::Range {
            kind: Temporal::Time,
            low: time_low,
            high: time_high,
        },
    ) = (date, time_condition)
    else {
        return None;
    };
    let low = date_low
        .as_ref()
        .map(|d| format!("{d}{}", time_low.as_deref().unwrap_or("000000.000000")));
    let high = date_high
        .as_ref()
        .map(|d| format!("{d}{}", time_high.as_deref().unwrap_or("235959.999999")));
    // One day and a time range past midnight: the nights of that day,
    // matched apart, rather than nothing.
    if let (Some(l), Some(h)) = (&low, &high)
        && l > h
    {
        return None;
    }
    Some(Condition::DateTime { time, low, high })
}

fn key_matches(row: &Row, key: &MatchKey) -> bool {
    match &key.condition {
        Condition::DateTime { time, low, high } => {
            let value = |tag, kind: Temporal| {
                row.element(tag)
                    .and_then(|e| texts(&e).first().and_then(|v| kind.normalize(v)))
            };
            match (value(key.tag, Temporal::Date), value(*time, Temporal::Time)) {
                (Some(date), Some(time)) => in_range(&format!("{date}{time}"), low, high),
                _ => false,
            }
        }
        condition => row.element(key.tag).is_some_and(|e| condition.matches(&e)),
    }
}

/// A result matches when its own and upper-level keys match it, and, if
/// there are keys of lower levels, some covered instance under it matches
/// all of those.
pub(super) fn row_matches(row: &Row, keys: &[MatchKey]) -> bool {
    let (own, lower): (Vec<&MatchKey>, Vec<&MatchKey>) =
        keys.iter().partition(|k| k.level <= row.level());
    own.iter().all(|k| key_matches(row, k))
        && (lower.is_empty()
            || row
                .children()
                .any(|child| lower.iter().all(|k| key_matches(&child, k))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(vr: VR, value: &str) -> Element {
        Element::text(vr, value)
    }

    fn cond(vr: VR, query: &str) -> Condition {
        condition(vr, query, false).unwrap().expect("not universal")
    }

    fn hits(vr: VR, query: &str, stored: &str) -> bool {
        cond(vr, query).matches(&text(vr, stored))
    }

    #[test]
    fn universal_matching() {
        for q in ["", "  ", "*", "**", "\\", "-"] {
            let vr = if q == "-" { VR::DA } else { VR::LO };
            assert_eq!(condition(vr, q, false), Ok(None), "{q:?}");
        }
        assert_eq!(condition(VR::UI, "*", false), Ok(None));
        assert_eq!(condition(VR::CS, "CT\\*", false), Ok(None));
    }

    #[test]
    fn single_value_is_exact_and_case_sensitive_except_person_names() {
        assert!(hits(VR::SH, "ZKHA24031201", "ZKHA24031201"));
        assert!(!hits(VR::SH, "zkha24031201", "ZKHA24031201"));
        assert!(!hits(VR::SH, "ZKHA2403120", "ZKHA24031201"));
        assert!(hits(VR::PN, "jansen^anna", "Jansen^Anna"));
        assert!(hits(VR::PN, "Jansen^Anna", "Jansen^Anna^^"));
        assert!(!hits(VR::PN, "Jansen", "Jansen^Anna"));
        assert!(!hits(VR::LO, "x", ""), "empty stored value");
    }

    #[test]
    fn wildcards() {
        assert!(hits(VR::PN, "*smith*", "Goldsmith^John"));
        assert!(hits(VR::PN, "jan*", "Jansen^Anna"));
        assert!(hits(VR::PN, "J?nsen*", "Jansen^Anna"));
        assert!(!hits(VR::PN, "J?nsen", "Jansen^Anna"));
        assert!(hits(VR::LO, "CT*contrast", "CT hersenen zonder contrast"));
        assert!(!hits(VR::LO, "ct*", "CT hersenen"));
        assert!(hits(VR::CS, "C?", "CT"));
        assert!(hits(VR::LO, "a*b*c", "axxbyyc"));
        assert!(!hits(VR::LO, "a*b*c", "axxbyy"));
        assert!(hits(VR::LO, "*ë*", "intracraniële"));
        assert!(hits(VR::LO, "???", "abc") && !hits(VR::LO, "???", "ab"));
    }

    #[test]
    fn fuzzy_person_names() {
        let fuzzy = |q: &str, stored: &str| {
            condition(VR::PN, q, true)
                .unwrap()
                .unwrap()
                .matches(&text(VR::PN, stored))
        };
        assert!(fuzzy("jans", "Jansen^Anna"));
        assert!(fuzzy("anna", "Jansen^Anna"));
        assert!(fuzzy("boer", "de Boer^Sanne"));
        assert!(fuzzy("MÜLLER", "Müller^Jörg"));
        assert!(!fuzzy("nna", "Jansen^Anna"));
    }

    #[test]
    fn several_values_any_one() {
        assert!(hits(VR::CS, "MR\\CT", "CT"));
        assert!(hits(VR::CS, "MR,CT", "CT"));
        assert!(!hits(VR::CS, "MR,US", "CT"));
        assert!(hits(VR::CS, "CT", "OT\\CT"), "multi-valued stored");
        assert!(hits(VR::LO, "a,b", "a,b"), "commas are text in LO");
        assert!(hits(VR::IS, "1,901", "901"));
    }

    #[test]
    fn uid_lists() {
        assert!(hits(VR::UI, "1.2.3,1.2.4", "1.2.4"));
        assert!(hits(VR::UI, "1.2.3\\1.2.4", "1.2.3"));
        assert!(!hits(VR::UI, "1.2.3", "1.2.34"));
        assert!(condition(VR::UI, "1.2.*", false).is_err());
        assert!(
            condition(VR::UI, "1.2.3,abc", false)
                .unwrap_err()
                .contains("abc")
        );
    }

    #[test]
    fn numbers() {
        let n = |q: &str, stored: Option<i64>| {
            cond(VR::IS, q).matches(&Element::number(VR::IS, stored))
        };
        assert!(n("901", Some(901)));
        assert!(n("0901", Some(901)));
        assert!(n("-1", Some(-1)));
        assert!(!n("901", None));
        assert!(
            condition(VR::IS, "9x", false)
                .unwrap_err()
                .contains("integer")
        );
    }

    #[test]
    fn date_ranges() {
        let d = |q: &str, stored: &str| hits(VR::DA, q, stored);
        assert!(d("20240312", "20240312"));
        assert!(!d("20240312", "20240313"));
        assert!(d("20240101-20241231", "20240312"));
        assert!(!d("20240101-20241231", "20250101"));
        assert!(d("-2024", "19580614"));
        assert!(d("-2024", "20241231"));
        assert!(!d("-2024", "20250101"));
        assert!(d("2024-", "20240101"));
        assert!(!d("2024-", "20231231"));
        assert!(d("202403", "20240331"));
        assert!(d("2024", "2024.03.12"), "legacy stored format");
        assert!(!d("2024-", ""), "empty stored value");
        for bad in [
            "2024-01-01",
            "20241301",
            "20240132",
            "2024x",
            "24",
            "20240101-20231231",
        ] {
            assert!(condition(VR::DA, bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_ranges() {
        let t = |q: &str, stored: &str| hits(VR::TM, q, stored);
        assert!(t("094107", "094107"));
        assert!(t("094107", "094107.123"));
        assert!(t("0941", "094159.999"));
        assert!(t("09", "095959"));
        assert!(!t("0941", "094200"));
        assert!(t("0900-1000", "094107"));
        assert!(t("-0942", "094107"));
        assert!(!t("0942-", "094107"));
        assert!(t("094107.5-094108", "094107.6"));
        assert!(t("10:00-", "10:30"), "legacy separators");
        assert!(t("2300-0100", "233000") && t("2300-0100", "003000"));
        assert!(!t("2300-0100", "120000"), "past midnight");
        for bad in ["2500", "0960", "1", "094107.1234567", "10-09-08"] {
            assert!(condition(VR::TM, bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn combined_date_time() {
        let date = cond(VR::DA, "20240311-20240312");
        let time = cond(VR::TM, "2300-1000");
        let combined = combine(&date, dicom_dictionary_std::tags::STUDY_TIME, &time).unwrap();
        let Condition::DateTime { low, high, .. } = &combined else {
            panic!("{combined:?}")
        };
        assert_eq!(low.as_deref(), Some("20240311230000.000000"));
        assert_eq!(high.as_deref(), Some("20240312100059.999999"));
        assert!(in_range("20240312094107.000000", low, high));
        assert!(!in_range("20240311094107.000000", low, high));
        assert_eq!(
            combine(&time, dicom_dictionary_std::tags::STUDY_TIME, &date),
            None
        );
        let one_day = cond(VR::DA, "20240312");
        assert_eq!(
            combine(&one_day, dicom_dictionary_std::tags::STUDY_TIME, &time),
            None
        );
    }

    #[test]
    fn sequence_items_match_within_one_item() {
        use dicom_dictionary_std::tags::{REQUESTED_PROCEDURE_ID, SCHEDULED_PROCEDURE_STEP_ID};
        let item = |sps: &str, rp: &str| {
            vec![
                (SCHEDULED_PROCEDURE_STEP_ID, text(VR::SH, sps)),
                (REQUESTED_PROCEDURE_ID, text(VR::SH, rp)),
            ]
        };
        let sequence = Element::items(vec![item("SPS1", "RP1"), item("SPS2", "RP2")]);
        let keys = |sps: &str, rp: &str| {
            Condition::Items(vec![
                (SCHEDULED_PROCEDURE_STEP_ID, cond(VR::SH, sps)),
                (REQUESTED_PROCEDURE_ID, cond(VR::SH, rp)),
            ])
        };
        assert!(keys("SPS2", "RP2").matches(&sequence));
        assert!(keys("SPS*", "RP1").matches(&sequence));
        assert!(
            !keys("SPS1", "RP2").matches(&sequence),
            "not in the same item"
        );
        assert!(!keys("SPS1", "RP1").matches(&Element::items(vec![])));
    }
}
