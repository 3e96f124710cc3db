//! The console's page frame, assets and the way it writes dates, sizes
//! and names. Markup by maud (escaped by construction, see
//! `web::pages`); the one `PreEscaped` of the console is nowhere: styles
//! and scripts are files under `/console/static/`, so the page's CSP can
//! forbid inline code altogether.

use maud::{DOCTYPE, Markup, html};

use super::Ctx;
use crate::authz::Role;
use crate::store::Timestamp;
use crate::web::pages::Lang;

/// The files under `/console/static/`: compiled in, served with their type.
pub const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("static/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("static/console.js"),
    ),
    (
        "share.js",
        "text/javascript; charset=utf-8",
        include_str!("static/share.js"),
    ),
];

/// The console's CSP: nothing inline, nothing from elsewhere.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The sections of the navigation, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Studies,
    Shares,
    Received,
    Outbox,
    Audit,
    Users,
    Settings,
    /// Login, enrolment, errors: no navigation entry is current.
    None,
}

impl Section {
    fn entries() -> [(Section, &'static str, &'static str, &'static str, Role); 7] {
        [
            (
                Section::Studies,
                "/console/studies",
                "Onderzoeken",
                "Studies",
                Role::User,
            ),
            (
                Section::Shares,
                "/console/shares",
                "Gedeeld",
                "Shares",
                Role::User,
            ),
            (
                Section::Received,
                "/console/received",
                "Ontvangen",
                "Received",
                Role::User,
            ),
            (
                Section::Outbox,
                "/console/outbox",
                "Verzonden",
                "Sent",
                Role::User,
            ),
            (
                Section::Audit,
                "/console/audit",
                "Audit",
                "Audit",
                Role::Admin,
            ),
            (
                Section::Users,
                "/console/users",
                "Gebruikers",
                "Users",
                Role::Admin,
            ),
            (
                Section::Settings,
                "/console/settings",
                "Instellingen",
                "Settings",
                Role::Admin,
            ),
        ]
    }
}

/// Extra things a page puts in its `<head>`: more scripts (from
/// [`ASSETS`]) and a refresh while something is live.
#[derive(Debug, Default, Clone)]
pub struct Head {
    pub scripts: Vec<&'static str>,
    /// Seconds: console.js reloads the page while nobody is typing.
    pub refresh: Option<u32>,
}

/// Every console page: header with the organisation, navigation for the
/// person's role, who is logged in, logout, the language switch.
pub fn layout(
    ctx: &Ctx,
    org: &str,
    title: &str,
    section: Section,
    head: Head,
    body: Markup,
) -> String {
    let lang = ctx.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                // no icon: else the browser asks /favicon.ico at every load
                link rel="icon" href="data:,";
                @if let Some(seconds) = head.refresh.filter(|_| !ctx.posted) {
                    meta name="pushgate-refresh" content=(seconds);
                }
                title { (title) " — pushgate" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
                @for script in &head.scripts {
                    script src={ "/console/static/" (script) } defer {}
                }
            }
            body {
                a.skip href="#main" { (lang.pick("Naar de inhoud", "Skip to content")) }
                header.top {
                    a.org href="/console/" { (org) }
                    @if let Some(session) = &ctx.session {
                        nav aria-label=(lang.pick("Hoofdmenu", "Main menu")) {
                            @for (s, href, nl, en, needs) in Section::entries() {
                                @if session.person.role >= needs {
                                    @if s == section {
                                        a href=(href) aria-current="page" { (lang.pick(nl, en)) }
                                    } @else {
                                        a href=(href) { (lang.pick(nl, en)) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        @if let Some(session) = &ctx.session {
                            span {
                                (session.person.name) " · "
                                (role_name(lang, session.person.role))
                            }
                            form method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" { (lang.pick("Afmelden", "Log out")) }
                            }
                        }
                        (language_switch(ctx))
                    }
                }
                main #main { (body) }
            }
        }
    }
    .into_string()
}

fn language_switch(ctx: &Ctx) -> Markup {
    // only a console path: `//evil.example` (a 404 in the console's frame)
    // would be a link to another site
    let path = ctx.path.as_str();
    let here = if path.starts_with("/console") && !path.contains("//") && !path.contains('\\') {
        path
    } else {
        "/console/"
    };
    html! {
        @match ctx.lang {
            Lang::Nl => a href={ (here) "?lang=en" } lang="en" hreflang="en" { "English" },
            Lang::En => a href={ (here) "?lang=nl" } lang="nl" hreflang="nl" { "Nederlands" },
        }
    }
}

pub fn role_name(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::User => lang.pick("gebruiker", "user"),
        Role::Admin => lang.pick("applicatiebeheerder", "application manager"),
    }
}

/// The hidden CSRF field every form of a logged-in page carries.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! {
        @if let Some(session) = &ctx.session {
            input type="hidden" name="csrf" value=(session.csrf);
        }
    }
}

const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn local(t: Timestamp) -> Option<jiff::Zoned> {
    let at = jiff::Timestamp::from_millisecond(i64::try_from(t.0).ok()?).ok()?;
    Some(at.to_zoned(jiff::tz::TimeZone::system()))
}

/// A moment as people in the hospital write it, in local time:
/// "7 december 2026, 14:05" / "7 December 2026, 14:05".
pub fn when(lang: Lang, t: Timestamp) -> String {
    match local(t) {
        Some(z) => format!("{}, {:02}:{:02}", day(lang, &z), z.hour(), z.minute()),
        None => t.to_string(),
    }
}

/// Only the day: "7 december 2026".
pub fn on(lang: Lang, t: Timestamp) -> String {
    local(t).map_or_else(|| t.to_string(), |z| day(lang, &z))
}

fn day(lang: Lang, z: &jiff::Zoned) -> String {
    let months = match lang {
        Lang::Nl => &MONTHS_NL,
        Lang::En => &MONTHS_EN,
    };
    let month = usize::try_from(z.month() - 1).unwrap_or(0).min(11);
    format!("{} {} {}", z.day(), months[month], z.year())
}

/// A DICOM date (YYYYMMDD) as people write it; anything else as it is.
pub fn dicom_date(lang: Lang, da: &str) -> String {
    let da = da.trim();
    if da.len() != 8 || !da.bytes().all(|b| b.is_ascii_digit()) {
        return da.to_string();
    }
    let (y, m, d) = (&da[..4], &da[4..6], &da[6..8]);
    let months = match lang {
        Lang::Nl => &MONTHS_NL,
        Lang::En => &MONTHS_EN,
    };
    match m.parse::<usize>() {
        Ok(m @ 1..=12) => format!("{} {} {y}", d.trim_start_matches('0'), months[m - 1]),
        _ => da.to_string(),
    }
}

/// A QR code of `text` as a `data:` URI of an SVG image (the CSP allows
/// `img-src data:`, and nothing has to be fetched or scripted).
pub fn qr_data_uri(text: &str) -> Option<String> {
    use base64::Engine;
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
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

/// Bytes as people read them.
pub fn size(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if b >= K * K * K {
        format!("{:.1} GB", b / (K * K * K))
    } else if b >= K * K {
        format!("{:.1} MB", b / (K * K))
    } else if b >= K {
        format!("{:.0} kB", b / K)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_people_write_them() {
        assert_eq!(dicom_date(Lang::Nl, "20261207"), "7 december 2026");
        assert_eq!(dicom_date(Lang::En, "20260301"), "1 March 2026");
        assert_eq!(dicom_date(Lang::En, "2026"), "2026");
        assert_eq!(dicom_date(Lang::En, "20261307"), "20261307");
        let t = Timestamp(1_796_000_000_000);
        let written = when(Lang::Nl, t);
        assert!(written.contains(" 2026, "), "{written}");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 << 20), "3.0 MB");
        assert_eq!(size(5 << 30), "5.0 GB");
    }
}
