//! What a share made: its result page (`/console/share/done/{grant}`: the
//! link, the code, where to enter it, a QR code of the link, copy
//! buttons) and the printable referral sheet (`…/sheet`, A4): who shared
//! what, for whom, until when, the code and where to use it. For the
//! grant's issuer and an applicatiebeheerder only (`authz::staff_owns`);
//! the link and code only in the session that issued it (see `share`).

use base64::Engine;
use hyper::{Response, header};
use maud::{Markup, html};

use super::blocking;
use crate::authz::{GrantDetail, GrantId, LegalBasis, Recipient};
use crate::console::pages::{self, Head, Section};
use crate::console::session::IssuedSecret;
use crate::console::studies::{images, patient_name, text};
use crate::console::{Console, ConsoleError, Ctx};
use crate::web::pages::Lang;
use crate::web::{Body, Refusal, WebError};

pub async fn page(
    console: &Console,
    ctx: &Ctx,
    id: &GrantId,
    sheet: bool,
) -> Result<Response<Body>, Refusal> {
    let person = ctx.person()?;
    let authz = console.app.authz.clone();
    let grant = id.clone();
    let detail = blocking(move || Ok(authz.show(&grant))).await?;
    let detail = detail.ok_or(WebError::NotFound)?;
    if !console
        .app
        .authz
        .staff_owns(person, detail.grant.issued_by.as_ref())
    {
        return Err(ConsoleError::Forbidden(
            ctx.lang
                .pick(
                    "deze deling is door iemand anders gemaakt; alleen die persoon en een applicatiebeheerder zien haar",
                    "this share was made by someone else; only they and an application manager see it",
                )
                .into(),
        )
        .into());
    }
    let secret = ctx
        .session
        .as_ref()
        .and_then(|s| s.issued.iter().find(|i| &i.grant == id).cloned());
    let enter_at = console.app.authz.code_page();
    let recipient = recipient(console, ctx.lang, &detail.grant.recipient);
    let shown = Shown {
        detail: &detail,
        secret: secret.as_ref(),
        enter_at: &enter_at,
        recipient: &recipient,
    };
    let lang = ctx.lang;
    let (title, body) = if sheet {
        (
            lang.pick("Verwijsblad", "Referral sheet"),
            referral_sheet(lang, &console.config.org_name, &shown),
        )
    } else {
        (lang.pick("Gedeeld", "Shared"), result(lang, id, &shown))
    };
    let head = Head {
        scripts: vec!["share.js"],
        ..Head::default()
    };
    let mut response = console.page(ctx, title, Section::Studies, head, body);
    // the link and the code: not for any cache
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

struct Shown<'a> {
    detail: &'a GrantDetail,
    secret: Option<&'a IssuedSecret>,
    enter_at: &'a str,
    recipient: &'a str,
}

/// Who may open it, as people read it (the organisation by its name in
/// the address book).
fn recipient(console: &Console, lang: Lang, recipient: &Recipient) -> String {
    match recipient {
        Recipient::Anyone => lang
            .pick(
                "wie de link of code als eerste gebruikt",
                "whoever uses the link or code first",
            )
            .into(),
        Recipient::Organization { ura, roles } => {
            let book = console.app.relay.book.current();
            let name = book
                .by_ura(ura)
                .map_or_else(String::new, |g| format!("{} ", g.name));
            let mut out = format!(
                "{name}(URA {ura}), {}",
                lang.pick("alleen met een UZI-pas", "only with a UZI card")
            );
            if !roles.is_empty() {
                out.push_str(&format!(
                    "; {} {}",
                    lang.pick("rol", "role"),
                    roles.join(", ")
                ));
            }
            out
        }
    }
}

/// The link as a QR code: an SVG, as a `data:` URI for an `img`.
pub fn qr_data_uri(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

fn status(lang: Lang, status: &str) -> &'static str {
    match status {
        "active" => lang.pick("actief, nog niet gebruikt", "active, not used yet"),
        "bound" => lang.pick("in gebruik", "in use"),
        "expired" => lang.pick("verlopen", "expired"),
        _ => lang.pick("ingetrokken", "revoked"),
    }
}

fn legal_basis(lang: Lang, basis: Option<&LegalBasis>) -> Markup {
    html! {
        @match basis {
            Some(LegalBasis::Referral) => (lang.pick("verwijzing (toestemming verondersteld)", "referral (consent presumed)")),
            Some(LegalBasis::ExplicitConsent { note }) => {
                (lang.pick("uitdrukkelijke toestemming", "explicit consent")) ": " q { (note) }
            }
            None => "—",
        }
    }
}

/// Patient, study and what of it: the facts both pages state (the items
/// of a `dl.facts`).
fn facts(lang: Lang, shown: &Shown<'_>) -> Markup {
    let g = &shown.detail.grant;
    let c = &shown.detail.covers;
    let series = c.series.iter().filter(|s| s.included > 0).count();
    html! {
            dt { (lang.pick("Patiënt", "Patient")) }
            dd {
                @match (&c.patient_name, &g.patient) {
                    (Some(name), _) => { strong.name { (patient_name(lang, name)) } }
                    (None, Some(p)) => { strong.name { (patient_name(lang, &p.name)) } }
                    (None, None) => { (lang.pick("nog niet bekend (onderzoek nog niet binnen)", "not known yet (study not here yet)")) }
                }
                @if let Some(p) = &g.patient {
                    " · ID " (text(&p.id))
                }
                @if let Some(born) = &c.patient_birth_date {
                    @if !born.trim().is_empty() {
                        " · " (lang.pick("geb.", "born")) " " (pages::dicom_date(lang, born))
                    }
                }
            }
            dt { (lang.pick("Onderzoek", "Study")) }
            dd {
                @if let Some(d) = &c.study_date { (pages::dicom_date(lang, d)) " · " }
                (text(c.study_description.as_deref().unwrap_or("")))
            }
            dt { (lang.pick("Wat", "What")) }
            dd {
                (series) " " (lang.pick("series", "series")) ", "
                (images(lang, c.instances)) ", " (pages::size(c.bytes))
                @if c.state != "complete" {
                    " (" (match c.state { "arriving" => lang.pick("komt nog binnen", "still arriving"), _ => lang.pick("nog niet binnen", "not here yet") }) ")"
                }
            }
            dt { (lang.pick("Voor", "For")) }
            dd { (shown.recipient) }
            dt { (lang.pick("Geldig tot en met", "Valid until")) }
            dd { (pages::when(lang, g.expires_at)) }
            @if !g.message.is_empty() {
                dt { (lang.pick("Bericht", "Message")) }
                dd { q { (g.message) } }
            }
            dt { (lang.pick("Gedeeld door", "Shared by")) }
            dd {
                (g.issued_by.as_ref().map_or(g.issuer.as_str(), |a| a.name.as_str()))
                ", " (pages::when(lang, g.created_at))
            }
    }
}

fn result(lang: Lang, id: &GrantId, shown: &Shown<'_>) -> Markup {
    let g = &shown.detail.grant;
    let c = &shown.detail.covers;
    html! {
        h1 { (lang.pick("Gedeeld", "Shared")) }
        @match shown.secret {
            Some(secret) => {
                div.ok {
                    p { (lang.pick("De deling is gemaakt. Geef de link of de code aan de ontvanger.",
                                   "The share is made. Give the link or the code to the recipient.")) }
                }
                div.secrets {
                    div {
                        label for="share-link" { (lang.pick("Link", "Link")) }
                        div.copyable {
                            input #share-link type="text" readonly value=(secret.url) size="60";
                            button.secondary type="button" data-copy="share-link" data-copied=(lang.pick("Gekopieerd", "Copied")) hidden { (lang.pick("Kopieer", "Copy")) }
                        }
                        p {
                            (lang.pick("Code", "Code")) ": "
                            span #share-code.code.big { (secret.code) } " "
                            button.secondary type="button" data-copy="share-code" data-copied=(lang.pick("Gekopieerd", "Copied")) hidden { (lang.pick("Kopieer", "Copy")) }
                        }
                        p {
                            (lang.pick("De code voert de ontvanger in op", "The recipient enters the code at")) " "
                            a #enter-at href=(shown.enter_at) { (shown.enter_at) }
                        }
                    }
                    @if let Some(qr) = qr_data_uri(&secret.url) {
                        figure.qr {
                            img src=(qr) width="200" height="200" alt=(lang.pick("QR-code van de link", "QR code of the link"));
                            figcaption { (lang.pick("QR-code van de link", "QR code of the link")) }
                        }
                    }
                }
                p.notice {
                    (lang.pick(
                        "De link en de code staan alleen hier, in uw sessie: pushgate bewaart ze nergens leesbaar. Druk het verwijsblad nu af als u het nodig hebt.",
                        "The link and the code are only here, in your session: pushgate keeps them nowhere readable. Print the referral sheet now if you need it."))
                }
            }
            None => {
                p.notice {
                    (lang.pick(
                        "De link en de code zijn alleen getoond aan wie de deling maakte, direct daarna en in die sessie; pushgate bewaart ze niet leesbaar. Kwijt? Trek de deling in en deel opnieuw.",
                        "The link and the code were shown only to whoever made the share, right after, in that session; pushgate does not keep them readable. Lost? Revoke the share and share again."))
                }
            }
        }
        dl.facts {
            (facts(lang, shown))
            dt { (lang.pick("Status", "State")) }
            dd { span class={ "state " (g.status) } { (status(lang, g.status)) } }
            dt { (lang.pick("Mag worden doorgegeven", "May be passed on")) }
            dd {
                @if g.delegation_depth == 0 { (lang.pick("nee", "no")) }
                @else { (g.delegation_depth) " " (lang.pick("keer", "time(s)")) }
            }
            dt { (lang.pick("Grondslag", "Legal basis")) }
            dd { (legal_basis(lang, g.legal_basis.as_ref())) }
            @if c.excluded.instances > 0 {
                dt { (lang.pick("Blijft in huis", "Stays in the house")) }
                dd {
                    (images(lang, c.excluded.instances)) " " (lang.pick("in", "in")) " " (c.excluded.series) " " (lang.pick("series", "series"))
                    @if !c.excluded.modalities.is_empty() { " (" (c.excluded.modalities.join(", ")) ")" }
                }
            }
        }
        @if c.series.iter().any(|s| s.included > 0) {
            h2 { (lang.pick("Meegestuurde series", "Series shared")) }
            ul.series-list {
                @for s in c.series.iter().filter(|s| s.included > 0) {
                    li { strong { (text(&s.modality)) } " " (text(&s.description)) " — " (images(lang, s.included)) }
                }
            }
        }
        p.no-print {
            a.button href={ "/console/share/done/" (id) "/sheet" } { (lang.pick("Verwijsblad (afdrukken)", "Referral sheet (print)")) }
            " "
            a.button.secondary href="/console/studies" { (lang.pick("Terug naar onderzoeken", "Back to studies")) }
        }
    }
}

fn referral_sheet(lang: Lang, org: &str, shown: &Shown<'_>) -> Markup {
    html! {
        article.sheet {
            header {
                p.org { (org) }
                h1 { (lang.pick("Verwijzing: beelden gedeeld", "Referral: images shared")) }
            }
            dl.facts { (facts(lang, shown)) }
            section.access {
                h2 { (lang.pick("Zo opent u de beelden", "How to open the images")) }
                @match shown.secret {
                    Some(secret) => {
                        div.sheet-code {
                            div {
                                p { (lang.pick("Ga naar", "Go to")) " " strong #sheet-enter-at { (shown.enter_at) } " "
                                    (lang.pick("en voer deze code in:", "and enter this code:")) }
                                p.code.big #sheet-code { (secret.code) }
                                p.muted { (lang.pick("Of scan de QR-code: die opent de beelden direct.",
                                                     "Or scan the QR code: it opens the images directly.")) }
                            }
                            @if let Some(qr) = qr_data_uri(&secret.url) {
                                img.qr src=(qr) width="160" height="160" alt=(lang.pick("QR-code van de link", "QR code of the link"));
                            }
                        }
                    }
                    None => {
                        p.notice { (lang.pick(
                            "De code staat alleen op het blad dat direct na het delen, in dezelfde sessie, is afgedrukt.",
                            "The code is only on the sheet printed right after sharing, in the same session.")) }
                    }
                }
                p.muted {
                    (lang.pick(
                        "De code werkt één keer: wie hem als eerste gebruikt, houdt de toegang. Deze code geeft toegang tot medische beelden: bewaar dit blad zorgvuldig.",
                        "The code works once: whoever uses it first keeps the access. This code gives access to medical images: keep this sheet safe."))
                }
            }
            p.no-print {
                button type="button" data-print hidden { (lang.pick("Afdrukken", "Print")) }
                " "
                a.button.secondary href={ "/console/share/done/" (shown.detail.grant.id) } { (lang.pick("Terug", "Back")) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_qr_code_is_an_svg_data_uri() {
        let uri = super::qr_data_uri("https://gw.example/s/abc").unwrap();
        let b64 = uri.strip_prefix("data:image/svg+xml;base64,").unwrap();
        use base64::Engine;
        let svg = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
    }
}
