//! Accept negotiation (PS3.18 §8.7.3.5): media ranges with their
//! parameters and q-values, from the `Accept` header or the `accept` query
//! parameter, which takes precedence (§8.3.3.1).

use std::cmp::Ordering;

/// Explicit VR Little Endian: what a client gets when it names none.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// One media range of an Accept value.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// `type/subtype`, lower case.
    pub media_type: String,
    /// Parameters other than q, names lower case, values unquoted.
    pub params: Vec<(String, String)>,
    pub q: f32,
}

impl MediaRange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this range admits `media_type` (`*/*`, `image/*`, exact).
    pub fn admits(&self, media_type: &str) -> bool {
        let (want_type, _) = media_type.split_once('/').unwrap_or((media_type, ""));
        match self.media_type.split_once('/') {
            Some(("*", "*")) => true,
            Some((t, "*")) => t == want_type,
            _ => self.media_type == media_type,
        }
    }
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_string()
}

/// Splits on `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Parses an Accept value into media ranges, best first (by q, then by
/// specificity, then in the order given). Ranges with q=0 are dropped; an
/// empty value means `*/*`.
pub fn parse(value: &str) -> Vec<MediaRange> {
    let mut ranges: Vec<MediaRange> = split_unquoted(value, ',')
        .into_iter()
        .filter_map(|range| {
            let mut pieces = split_unquoted(range, ';').into_iter();
            let media_type = pieces.next()?.trim().to_ascii_lowercase();
            if media_type.is_empty() {
                return None;
            }
            let mut q = 1.0f32;
            let mut params = Vec::new();
            for piece in pieces {
                let Some((name, value)) = piece.split_once('=') else {
                    continue;
                };
                let name = name.trim().to_ascii_lowercase();
                let value = unquote(value);
                if name == "q" {
                    q = value.parse().unwrap_or(0.0f32).clamp(0.0, 1.0);
                } else {
                    params.push((name, value));
                }
            }
            Some(MediaRange {
                media_type,
                params,
                q,
            })
        })
        .filter(|r| r.q > 0.0)
        .collect();
    if ranges.is_empty() && value.trim().is_empty() {
        ranges.push(MediaRange {
            media_type: "*/*".into(),
            params: Vec::new(),
            q: 1.0,
        });
    }
    let specificity = |r: &MediaRange| match r.media_type.as_str() {
        "*/*" => 0,
        t if t.ends_with("/*") => 1,
        _ => 2,
    };
    ranges.sort_by(|a, b| {
        b.q.partial_cmp(&a.q)
            .unwrap_or(Ordering::Equal)
            .then(specificity(b).cmp(&specificity(a)))
    });
    ranges
}

/// The transfer syntax a client accepts for a DICOM part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Syntax {
    /// `transfer-syntax=*`: as stored, whatever that is.
    Stored,
    Uid(String),
}

/// How instances travel: parts of a multipart/related body, or (one
/// instance) the bare `application/dicom` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packaging {
    Multipart,
    Single,
}

/// What a client accepts for instances, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomAccept {
    pub packaging: Packaging,
    pub syntaxes: Vec<Syntax>,
}

fn syntax_of(range: &MediaRange) -> Syntax {
    match range.param("transfer-syntax") {
        Some("*") => Syntax::Stored,
        Some(uid) => Syntax::Uid(uid.to_string()),
        None => Syntax::Uid(EXPLICIT_LE.to_string()),
    }
}

/// Negotiates DICOM instances (study, series or instance retrieval). A
/// single `application/dicom` body only for one instance.
pub fn dicom(ranges: &[MediaRange], single_allowed: bool) -> Option<DicomAccept> {
    let mut packaging = None;
    let mut syntaxes = Vec::new();
    for range in ranges {
        let (this, syntax) = match range.media_type.as_str() {
            "multipart/related" => match range.param("type") {
                Some(t) if t.eq_ignore_ascii_case("application/dicom") => {
                    (Packaging::Multipart, syntax_of(range))
                }
                _ => continue,
            },
            "application/dicom" if single_allowed => (Packaging::Single, syntax_of(range)),
            "*/*" | "multipart/*" => (Packaging::Multipart, Syntax::Uid(EXPLICIT_LE.into())),
            _ => continue,
        };
        if *packaging.get_or_insert(this) != this {
            continue;
        }
        if !syntaxes.contains(&syntax) {
            syntaxes.push(syntax);
        }
    }
    Some(DicomAccept {
        packaging: packaging?,
        syntaxes,
    })
}

/// What a client accepts for frames and bulk data: media types of parts
/// (`application/octet-stream` for native bytes, `image/jpeg` … for
/// compressed frames as stored), each with an optional transfer syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct PartAccept {
    pub media_type: String,
    pub syntax: Option<Syntax>,
    /// Named bare, not as a `multipart/related` type: the answer is that
    /// one part alone (PS3.18 §8.7.3.1).
    pub single: bool,
}

/// Negotiates the parts of a frames or bulk data response, best first.
pub fn parts(ranges: &[MediaRange]) -> Vec<PartAccept> {
    let mut accepted = Vec::new();
    for range in ranges {
        let (media_type, single) = match range.media_type.as_str() {
            "multipart/related" => match range.param("type") {
                Some(t) => (t.to_ascii_lowercase(), false),
                None => ("application/octet-stream".into(), false),
            },
            // no preference: the default, multipart
            "*/*" | "multipart/*" => ("*/*".into(), false),
            // a bare single-part media type: that part alone
            other => (other.to_string(), true),
        };
        let syntax = range.param("transfer-syntax").map(|ts| match ts {
            "*" => Syntax::Stored,
            uid => Syntax::Uid(uid.to_string()),
        });
        let part = PartAccept {
            media_type,
            syntax,
            single,
        };
        if !accepted.contains(&part) {
            accepted.push(part);
        }
    }
    accepted
}

/// The first of `offered` (in our order of preference) that the client
/// accepts, taking the client's q-values first.
pub fn choose<'a>(ranges: &[MediaRange], offered: &[&'a str]) -> Option<&'a str> {
    ranges
        .iter()
        .find_map(|range| offered.iter().find(|o| range.admits(o)).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_order_and_zero_excludes() {
        let r = parse("image/png;q=0.5, image/jpeg, text/html;q=0");
        assert_eq!(
            r.iter().map(|m| m.media_type.as_str()).collect::<Vec<_>>(),
            ["image/jpeg", "image/png"]
        );
        assert_eq!(choose(&r, &["image/png", "image/jpeg"]), Some("image/jpeg"));
        assert_eq!(choose(&parse("text/html;q=0"), &["text/html"]), None);
        assert_eq!(choose(&parse(""), &["image/jpeg"]), Some("image/jpeg"));
        assert_eq!(choose(&parse("image/*"), &["image/png"]), Some("image/png"));
    }

    #[test]
    fn ps3_18_examples() {
        // PS3.18 §8.7.3.5.2-style: two syntaxes, the first preferred
        let r = parse(
            "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50, \
             multipart/related; type=\"application/dicom\"; transfer-syntax=*; q=0.5",
        );
        assert_eq!(
            dicom(&r, false),
            Some(DicomAccept {
                packaging: Packaging::Multipart,
                syntaxes: vec![Syntax::Uid("1.2.840.10008.1.2.4.50".into()), Syntax::Stored],
            })
        );
        // no parameter: Explicit VR Little Endian
        let r = parse("multipart/related; type=application/dicom");
        assert_eq!(
            dicom(&r, false).unwrap().syntaxes,
            [Syntax::Uid(EXPLICIT_LE.into())]
        );
        // what dicomweb-client sends for "as stored"
        let r = parse("multipart/related; type=\"application/dicom\"; transfer-syntax=*");
        assert_eq!(dicom(&r, false).unwrap().syntaxes, [Syntax::Stored]);
        // a browser's */*
        assert_eq!(
            dicom(&parse("*/*"), false).unwrap().packaging,
            Packaging::Multipart
        );
        // single part only where allowed
        assert_eq!(dicom(&parse("application/dicom"), false), None);
        assert_eq!(
            dicom(&parse("application/dicom"), true).unwrap().packaging,
            Packaging::Single
        );
        assert_eq!(dicom(&parse("application/dicom+json"), false), None);
        assert_eq!(
            dicom(
                &parse("multipart/related; type=\"application/octet-stream\""),
                false
            ),
            None
        );
    }

    #[test]
    fn frame_parts() {
        let r = parse(
            "multipart/related; type=\"image/jpeg\"; transfer-syntax=1.2.840.10008.1.2.4.50, \
             multipart/related; type=\"application/octet-stream\"; q=0.9",
        );
        let p = parts(&r);
        assert_eq!(p[0].media_type, "image/jpeg");
        assert_eq!(
            p[0].syntax,
            Some(Syntax::Uid("1.2.840.10008.1.2.4.50".into()))
        );
        assert_eq!(p[1].media_type, "application/octet-stream");
        assert!(!p[0].single && !p[1].single);
        assert_eq!(
            parts(&parse("multipart/related"))[0].media_type,
            "application/octet-stream"
        );
        // what OHIF sends with `singlepart: 'bulkdata,pdf'`
        let p = parts(&parse(
            "application/octet-stream; transfer-syntax=*, application/pdf, */*;q=0.1",
        ));
        assert_eq!(p[0].media_type, "application/octet-stream");
        assert_eq!(p[0].syntax, Some(Syntax::Stored));
        assert!(p[0].single && p[1].single);
        assert_eq!(p[1].media_type, "application/pdf");
        assert!(!p[2].single);
    }

    #[test]
    fn quoted_commas_and_odd_spacing() {
        let r = parse("multipart/related;type=\"application/dicom\" ; transfer-syntax = \"*\"");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].param("type"), Some("application/dicom"));
        assert_eq!(r[0].param("transfer-syntax"), Some("*"));
        let r = parse("a/b; x=\"1,2\", c/d");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].param("x"), Some("1,2"));
    }
}
