//! `GET /console/shares/{id}`: one grant — what it covers, for whom, who
//! holds it, its chain, its accesses — and revoking it: a reason, then a
//! confirmation step that names every grant passed on from it that goes
//! with it, then the revocation (journaled with the person).

use hyper::Response;
use maud::{Markup, html};

use super::list::tree;
use super::view::who;
use super::{Listing, gather as gather_listing, href, refused, view};
use crate::authz::{GrantDetail, GrantId, GrantState, Holder, LegalBasis, Person};
use crate::console::form::Fields;
use crate::console::pages::{self, Head, Section};
use crate::console::studies;
use crate::console::{Console, Ctx, html as html_response, redirect};
use crate::journal::AccessKind;
use crate::web::pages::Lang;
use crate::web::{Body, Refusal, blocking};

/// One grant and what its page shows.
pub struct Detail {
    pub grant: GrantDetail,
    pub state: Option<GrantState>,
    /// The grant, its ancestors and descendants, with use and study.
    pub listing: Listing,
}

pub async fn gather(
    console: &Console,
    ctx: &Ctx,
    person: Person,
    id: GrantId,
) -> Result<Detail, Refusal> {
    let app = console.app.clone();
    let from = ctx.peer.ip().to_canonical();
    let p = person.clone();
    let (grant, state) = blocking(move || {
        let detail = app.authz.staff_grant(&p, &id, from).map_err(refused)?;
        let state = app.authz.grant_state(&id);
        Ok::<_, Refusal>((detail, state))
    })
    .await?;
    let mut views = grant.ancestors.clone();
    views.push(grant.grant.clone());
    views.extend(grant.descendants.iter().cloned());
    let listing = gather_listing(console, person, Some(views)).await?;
    Ok(Detail {
        grant,
        state,
        listing,
    })
}

fn kind(lang: Lang, what: AccessKind) -> &'static str {
    match what {
        AccessKind::Page => lang.pick("pagina", "page"),
        AccessKind::Redeem => lang.pick("code ingevoerd", "code redeemed"),
        AccessKind::Bind => lang.pick("gebonden", "bound"),
        AccessKind::Delegate => lang.pick("doorgegeven", "passed on"),
        AccessKind::Qido => "QIDO",
        AccessKind::Wado => "WADO",
        AccessKind::Metadata => lang.pick("metadata", "metadata"),
        AccessKind::Frames => lang.pick("beelden", "frames"),
        AccessKind::Rendered => lang.pick("weergave", "rendered"),
        AccessKind::Thumbnail => lang.pick("miniatuur", "thumbnail"),
        AccessKind::Download => "download",
        AccessKind::Admin => "admin",
    }
}

fn holder_detail(lang: Lang, state: Option<&GrantState>) -> Markup {
    html! {
        @match state.and_then(|s| s.holder.as_ref()) {
            None => span.muted { (lang.pick("nog niet gebonden: wie de link of code als eerste gebruikt, houdt hem",
                "not bound yet: whoever uses the link or code first holds it")) },
            Some(Holder::Certificate(c)) => {
                @if let Some(u) = &c.uzi {
                    "UZI " (u.uzi_number) " · " (lang.pick("pas ", "pass ")) (u.pass_type)
                    " · URA " (u.ura) " · " (lang.pick("rol ", "role ")) (u.role)
                    br;
                }
                span.muted { (c.subject) }
            }
            Some(Holder::Token { hash }) => {
                (lang.pick("houdertoken ", "holder token ")) code { (hash.get(..12).unwrap_or(hash)) "…" }
                br; span.muted { (lang.pick("(een programma of browser zonder certificaat)", "(a program or browser without a certificate)")) }
            }
        }
        @if let Some(at) = state.and_then(|s| s.bound_at) {
            br; span.muted { (lang.pick("gebonden ", "bound ")) (pages::when(lang, at)) }
        }
    }
}

fn facts(lang: Lang, d: &Detail) -> Markup {
    let g = &d.grant.grant;
    let covers = &d.grant.covers;
    html! {
        dl.facts {
            dt { (lang.pick("Patiënt", "Patient")) }
            dd {
                @match d.listing.studies.get(&g.id) {
                    Some(s) => { (view::patient(lang, &s.patient)) br; (view::study_line(lang, s)) }
                    None => {
                        @if let Some(p) = &g.patient { strong { (view::person_name(&p.name)) } " · ID " (p.id) br; }
                        @if let (crate::authz::Target::Accession(a), None) = (&g.target, &g.patient) {
                            (lang.pick("accessienummer ", "accession ")) code { (a.number) }
                            @if let Some(id) = &a.patient_id { " · ID " (id) }
                            @if let Some(bsn) = &a.bsn { " · BSN " (bsn) }
                            @if let Some(ae) = &a.source_ae { " · " (lang.pick("van ", "from ")) (ae) }
                            br; span.muted { (lang.pick("nog niet binnen", "not arrived yet")) }
                        } @else {
                            span.muted { (lang.pick("niet (meer) in de opslag", "not (or no longer) in the store")) }
                        }
                    }
                }
            }
            dt { (lang.pick("Wat", "What")) }
            dd {
                @if g.scope.series.is_none() && covers.excluded.series == 0 && covers.excluded.instances == 0 {
                    (lang.pick("het hele onderzoek", "the whole study"))
                } @else {
                    @for s in covers.series.iter().filter(|s| s.included > 0) {
                        (studies::text(&s.modality)) " " (studies::text(&s.description)) " (" (s.included) ")" br;
                    }
                    @if !covers.excluded.modalities.is_empty() {
                        span.muted { (lang.pick("zonder ", "without ")) (covers.excluded.modalities.join(", ")) } br;
                    }
                }
                @if g.scope.series.is_none() && covers.excluded.series == 0 && covers.excluded.instances == 0 { br; }
                span.muted { (covers.instances) (lang.pick(" beelden · ", " images · ")) (pages::size(covers.bytes)) }
            }
            dt { (lang.pick("Voor", "For")) }
            dd { (view::recipient(lang, &g.recipient, &d.listing.book)) }
            dt { (lang.pick("Grondslag", "Legal basis")) }
            dd {
                @match &g.legal_basis {
                    Some(LegalBasis::Referral) => (lang.pick("verwijzing (toestemming verondersteld)", "referral (consent presumed)")),
                    Some(LegalBasis::ExplicitConsent { note }) => {
                        (lang.pick("uitdrukkelijke toestemming: ", "explicit consent: ")) (note)
                    }
                    None => span.muted { (lang.pick("niet vastgelegd", "not recorded")) },
                }
            }
            dt { (lang.pick("Houder", "Holder")) }
            dd { (holder_detail(lang, d.state.as_ref())) }
            dt { (lang.pick("Gedeeld door", "Shared by")) }
            dd {
                (view::issuer(lang, g))
                @if let Some(a) = g.issued_by.as_ref().filter(|a| a.role != "token") { " " span.muted { "(" (a.id) ")" } }
                br; span.muted { (pages::when(lang, g.created_at)) }
            }
            dt { (lang.pick("Geldig tot", "Expires")) }
            dd { (pages::when(lang, g.expires_at)) }
            @if !g.message.is_empty() {
                dt { (lang.pick("Bericht", "Message")) }
                dd { (g.message) }
            }
            dt { (lang.pick("Doorgeven", "Passing on")) }
            dd {
                @if g.delegation_depth == 0 {
                    (lang.pick("niet toegestaan", "not allowed"))
                } @else {
                    (lang.pick("nog ", "")) (g.delegation_depth) (lang.pick(" keer toegestaan", " more times allowed"))
                }
            }
            @if let Some(r) = &g.revoked {
                dt { (lang.pick("Ingetrokken", "Revoked")) }
                dd {
                    (pages::when(lang, r.at)) " " (lang.pick("door ", "by ")) (r.by)
                    @if !r.reason.is_empty() { br; "“" (r.reason) "”" }
                    @if let Some(via) = &r.via {
                        br; span.muted { (lang.pick("met ", "with ")) a href=(href(via)) { (via.0) } }
                    }
                }
            }
        }
    }
}

/// By accession number: studies with the number that are not this
/// share's (another patient, another sender, here before the share). They
/// are not shared; the issuer should know, and may share the right one.
fn mismatches(lang: Lang, d: &Detail) -> Markup {
    let g = &d.grant.grant;
    html! {
        @if !g.mismatches.is_empty() {
            div.notice.warning role="status" {
                h2 { (lang.pick("Niet gedeeld: ander onderzoek met dit accessienummer", "Not shared: another study with this accession number")) }
                p { (lang.pick(
                    "Deze onderzoeken dragen het accessienummer van de deling, maar horen er niet bij. De ontvanger ziet ze niet.",
                    "These studies carry the share's accession number but are not its study. The recipient does not see them.")) }
                ul {
                    @for m in &g.mismatches {
                        li {
                            code { (m.study.to_string()) }
                            " · " span.muted { (pages::when(lang, m.at)) } br;
                            (m.reason) br;
                            a href=(format!("/console/share/{}", m.study)) { (lang.pick("Dit onderzoek delen…", "Share this study…")) }
                        }
                    }
                }
            }
        }
    }
}

fn accesses(lang: Lang, d: &Detail) -> Markup {
    let id = &d.grant.grant.id;
    let usage = d.listing.usage.get(id);
    html! {
        h2 { (lang.pick("Gebruik", "Use")) }
        p { (view::usage(lang, usage)) }
        @if let Some(u) = usage.filter(|u| !u.recent.is_empty()) {
            table.accesses {
                thead { tr {
                    th { (lang.pick("Wanneer", "When")) }
                    th { (lang.pick("Wat", "What")) }
                    th { (lang.pick("Wie", "Who")) }
                    th { (lang.pick("Vanaf", "From")) }
                    th { (lang.pick("Uitkomst", "Outcome")) }
                } }
                tbody {
                    @for seen in u.recent.iter().rev() {
                        tr {
                            td { (pages::when(lang, seen.at)) }
                            td { (kind(lang, seen.what)) @if seen.bytes > 0 { " · " (pages::size(seen.bytes)) } }
                            td { (who(lang, &seen.who)) }
                            td { code { (seen.from) } }
                            td {
                                @if seen.allowed { (lang.pick("toegestaan", "allowed")) }
                                @else { span.bad { (lang.pick("geweigerd", "refused")) } }
                            }
                        }
                    }
                }
            }
            p.muted { (lang.pick("De laatste toegangen; alle staan in de audit.", "The latest accesses; the audit has every one.")) }
        }
    }
}

/// The grants revoking this one would revoke with it.
fn cascade(d: &Detail) -> Vec<&crate::authz::GrantView> {
    d.grant
        .descendants
        .iter()
        .filter(|v| v.revoked.is_none())
        .collect()
}

fn revoke_form(lang: Lang, ctx: &Ctx, d: &Detail) -> Markup {
    let id = &d.grant.grant.id;
    let with = cascade(d).len();
    html! {
        h2 { (lang.pick("Intrekken", "Revoke")) }
        form.revoke method="post" action={ (href(id)) "/revoke" } {
            (pages::csrf_field(ctx))
            label for="reason" { (lang.pick("Reden (verplicht, komt in de audit)", "Reason (required, kept in the audit)")) }
            textarea #reason name="reason" required maxlength="500" {}
            @if with > 0 {
                p.notice { (lang.pick("Hiermee worden ook ", "This also revokes ")) (with)
                    (lang.pick(" doorgegeven link(s) ingetrokken; u ziet ze voordat u bevestigt.",
                        " link(s) passed on from it; you see them before you confirm.")) }
            }
            button.danger type="submit" { (lang.pick("Intrekken…", "Revoke…")) }
        }
    }
}

pub fn page(console: &Console, ctx: &Ctx, d: &Detail, query: &Fields) -> Response<Body> {
    let lang = ctx.lang;
    let g = &d.grant.grant;
    let title = lang.pick("Gedeeld onderzoek", "Share");
    let body = html! {
        p.no-print { a href="/console/shares" { "← " (lang.pick("Gedeeld", "Shares")) } }
        h1 { (title) " " (view::grant_state(lang, g.status)) }
        @if query.has("revoked") {
            p.ok { (lang.pick("Ingetrokken", "Revoked"))
                @if let Ok(n @ 1..) = query.get("revoked").parse::<usize>() {
                    (lang.pick(", met ", ", with ")) (n) (lang.pick(" doorgegeven link(s)", " link(s) passed on"))
                } "." }
        }
        (facts(lang, d))
        (mismatches(lang, d))
        @if !d.grant.ancestors.is_empty() {
            h2 { (lang.pick("Doorgegeven van", "Passed on from")) }
            ol.chain {
                @for a in &d.grant.ancestors {
                    li { a href=(href(&a.id)) { (view::grant_state(lang, a.status)) } " "
                        (view::recipient(lang, &a.recipient, &d.listing.book)) " · " (view::holder(lang, a)) }
                }
            }
        }
        @if !g.children.is_empty() {
            h2 { (lang.pick("Doorgegeven aan", "Passed on to")) }
            (tree(lang, &d.listing, &g.children, 0))
        }
        (accesses(lang, d))
        @if g.revoked.is_none() {
            (revoke_form(lang, ctx, d))
        }
    };
    console.page(ctx, title, Section::Shares, Head::default(), body)
}

/// The confirmation step: the share, what goes with it, the reason.
fn confirm_page(ctx: &Ctx, console: &Console, d: &Detail, reason: &str, error: bool) -> String {
    let lang = ctx.lang;
    let g = &d.grant.grant;
    let with = cascade(d);
    let title = lang.pick("Intrekken bevestigen", "Confirm revocation");
    let body = html! {
        h1 { (title) }
        @if error {
            p.error role="alert" { (lang.pick("Geef een reden op.", "Give a reason.")) }
        }
        (facts(lang, d))
        @if with.is_empty() {
            p { (lang.pick("Er is niets van doorgegeven: alleen deze link wordt ingetrokken.",
                "Nothing was passed on from it: only this link is revoked.")) }
        } @else {
            p.notice { (lang.pick("Met deze link worden ook deze doorgegeven links ingetrokken:",
                "These links passed on from it are revoked with it:")) }
            ul.cascade {
                @for c in &with {
                    li { (view::grant_state(lang, c.status)) " "
                        (view::recipient(lang, &c.recipient, &d.listing.book)) " · " (view::holder(lang, c))
                        " · " (view::usage(lang, d.listing.usage.get(&c.id))) }
                }
            }
        }
        form.revoke method="post" action={ (href(&g.id)) "/revoke" } {
            (pages::csrf_field(ctx))
            input type="hidden" name="confirm" value="yes";
            label for="reason" { (lang.pick("Reden", "Reason")) }
            textarea #reason name="reason" required maxlength="500" { (reason) }
            p {
                button.danger type="submit" {
                    @if with.is_empty() { (lang.pick("Definitief intrekken", "Revoke for good")) }
                    @else { (lang.pick("Definitief intrekken, ", "Revoke for good, ")) (with.len() + 1) (lang.pick(" links", " links")) }
                }
                " " a.button.secondary href=(href(&g.id)) { (lang.pick("Niet intrekken", "Do not revoke")) }
            }
        }
    };
    pages::layout(
        ctx,
        &console.config.org_name,
        title,
        Section::Shares,
        Head::default(),
        body,
    )
}

/// `POST /console/shares/{id}/revoke`: the confirmation step, or (with
/// `confirm=yes` and a reason) the revocation.
pub async fn revoke(
    console: &Console,
    ctx: &Ctx,
    person: Person,
    id: GrantId,
    fields: &Fields,
) -> Result<Response<Body>, Refusal> {
    let reason = fields.get("reason").to_string();
    let from = ctx.peer.ip().to_canonical();
    if fields.get("confirm") != "yes" || reason.is_empty() {
        // authz decides (and journals a refusal) before anything is shown
        let (app, p, g) = (console.app.clone(), person.clone(), id.clone());
        blocking(move || app.authz.staff_cascade(&p, &g, from).map_err(refused)).await?;
        let detail = gather(console, ctx, person, id).await?;
        let error = fields.get("confirm") == "yes";
        let mut response = html_response(confirm_page(ctx, console, &detail, &reason, error));
        if error {
            *response.status_mut() = hyper::StatusCode::BAD_REQUEST;
        }
        return Ok(response);
    }
    let (app, g) = (console.app.clone(), id.clone());
    let cascade = blocking(move || {
        app.authz
            .staff_revoke(&person, &g, &reason, from)
            .map_err(refused)
    })
    .await?;
    Ok(redirect(&format!(
        "{}?revoked={}",
        href(&id),
        cascade.len()
    )))
}
