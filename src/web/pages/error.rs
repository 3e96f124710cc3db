//! The page a person gets when a request of theirs fails: what happened,
//! in words, and what to do about it. The one HTTP error mapping calls it
//! for a browser; a program gets the same reason as JSON.

use hyper::StatusCode;
use maud::html;

use super::display::{Dicom, displayable};
use super::{Lang, layout};

/// What happened and what to do, by status: (heading, advice), Dutch then
/// English.
fn explain(status: StatusCode) -> [(&'static str, &'static str); 2] {
    match status.as_u16() {
        400 | 422 => [
            (
                "Dit verzoek kon niet worden verwerkt",
                "Controleer wat u invulde of de link die u volgde, en probeer het opnieuw.",
            ),
            (
                "This request could not be processed",
                "Check what you entered or the link you followed, and try again.",
            ),
        ],
        401 | 403 => [
            (
                "Geen toegang",
                "Open de link in de browser waarmee u hem eerder opende, of met uw UZI-pas.",
            ),
            (
                "No access",
                "Open the link in the browser you first opened it with, or with your UZI card.",
            ),
        ],
        404 | 410 => [
            (
                "Niet gevonden",
                "Controleer het adres, of vraag de afzender om een nieuwe link.",
            ),
            (
                "Not found",
                "Check the address, or ask the sender for a new link.",
            ),
        ],
        408 | 413 | 414 | 431 => [
            (
                "Dit verzoek is te groot of duurde te lang",
                "Probeer het opnieuw; lukt het niet, neem dan contact op met de afzender.",
            ),
            (
                "This request was too large or took too long",
                "Try again; if it keeps failing, contact the sender.",
            ),
        ],
        429 => [
            (
                "Te veel pogingen",
                "Wacht een paar minuten en probeer het dan opnieuw.",
            ),
            ("Too many attempts", "Wait a few minutes, then try again."),
        ],
        503 => [
            (
                "Tijdelijk niet beschikbaar",
                "De gateway is even te druk of in onderhoud. Probeer het over een paar minuten opnieuw.",
            ),
            (
                "Temporarily unavailable",
                "The gateway is busy or being serviced. Try again in a few minutes.",
            ),
        ],
        500..=599 => [
            (
                "Er ging iets mis bij de gateway",
                "Dat ligt niet aan u. Probeer het later opnieuw; blijft het misgaan, neem dan contact op met de afdeling die de beelden deelde.",
            ),
            (
                "Something went wrong at the gateway",
                "This is not your doing. Try again later; if it keeps failing, contact the department that shared the images.",
            ),
        ],
        _ => [
            (
                "Dit verzoek kan niet worden uitgevoerd",
                "Controleer de link of de code en probeer het opnieuw.",
            ),
            (
                "This request cannot be carried out",
                "Check the link or the code and try again.",
            ),
        ],
    }
}

/// An error page for `status`, giving `reason` (the error's own message)
/// as it is, bounded: the caller decides what a reason may say, this page
/// only shows it.
pub fn error_page(lang: Lang, status: StatusCode, reason: &str) -> String {
    let [nl, en] = explain(status);
    let (heading, advice) = match lang {
        Lang::Nl => nl,
        Lang::En => en,
    };
    // reasons are ours, not the data set's, but may quote what a client
    // sent: bounded like any other value shown
    let reason = displayable(Some(reason), Dicom::Text, lang);
    layout(
        lang,
        html! {},
        html! {
            h1 { (heading) }
            p.error role="alert" { (reason) }
            p { (advice) }
            p.muted {
                (lang.pick("Foutcode", "Error code")) " " (status.as_u16())
                @if let Some(canonical) = status.canonical_reason() { " (" (canonical) ")" }
            }
            p { a href="/" { (lang.pick("Code invoeren", "Enter a code")) } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_happened_and_what_to_do_in_the_language_asked() {
        let page = error_page(
            Lang::Nl,
            StatusCode::TOO_MANY_REQUESTS,
            "too many attempts; try again later",
        );
        assert!(page.contains("<html lang=\"nl\">"));
        assert!(page.contains("<h1>Te veel pogingen</h1>"), "{page}");
        assert!(
            page.contains(
                "<p class=\"error\" role=\"alert\">too many attempts; try again later</p>"
            )
        );
        assert!(page.contains("Wacht een paar minuten"));
        assert!(page.contains("Foutcode 429 (Too Many Requests)"));
        let page = error_page(
            Lang::En,
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot record this now",
        );
        assert!(page.contains("<h1>Temporarily unavailable</h1>"), "{page}");
        assert!(page.contains("Try again in a few minutes."));
        assert!(page.contains("<a href=\"/\">Enter a code</a>"));
    }

    #[test]
    fn every_status_has_words_in_both_languages() {
        for code in 400..=599u16 {
            let Ok(status) = StatusCode::from_u16(code) else {
                continue;
            };
            let [nl, en] = explain(status);
            assert!(!nl.0.is_empty() && !nl.1.is_empty() && !en.0.is_empty() && !en.1.is_empty());
            assert_ne!(nl, en, "{code}: the Dutch is not the English");
        }
        // a server fault is not the reader's
        let [nl, en] = explain(StatusCode::INTERNAL_SERVER_ERROR);
        assert!(nl.1.contains("niet aan u") && en.1.contains("not your doing"));
    }

    #[test]
    fn the_reason_is_escaped_and_bounded() {
        let hostile = format!(
            "bad field \"><script>alert(1)</script>{}",
            "x".repeat(10_000)
        );
        let page = error_page(Lang::En, StatusCode::BAD_REQUEST, &hostile);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("bad field &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;xx"));
        assert!(page.len() < 4_000, "{} bytes", page.len());
    }
}
