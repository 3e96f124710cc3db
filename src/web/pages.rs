//! Server-rendered pages for recipients: no scripts, no assets from
//! elsewhere. (The full study page with thumbnails and download comes with
//! DICOMweb retrieval.)

use crate::authz::{Coverage, GrantState, Issued};
use crate::store::Timestamp;

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

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"nl\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
input,button{{font-size:1.1rem;padding:.4rem .6rem}}code{{background:#f3f3f3;padding:.1rem .3rem}}\
.error{{color:#a00}}table{{border-collapse:collapse}}td,th{{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #ddd}}</style>\
</head><body>{body}</body></html>",
        title = escape(title)
    )
}

/// `/`: where a code from a letter or a phone call is entered.
pub fn code_entry(org: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\">{}</p>", escape(e))
    });
    layout(
        "pushgate",
        &format!(
            "<h1>Beelden ophalen · Retrieve images</h1>\
<p>{org}</p>{error}\
<form method=\"post\" action=\"/redeem\">\
<label for=\"code\">Autorisatiecode · Authorization code</label><br>\
<input id=\"code\" name=\"code\" autocomplete=\"off\" autocapitalize=\"characters\" placeholder=\"XXXX-XXXX-XXX\" required> \
<button type=\"submit\">Openen · Open</button></form>",
            org = escape(org)
        ),
    )
}

/// A link not yet bound: opening it is a deliberate step, so that a mail
/// scanner fetching the URL binds nothing.
pub fn offer_binding(org: &str, token: &str) -> String {
    layout(
        "pushgate",
        &format!(
            "<h1>Gedeelde beelden · Shared images</h1>\
<p>{org} heeft beelden met u gedeeld. Na openen is deze link alleen nog voor u (deze browser of uw UZI-pas).<br>\
{org} shared images with you. Once opened, this link is yours alone (this browser, or your UZI card).</p>\
<form method=\"post\" action=\"/s/{token}\"><button type=\"submit\">Openen · Open</button></form>",
            org = escape(org),
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

/// The holder's page: from whom, why, what, until when.
pub fn holder_page(
    org: &str,
    grant: &GrantState,
    covers: &Coverage,
    dicomweb: &str,
    token: &str,
) -> String {
    let g = &grant.grant;
    let mut series = String::new();
    for s in covers.series.iter().filter(|s| s.included > 0) {
        series.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.modality),
            escape(&s.description),
            s.included
        ));
    }
    let arriving = if covers.state == "complete" {
        String::new()
    } else {
        format!(
            "<p><strong>Nog binnenkomend · still arriving</strong> ({})</p>",
            escape(covers.state)
        )
    };
    let delegate = if g.delegation_depth > 0 {
        format!(
            "<h2>Doorautoriseren · Pass on</h2><form method=\"post\" action=\"/s/{token}/delegate\">\
<label>Bericht · Message <input name=\"message\"></label> \
<button type=\"submit\">Nieuwe link · New link</button></form>",
            token = escape(token)
        )
    } else {
        String::new()
    };
    layout(
        "pushgate",
        &format!(
            "<h1>{patient}</h1><p>Van · From: {org} ({issuer})</p>{message}{arriving}\
<p>{description} · {instances} beelden · images · geldig tot · valid until {until}</p>\
<table><tr><th>Modaliteit</th><th>Serie · Series</th><th>Beelden · Images</th></tr>{series}</table>\
<p>DICOMweb: <code>{dicomweb}</code></p>{delegate}",
            patient = escape(
                covers
                    .patient_name
                    .as_deref()
                    .unwrap_or("Gedeelde studie · Shared study")
            ),
            org = escape(org),
            issuer = escape(&g.issuer),
            message = if g.message.is_empty() {
                String::new()
            } else {
                format!("<blockquote>{}</blockquote>", escape(&g.message))
            },
            description = escape(covers.study_description.as_deref().unwrap_or("")),
            dicomweb = escape(dicomweb),
            instances = covers.instances,
            until = date(g.expires_at),
        ),
    )
}

/// The one answer for every link that is not the caller's to open.
pub fn not_found() -> String {
    layout(
        "pushgate",
        "<h1>Niet beschikbaar · Not available</h1>\
<p>Deze link of code is niet (meer) geldig, of niet voor u.<br>This link or code is not (or no longer) valid, or not for you.</p>\
<p><a href=\"/\">Code invoeren · Enter a code</a></p>",
    )
}

pub fn delegated(issued: &Issued) -> String {
    layout(
        "pushgate",
        &format!(
            "<h1>Nieuwe link · New link</h1><p><code>{url}</code></p><p>Code: <code>{code}</code></p>\
<p>Geldig tot · valid until {until}</p>",
            url = escape(&issued.url),
            code = escape(&issued.code),
            until = date(issued.expires_at)
        ),
    )
}
