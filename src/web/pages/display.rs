//! Strings from DICOM made fit to show a person. Nothing validated them:
//! a CD in the drop folder or a modality's operator may have put markup,
//! control characters, a right-to-left override or ten kilobytes into a
//! patient name. Escaping is the template's job (maud escapes every value);
//! this makes the text readable and honest: no invisible characters that
//! reorder or hide what the recipient confirms the patient by, a bounded
//! length, and a visible mark where there is nothing.

use super::Lang;

/// What kind of DICOM value is shown (by its value representation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dicom {
    /// PN: `Family^Given^Middle^Prefix^Suffix`, up to three `=` groups
    /// (alphabetic, ideographic, phonetic).
    PersonName,
    /// DA: `YYYYMMDD`.
    Date,
    /// LO, SH, CS, ST ...: text as it is.
    Text,
}

/// The most characters a page shows of one value; a PN or LO value holds at
/// most 64, so a name that is cut was not a valid one.
pub const MAX_SHOWN: usize = 128;

/// `value` as a page shows it: invisible and control characters dropped,
/// runs of white space made one space, cut to [`MAX_SHOWN`] characters with
/// an ellipsis; a person name as `Family, Given` (its ideographic form after
/// it in brackets), a date as `YYYY-MM-DD`. Nothing left (or no value): a
/// dash, or for a name "onbekend" / "unknown".
pub fn displayable(value: Option<&str>, kind: Dicom, lang: Lang) -> String {
    let raw = value.unwrap_or("");
    let shown = match kind {
        Dicom::PersonName => person_name(raw),
        Dicom::Date => date(&clean(raw, MAX_SHOWN)),
        Dicom::Text => clean(raw, MAX_SHOWN),
    };
    if !shown.is_empty() {
        shown
    } else if kind == Dicom::PersonName {
        lang.pick("Naam onbekend", "Name unknown").to_string()
    } else {
        "—".to_string()
    }
}

/// Characters that show nothing themselves but change how the text around
/// them reads: bidirectional embeddings, overrides and isolates (U+202E
/// turns `Jansen` into what looks like another name), marks, zero-width
/// spaces and the byte order mark. Zero-width (non-)joiners stay: some
/// scripts need them.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Drops control and invisible characters, makes each run of white space
/// (tabs, line breaks, DICOM's space padding) one space, trims, and cuts to
/// `max` characters, the last an ellipsis. Reads no further than it needs,
/// whatever the length of `raw`.
fn clean(raw: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    let mut cut = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = count > 0;
            continue;
        }
        if c.is_control() || invisible(c) {
            continue;
        }
        if count + usize::from(space) + 1 > max {
            cut = true;
            break;
        }
        if space {
            out.push(' ');
            count += 1;
            space = false;
        }
        out.push(c);
        count += 1;
    }
    if cut {
        // room for the ellipsis: give back the last character
        out.pop();
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('…');
    }
    out
}

/// `20240312` → `2024-03-12`; anything else as it came (cleaned).
fn date(d: &str) -> String {
    if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
    } else {
        d.to_string()
    }
}

/// `Jansen^Anna^^^` → `Jansen, Anna`; `Yamada^Tarou=山田^太郎=やまだ^たろう`
/// → `Yamada, Tarou (山田 太郎)`; only an ideographic or phonetic group:
/// that group, family name first.
/// A DICOM person name as people read it (`Family, Given`, the ideographic
/// form beside it), cleaned and bounded like [`displayable`]; empty for
/// none.
pub fn person_name(pn: &str) -> String {
    // bounded before it is split: a 10 kB name costs no more than a short one
    let pn = clean(pn, MAX_SHOWN * 2);
    let groups: Vec<Vec<&str>> = pn
        .splitn(3, '=')
        .map(|group| group.split('^').take(5).map(str::trim).collect())
        .collect();
    let group = |i: usize| -> &[&str] { groups.get(i).map_or(&[], Vec::as_slice) };
    let empty = |components: &[&str]| components.iter().all(|c| c.is_empty());
    let joined = |components: &[&str]| {
        let parts: Vec<&str> = components
            .iter()
            .copied()
            .filter(|c| !c.is_empty())
            .collect();
        parts.join(" ")
    };
    let (alphabetic, ideographic, phonetic) = (group(0), group(1), group(2));
    let shown = match (empty(alphabetic), empty(ideographic)) {
        (false, true) => western(alphabetic),
        (false, false) => format!("{} ({})", western(alphabetic), joined(ideographic)),
        (true, false) => joined(ideographic),
        (true, true) => joined(phonetic),
    };
    clean(&shown, MAX_SHOWN)
}

/// The family name, a comma, the other components in their order (as the
/// study page always showed them); no comma without a family name.
fn western(components: &[&str]) -> String {
    let family = components.first().copied().unwrap_or("");
    let rest: Vec<&str> = components
        .iter()
        .skip(1)
        .copied()
        .filter(|p| !p.is_empty())
        .collect();
    match (family.is_empty(), rest.is_empty()) {
        (_, true) => family.to_string(),
        (true, false) => rest.join(" "),
        (false, false) => format!("{family}, {}", rest.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(pn: &str) -> String {
        displayable(Some(pn), Dicom::PersonName, Lang::En)
    }

    fn text(value: &str) -> String {
        displayable(Some(value), Dicom::Text, Lang::Nl)
    }

    #[test]
    fn person_names_as_the_page_shows_them() {
        assert_eq!(name("Jansen^Anna^^^"), "Jansen, Anna");
        assert_eq!(name("Müller^Jörg"), "Müller, Jörg");
        assert_eq!(name("Anoniem"), "Anoniem");
        assert_eq!(
            name("de Vries^Jan^Pieter^dr.^jr."),
            "de Vries, Jan Pieter dr. jr."
        );
        assert_eq!(name("^Anna"), "Anna");
        assert_eq!(name("Jansen  ^ Anna "), "Jansen, Anna");
        assert_eq!(
            name("Yamada^Tarou=山田^太郎=やまだ^たろう"),
            "Yamada, Tarou (山田 太郎)"
        );
        assert_eq!(name("=山田^太郎=やまだ^たろう"), "山田 太郎");
        assert_eq!(name("==やまだ^たろう"), "やまだ たろう");
        // DICOM pads with a space or NUL
        assert_eq!(name("Jansen^Anna\0"), "Jansen, Anna");
    }

    #[test]
    fn nothing_to_show_is_shown_as_such() {
        for empty in [None, Some(""), Some("^^^^"), Some(" \0 "), Some("==")] {
            assert_eq!(
                displayable(empty, Dicom::PersonName, Lang::Nl),
                "Naam onbekend"
            );
            assert_eq!(
                displayable(empty, Dicom::PersonName, Lang::En),
                "Name unknown"
            );
        }
        assert_eq!(displayable(None, Dicom::Text, Lang::En), "—");
        assert_eq!(
            displayable(Some("\u{202E}\u{200B}"), Dicom::Date, Lang::En),
            "—"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(
            displayable(Some("20240312"), Dicom::Date, Lang::Nl),
            "2024-03-12"
        );
        assert_eq!(
            displayable(Some("20240312 "), Dicom::Date, Lang::Nl),
            "2024-03-12"
        );
        // not a date: shown as it came, for the template to escape
        assert_eq!(
            displayable(Some("\"><meta http-equiv=refresh>"), Dicom::Date, Lang::Nl),
            "\"><meta http-equiv=refresh>"
        );
    }

    /// Markup and template syntax are text to this function (the template
    /// escapes them; see the pages' tests): kept, so the recipient sees what
    /// the data set says.
    #[test]
    fn markup_is_left_for_the_template_to_escape() {
        assert_eq!(
            text("<script>alert(1)</script>"),
            "<script>alert(1)</script>"
        );
        assert_eq!(
            name("\"><img src onerror alert(1)>^x"),
            "\"><img src onerror alert(1)>, x"
        );
        assert_eq!(text("{{7*7}} ${x} {% raw %}"), "{{7*7}} ${x} {% raw %}");
    }

    #[test]
    fn control_and_invisible_characters_are_dropped() {
        assert_eq!(name("Jan\0sen^An\u{7}na"), "Jansen, Anna");
        assert_eq!(text("CT\u{1b}$B hoofd"), "CT$B hoofd");
        assert_eq!(text("regel 1\r\nregel\t2"), "regel 1 regel 2");
        assert_eq!(text("\u{85}C1\u{9b}"), "C1");
        // U+202E would show "Jansen" as "nesnaJ"-looking text after it
        assert_eq!(name("\u{202E}Jansen^Anna\u{202C}"), "Jansen, Anna");
        assert_eq!(text("a\u{2066}b\u{2069}c\u{200F}d\u{FEFF}"), "abcd");
        // joiners some scripts need stay
        assert_eq!(text("می\u{200C}خواهم"), "می\u{200C}خواهم");
    }

    #[test]
    fn long_values_are_cut_with_an_ellipsis() {
        let long = "A".repeat(10 * 1024);
        let shown = name(&format!("{long}^{long}"));
        assert_eq!(shown.chars().count(), MAX_SHOWN);
        assert!(shown.ends_with("A…"), "{shown}");
        let shown = text(&"é".repeat(10 * 1024));
        assert_eq!(shown.chars().count(), MAX_SHOWN);
        assert!(shown.ends_with('…'));
        // exactly the limit: not cut
        assert_eq!(text(&"b".repeat(MAX_SHOWN)), "b".repeat(MAX_SHOWN));
        // a cut at a space leaves no space before the ellipsis
        let words = "ab ".repeat(100);
        let shown = text(&words);
        assert!(shown.ends_with("ab…") || shown.ends_with("a…"), "{shown}");
        assert!(shown.chars().count() <= MAX_SHOWN);
    }
}
