//! A journal record as a row people read (the audit page, the CSV): what
//! happened, who did it, from where, to which grant, with what outcome.

use crate::base::GrantId;
use crate::console::pages;
use crate::journal::{
    AccessKind, ActorRecord, BindVia, ConsoleEvent, Event, HolderRecord, Outcome, RecipientRecord,
    Relay, Who,
};
use crate::web::pages::Lang;

/// One record, described.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line {
    /// The event's kind as the journal names it (`grant_issued`,
    /// `access.wado`, `relay.delivered`, `console.logged_in` …).
    pub kind: String,
    /// Who: a member of staff (name), a holder (identity), a gateway.
    pub actor: String,
    /// The member of staff's stable id, when it is one.
    pub actor_id: String,
    /// The address it came from.
    pub from: String,
    pub grant: Option<GrantId>,
    /// "allowed", "denied: expired" …; empty when not a decision.
    pub outcome: String,
    pub detail: String,
}

fn who(lang: Lang, w: &Who) -> String {
    match w {
        Who::Anonymous => lang.pick("onbekend", "unidentified").into(),
        Who::Certificate { identity } => identity.clone(),
        Who::HolderToken { hash_prefix } => {
            format!(
                "{} {hash_prefix}…",
                lang.pick("houdertoken", "holder token")
            )
        }
    }
}

fn holder(lang: Lang, h: &HolderRecord) -> String {
    match h {
        HolderRecord::Certificate(c) => match &c.uzi {
            Some(u) => format!(
                "UZI {} ({}, URA {}, {} {}) {}",
                u.uzi_number,
                u.pass_type,
                u.ura,
                lang.pick("rol", "role"),
                u.role,
                c.subject
            ),
            None => c.subject.clone(),
        },
        HolderRecord::Token { hash } => format!(
            "{} {}…",
            lang.pick("houdertoken", "holder token"),
            hash.get(..12).unwrap_or(hash)
        ),
    }
}

fn recipient(lang: Lang, r: &RecipientRecord) -> String {
    match r {
        RecipientRecord::Anyone => lang
            .pick(
                "wie de link of code gebruikt",
                "whoever uses the link or code",
            )
            .into(),
        RecipientRecord::Organization { ura, roles } if roles.is_empty() => format!("URA {ura}"),
        RecipientRecord::Organization { ura, roles } => format!(
            "URA {ura}, {} {}",
            lang.pick("rollen", "roles"),
            roles.join(", ")
        ),
    }
}

fn access_kind(what: AccessKind) -> &'static str {
    match what {
        AccessKind::Page => "page",
        AccessKind::Redeem => "redeem",
        AccessKind::Bind => "bind",
        AccessKind::Delegate => "delegate",
        AccessKind::Qido => "qido",
        AccessKind::Wado => "wado",
        AccessKind::Metadata => "metadata",
        AccessKind::Frames => "frames",
        AccessKind::Rendered => "rendered",
        AccessKind::Thumbnail => "thumbnail",
        AccessKind::Download => "download",
        AccessKind::Admin => "admin",
    }
}

/// The JSON name of a serde enum value (`expired`, `unknown_token` …).
fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn staff(line: &mut Line, a: &ActorRecord) {
    line.actor = a.name.clone();
    line.actor_id = a.id.clone();
}

pub fn describe(lang: Lang, event: &Event) -> Line {
    let mut line = Line::default();
    match event {
        Event::GrantIssued {
            grant, from, by, ..
        } => {
            line.kind = "grant_issued".into();
            match by {
                Some(a) => staff(&mut line, a),
                None => line.actor = grant.issuer.clone(),
            }
            line.from = from.clone();
            line.grant = Some(grant.id.clone());
            line.detail = format!(
                "{} {}; {} {}",
                lang.pick("voor", "for"),
                recipient(lang, &grant.recipient),
                lang.pick("tot", "until"),
                pages::when(lang, grant.expires_at)
            );
        }
        Event::GrantDelegated { grant, by, from } => {
            line.kind = "grant_delegated".into();
            line.actor = who(lang, by);
            line.from = from.clone();
            line.grant = Some(grant.id.clone());
            line.detail = format!(
                "{} {}{}; {} {}",
                lang.pick("voor", "for"),
                recipient(lang, &grant.recipient),
                grant
                    .parent
                    .as_ref()
                    .map(|p| format!(", {} {}", lang.pick("van", "from"), p.0))
                    .unwrap_or_default(),
                lang.pick("tot", "until"),
                pages::when(lang, grant.expires_at)
            );
        }
        Event::GrantBound {
            grant,
            holder: h,
            via,
            from,
            ..
        } => {
            line.kind = "grant_bound".into();
            line.actor = holder(lang, h);
            line.from = from.clone();
            line.grant = Some(grant.clone());
            line.detail = match via {
                BindVia::Url => lang.pick("via de link", "by the link").into(),
                BindVia::Code => lang.pick("met de code", "with the code").into(),
            };
        }
        Event::GrantRevoked {
            grant,
            by,
            reason,
            cascade,
            from,
            actor,
        } => {
            line.kind = "grant_revoked".into();
            match actor {
                Some(a) => staff(&mut line, a),
                None => line.actor = by.clone(),
            }
            line.from = from.clone();
            line.grant = Some(grant.clone());
            line.detail = reason.clone();
            if !cascade.is_empty() {
                let ids: Vec<&str> = cascade.iter().map(|g| g.0.as_str()).collect();
                line.detail += &format!(
                    "{}{} {}",
                    if reason.is_empty() { "" } else { "; " },
                    lang.pick("met", "with"),
                    ids.join(", ")
                );
            }
        }
        Event::GrantExpired { grant } => {
            line.kind = "grant_expired".into();
            line.grant = Some(grant.clone());
        }
        Event::GrantResolved { grant, study, .. } => {
            line.kind = "grant_resolved".into();
            line.grant = Some(grant.clone());
            line.detail = format!("{} {study}", lang.pick("onderzoek", "study"));
        }
        Event::GrantMismatch {
            grant,
            study,
            reason,
        } => {
            line.kind = "grant_mismatch".into();
            line.grant = Some(grant.clone());
            line.detail = format!(
                "{} {study}: {reason}",
                lang.pick(
                    "niet het onderzoek van de deling:",
                    "not the share's study:"
                )
            );
        }
        Event::Access(a) => {
            line.kind = format!("access.{}", access_kind(a.what));
            line.actor = who(lang, &a.who);
            line.from = a.from.clone();
            line.grant = a.grant.clone();
            line.outcome = match &a.outcome {
                Outcome::Allowed => "allowed".into(),
                Outcome::Denied(reason) => format!("denied: {}", snake(reason)),
            };
            if a.instances > 0 || a.bytes > 0 {
                line.detail = format!(
                    "{} {}, {} bytes",
                    a.instances,
                    lang.pick("beelden", "instances"),
                    a.bytes
                );
            }
        }
        Event::Console(c) => console(lang, &mut line, c),
        Event::Relay(r) => relay(lang, &mut line, r),
        Event::Forwarded {
            sop,
            pacs,
            status,
            reason,
            ..
        } => {
            line.kind = "forwarded".into();
            line.actor = pacs.clone();
            line.outcome = match status {
                Some(s) => format!("status {s:#06X}"),
                None => "failed".into(),
            };
            line.detail = format!(
                "SOP {sop}{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            );
        }
        Event::StudyDeleted {
            reason,
            instances,
            bytes,
            ..
        } => {
            line.kind = "study_deleted".into();
            line.actor = "retention".into();
            line.detail = format!(
                "{reason}; {instances} {}, {bytes} bytes",
                lang.pick("beelden", "instances")
            );
        }
        Event::Dropped { count } => {
            line.kind = "dropped".into();
            line.detail = format!(
                "{count} {}",
                lang.pick(
                    "toegangen niet vastgelegd (journaal achter)",
                    "accesses not kept (journal behind)"
                )
            );
        }
        Event::Suppressed { count } => {
            line.kind = "suppressed".into();
            line.detail = format!(
                "{count} {}",
                lang.pick("weigeringen alleen geteld", "refusals only counted")
            );
        }
    }
    line
}

fn console(lang: Lang, line: &mut Line, c: &ConsoleEvent) {
    match c {
        ConsoleEvent::LoggedIn { actor, via, from } => {
            line.kind = "console.logged_in".into();
            staff(line, actor);
            line.from = from.clone();
            line.detail = via.clone();
        }
        ConsoleEvent::LoginFailed {
            account,
            via,
            reason,
            from,
        } => {
            line.kind = "console.login_failed".into();
            line.actor = account.clone();
            line.from = from.clone();
            line.outcome = "denied".into();
            line.detail = format!("{via}: {reason}");
        }
        ConsoleEvent::LoggedOut { actor, from } => {
            line.kind = "console.logged_out".into();
            staff(line, actor);
            line.from = from.clone();
        }
        ConsoleEvent::Refused { actor, what, from } => {
            line.kind = "console.refused".into();
            staff(line, actor);
            line.from = from.clone();
            line.outcome = "denied".into();
            line.detail = what.clone();
        }
        ConsoleEvent::Audited {
            actor,
            what,
            query,
            from,
        } => {
            line.kind = "console.audited".into();
            staff(line, actor);
            line.from = from.clone();
            line.detail = if query.is_empty() {
                what.clone()
            } else {
                format!("{what}: {query}")
            };
        }
        ConsoleEvent::Account {
            account,
            change,
            by,
            from,
        } => {
            line.kind = "console.account".into();
            staff(line, by);
            line.from = from.clone();
            line.detail = format!("{} {account}: {change}", lang.pick("account", "account"));
        }
    }
}

fn relay(lang: Lang, line: &mut Line, r: &Relay) {
    match r {
        Relay::Queued {
            outbox,
            study,
            to_ura,
            priority,
            by,
            grant,
            actor,
        } => {
            line.kind = "relay.queued".into();
            match actor {
                Some(a) => staff(line, a),
                None => line.actor = by.clone(),
            }
            line.grant = grant.clone();
            line.detail = format!(
                "{} URA {to_ura} ({priority}), {} {study}, outbox {outbox}",
                lang.pick("naar", "to"),
                lang.pick("onderzoek", "study")
            );
        }
        Relay::Sealed {
            outbox,
            package,
            to_ura,
            size,
            instances,
            ..
        } => {
            line.kind = "relay.sealed".into();
            line.detail = format!(
                "{} URA {to_ura}: {package}, {instances} {}, {size} bytes, outbox {outbox}",
                lang.pick("voor", "for"),
                lang.pick("beelden", "instances")
            );
        }
        Relay::Delivered {
            outbox,
            package,
            to_ura,
            duplicate,
            ..
        } => {
            line.kind = "relay.delivered".into();
            line.actor = format!("URA {to_ura}");
            line.outcome = "delivered".into();
            line.detail = format!(
                "{package}{}, outbox {outbox}",
                if *duplicate { " (duplicate)" } else { "" }
            );
        }
        Relay::Failed {
            outbox,
            to_ura,
            attempt,
            reason,
            last,
        } => {
            line.kind = "relay.failed".into();
            line.actor = format!("URA {to_ura}");
            line.outcome = if *last {
                "failed".into()
            } else {
                "retry".into()
            };
            line.detail = format!("#{attempt}: {reason}, outbox {outbox}");
        }
        Relay::Cancelled {
            outbox,
            to_ura,
            grant,
            reason,
        } => {
            line.kind = "relay.cancelled".into();
            line.actor = format!("URA {to_ura}");
            line.grant = Some(grant.clone());
            line.detail = format!("{reason}, outbox {outbox}");
        }
        Relay::RetryAsked {
            outbox,
            to_ura,
            actor,
            from,
        } => {
            line.kind = "relay.retry_asked".into();
            staff(line, actor);
            line.from = from.clone();
            line.detail = format!("{} URA {to_ura}, outbox {outbox}", lang.pick("naar", "to"));
        }
        Relay::Withdrawn {
            outbox,
            to_ura,
            actor,
            from,
            reason,
        } => {
            line.kind = "relay.withdrawn".into();
            staff(line, actor);
            line.from = from.clone();
            line.detail = format!(
                "{} URA {to_ura}, outbox {outbox}{}",
                lang.pick("naar", "to"),
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            );
        }
        Relay::Received {
            package,
            from_ura,
            from,
            instances,
            ..
        } => {
            line.kind = "relay.received".into();
            line.actor = format!("URA {from_ura}");
            line.from = from.clone();
            line.detail = format!(
                "{package}, {instances} {}",
                lang.pick("beelden", "instances")
            );
        }
        Relay::Refused {
            from,
            sender_ura,
            package,
            reason,
        } => {
            line.kind = "relay.refused".into();
            line.actor = sender_ura
                .as_ref()
                .map(|u| format!("URA {u}"))
                .unwrap_or_default();
            line.from = from.clone();
            line.outcome = "denied".into();
            line.detail = format!(
                "{}{reason}",
                package
                    .as_ref()
                    .map(|p| format!("{p}: "))
                    .unwrap_or_default()
            );
        }
    }
}

/// Every name and id of a person the event carries (staff, holders,
/// issuers), for the person filter.
pub fn people(event: &Event) -> Vec<String> {
    let mut out = Vec::new();
    let mut actor = |a: &ActorRecord| {
        out.push(a.id.clone());
        out.push(a.name.clone());
    };
    match event {
        Event::GrantIssued { by, .. } => by.iter().for_each(&mut actor),
        Event::GrantRevoked { actor: a, .. } => a.iter().for_each(&mut actor),
        Event::Console(
            ConsoleEvent::LoggedIn { actor: a, .. }
            | ConsoleEvent::LoggedOut { actor: a, .. }
            | ConsoleEvent::Refused { actor: a, .. }
            | ConsoleEvent::Audited { actor: a, .. },
        ) => actor(a),
        Event::Console(ConsoleEvent::Account { by, .. }) => actor(by),
        Event::Relay(Relay::RetryAsked { actor: a, .. } | Relay::Withdrawn { actor: a, .. }) => {
            actor(a)
        }
        Event::Relay(Relay::Queued { actor: a, .. }) => a.iter().for_each(&mut actor),
        _ => {}
    }
    match event {
        Event::GrantIssued { grant, .. } => out.push(grant.issuer.clone()),
        Event::GrantDelegated { by, grant, .. } => {
            out.push(grant.issuer.clone());
            out.push(who(Lang::En, by));
        }
        Event::GrantBound { holder: h, .. } => out.push(holder(Lang::En, h)),
        Event::GrantRevoked { by, .. } => out.push(by.clone()),
        Event::Access(a) => out.push(who(Lang::En, &a.who)),
        Event::Console(ConsoleEvent::LoginFailed { account, .. }) => out.push(account.clone()),
        Event::Console(ConsoleEvent::Account { account, .. }) => out.push(account.clone()),
        Event::Relay(Relay::Queued { by, .. }) => out.push(by.clone()),
        _ => {}
    }
    out.retain(|s| !s.is_empty());
    out
}
