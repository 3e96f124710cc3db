//! Server-rendered pages for recipients, in Dutch or English by
//! Accept-Language: nothing loaded from elsewhere, everything essential
//! without JavaScript (the one script only copies the DICOMweb URL).

use std::sync::LazyLock;

use base64::Engine;
use sha2::Digest;

use crate::authz::{GrantState, HolderCoverage, Issued};
use crate::store::Timestamp;

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

    fn pick<'a>(self, nl: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Nl => nl,
            Lang::En => en,
        }
    }

    fn code(self) -> &'static str {
        self.pick("nl", "en")
    }
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}\
input,button,.button{font-size:1.05rem;padding:.45rem .8rem}\
.button{display:inline-block;background:#0b5;color:#fff;text-decoration:none;border-radius:.3rem;font-weight:600}\
code{background:#f3f3f3;padding:.1rem .3rem}.error{color:#a00}.muted{color:#666}\
.patient{background:#f6f6f6;border-left:.3rem solid #0b5;padding:.5rem 1rem}\
.arriving{background:#fff6d6;padding:.5rem 1rem;border-left:.3rem solid #e0a000}\
ul.series{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1rem}\
ul.series li{width:9rem}ul.series img,.nothumb{width:128px;height:128px;background:#000;display:block;object-fit:contain}\
.nothumb{color:#fff;display:flex;align-items:center;justify-content:center;font-weight:700}\
input.url{width:100%;font-family:monospace;font-size:.9rem}";

fn layout(lang: Lang, title: &str, head: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">{head}<title>{title}</title>\
<style>{STYLE}</style></head><body>{body}</body></html>",
        code = lang.code(),
        title = escape(title)
    )
}

/// `/`: where a code from a letter or a phone call is entered.
pub fn code_entry(lang: Lang, org: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    });
    layout(
        lang,
        "pushgate",
        "",
        &format!(
            "<h1>{title}</h1><p>{org}</p>{error}\
<form method=\"post\" action=\"/redeem\">\
<label for=\"code\">{label}</label><br>\
<input id=\"code\" name=\"code\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" placeholder=\"XXXX-XXXX-XXX\" required> \
<button type=\"submit\">{open}</button></form>",
            title = lang.pick("Beelden ophalen", "Retrieve images"),
            label = lang.pick("Autorisatiecode", "Authorization code"),
            open = lang.pick("Openen", "Open"),
            org = escape(org)
        ),
    )
}

/// A link not yet bound: opening it is a deliberate step, so that a mail
/// scanner fetching the URL binds nothing.
pub fn offer_binding(lang: Lang, org: &str, token: &str) -> String {
    let text = match lang {
        Lang::Nl => format!(
            "{} heeft beelden met u gedeeld. Na openen is deze link alleen nog voor u (deze browser of uw UZI-pas).",
            escape(org)
        ),
        Lang::En => format!(
            "{} shared images with you. Once opened, this link is yours alone (this browser, or your UZI card).",
            escape(org)
        ),
    };
    layout(
        lang,
        "pushgate",
        "",
        &format!(
            "<h1>{title}</h1><p>{text}</p>\
<form method=\"post\" action=\"/s/{token}\"><button type=\"submit\">{open}</button></form>",
            title = lang.pick("Gedeelde beelden", "Shared images"),
            open = lang.pick("Openen", "Open"),
            token = escape(token)
        ),
    )
}

fn date(t: Timestamp) -> String {
    t.to_string()
        .chars()
        .take(16)
        .collect::<String>()
        .replace('T', " ")
}

/// `20240312` → `2024-03-12`; anything else as it is, escaped: dates come
/// from the data set, which nothing validated (a CD in the drop folder may
/// carry markup in a DA element).
fn dicom_date(d: &str) -> String {
    if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
    } else {
        escape(d)
    }
}

/// `Jansen^Anna^^^` → `Jansen, Anna`.
fn person_name(pn: &str) -> String {
    let alphabetic = pn.split('=').next().unwrap_or("");
    let mut parts = alphabetic.split('^').map(str::trim);
    let family = parts.next().unwrap_or("");
    let given: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
    if given.is_empty() {
        family.to_string()
    } else {
        format!("{family}, {}", given.join(" "))
    }
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

/// Modalities without pixel data get a label instead of a thumbnail.
fn has_pixels(modality: &str) -> bool {
    !matches!(
        modality,
        "SR" | "PR" | "KO" | "DOC" | "REG" | "SEG" | "RTSTRUCT" | "RTPLAN"
    )
}

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

/// The holder's page: the patient to confirm, from whom and why, what,
/// until when; download, the DICOMweb URL, passing it on.
pub fn study_page(lang: Lang, page: &StudyPage<'_>) -> String {
    let (g, covers, token) = (&page.grant.grant, page.covers, escape(page.token));
    let study_uid = covers.study_uid.as_deref().unwrap_or("");
    let mut series = String::new();
    for s in &covers.series {
        let thumb = if has_pixels(&s.modality) {
            format!(
                "<img src=\"/s/{token}/dicomweb/studies/{study}/series/{uid}/thumbnail\" alt=\"{modality}\" loading=\"lazy\" width=\"128\" height=\"128\">",
                study = escape(study_uid),
                uid = escape(&s.series_uid),
                modality = escape(&s.modality),
            )
        } else {
            format!("<span class=\"nothumb\">{}</span>", escape(&s.modality))
        };
        series.push_str(&format!(
            "<li>{thumb}<strong>{modality}</strong> {description}<br><span class=\"muted\">{n} {images}</span></li>",
            modality = escape(&s.modality),
            description = escape(&s.description),
            n = s.instances,
            images = images(lang, s.instances),
        ));
    }
    let arriving = covers.state != "complete";
    let arriving_note = if arriving {
        format!(
            "<p class=\"arriving\" id=\"arriving\"><strong>{still}: {n} {images}</strong> — {note}</p>",
            still = lang.pick("Nog binnenkomend", "Still arriving"),
            n = covers.instances,
            images = images(lang, covers.instances),
            note = lang.pick(
                "deze pagina ververst zichzelf.",
                "this page refreshes itself."
            ),
        )
    } else {
        String::new()
    };
    let patient = covers.patient_name.as_deref().map(person_name);
    let birth = covers
        .patient_birth_date
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| format!(" · {} {}", lang.pick("geboren", "born"), dicom_date(d)))
        .unwrap_or_default();
    let bsn = covers
        .bsn_last_digits
        .as_deref()
        .map(|d| format!(" · BSN ·····{}", escape(d)))
        .unwrap_or_default();
    let message = if g.message.is_empty() {
        String::new()
    } else {
        format!("<blockquote>{}</blockquote>", escape(&g.message))
    };
    let delegate = if g.delegation_depth > 0 {
        format!(
            "<h2>{title}</h2><p class=\"muted\">{explain}</p>\
<form method=\"post\" action=\"/s/{token}/delegate\">\
<label>{message_label} <input name=\"message\"></label><br>\
<label>{ura_label} <input name=\"to_ura\" inputmode=\"numeric\" pattern=\"[0-9]{{8}}\" placeholder=\"00000000\"></label><br>\
<button type=\"submit\">{new_link}</button></form>",
            title = lang.pick("Doorautoriseren", "Pass on"),
            explain = lang.pick(
                "Maak een eigen link en code voor een collega; die kan niet meer zien of langer dan u.",
                "Make a link and code of its own for a colleague; it cannot show more, or last longer, than yours."
            ),
            message_label = lang.pick("Bericht", "Message"),
            ura_label = lang.pick(
                "Alleen voor URA (optioneel)",
                "Only for URA (optional)"
            ),
            new_link = lang.pick("Nieuwe link", "New link"),
        )
    } else {
        String::new()
    };
    let head = if arriving {
        "<meta http-equiv=\"refresh\" content=\"10\">"
    } else {
        ""
    };
    let birth_bsn = format!("{}{}", birth.trim_start_matches(" · "), bsn);
    let body = format!(
        "<div class=\"patient\"><h1>{patient}</h1><p>{birth_bsn}</p></div>\
<p>{from}: <strong>{org}</strong> ({issuer})</p>{message}{arriving_note}\
<p>{study_date} · {description} · {modalities}<br>{n} {images} · {size} · {valid} {until}</p>\
<p><a class=\"button\" id=\"download\" href=\"/s/{token}/download.zip\" download>{download}</a> \
<span class=\"muted\">{download_note}</span></p>\
<ul class=\"series\">{series}</ul>\
<h2>DICOMweb</h2><p class=\"muted\">{dicomweb_note}</p>\
<p><input class=\"url\" id=\"dicomweb\" readonly value=\"{dicomweb}\"> \
<button type=\"button\" id=\"copy\" hidden data-done=\"{copied}\">{copy}</button></p>\
{delegate}<script>{COPY_SCRIPT}</script>",
        patient = escape(
            patient
                .as_deref()
                .unwrap_or(lang.pick("Gedeelde studie", "Shared study"))
        ),
        birth_bsn = birth_bsn,
        from = lang.pick("Van", "From"),
        org = escape(page.org),
        issuer = escape(&g.issuer),
        study_date = dicom_date(covers.study_date.as_deref().unwrap_or("")),
        description = escape(covers.study_description.as_deref().unwrap_or("")),
        modalities = escape(&covers.modalities.join(", ")),
        n = covers.instances,
        images = images(lang, covers.instances),
        size = size(covers.bytes),
        valid = lang.pick("geldig tot", "valid until"),
        until = date(g.expires_at),
        download = lang.pick("Download (ZIP)", "Download (ZIP)"),
        download_note = lang.pick(
            "Importeert als een cd: DICOMDIR met alle beelden.",
            "Imports like a CD: a DICOMDIR with every image."
        ),
        dicomweb_note = lang.pick(
            "Voor import in een PACS of viewer (met uw houdertoken of UZI-pas):",
            "To import into a PACS or viewer (with your holder token or UZI card):"
        ),
        dicomweb = escape(page.dicomweb),
        copy = lang.pick("Kopieer", "Copy"),
        copied = lang.pick("Gekopieerd", "Copied"),
    );
    layout(lang, "pushgate", head, &body)
}

/// The one answer for every link that is not the caller's to open: the
/// same for every request, in both languages.
pub fn not_found() -> String {
    layout(
        Lang::Nl,
        "pushgate",
        "",
        "<h1>Niet beschikbaar · Not available</h1>\
<p>Deze link of code is niet (meer) geldig, of niet voor u.<br>This link or code is not (or no longer) valid, or not for you.</p>\
<p><a href=\"/\">Code invoeren · Enter a code</a></p>",
    )
}

pub fn delegated(lang: Lang, issued: &Issued<HolderCoverage>) -> String {
    layout(
        lang,
        "pushgate",
        "",
        &format!(
            "<h1>{title}</h1><p><code>{url}</code></p><p>{code_label}: <code>{code}</code></p>\
<p>{valid} {until}</p>",
            title = lang.pick("Nieuwe link", "New link"),
            code_label = lang.pick("Code", "Code"),
            valid = lang.pick("Geldig tot", "Valid until"),
            url = escape(&issued.url),
            code = escape(&issued.code),
            until = date(issued.expires_at)
        ),
    )
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
    fn names_dates_and_sizes() {
        assert_eq!(person_name("Jansen^Anna^^^"), "Jansen, Anna");
        assert_eq!(person_name("Müller^Jörg"), "Müller, Jörg");
        assert_eq!(person_name("Anoniem"), "Anoniem");
        assert_eq!(dicom_date("20240312"), "2024-03-12");
        assert_eq!(
            dicom_date("\"><meta http-equiv=refresh>"),
            "&quot;&gt;&lt;meta http-equiv=refresh&gt;"
        );
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MB");
        assert!(escape("<a href=\"x\">").starts_with("&lt;a href=&quot;"));
    }

    #[test]
    fn the_policy_allows_exactly_the_copy_script() {
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(COPY_SCRIPT.as_bytes()));
        assert!(STUDY_PAGE_CSP.contains(&format!("'sha256-{hash}'")));
        assert!(!STUDY_PAGE_CSP.contains("script-src 'unsafe-inline'"));
    }
}
