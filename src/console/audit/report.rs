//! `GET /console/audit/patient`: the report for an inzage request (AVG
//! art. 15, NEN 7513) — who saw this patient's images, when, from where.
//! Every grant issued for any of the patient's studies (by whom, for whom,
//! on what legal basis, passed on by whom), every access to those grants
//! (the holder, the time, the address, allowed or refused), every push to
//! another gateway, every study received and deleted. Built from the
//! journal, so it still names the patient after retention deleted the
//! study (the journal's grant records carry the patient as stored).
//! Printable on A4.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;

use maud::{Markup, html};

use super::filter::{Chain, Filter, learn_all, scan};
use super::knowledge::{Knowledge, Patient};
use super::page::chain_status;
use crate::base::GrantId;
use crate::console::pages::{self, Head, Section};
use crate::console::shares::view::{person_name, query_string, who};
use crate::console::{Console, Ctx};
use crate::journal::{
    AccessKind, Event, HolderRecord, JournalError, LegalBasisRecord, Outcome, RecipientRecord,
    Relay,
};
use crate::relay::book::AddressBook;
use crate::store::{Index, StudyRecord, Timestamp, Uid};
use crate::web::pages::Lang;

/// A grant on one of the patient's studies.
#[derive(Debug, Clone)]
pub struct GrantEntry {
    pub id: GrantId,
    pub at: Timestamp,
    pub study: Option<Uid>,
    /// Who issued it: the member of staff, or (passed on) the holder.
    pub by: String,
    pub by_id: String,
    pub from: String,
    pub recipient: RecipientRecord,
    pub legal_basis: Option<String>,
    pub expires_at: Timestamp,
    pub parent: Option<GrantId>,
    pub message: String,
    /// When, to whom, from where it was bound.
    pub bound: Option<(Timestamp, String, String)>,
    /// When and how it ended (revoked by whom and why, expired).
    pub ended: Option<(Timestamp, String)>,
}

#[derive(Debug, Clone)]
pub struct AccessEntry {
    pub at: Timestamp,
    pub grant: Option<GrantId>,
    pub what: AccessKind,
    pub who: String,
    pub from: String,
    pub allowed: bool,
    pub reason: String,
    pub instances: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct PushEntry {
    pub at: Timestamp,
    pub study: Uid,
    pub to_ura: String,
    pub by: String,
    pub delivered: Option<Timestamp>,
    pub ended: Option<String>,
}

/// What the journal holds of one patient.
#[derive(Debug, Default)]
pub struct Report {
    pub patient: Patient,
    /// The patient's studies: in the store now (with its record), or
    /// deleted (when).
    pub studies: BTreeMap<Uid, (Option<StudyRecord>, Option<Timestamp>)>,
    pub grants: Vec<GrantEntry>,
    pub accesses: Vec<AccessEntry>,
    pub pushes: Vec<PushEntry>,
    /// Packages with the patient's studies received from other gateways.
    pub received: Vec<(Timestamp, String, String)>,
    pub chain: Chain,
}

/// What a query finds.
pub enum Found {
    /// Nothing asked yet.
    Nothing,
    NoPatient,
    /// More than one patient matches: which one?
    Choose(Vec<(Patient, usize)>),
    Report(Box<Report>),
}

/// The legal basis a grant was issued on, as people read it.
pub fn legal_basis(lang: Lang, basis: &LegalBasisRecord) -> String {
    match basis {
        LegalBasisRecord::Referral => lang
            .pick(
                "verwijzing (toestemming verondersteld)",
                "referral (consent presumed)",
            )
            .to_string(),
        LegalBasisRecord::ExplicitConsent { note } => format!(
            "{}: {note}",
            lang.pick("uitdrukkelijke toestemming", "explicit consent")
        ),
    }
}

fn holder_text(h: &HolderRecord) -> String {
    match h {
        HolderRecord::Certificate(c) => match &c.uzi {
            Some(u) => format!(
                "UZI {} ({}, URA {}, role {}), {}",
                u.uzi_number, u.pass_type, u.ura, u.role, c.subject
            ),
            None => c.subject.clone(),
        },
        HolderRecord::Token { hash } => {
            format!("holder token {}…", hash.get(..12).unwrap_or(hash))
        }
    }
}

/// Builds the report for the patient `key` names (or, if only one
/// matches, whom `query` names). Blocking.
pub fn build(
    dir: &Path,
    index: &dyn Index,
    query: &str,
    key: &str,
    filter: &Filter,
    lang: Lang,
) -> Result<Found, JournalError> {
    if query.trim().is_empty() && key.is_empty() {
        return Ok(Found::Nothing);
    }
    let known = learn_all(dir, index)?;
    let mut by_patient: HashMap<String, (Patient, Vec<Uid>)> = HashMap::new();
    let candidates = if key.is_empty() {
        known.studies_of_patient(query)
    } else {
        known
            .studies_of_patient(query)
            .into_iter()
            .filter(|(_, p)| p.key() == key)
            .collect()
    };
    for (uid, patient) in candidates {
        by_patient
            .entry(patient.key())
            .or_insert_with(|| (patient, Vec::new()))
            .1
            .push(uid);
    }
    if by_patient.is_empty() {
        return Ok(Found::NoPatient);
    }
    if by_patient.len() > 1 {
        let mut choices: Vec<(Patient, usize)> = by_patient
            .into_values()
            .map(|(p, s)| (p, s.len()))
            .collect();
        choices.sort_by(|a, b| a.0.name.cmp(&b.0.name).then(a.0.id.cmp(&b.0.id)));
        return Ok(Found::Choose(choices));
    }
    let Some((patient, studies)) = by_patient.into_values().next() else {
        return Ok(Found::NoPatient);
    };
    let wanted: HashSet<Uid> = studies.iter().cloned().collect();
    let mut report = Report {
        patient,
        studies: studies
            .iter()
            .map(|u| (u.clone(), (index.study(u).ok().flatten(), None)))
            .collect(),
        ..Report::default()
    };
    let period = Filter {
        since: filter.since,
        until: filter.until,
        ..Filter::default()
    };
    let mut grant_at: HashMap<GrantId, usize> = HashMap::new();
    let mut push_at: HashMap<String, usize> = HashMap::new();
    report.chain = scan(dir, index, &period, |record, _, known| {
        collect(
            &mut report,
            &mut grant_at,
            &mut push_at,
            &wanted,
            record.at,
            &record.event,
            known,
            lang,
        );
        ControlFlow::Continue(())
    })?;
    Ok(Found::Report(Box::new(report)))
}

#[allow(clippy::too_many_arguments)]
fn collect(
    report: &mut Report,
    grant_at: &mut HashMap<GrantId, usize>,
    push_at: &mut HashMap<String, usize>,
    wanted: &HashSet<Uid>,
    at: Timestamp,
    event: &Event,
    known: &Knowledge,
    lang: Lang,
) {
    let studies = known.studies_of(event);
    let ours = studies.iter().find(|s| wanted.contains(*s)).cloned();
    let of_ours = |g: &GrantId| grant_at.get(g).copied();
    match event {
        Event::GrantIssued { grant, from, .. } | Event::GrantDelegated { grant, from, .. }
            if ours.is_some() || grant.parent.as_ref().is_some_and(|p| of_ours(p).is_some()) =>
        {
            let (by_name, by_id) = match (event, by_of(event)) {
                (_, Some((name, id))) => (name, id),
                (Event::GrantDelegated { by, .. }, None) => (who(lang, by), String::new()),
                _ => (grant.issuer.clone(), String::new()),
            };
            // a grant passed on stands on its root's basis
            let basis = match event {
                Event::GrantIssued {
                    legal_basis: Some(b),
                    ..
                } => Some(legal_basis(lang, b)),
                _ => grant
                    .parent
                    .as_ref()
                    .and_then(&of_ours)
                    .and_then(|i| report.grants[i].legal_basis.clone()),
            };
            grant_at.insert(grant.id.clone(), report.grants.len());
            report.grants.push(GrantEntry {
                id: grant.id.clone(),
                at,
                study: ours.or_else(|| known.study_of_grant(&grant.id).cloned()),
                by: by_name,
                by_id,
                from: from.clone(),
                recipient: grant.recipient.clone(),
                legal_basis: basis,
                expires_at: grant.expires_at,
                parent: grant.parent.clone(),
                message: grant.message.clone(),
                bound: None,
                ended: None,
            });
        }
        Event::GrantBound {
            grant,
            holder,
            from,
            ..
        } => {
            if let Some(i) = of_ours(grant) {
                report.grants[i]
                    .bound
                    .get_or_insert((at, holder_text(holder), from.clone()));
            }
        }
        Event::GrantRevoked {
            grant,
            by,
            reason,
            cascade,
            ..
        } => {
            for (id, via) in
                std::iter::once((grant, false)).chain(cascade.iter().map(|c| (c, true)))
            {
                if let Some(i) = of_ours(id) {
                    let how = match (via, reason.is_empty()) {
                        (false, true) => {
                            format!("{} {by}", lang.pick("ingetrokken door", "revoked by"))
                        }
                        (false, false) => format!(
                            "{} {by}: {reason}",
                            lang.pick("ingetrokken door", "revoked by")
                        ),
                        (true, _) => format!(
                            "{} {} ({by})",
                            lang.pick("ingetrokken met", "revoked with"),
                            grant.0
                        ),
                    };
                    report.grants[i].ended.get_or_insert((at, how));
                }
            }
        }
        Event::GrantExpired { grant } => {
            if let Some(i) = of_ours(grant) {
                report.grants[i]
                    .ended
                    .get_or_insert((at, lang.pick("verlopen", "expired").to_string()));
            }
        }
        Event::GrantResolved { grant, study, .. } if wanted.contains(study) => {
            if let Some(i) = of_ours(grant) {
                report.grants[i].study = Some(study.clone());
            }
        }
        Event::Access(a) => {
            let mine = a.grant.as_ref().is_some_and(|g| of_ours(g).is_some()) || ours.is_some();
            if mine {
                let (allowed, reason) = match &a.outcome {
                    Outcome::Allowed => (true, String::new()),
                    Outcome::Denied(r) => (
                        false,
                        serde_json::to_value(r)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    ),
                };
                report.accesses.push(AccessEntry {
                    at,
                    grant: a.grant.clone(),
                    what: a.what,
                    who: who(lang, &a.who),
                    from: a.from.clone(),
                    allowed,
                    reason,
                    instances: a.instances,
                    bytes: a.bytes,
                });
            }
        }
        Event::Relay(Relay::Queued {
            outbox,
            study,
            to_ura,
            by,
            actor,
            ..
        }) if wanted.contains(study) => {
            push_at.insert(outbox.clone(), report.pushes.len());
            report.pushes.push(PushEntry {
                at,
                study: study.clone(),
                to_ura: to_ura.clone(),
                by: actor
                    .as_ref()
                    .map_or_else(|| by.clone(), |a| a.name.clone()),
                delivered: None,
                ended: None,
            });
        }
        Event::Relay(Relay::Delivered { outbox, .. }) => {
            if let Some(&i) = push_at.get(outbox) {
                report.pushes[i].delivered.get_or_insert(at);
            }
        }
        Event::Relay(Relay::Failed {
            outbox,
            reason,
            last: true,
            ..
        }) => {
            if let Some(&i) = push_at.get(outbox) {
                report.pushes[i].ended.get_or_insert(reason.clone());
            }
        }
        Event::Relay(
            Relay::Cancelled { outbox, reason, .. } | Relay::Withdrawn { outbox, reason, .. },
        ) => {
            if let Some(&i) = push_at.get(outbox) {
                let said = if reason.is_empty() {
                    lang.pick("geannuleerd", "cancelled").to_string()
                } else {
                    format!("{}: {reason}", lang.pick("geannuleerd", "cancelled"))
                };
                report.pushes[i].ended.get_or_insert(said);
            }
        }
        Event::Relay(Relay::Received {
            package,
            from_ura,
            studies,
            ..
        }) if studies.iter().any(|s| wanted.contains(s)) => {
            report
                .received
                .push((at, from_ura.clone(), package.clone()));
        }
        Event::StudyDeleted { study, .. } if wanted.contains(study) => {
            if let Some(entry) = report.studies.get_mut(study) {
                entry.1 = Some(at);
            }
        }
        _ => {}
    }
}

/// A member of staff who issued a grant, as (name, id).
fn by_of(event: &Event) -> Option<(String, String)> {
    match event {
        Event::GrantIssued { by: Some(a), .. } => Some((a.name.clone(), a.id.clone())),
        _ => None,
    }
}

fn recipient(lang: Lang, r: &RecipientRecord, book: &AddressBook) -> Markup {
    html! {
        @match r {
            RecipientRecord::Anyone => (lang.pick("wie de link of code gebruikt", "whoever uses the link or code")),
            RecipientRecord::Organization { ura, roles } => {
                @if let Some(g) = book.by_ura(ura) { (g.name) " " }
                "(URA " (ura) ")"
                @if !roles.is_empty() { ", " (lang.pick("rollen ", "roles ")) (roles.join(", ")) }
            }
        }
    }
}

fn what(lang: Lang, kind: AccessKind) -> &'static str {
    match kind {
        AccessKind::Page => lang.pick("pagina bekeken", "page viewed"),
        AccessKind::Redeem => lang.pick("code ingevoerd", "code redeemed"),
        AccessKind::Bind => lang.pick("gebonden", "bound"),
        AccessKind::Delegate => lang.pick("doorgegeven", "passed on"),
        AccessKind::Qido => lang.pick("gezocht (QIDO)", "searched (QIDO)"),
        AccessKind::Wado => lang.pick("beelden opgehaald (WADO)", "images retrieved (WADO)"),
        AccessKind::Metadata => lang.pick("metadata opgehaald", "metadata retrieved"),
        AccessKind::Frames => lang.pick("beelden opgehaald", "frames retrieved"),
        AccessKind::Rendered => lang.pick("beelden bekeken", "images viewed"),
        AccessKind::Thumbnail => lang.pick("miniaturen", "thumbnails"),
        AccessKind::Download => lang.pick("gedownload", "downloaded"),
        AccessKind::Admin => "admin",
    }
}

fn form(lang: Lang, query: &str, filter: &Filter) -> Markup {
    html! {
        form.search.no-print method="get" action="/console/audit/patient" role="search" {
            label { (lang.pick("Patiënt (naam, ID, BSN)", "Patient (name, ID, BSN)"))
                input type="search" name="q" value=(query) required; }
            label { (lang.pick("Van", "From")) input type="date" name="from" value=(filter.from); }
            label { (lang.pick("Tot en met", "Until")) input type="date" name="to" value=(filter.to); }
            button type="submit" { (lang.pick("Verslag maken", "Make the report")) }
        }
    }
}

fn patient_block(lang: Lang, p: &Patient) -> Markup {
    html! {
        dl.facts.patient {
            dt { (lang.pick("Patiënt", "Patient")) } dd { strong { (person_name(&p.name)) } }
            @if !p.id.is_empty() {
                dt { (lang.pick("Patiënt-ID", "Patient ID")) }
                dd { (p.id) @if !p.issuer.is_empty() { " " span.muted { "(" (p.issuer) ")" } } }
            }
            @if let Some(bsn) = &p.bsn { dt { "BSN" } dd { (bsn) } }
            @if !p.birth_date.is_empty() {
                dt { (lang.pick("Geboortedatum", "Date of birth")) } dd { (pages::dicom_date(lang, &p.birth_date)) }
            }
        }
    }
}

fn report_body(lang: Lang, ctx: &Ctx, console: &Console, r: &Report, filter: &Filter) -> Markup {
    let book = console.app.relay.book.current();
    let allowed = r.accesses.iter().filter(|a| a.allowed).count();
    html! {
        header.report {
            p.muted { (console.config.org_name) " · URA " (console.config.org_ura.as_str()) }
            h1 { (lang.pick("Inzageverslag: wie zag deze beelden", "Access report: who saw these images")) }
            p.muted {
                (lang.pick("Op grond van AVG art. 15 en NEN 7513, uit het journaal van pushgate. ",
                    "Under GDPR art. 15 and NEN 7513, from pushgate's journal. "))
                (lang.pick("Gemaakt ", "Made ")) (pages::when(lang, Timestamp::now()))
                @if let Some(s) = &ctx.session { (lang.pick(" door ", " by ")) (s.person.name) }
                @if !filter.from.is_empty() || !filter.to.is_empty() {
                    br; (lang.pick("Periode: ", "Period: ")) (filter.from) " – " (filter.to)
                }
            }
        }
        (patient_block(lang, &r.patient))
        (chain_status(lang, &r.chain))
        h2 { (lang.pick("Onderzoeken", "Studies")) }
        ul.studies {
            @for (uid, (record, deleted)) in &r.studies {
                li {
                    @if let Some(s) = record {
                        (pages::dicom_date(lang, &s.attrs.study_date)) " " (s.attrs.study_description) " "
                    }
                    code.small { (uid.to_string()) }
                    @if let Some(at) = deleted { " · " (lang.pick("verwijderd ", "deleted ")) (pages::when(lang, *at)) }
                }
            }
        }
        h2 { (lang.pick("Gedeeld", "Shared")) " (" (r.grants.len()) ")" }
        @if r.grants.is_empty() {
            p { (lang.pick("Deze beelden zijn niet gedeeld.", "These images were not shared.")) }
        } @else {
            table.report-grants {
                thead { tr {
                    th { (lang.pick("Wanneer", "When")) }
                    th { (lang.pick("Door", "By")) }
                    th { (lang.pick("Voor", "For")) }
                    th { (lang.pick("Grondslag", "Legal basis")) }
                    th { (lang.pick("Houder", "Holder")) }
                    th { (lang.pick("Einde", "End")) }
                } }
                tbody {
                    @for g in &r.grants {
                        tr {
                            td { (pages::when(lang, g.at)) br; code.small { (g.id.0) } }
                            td {
                                (g.by)
                                @if !g.by_id.is_empty() && g.by_id != g.by { br; span.muted { (g.by_id) } }
                                @if let Some(p) = &g.parent { br; span.muted { (lang.pick("doorgegeven van ", "passed on from ")) (p.0) } }
                                @if !g.from.is_empty() { br; span.muted { (g.from) } }
                            }
                            td {
                                (recipient(lang, &g.recipient, &book))
                                @if !g.message.is_empty() { br; span.muted { "“" (g.message) "”" } }
                            }
                            td {
                                @match &g.legal_basis {
                                    Some(b) => (b),
                                    None => span.muted { (lang.pick("niet vastgelegd", "not recorded")) },
                                }
                            }
                            td {
                                @match &g.bound {
                                    Some((at, holder, from)) => { (holder) br; span.muted { (pages::when(lang, *at)) " · " (from) } }
                                    None => span.muted { (lang.pick("nooit gebonden", "never bound")) },
                                }
                            }
                            td {
                                @match &g.ended {
                                    Some((at, how)) => { (how) br; span.muted { (pages::when(lang, *at)) } }
                                    None => { (lang.pick("geldig tot ", "valid until ")) (pages::when(lang, g.expires_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.pick("Toegang", "Accesses")) " (" (allowed) (lang.pick(" toegestaan", " allowed")) ", " (r.accesses.len() - allowed) (lang.pick(" geweigerd", " refused")) ")" }
        @if r.accesses.is_empty() {
            p { (lang.pick("Niemand heeft deze beelden via een gedeelde link bekeken.", "Nobody looked at these images through a shared link.")) }
        } @else {
            table.report-accesses {
                thead { tr {
                    th { (lang.pick("Wanneer", "When")) }
                    th { (lang.pick("Wie", "Who")) }
                    th { (lang.pick("Vanaf", "From")) }
                    th { (lang.pick("Wat", "What")) }
                    th { (lang.pick("Link", "Link")) }
                    th { (lang.pick("Uitkomst", "Outcome")) }
                } }
                tbody {
                    @for a in &r.accesses {
                        tr {
                            td { (pages::when(lang, a.at)) }
                            td { (a.who) }
                            td { code { (a.from) } }
                            td { (what(lang, a.what))
                                @if a.instances > 0 { " · " (a.instances) } @if a.bytes > 0 { " · " (pages::size(a.bytes)) } }
                            td { @if let Some(g) = &a.grant { code.small { (g.0) } } }
                            td {
                                @if a.allowed { (lang.pick("toegestaan", "allowed")) }
                                @else { span.bad { (lang.pick("geweigerd", "refused")) } " " span.muted { (a.reason) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.pick("Naar andere organisaties gestuurd", "Sent to other organisations")) " (" (r.pushes.len()) ")" }
        @if r.pushes.is_empty() {
            p { (lang.pick("Niet naar een andere gateway gestuurd.", "Not sent to another gateway.")) }
        } @else {
            table.report-pushes {
                thead { tr {
                    th { (lang.pick("Wanneer", "When")) }
                    th { (lang.pick("Naar", "To")) }
                    th { (lang.pick("Door", "By")) }
                    th { (lang.pick("Afgeleverd", "Delivered")) }
                } }
                tbody {
                    @for p in &r.pushes {
                        tr {
                            td { (pages::when(lang, p.at)) br; code.small { (p.study.to_string()) } }
                            td { @if let Some(g) = book.by_ura(&p.to_ura) { (g.name) " " } "(URA " (p.to_ura) ")" }
                            td { (p.by) }
                            td {
                                @match (&p.delivered, &p.ended) {
                                    (Some(at), _) => (pages::when(lang, *at)),
                                    (None, Some(why)) => span.bad { (why) },
                                    (None, None) => span.muted { (lang.pick("(nog) niet", "not (yet)")) },
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !r.received.is_empty() {
            h2 { (lang.pick("Ontvangen van andere organisaties", "Received from other organisations")) }
            ul {
                @for (at, ura, package) in &r.received {
                    li { (pages::when(lang, *at)) " · URA " (ura) " · " code.small { (package) } }
                }
            }
        }
    }
}

pub fn page(console: &Console, ctx: &Ctx, query: &str, filter: &Filter, found: &Found) -> String {
    let lang = ctx.lang;
    let title = lang.pick("Inzageverslag", "Access report");
    let body = html! {
        p.no-print { a href="/console/audit" { "← Audit" } }
        (form(lang, query, filter))
        @for p in &filter.problems { p.error role="alert" { (p) } }
        @match found {
            Found::Nothing => p { (lang.pick("Zoek de patiënt op naam, patiënt-ID of BSN.", "Find the patient by name, patient ID or BSN.")) },
            Found::NoPatient => p { (lang.pick("Geen patiënt gevonden, ook niet in het journaal.", "No patient found, in the store or the journal.")) },
            Found::Choose(choices) => {
                p { (lang.pick("Meer dan één patiënt past; kies:", "More than one patient matches; choose:")) }
                ul.choices {
                    @for (p, n) in choices {
                        li {
                            a href={ "/console/audit/patient?" (query_string(&[("q", query.to_string()), ("key", p.key()), ("from", filter.from.clone()), ("to", filter.to.clone())])) } {
                                (person_name(&p.name))
                            }
                            @if !p.id.is_empty() { " · ID " (p.id) }
                            @if !p.birth_date.is_empty() { " · " (pages::dicom_date(lang, &p.birth_date)) }
                            " · " (n) (lang.pick(" onderzoek(en)", " study/studies"))
                        }
                    }
                }
            }
            Found::Report(r) => {
                (report_body(lang, ctx, console, r, filter))
                p.print-hint.no-print.muted { (lang.pick("Afdrukken: Ctrl+P (A4).", "To print: Ctrl+P (A4).")) }
            }
        }
    };
    pages::layout(
        ctx,
        &console.config.org_name,
        title,
        Section::Audit,
        Head::default(),
        body,
    )
}
