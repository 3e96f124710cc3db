//! Settings (applicatiebeheerder only, `StaffAction::Configuration`): the
//! effective configuration, read-only — every key after the defaults, the
//! file and the environment, as `pushgate config check` prints it and as
//! the daemon started on — with the listeners, the version, the data
//! directory, the gateway key, the address book, and how the background
//! workers, the journal and the disk stand (what `/readyz` checks).
//!
//! Secrets never reach the page: the configuration names key files,
//! token files and client-secret files by path only, and whatever might
//! still hold a secret (a key named like one, a PEM block, a password in a
//! URL) is shown as `(hidden)`.

use std::sync::RwLock;

use hyper::{Method, Request, Response};
use maud::{Markup, html};

use super::pages::{self, Head, Section};
use super::{Console, Ctx};
use crate::authz::StaffAction;
use crate::web::pages::Lang;
use crate::web::{Body, Inbound, Refusal, blocking};
use crate::worker::WorkerState;

/// What replaces a value that may be a secret.
const HIDDEN: &str = "(hidden)";

/// The effective configuration the daemon started on (TOML).
static EFFECTIVE: RwLock<Option<String>> = RwLock::new(None);

/// Keeps the effective configuration for this page (`main` calls it with
/// what `Config::load_effective` gave at start).
pub fn remember_effective(toml: String) {
    if let Ok(mut slot) = EFFECTIVE.write() {
        *slot = Some(toml);
    }
}

fn effective() -> Option<String> {
    EFFECTIVE.read().ok().and_then(|s| s.clone())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /console/settings`
    Index,
}

pub fn route(method: &Method, rest: &[&str]) -> Option<Route> {
    match rest {
        [] | [""] if method == Method::GET || method == Method::HEAD => Some(Route::Index),
        _ => None,
    }
}

/// Whether a key's value may be a secret itself (not a path to one).
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let named = [
        "secret",
        "password",
        "passwd",
        "token",
        "private",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s));
    named && !(k.ends_with("_file") || k.ends_with("_path") || k.ends_with("_dir"))
}

/// A value with what may be secret in it hidden: PEM blocks, and the
/// password of a URL (`https://user:pass@host`).
fn hide_in(value: &str) -> String {
    if value.contains("-----BEGIN") || value.contains("PRIVATE KEY") {
        return HIDDEN.to_string();
    }
    if let Some((scheme, rest)) = value.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let user = rest[..at].split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:{HIDDEN}@{}", &rest[at + 1..]);
        }
    }
    value.to_string()
}

fn redact_value(key: &str, value: &mut toml::Value) {
    match value {
        toml::Value::Table(t) => redact(t),
        toml::Value::Array(items) => {
            for item in items {
                redact_value(key, item);
            }
        }
        toml::Value::String(s) if secret_key(key) && !s.is_empty() => *s = HIDDEN.to_string(),
        toml::Value::String(s) => *s = hide_in(s),
        _ if secret_key(key) => *value = toml::Value::String(HIDDEN.to_string()),
        _ => {}
    }
}

fn redact(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        redact_value(key, value);
    }
}

/// The effective configuration with every secret value hidden; text that
/// is not TOML is not shown at all.
pub fn redacted(effective: &str) -> Option<String> {
    let mut table: toml::Table = effective.parse().ok()?;
    redact(&mut table);
    toml::to_string(&table).ok()
}

/// How the daemon stands now.
struct Standing {
    workers: Vec<(&'static str, WorkerState)>,
    disk: crate::capacity::DiskStatus,
    journal_writable: bool,
    journal_lag: u64,
    journal_head: crate::journal::Head,
    book_entries: usize,
    book_error: Option<String>,
    fingerprint: String,
}

pub async fn handle(
    console: &Console,
    ctx: &Ctx,
    route: Route,
    _request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    console.require(ctx, StaffAction::Configuration)?;
    match route {
        Route::Index => {
            let app = console.app.clone();
            let standing = blocking(move || {
                let journal = app.authz.journal();
                Ok::<_, Refusal>(Standing {
                    workers: app.workers.states(),
                    disk: app.relay.ingestor.disk().status(),
                    journal_writable: journal.is_writable(),
                    journal_lag: journal.lag(),
                    journal_head: journal.head(),
                    book_entries: app.relay.book.current().len(),
                    book_error: app.relay.book.last_error(),
                    fingerprint: app.relay.key.fingerprint(),
                })
            })
            .await?;
            Ok(page(console, ctx, &standing))
        }
    }
}

fn worker_state(lang: Lang, state: &WorkerState) -> Markup {
    html! {
        @match state {
            WorkerState::Running => span class="state active" { (lang.pick("draait", "running")) },
            WorkerState::Finished => span.state { (lang.pick("klaar", "finished")) },
            WorkerState::Failed(why) => { span class="state failed" { (lang.pick("mislukt", "failed")) } " " span.error { (why) } },
        }
    }
}

fn page(console: &Console, ctx: &Ctx, s: &Standing) -> Response<Body> {
    let lang = ctx.lang;
    let c = &console.config;
    let title = lang.pick("Instellingen", "Settings");
    let shown = effective().and_then(|e| redacted(&e));
    let path = |p: &std::path::Path| p.display().to_string();
    let body = html! {
        h1 { (title) }
        p.muted { (lang.pick("Alleen lezen: de instellingen veranderen in het configuratiebestand (en SIGHUP of een herstart).",
            "Read-only: settings change in the configuration file (then SIGHUP or a restart).")) }
        h2 { (lang.pick("Deze gateway", "This gateway")) }
        dl.facts {
            dt { (lang.pick("Versie", "Version")) } dd { "pushgate " (env!("CARGO_PKG_VERSION")) }
            dt { (lang.pick("Organisatie", "Organisation")) } dd { (c.org_name) " · URA " (c.org_ura.as_str()) }
            dt { (lang.pick("Publiek adres", "Public address")) } dd { code { (c.public_url) } }
            dt { (lang.pick("Datamap", "Data directory")) } dd { code { (path(&c.data_dir)) } }
            dt { "DICOM" } dd { code { (c.dicom.listen.to_string()) } " · AE " code { (c.dicom.ae_title.as_str()) } }
            dt { "HTTPS" } dd { code { (c.http.listen.to_string()) } (lang.pick(" (ontvangers)", " (recipients)")) }
            dt { (lang.pick("Console", "Console")) } dd {
                code { (c.console.listen.to_string()) } (lang.pick(" (console en admin-API)", " (console and admin API)"))
                @if c.admin.on_public_listener { br; span.bad { (lang.pick("de admin-API antwoordt ook op de publieke listener", "the admin API also answers on the public listener")) } }
            }
            dt { (lang.pick("TLS-certificaat", "TLS certificate")) } dd {
                @match &c.http.tls {
                    Some(files) => code { (path(&files.cert)) },
                    None => (lang.pick("zelf ondertekend, in de datamap", "self-signed, in the data directory")),
                }
            }
            dt { (lang.pick("Admin-token", "Admin token")) } dd { code { (path(&c.admin.token_file)) } }
            dt { (lang.pick("Gateway-sleutel", "Gateway key")) } dd { code { (s.fingerprint) } br; span.muted { code { (path(&c.relay.key)) } } }
            dt { (lang.pick("Adresboek", "Address book")) } dd {
                @match &c.relay.address_book {
                    Some(p) => { code { (path(p)) } " · " (s.book_entries) (lang.pick(" gateways", " gateways")) }
                    None => (lang.pick("geen", "none")),
                }
                @if let Some(e) = &s.book_error { br; span.error { (e) } }
            }
            dt { (lang.pick("Doorsturen naar", "Forwarding to")) } dd {
                @match &c.forward.pacs { Some(p) => code { (p.to_string()) }, None => (lang.pick("uit", "off")) }
            }
            dt { (lang.pick("Inloggen", "Login")) } dd {
                @match &c.console.oidc {
                    Some(o) => { "OpenID Connect: " code { (o.issuer) } }
                    None => (lang.pick("lokale accounts (wachtwoord en TOTP)", "local accounts (password and TOTP)")),
                }
            }
        }
        h2 { (lang.pick("Toestand", "State")) }
        table.workers {
            thead { tr { th { (lang.pick("Onderdeel", "Part")) } th { (lang.pick("Status", "State")) } } }
            tbody {
                @for (name, state) in &s.workers {
                    tr { td { code { (name) } } td { (worker_state(lang, state)) } }
                }
                tr {
                    td { (lang.pick("journaal", "journal")) }
                    td {
                        @if s.journal_writable { span class="state active" { (lang.pick("schrijfbaar", "writable")) } }
                        @else { span class="state failed" { (lang.pick("niet schrijfbaar", "not writable")) } }
                        " " span.muted { (lang.pick("record ", "record ")) (s.journal_head.seq)
                            @if s.journal_lag > 0 { ", " (s.journal_lag) (lang.pick(" in de rij", " queued")) } }
                    }
                }
                tr {
                    td { (lang.pick("schijf", "disk")) }
                    td {
                        @if s.disk.over_high_water { span class="state failed" { (lang.pick("vol: ontvangst gestopt", "full: intake stopped")) } " " }
                        (format!("{:.1}", s.disk.used_percent)) (lang.pick(" % gebruikt, ", " % used, ")) (pages::size(s.disk.free_bytes)) (lang.pick(" vrij", " free"))
                    }
                }
            }
        }
        h2 { (lang.pick("Effectieve configuratie", "Effective configuration")) }
        p.muted { (lang.pick("Standaardwaarden, dan het bestand, dan PUSHGATE__-omgevingsvariabelen; zoals de daemon startte. Geheimen staan in bestanden en worden alleen met hun pad getoond.",
            "Defaults, then the file, then PUSHGATE__ environment variables; as the daemon started. Secrets live in files and are shown by their path only.")) }
        @match shown {
            Some(text) => pre.config { code { (text) } },
            None => p { (lang.pick("Niet beschikbaar.", "Not available.")) },
        }
    };
    console.page(ctx, title, Section::Settings, Head::default(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_paths_shown() {
        let text = r#"
data_dir = "/var/lib/pushgate"
[admin]
token_file = "/etc/pushgate/admin.token"
token = "s3cr3t"
[console.oidc]
client_secret_file = "/etc/pushgate/oidc.secret"
client_secret = "hunter2"
[relay]
address_book_url = "https://sync:p4ss@book.example/peers.toml"
key = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nxyz"
[http]
cors_origins = ["https://ohif.example"]
"#;
        let shown = redacted(text).unwrap();
        assert!(shown.contains("/etc/pushgate/admin.token"), "{shown}");
        assert!(shown.contains("/etc/pushgate/oidc.secret"), "{shown}");
        assert!(shown.contains("https://ohif.example"), "{shown}");
        for secret in ["s3cr3t", "hunter2", "p4ss", "BEGIN PGP"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("https://sync:(hidden)@book.example/peers.toml"),
            "{shown}"
        );
        assert_eq!(redacted("not = toml = at all"), None);
    }

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, &[]), Some(Route::Index));
        assert_eq!(route(&Method::POST, &[]), None);
        assert_eq!(route(&Method::GET, &["x"]), None);
    }
}
