//! The ways in: entering a code, opening a link not yet bound, the neutral
//! answer to anything that is not the caller's, and the new link made by
//! passing a grant on.

use maud::html;

use super::{Lang, date, layout};
use crate::authz::{HolderCoverage, Issued};

/// `/`: where a code from a letter or a phone call is entered.
pub fn code_entry(lang: Lang, org: &str, error: Option<&str>) -> String {
    layout(
        lang,
        html! {},
        html! {
            h1 { (lang.pick("Beelden ophalen", "Retrieve images")) }
            p { (org) }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" action="/redeem" {
                label for="code" { (lang.pick("Autorisatiecode", "Authorization code")) }
                br;
                input #code name="code" autocomplete="off" autocapitalize="characters"
                    spellcheck="false" placeholder="XXXX-XXXX-XXX" required;
                " "
                button type="submit" { (lang.pick("Openen", "Open")) }
            }
        },
    )
}

/// A link not yet bound: opening it is a deliberate step, so that a mail
/// scanner fetching the URL binds nothing.
pub fn offer_binding(lang: Lang, org: &str, token: &str) -> String {
    layout(
        lang,
        html! {},
        html! {
            h1 { (lang.pick("Gedeelde beelden", "Shared images")) }
            p {
                (org)
                (lang.pick(
                    " heeft beelden met u gedeeld. Na openen is deze link alleen nog voor u (deze browser of uw UZI-pas).",
                    " shared images with you. Once opened, this link is yours alone (this browser, or your UZI card).",
                ))
            }
            form method="post" action={ "/s/" (token) } {
                button type="submit" { (lang.pick("Openen", "Open")) }
            }
        },
    )
}

/// The one answer for every link that is not the caller's to open: the
/// same for every request, in both languages.
pub fn not_found() -> String {
    layout(
        Lang::Nl,
        html! {},
        html! {
            h1 { "Niet beschikbaar · Not available" }
            p {
                "Deze link of code is niet (meer) geldig, of niet voor u."
                br;
                "This link or code is not (or no longer) valid, or not for you."
            }
            p { a href="/" { "Code invoeren · Enter a code" } }
        },
    )
}

/// The answer to passing a grant on, in a browser: the new link and code.
pub fn delegated(lang: Lang, issued: &Issued<HolderCoverage>) -> String {
    layout(
        lang,
        html! {},
        html! {
            h1 { (lang.pick("Nieuwe link", "New link")) }
            p { code { (issued.url) } }
            p { (lang.pick("Code", "Code")) ": " code { (issued.code) } }
            p { (lang.pick("Geldig tot", "Valid until")) " " (date(issued.expires_at)) }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::study::tests::{coverage, grant};
    use super::*;

    const HOSTILE: &str = "\"><script>alert(1)</script>";
    const ESCAPED: &str = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;";

    #[test]
    fn code_entry_escapes_the_organisation_and_the_error() {
        let page = code_entry(Lang::Nl, HOSTILE, Some(&format!("typo {HOSTILE}")));
        assert!(!page.contains("<script>"), "{page}");
        assert_eq!(page.matches(ESCAPED).count(), 2, "{page}");
        assert!(page.contains(&format!(
            "<p class=\"error\" role=\"alert\">typo {ESCAPED}</p>"
        )));
        assert!(page.contains("<form method=\"post\" action=\"/redeem\">"));
        assert!(page.contains("<label for=\"code\">Autorisatiecode</label>"));
        assert!(page.contains("<input id=\"code\" name=\"code\""));
        let page = code_entry(Lang::En, "Radiologie Voorbeeld", None);
        assert!(page.contains("<h1>Retrieve images</h1><p>Radiologie Voorbeeld</p><form"));
        assert!(!page.contains("role=\"alert\""));
        assert!(page.contains("<html lang=\"en\">"));
    }

    #[test]
    fn offer_binding_escapes_the_organisation_and_the_token() {
        for lang in [Lang::Nl, Lang::En] {
            let page = offer_binding(lang, HOSTILE, HOSTILE);
            assert!(!page.contains("<script>"), "{page}");
            assert_eq!(page.matches(ESCAPED).count(), 2, "{page}");
            assert!(page.contains(&format!("action=\"/s/{ESCAPED}\"")));
        }
        let page = offer_binding(Lang::Nl, "Radiologie Voorbeeld", "abc");
        assert!(page.contains(
            "<p>Radiologie Voorbeeld heeft beelden met u gedeeld. Na openen is deze link alleen nog voor u"
        ));
        assert!(page.contains(
            "<form method=\"post\" action=\"/s/abc\"><button type=\"submit\">Openen</button></form>"
        ));
    }

    #[test]
    fn not_found_is_bilingual_and_fixed() {
        let page = not_found();
        assert!(page.contains("Niet beschikbaar · Not available"));
        assert!(page.contains("This link or code is not (or no longer) valid, or not for you."));
        assert_eq!(page, not_found());
    }

    #[test]
    fn delegated_escapes_the_link_and_the_code() {
        let grant = grant(HOSTILE, HOSTILE, 1);
        let issued = Issued {
            id: grant.grant.id.clone(),
            url: format!("https://gw.example/s/{HOSTILE}"),
            code: HOSTILE.to_string(),
            enter_code_at: "https://gw.example/".into(),
            expires_at: grant.grant.expires_at,
            covers: coverage(&grant, HOSTILE),
        };
        let page = delegated(Lang::En, &issued);
        assert!(!page.contains("<script>"), "{page}");
        assert_eq!(page.matches(ESCAPED).count(), 2, "{page}");
        assert!(
            page.contains("<p>Valid until 2030-01-01 00:00</p>"),
            "{page}"
        );
    }
}
