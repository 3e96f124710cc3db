//! The holder's page: the patient to confirm, from whom and why, what,
//! until when; download, the DICOMweb URL, passing it on.

use std::sync::LazyLock;

use base64::Engine;
use maud::{Markup, PreEscaped, html};
use sha2::Digest;

use super::display::{Dicom, displayable};
use super::{Lang, date, images, layout, size};
use crate::authz::{GrantState, HolderCoverage};

/// Copies the DICOMweb URL; the button stays hidden without JavaScript
/// (the URL is selectable text either way).
const COPY_SCRIPT: &str = "(function(){var b=document.getElementById('copy'),u=document.getElementById('dicomweb');\
if(!b||!u||!navigator.clipboard)return;b.hidden=false;b.addEventListener('click',function(){\
navigator.clipboard.writeText(u.value).then(function(){b.textContent=b.dataset.done;});});})();";

/// The study page's policy: ours plus exactly the copy script.
pub static STUDY_PAGE_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(COPY_SCRIPT));
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// What the holder's page shows.
pub struct StudyPage<'a> {
    pub org: &'a str,
    pub grant: &'a GrantState,
    pub covers: &'a HolderCoverage,
    pub dicomweb: &'a str,
    pub token: &'a str,
}

/// Modalities without pixel data get a label instead of a thumbnail.
fn has_pixels(modality: &str) -> bool {
    !matches!(
        modality,
        "SR" | "PR" | "KO" | "DOC" | "REG" | "SEG" | "RTSTRUCT" | "RTPLAN"
    )
}

/// The holder's page.
pub fn study_page(lang: Lang, page: &StudyPage<'_>) -> String {
    let (g, covers) = (&page.grant.grant, page.covers);
    let arriving = covers.state != "complete";
    let head = html! {
        @if arriving { meta http-equiv="refresh" content="10"; }
    };
    let text = |value: Option<&str>| displayable(value, Dicom::Text, lang);
    let body = html! {
        (patient(lang, covers))
        p {
            (lang.pick("Van", "From")) ": " strong { (page.org) } " (" (g.issuer) ")"
        }
        @if !g.message.is_empty() {
            blockquote dir="auto" { (g.message) }
        }
        @if arriving {
            p.arriving #arriving {
                strong {
                    (lang.pick("Nog binnenkomend", "Still arriving")) ": "
                    (covers.instances) " " (images(lang, covers.instances))
                }
                " — "
                (lang.pick("deze pagina ververst zichzelf.", "this page refreshes itself."))
            }
        }
        p {
            (displayable(covers.study_date.as_deref(), Dicom::Date, lang))
            " · " bdi { (text(covers.study_description.as_deref())) }
            " · " (text(Some(&covers.modalities.join(", "))))
            br;
            (covers.instances) " " (images(lang, covers.instances))
            " · " (size(covers.bytes))
            " · " (lang.pick("geldig tot", "valid until")) " " (date(g.expires_at))
        }
        p {
            a.button #download href={ "/s/" (page.token) "/download.zip" } download {
                (lang.pick("Download (ZIP)", "Download (ZIP)"))
            }
            " "
            span.muted {
                (lang.pick(
                    "Importeert als een cd: DICOMDIR met alle beelden.",
                    "Imports like a CD: a DICOMDIR with every image.",
                ))
            }
        }
        (series(lang, page))
        h2 { "DICOMweb" }
        p.muted {
            (lang.pick(
                "Voor import in een PACS of viewer (met uw houdertoken of UZI-pas):",
                "To import into a PACS or viewer (with your holder token or UZI card):",
            ))
        }
        p {
            input.url #dicomweb readonly value=(page.dicomweb)
                aria-label=(lang.pick("DICOMweb-adres", "DICOMweb URL"));
            " "
            button type="button" #copy hidden data-done=(lang.pick("Gekopieerd", "Copied")) {
                (lang.pick("Kopieer", "Copy"))
            }
        }
        @if g.delegation_depth > 0 { (delegate_form(lang, page.token)) }
        // a constant, whose hash is in STUDY_PAGE_CSP: escaping would break both
        script { (PreEscaped(COPY_SCRIPT)) }
    };
    layout(lang, head, body)
}

/// The patient to confirm: name, birth date and the last BSN digits.
fn patient(lang: Lang, covers: &HolderCoverage) -> Markup {
    let name = match covers.patient_name.as_deref() {
        Some(name) => displayable(Some(name), Dicom::PersonName, lang),
        // no study yet (a grant by accession number, before it arrived)
        None => lang.pick("Gedeelde studie", "Shared study").to_string(),
    };
    let birth = covers
        .patient_birth_date
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let born = lang.pick("geboren", "born");
            format!("{born} {}", displayable(Some(d), Dicom::Date, lang))
        });
    let bsn = covers
        .bsn_last_digits
        .as_deref()
        .map(|d| format!("BSN ·····{}", displayable(Some(d), Dicom::Text, lang)));
    let facts: Vec<String> = birth.into_iter().chain(bsn).collect();
    html! {
        div.patient {
            h1 { bdi { (name) } }
            p { (facts.join(" · ")) }
        }
    }
}

/// The covered series, each with its thumbnail (or its modality, for those
/// without pixels).
fn series(lang: Lang, page: &StudyPage<'_>) -> Markup {
    let covers = page.covers;
    let study = covers.study_uid.as_deref().unwrap_or("");
    html! {
        ul.series {
            @for s in &covers.series {
                @let modality = displayable(Some(&s.modality), Dicom::Text, lang);
                li {
                    @if has_pixels(&s.modality) {
                        img src={
                            "/s/" (page.token) "/dicomweb/studies/" (study)
                            "/series/" (s.series_uid) "/thumbnail"
                        } alt=(modality) loading="lazy" width="128" height="128";
                    } @else {
                        span.nothumb { (modality) }
                    }
                    strong { (modality) }
                    " "
                    bdi { (displayable(Some(&s.description), Dicom::Text, lang)) }
                    br;
                    span.muted { (s.instances) " " (images(lang, s.instances)) }
                }
            }
        }
    }
}

/// Passing the grant on: a link and code of its own for a colleague.
fn delegate_form(lang: Lang, token: &str) -> Markup {
    html! {
        h2 { (lang.pick("Doorautoriseren", "Pass on")) }
        p.muted {
            (lang.pick(
                "Maak een eigen link en code voor een collega; die kan niet meer zien of langer dan u.",
                "Make a link and code of its own for a colleague; it cannot show more, or last longer, than yours.",
            ))
        }
        form method="post" action={ "/s/" (token) "/delegate" } {
            label { (lang.pick("Bericht", "Message")) " " input name="message"; }
            br;
            label {
                (lang.pick("Alleen voor URA (optioneel)", "Only for URA (optional)")) " "
                input name="to_ura" inputmode="numeric" pattern="[0-9]{8}" placeholder="00000000";
            }
            br;
            button type="submit" { (lang.pick("Nieuwe link", "New link")) }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::authz::HolderSeries;

    /// A grant for study 1.2.3 until 2030-01-01, built from its stored JSON
    /// form (so this test does not depend on where the id types live).
    pub fn grant(issuer: &str, message: &str, delegation_depth: u8) -> GrantState {
        serde_json::from_value(serde_json::json!({
            "id": "g-1",
            "target": { "study": "1.2.3" },
            "issuer": issuer,
            "recipient": { "kind": "anyone" },
            "created_at": "2029-12-01T00:00:00Z",
            "expires_at": "2030-01-01T00:00:00Z",
            "message": message,
            "delegation_depth": delegation_depth,
            "token_hash": "t",
            "code_hash": "c",
        }))
        .expect("a grant")
    }

    /// Everything the page shows from the data set set to `value`.
    pub fn coverage(grant: &GrantState, value: &str) -> HolderCoverage {
        HolderCoverage {
            target: grant.grant.target.clone(),
            state: "complete",
            study_uid: Some("1.2.3".into()),
            patient_name: Some(value.into()),
            patient_birth_date: Some(value.into()),
            study_description: Some(value.into()),
            study_date: Some(value.into()),
            bsn_last_digits: Some(value.into()),
            series: vec![
                HolderSeries {
                    series_uid: "1.2.3.4".into(),
                    series_number: Some(1),
                    modality: value.into(),
                    description: value.into(),
                    instances: 1,
                },
                HolderSeries {
                    series_uid: "1.2.3.5".into(),
                    series_number: Some(2),
                    modality: "SR".into(),
                    description: value.into(),
                    instances: 2,
                },
            ],
            instances: 3,
            bytes: 3 << 20,
            modalities: vec![value.into(), "SR".into()],
        }
    }

    fn render(lang: Lang, covers: &HolderCoverage, grant: &GrantState, value: &str) -> String {
        study_page(
            lang,
            &StudyPage {
                org: value,
                grant,
                covers,
                dicomweb: value,
                token: value,
            },
        )
    }

    /// Every value on the page from the data set, the grant, the config or
    /// the URL, set to markup: none of it comes out as markup.
    #[test]
    fn every_dynamic_value_is_escaped() {
        let hostile = "\"><img src=x onerror=alert(1)>";
        let escaped = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";
        let grant = grant(hostile, hostile, 1);
        let covers = coverage(&grant, hostile);
        for lang in [Lang::Nl, Lang::En] {
            let page = render(lang, &covers, &grant, hostile);
            assert!(!page.contains("<img src=x"), "{page}");
            for (what, shown) in [
                // a PN's `=` separates its alphabetic, ideographic and
                // phonetic groups: what is left is still only text
                (
                    "patient name",
                    "<h1><bdi>&quot;&gt;&lt;img src (x onerror)</bdi></h1>".to_string(),
                ),
                (
                    "birth date and BSN",
                    format!("{escaped} · BSN ·····{escaped}</p>"),
                ),
                (
                    "organisation and issuer",
                    format!("<strong>{escaped}</strong> ({escaped})"),
                ),
                (
                    "message",
                    format!("<blockquote dir=\"auto\">{escaped}</blockquote>"),
                ),
                (
                    "study date, description, modalities",
                    format!("<p>{escaped} · <bdi>{escaped}</bdi> · {escaped}, SR<br>"),
                ),
                ("series modality", format!("alt=\"{escaped}\"")),
                (
                    "series modality",
                    format!("<strong>{escaped}</strong> <bdi>{escaped}</bdi>"),
                ),
                (
                    "download link",
                    format!("href=\"/s/{escaped}/download.zip\""),
                ),
                (
                    "thumbnail",
                    format!("src=\"/s/{escaped}/dicomweb/studies/1.2.3/series/1.2.3.4/thumbnail\""),
                ),
                ("DICOMweb URL", format!("value=\"{escaped}\"")),
                (
                    "delegation form",
                    format!("action=\"/s/{escaped}/delegate\""),
                ),
            ] {
                assert!(page.contains(&shown), "{what}: {shown} not in {page}");
            }
        }
    }

    #[test]
    fn the_page_as_the_holder_reads_it() {
        let grant = grant("dr. de Vries", "Verwijzing neurologie", 0);
        let mut covers = coverage(&grant, "x");
        covers.patient_name = Some("Jansen^Anna^^^".into());
        covers.patient_birth_date = Some("19700101".into());
        covers.study_date = Some("20240312".into());
        covers.study_description = Some("CT hoofd".into());
        covers.bsn_last_digits = Some("1234".into());
        covers.modalities = vec!["CT".into(), "SR".into()];
        covers.series[0].modality = "CT".into();
        covers.series[0].description = "Hoofd".into();
        covers.series[1].description = "Verslag".into();
        let page = study_page(
            Lang::Nl,
            &StudyPage {
                org: "Radiologie Voorbeeld",
                grant: &grant,
                covers: &covers,
                dicomweb: "https://gw/s/tok/dicomweb",
                token: "tok",
            },
        );
        for expected in [
            "<h1><bdi>Jansen, Anna</bdi></h1><p>geboren 1970-01-01 · BSN ·····1234</p>",
            "<p>Van: <strong>Radiologie Voorbeeld</strong> (dr. de Vries)</p>",
            "<p>2024-03-12 · <bdi>CT hoofd</bdi> · CT, SR<br>3 beelden · 3.0 MB · geldig tot 2030-01-01 00:00</p>",
            "<a class=\"button\" id=\"download\" href=\"/s/tok/download.zip\" download>Download (ZIP)</a>",
            "<img src=\"/s/tok/dicomweb/studies/1.2.3/series/1.2.3.4/thumbnail\" alt=\"CT\" loading=\"lazy\" width=\"128\" height=\"128\"><strong>CT</strong> <bdi>Hoofd</bdi><br><span class=\"muted\">1 beeld</span>",
            "<span class=\"nothumb\">SR</span><strong>SR</strong> <bdi>Verslag</bdi><br><span class=\"muted\">2 beelden</span>",
            "<input class=\"url\" id=\"dicomweb\" readonly value=\"https://gw/s/tok/dicomweb\"",
            "<button id=\"copy\" type=\"button\" hidden data-done=\"Gekopieerd\">Kopieer</button>",
            &format!("<script>{COPY_SCRIPT}</script></body>"),
        ] {
            assert!(page.contains(expected), "{expected} not in {page}");
        }
        // complete, not passed on: no refresh, no arriving note, no form
        assert!(
            !page.contains("http-equiv")
                && !page.contains("id=\"arriving\"")
                && !page.contains("<form")
        );
    }

    #[test]
    fn arriving_refreshes_and_delegation_offers_the_form() {
        let grant = grant("i", "", 1);
        let mut covers = coverage(&grant, "CT");
        covers.state = "arriving";
        covers.patient_name = None;
        covers.patient_birth_date = None;
        covers.bsn_last_digits = Some("1234".into());
        let page = render(Lang::En, &covers, &grant, "CT");
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"10\"><title>"));
        assert!(
            page.contains(
                "<strong>Still arriving: 3 images</strong> — this page refreshes itself."
            )
        );
        assert!(
            page.contains("<h1><bdi>Shared study</bdi></h1><p>BSN ·····1234</p>"),
            "{page}"
        );
        assert!(!page.contains("<blockquote"), "no message, no quote");
        assert!(page.contains("<form method=\"post\" action=\"/s/CT/delegate\">"));
        assert!(page.contains("pattern=\"[0-9]{8}\""));
        assert!(page.contains("<input name=\"message\">"));
    }

    #[test]
    fn the_policy_allows_exactly_the_copy_script() {
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(COPY_SCRIPT.as_bytes()));
        assert!(STUDY_PAGE_CSP.contains(&format!("'sha256-{hash}'")));
        assert!(!STUDY_PAGE_CSP.contains("script-src 'unsafe-inline'"));
    }
}
