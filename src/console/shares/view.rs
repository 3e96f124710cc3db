//! Pieces of markup the shares, outbox, received and audit pages share:
//! a patient as people read them, a recipient with the address book's
//! name, a state as a badge, a grant's use.

use maud::{Markup, html};

use super::usage::Usage;
use crate::authz::{GrantView, Recipient};
use crate::console::pages;
use crate::journal::Who;
use crate::relay::book::AddressBook;
use crate::store::{PatientAttrs, StudyRecord};
use crate::web::pages::Lang;

/// A DICOM person name as people read it: `DOE^JANE` → `DOE, JANE`, the
/// same on every page (the studies list, the share form, the audit).
pub use crate::web::pages::person_name;

/// A person name as a search matches it: as shown (`Jansen, Anna`) and as
/// typed (`Jansen Anna`, DICOM's `^` as a space), lowercase.
pub fn searchable_name(pn: &str) -> String {
    let typed: Vec<&str> = pn
        .split(['^', '='])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    format!("{}\n{}", person_name(pn), typed.join(" ")).to_lowercase()
}

/// The patient: name, ID, birth date.
pub fn patient(lang: Lang, p: &PatientAttrs) -> Markup {
    html! {
        strong { (person_name(&p.name)) }
        @if !p.id.is_empty() {
            " · " span.muted { (lang.pick("ID ", "ID ")) (p.id) }
        }
        @if !p.birth_date.is_empty() {
            " · " span.muted { (lang.pick("geb. ", "born ")) (pages::dicom_date(lang, &p.birth_date)) }
        }
    }
}

/// A study in one line: date, description, modalities.
pub fn study_line(lang: Lang, s: &StudyRecord) -> Markup {
    let modalities: Vec<&str> = s.modalities().into_iter().collect();
    html! {
        (pages::dicom_date(lang, &s.attrs.study_date))
        @if !s.attrs.study_description.trim().is_empty() { " · " (crate::console::studies::text(&s.attrs.study_description)) }
        @if !modalities.is_empty() { " · " (modalities.join(", ")) }
    }
}

/// Who may bind a grant: anyone with the link or code, or an
/// organisation (its name from the address book, its URA, roles).
pub fn recipient(lang: Lang, r: &Recipient, book: &AddressBook) -> Markup {
    match r {
        Recipient::Anyone => html! {
            (lang.pick("wie de link of code gebruikt", "whoever uses the link or code"))
        },
        Recipient::Organization { ura, roles } => html! {
            @if let Some(g) = book.by_ura(ura) { (g.name) " " }
            span.muted { "URA " (ura) }
            @if !roles.is_empty() {
                br;
                span.muted { (lang.pick("rollen ", "roles ")) (roles.join(", ")) }
            }
        },
    }
}

/// A grant's status ("active", "bound", "expired", "revoked") as a badge.
pub fn grant_state(lang: Lang, status: &str) -> Markup {
    let text = match status {
        "active" => lang.pick("actief", "active"),
        "bound" => lang.pick("gebonden", "bound"),
        "expired" => lang.pick("verlopen", "expired"),
        "revoked" => lang.pick("ingetrokken", "revoked"),
        other => other,
    };
    html! { span class={ "state " (status) } { (text) } }
}

/// Who holds a grant: not yet bound, or the holder's identity.
pub fn holder(lang: Lang, v: &GrantView) -> Markup {
    html! {
        @match &v.holder {
            None => span.muted { (lang.pick("nog niet gebonden", "not bound yet")) },
            Some(h) => {
                (h)
                @if let Some(at) = v.bound_at {
                    br; span.muted { (lang.pick("sinds ", "since ")) (pages::when(lang, at)) }
                }
            }
        }
    }
}

/// How much a grant was used.
pub fn usage(lang: Lang, u: Option<&Usage>) -> Markup {
    html! {
        @match u {
            Some(u) if u.count > 0 => {
                (u.count) "×"
                @if let Some(last) = u.last {
                    br; span.muted { (lang.pick("laatst ", "last ")) (pages::when(lang, last)) }
                }
                @if u.bytes > 0 { br; span.muted { (pages::size(u.bytes)) } }
                @if u.denied > 0 {
                    br; span.bad { (u.denied) (lang.pick(" geweigerd", " refused")) }
                }
            }
            Some(u) if u.denied > 0 => {
                span.muted { (lang.pick("niet gebruikt", "not used")) }
                br; span.bad { (u.denied) (lang.pick(" geweigerd", " refused")) }
            }
            _ => span.muted { (lang.pick("niet gebruikt", "not used")) },
        }
    }
}

/// Who issued a grant: the person logged in, or (passed on) its holder.
pub fn issuer(lang: Lang, v: &GrantView) -> Markup {
    html! {
        @match &v.issued_by {
            Some(a) => {
                (a.name)
                @if a.role == "token" { " " span.muted { (lang.pick("(CLI/API)", "(CLI/API)")) } }
            }
            None => span.muted { (v.issuer) },
        }
    }
}

/// `a=1&b=x%20y`: values percent-encoded.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::base::percent_encode(v, &[])))
        .collect::<Vec<_>>()
        .join("&")
}

/// Who asked, as the journal names them.
pub fn who(lang: Lang, w: &Who) -> String {
    match w {
        Who::Anonymous => lang.pick("onbekend", "unidentified").to_string(),
        Who::Certificate { identity } => identity.clone(),
        Who::HolderToken { hash_prefix } => format!(
            "{} {hash_prefix}…",
            lang.pick("houdertoken", "holder token")
        ),
    }
}
