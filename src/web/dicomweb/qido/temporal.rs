//! Dates and times in the fixed width range matching compares: `DA` as
//! `YYYYMMDD`, `TM` as `HHMMSS.FFFFFF`, a partial value widened to the
//! start or end of the period it names.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Temporal {
    Date,
    Time,
}

impl Temporal {
    fn name(self) -> &'static str {
        match self {
            Temporal::Date => "date (YYYYMMDD, YYYYMM or YYYY)",
            Temporal::Time => "time (HHMMSS.FFFFFF, HHMMSS, HHMM or HH)",
        }
    }

    /// A query bound in fixed width: what it leaves out is filled with the
    /// start (low) or end (high) of the period it names.
    pub fn bound(self, value: &str, high: bool) -> Result<String, String> {
        self.expand(&self.without_separators(value), high)
            .ok_or_else(|| format!("{value:?} is not a {}", self.name()))
    }

    /// A stored value in fixed width; `None` if it is empty or malformed.
    pub fn normalize(self, stored: &str) -> Option<String> {
        self.expand(&self.without_separators(stored), false)
    }

    /// ACR-NEMA wrote `2024.03.12` and `09:41:07`; some still do.
    fn without_separators(self, value: &str) -> String {
        value
            .trim()
            .chars()
            .filter(|c| !matches!((self, c), (Temporal::Date, '.') | (Temporal::Time, ':')))
            .collect()
    }

    fn expand(self, value: &str, high: bool) -> Option<String> {
        match self {
            Temporal::Date => expand_date(value, high),
            Temporal::Time => expand_time(value, high),
        }
    }
}

fn two_digits_within(s: &str, min: u32, max: u32) -> bool {
    s.len() == 2
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|n| (min..=max).contains(&n))
}

fn expand_date(value: &str, high: bool) -> Option<String> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = (value.get(..4)?, &value[4..]);
    let filled = match rest.len() {
        0 => format!("{year}{}", if high { "1231" } else { "0101" }),
        2 if two_digits_within(rest, 1, 12) => format!("{value}{}", if high { "31" } else { "01" }),
        4 if two_digits_within(&rest[..2], 1, 12) && two_digits_within(&rest[2..], 1, 31) => {
            value.to_string()
        }
        _ => return None,
    };
    Some(filled)
}

fn expand_time(value: &str, high: bool) -> Option<String> {
    let (whole, fraction) = match value.split_once('.') {
        Some((w, f)) if w.len() == 6 => (w, Some(f)),
        Some(_) => return None,
        None => (value, None),
    };
    let limits = [23, 59, 60];
    if whole.is_empty() || whole.len() % 2 != 0 || whole.len() > 6 {
        return None;
    }
    let mut out = String::with_capacity(13);
    for (i, max) in limits.into_iter().enumerate() {
        match whole.get(2 * i..2 * i + 2) {
            Some(part) if two_digits_within(part, 0, max) => out.push_str(part),
            Some(_) => return None,
            None => out.push_str(if high { "59" } else { "00" }),
        }
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    out.push('.');
    out.push_str(fraction);
    let pad = if high { '9' } else { '0' };
    out.extend(std::iter::repeat_n(pad, 6 - fraction.len()));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_values_widen_to_their_period() {
        assert_eq!(Temporal::Date.bound("2024", false).unwrap(), "20240101");
        assert_eq!(Temporal::Date.bound("2024", true).unwrap(), "20241231");
        assert_eq!(Temporal::Date.bound("202402", true).unwrap(), "20240231");
        assert_eq!(Temporal::Time.bound("09", false).unwrap(), "090000.000000");
        assert_eq!(Temporal::Time.bound("0941", true).unwrap(), "094159.999999");
        assert_eq!(
            Temporal::Time.bound("094107.5", true).unwrap(),
            "094107.599999"
        );
    }

    #[test]
    fn stored_values_in_fixed_width() {
        assert_eq!(
            Temporal::Date.normalize("2024.03.12").as_deref(),
            Some("20240312")
        );
        assert_eq!(
            Temporal::Time.normalize("09:41:07").as_deref(),
            Some("094107.000000")
        );
        assert_eq!(
            Temporal::Time.normalize("094107.123 ").as_deref(),
            Some("094107.123000")
        );
        assert_eq!(Temporal::Date.normalize(""), None);
        assert_eq!(Temporal::Time.normalize("9:41"), None);
    }
}
