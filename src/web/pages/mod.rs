//! Server-rendered pages for recipients, in Dutch or English by
//! Accept-Language: nothing loaded from elsewhere, everything essential
//! without JavaScript (the one script only copies the DICOMweb URL).
//!
//! Markup is written with maud's `html!` rather than askama templates: the
//! macro is checked at compile time against the Rust values it shows (no
//! template files to ship or to find at run time, no stringly-typed
//! context), every `(value)` it interpolates is escaped, and the only way
//! to emit markup unescaped is `PreEscaped`, which is greppable — here it
//! wraps two constants (the style sheet and the copy script) and nothing
//! else, which a test checks. Values read from DICOM pass through
//! `display::displayable` before they reach a page.

mod display;
mod entry;
mod error;
mod study;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::store::Timestamp;

pub use display::{Dicom, displayable, person_name};
pub use entry::{code_entry, delegated, not_found, offer_binding};
pub use error::error_page;
pub use study::{STUDY_PAGE_CSP, StudyPage, study_page};

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    /// The first of Dutch and English the client ranks; Dutch when it
    /// names neither (the users are Dutch hospitals).
    pub fn from_accept_language(value: Option<&str>) -> Lang {
        let ranges = super::dicomweb::accept::parse(value.unwrap_or(""));
        ranges
            .iter()
            .find_map(|r| {
                let tag = r.media_type.as_str();
                if tag == "nl" || tag.starts_with("nl-") {
                    Some(Lang::Nl)
                } else if tag == "en" || tag.starts_with("en-") {
                    Some(Lang::En)
                } else {
                    None
                }
            })
            .unwrap_or(if value.is_some_and(|v| !v.trim().is_empty()) {
                Lang::En
            } else {
                Lang::Nl
            })
    }

    pub fn pick<'a>(self, nl: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Nl => nl,
            Lang::En => en,
        }
    }

    pub fn code(self) -> &'static str {
        self.pick("nl", "en")
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}\
input,button,.button{font-size:1.05rem;padding:.45rem .8rem}\
.button{display:inline-block;background:#0b5;color:#fff;text-decoration:none;border-radius:.3rem;font-weight:600}\
code{background:#f3f3f3;padding:.1rem .3rem;overflow-wrap:anywhere}.error{color:#a00}.muted{color:#666}\
h1,p,li,blockquote{overflow-wrap:anywhere}\
.patient{background:#f6f6f6;border-left:.3rem solid #0b5;padding:.5rem 1rem}\
.arriving{background:#fff6d6;padding:.5rem 1rem;border-left:.3rem solid #e0a000}\
ul.series{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1rem}\
ul.series li{width:9rem}ul.series img,.nothumb{width:128px;height:128px;background:#000;display:block;object-fit:contain}\
.nothumb{color:#fff;display:flex;align-items:center;justify-content:center;font-weight:700}\
input.url{width:100%;box-sizing:border-box;font-family:monospace;font-size:.9rem}\
form label{display:inline-block;margin:.2rem 0}";

/// Every page's frame: language, no referrer, the one style sheet.
fn layout(lang: Lang, head: Markup, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                (head)
                title { "pushgate" }
                // a constant: CSS is raw text inside <style>, escaping would break it
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// `2026-12-07T01:10:54.000Z` → `2026-12-07 01:10` (UTC, as the grant says).
fn date(t: Timestamp) -> String {
    t.to_string()
        .chars()
        .take(16)
        .collect::<String>()
        .replace('T', " ")
}

fn images(lang: Lang, n: u64) -> &'static str {
    if n == 1 {
        lang.pick("beeld", "image")
    } else {
        lang.pick("beelden", "images")
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{:.1} MB", bytes as f64 / f64::from(1u32 << 20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_by_accept_language() {
        assert_eq!(Lang::from_accept_language(None), Lang::Nl);
        assert_eq!(Lang::from_accept_language(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("de-DE, nl;q=0.8, en;q=0.5")),
            Lang::Nl
        );
        assert_eq!(Lang::from_accept_language(Some("de-DE")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("nl-BE;q=0.2, en-GB;q=0.9")),
            Lang::En
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MB");
        assert_eq!(size(5 << 30), "5.0 GB");
    }

    /// Escaping by construction holds only while `PreEscaped` wraps nothing
    /// but the constants it wraps now: a new use must be looked at (and
    /// added here) rather than slip in.
    #[test]
    fn raw_markup_only_from_constants() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("entry.rs", include_str!("entry.rs")),
            ("error.rs", include_str!("error.rs")),
            ("study.rs", include_str!("study.rs")),
            ("display.rs", include_str!("display.rs")),
        ];
        let needle = concat!("PreEscaped", "(");
        for (file, source) in sources {
            for (at, _) in source.match_indices(needle) {
                let arg: String = source[at + needle.len()..]
                    .chars()
                    .take_while(|c| *c != ')')
                    .collect();
                assert!(
                    arg == "STYLE" || arg == "COPY_SCRIPT",
                    "{file}: raw markup from {arg}, not a constant"
                );
            }
        }
    }

    /// A page of any kind is one well-formed document in the asked language.
    #[test]
    fn the_frame() {
        let page = layout(Lang::En, html! {}, html! { p { "x" } });
        assert!(
            page.starts_with("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        );
        assert!(page.contains("<meta name=\"referrer\" content=\"no-referrer\">"));
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        assert!(page.ends_with("<body><p>x</p></body></html>"));
    }
}
