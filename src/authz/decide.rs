//! The decisions a recipient's request needs: may it see (check), may it
//! open (open_link), may it become the holder (bind_link, redeem). One
//! lookup decides, under one read lock, doing the same work whatever the
//! answer; a grant is copied only once it is allowed. Refusals reveal
//! nothing: not whether the token exists, not whether it is bound.

use std::net::IpAddr;

use subtle::ConstantTimeEq;

use super::grant::{GrantId, GrantState, Recipient};
use super::grants::State;
use super::identity::{CertIdentity, Holder};
use super::secret::{self, CodeError};
use super::service::Authz;
use crate::journal::{AccessKind, BindVia, DenyReason, Event, HolderRecord, Outcome, Who};
use crate::store::Timestamp;

/// A grant's URL tokens made by code redemption, at most.
const MAX_ALIASES: usize = 10;

/// What a caller presents besides the token: a verified client certificate
/// and/or a holder token (cookie or `Authorization: Bearer`).
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    pub certificate: Option<CertIdentity>,
    pub holder_token: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub credentials: &'a Credentials,
    pub from: IpAddr,
}

impl Caller<'_> {
    pub(super) fn who(&self) -> Who {
        match (
            &self.credentials.certificate,
            &self.credentials.holder_token,
        ) {
            (Some(cert), _) => Who::Certificate {
                identity: Holder::Certificate(cert.clone()).describe(),
            },
            (None, Some(token)) => Who::HolderToken {
                hash_prefix: secret::token_hash(token)[..12].to_string(),
            },
            (None, None) => Who::Anonymous,
        }
    }
}

/// Why a request was refused, as the caller may learn it.
#[derive(Debug, Clone, PartialEq)]
pub enum Denied {
    /// The one answer for unknown, expired, revoked, someone else's, out of
    /// scope: it reveals nothing about the token.
    Neutral(DenyReason),
    RateLimited(std::time::Duration),
    /// A code that cannot be one (typo by its check character, wrong length
    /// or character), said before any lookup.
    BadCode(CodeError),
    /// A request by the holder that cannot be granted as asked (delegation
    /// wider than the parent, say).
    Invalid(String),
    /// The journal could not record a change: nothing changed.
    Unavailable(String),
}

/// A holder's access, allowed: the grant as it stands.
#[derive(Debug, Clone)]
pub struct Allowed {
    pub grant: GrantState,
}

/// A link as its opener sees it.
#[derive(Debug, Clone)]
pub enum Link {
    /// Not bound yet: binding it is a deliberate step (a POST), so that link
    /// previewers and mail scanners fetching the URL bind nothing.
    Unbound(GrantId),
    Held(Box<Allowed>),
}

/// The result of binding: a holder token for callers without a
/// certificate, and for code redeemers a URL token of their own.
#[derive(Debug, Clone)]
pub struct Bound {
    pub grant: GrantId,
    pub holder_token: Option<String>,
    pub url_token: Option<String>,
    pub expires_at: Timestamp,
}

/// What one lookup found.
pub(super) enum Look {
    Unknown,
    Dead(GrantId, DenyReason),
    /// Live and not bound; whether this caller may bind it.
    Unbound(GrantId, Result<(), DenyReason>),
    Holder(Box<GrantState>),
    Other(GrantId),
}

/// Whether the caller is the holder, compared in constant time; the
/// presented holder token is hashed by the caller, always.
fn holds(holder: &Holder, credentials: &Credentials, presented: Option<&str>) -> bool {
    match holder {
        Holder::Certificate(bound) => credentials
            .certificate
            .as_ref()
            .is_some_and(|cert| cert.same_holder(bound)),
        Holder::Token { hash } => {
            presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(hash.as_bytes())))
        }
    }
}

/// Whether the caller may become the holder.
pub(super) fn may_bind(grant: &GrantState, credentials: &Credentials) -> Result<(), DenyReason> {
    match &grant.grant.recipient {
        Recipient::Anyone => Ok(()),
        Recipient::Organization { ura, roles } => {
            let cert = credentials
                .certificate
                .as_ref()
                .ok_or(DenyReason::CertificateRequired)?;
            let uzi = cert.uzi.as_ref().ok_or(DenyReason::CertificateRequired)?;
            if &uzi.ura != ura {
                return Err(DenyReason::WrongOrganization);
            }
            if !roles.is_empty() && !roles.contains(&uzi.role) {
                return Err(DenyReason::WrongRole);
            }
            Ok(())
        }
    }
}

/// Whether a grant and all its ancestors are neither revoked nor expired.
pub(super) fn live(state: &State, grant: &GrantState, now: Timestamp) -> Result<(), DenyReason> {
    if grant.revoked.is_some() {
        return Err(DenyReason::Revoked);
    }
    if grant.is_expired(now) {
        return Err(DenyReason::Expired);
    }
    let mut parent = grant.grant.parent.as_ref();
    while let Some(id) = parent {
        let Some(ancestor) = state.by_id.get(id) else {
            return Err(DenyReason::AncestorRevoked);
        };
        if ancestor.revoked.is_some() {
            return Err(DenyReason::AncestorRevoked);
        }
        if ancestor.is_expired(now) {
            return Err(DenyReason::AncestorExpired);
        }
        parent = ancestor.grant.parent.as_ref();
    }
    Ok(())
}

/// One lookup by a hashed secret in `index` (tokens or codes).
pub(super) fn look(
    state: &State,
    id: Option<&GrantId>,
    credentials: &Credentials,
    presented: Option<&str>,
) -> Look {
    let Some(grant) = id.and_then(|id| state.by_id.get(id)) else {
        return Look::Unknown;
    };
    let id = grant.grant.id.clone();
    if let Err(reason) = live(state, grant, Timestamp::now()) {
        return Look::Dead(id, reason);
    }
    match &grant.holder {
        None => Look::Unbound(id, may_bind(grant, credentials)),
        Some(holder) if holds(holder, credentials, presented) => {
            Look::Holder(Box::new(grant.clone()))
        }
        Some(_) => Look::Other(id),
    }
}

impl Authz {
    fn look_token(&self, token: &str, credentials: &Credentials) -> Look {
        let hash = secret::token_hash(token);
        let presented = credentials.holder_token.as_deref().map(secret::token_hash);
        let state = self.read();
        look(
            &state,
            state.by_token.get(&hash),
            credentials,
            presented.as_deref(),
        )
    }

    fn refuse<T>(&self, caller: Caller<'_>, what: AccessKind, looked: Look) -> Result<T, Denied> {
        let (id, reason) = match looked {
            Look::Unknown => (None, DenyReason::UnknownToken),
            Look::Dead(id, reason) => (Some(id), reason),
            Look::Unbound(id, Err(reason)) => (Some(id), reason),
            Look::Unbound(id, Ok(())) => (Some(id), DenyReason::NoCredential),
            Look::Other(id) => (Some(id), DenyReason::OtherHolder),
            Look::Holder(g) => (Some(g.grant.id.clone()), DenyReason::InvalidRequest),
        };
        self.deny(caller, what, id.as_ref(), reason)
    }

    /// Every access by token goes through here: page, DICOMweb, download,
    /// thumbnails, delegation. Allowed only for the live grant's holder.
    pub fn check(
        &self,
        token: &str,
        caller: Caller<'_>,
        what: AccessKind,
    ) -> Result<Allowed, Denied> {
        match self.look_token(token, caller.credentials) {
            Look::Holder(grant) => Ok(Allowed { grant: *grant }),
            other => self.refuse(caller, what, other),
        }
    }

    /// Opening a link: the holder gets in; an unbound grant this caller may
    /// bind is offered for binding (without showing what it holds); anyone
    /// else gets the neutral answer.
    pub fn open_link(&self, token: &str, caller: Caller<'_>) -> Result<Link, Denied> {
        match self.look_token(token, caller.credentials) {
            Look::Holder(grant) => {
                self.record(
                    caller,
                    AccessKind::Page,
                    Some(&grant.grant.id),
                    Outcome::Allowed,
                );
                Ok(Link::Held(Box::new(Allowed { grant: *grant })))
            }
            Look::Unbound(id, Ok(())) => {
                self.record(caller, AccessKind::Page, Some(&id), Outcome::Allowed);
                Ok(Link::Unbound(id))
            }
            other => self.refuse(caller, AccessKind::Page, other),
        }
    }

    /// Binds an unbound grant to the caller (idempotent for its holder).
    /// Blocking: waits for the journal.
    pub fn bind_link(&self, token: &str, caller: Caller<'_>) -> Result<Bound, Denied> {
        let hash = secret::token_hash(token);
        self.bind(caller, BindVia::Url, |state| {
            state.by_token.get(&hash).cloned()
        })
    }

    /// Redeems an authorization code: rate-limited per address and in all;
    /// a code that cannot be one is said so; anything else wrong gets the
    /// neutral answer. Blocking: waits for the journal.
    pub fn redeem(&self, code: &str, caller: Caller<'_>) -> Result<Bound, Denied> {
        let normalized = match secret::parse_code(code) {
            Ok(normalized) => normalized,
            Err(e) => {
                let reason = if e == CodeError::Typo {
                    DenyReason::CodeTypo
                } else {
                    DenyReason::InvalidRequest
                };
                self.record(caller, AccessKind::Redeem, None, Outcome::Denied(reason));
                return Err(Denied::BadCode(e));
            }
        };
        if let Err(wait) = self.limiter.attempt(caller.from) {
            self.record(
                caller,
                AccessKind::Redeem,
                None,
                Outcome::Denied(DenyReason::RateLimited),
            );
            return Err(Denied::RateLimited(wait));
        }
        let hash = self.codes.hash(&normalized);
        self.bind(caller, BindVia::Code, |state| {
            state.by_code.get(&hash).cloned()
        })
    }

    /// Binding: decided on one lookup; a refusal comes without waiting for
    /// anything (a bound grant is refused as fast as an unknown one); only a
    /// caller that may bind takes the change lock, and there it is decided
    /// again, so two first uses cannot both win and a grant revoked in the
    /// meantime is not bound.
    fn bind(
        &self,
        caller: Caller<'_>,
        via: BindVia,
        find: impl Fn(&State) -> Option<GrantId>,
    ) -> Result<Bound, Denied> {
        let what = match via {
            BindVia::Url => AccessKind::Bind,
            BindVia::Code => AccessKind::Redeem,
        };
        let presented = caller
            .credentials
            .holder_token
            .as_deref()
            .map(secret::token_hash);
        let decide = || {
            let state = self.read();
            let id = find(&state);
            look(
                &state,
                id.as_ref(),
                caller.credentials,
                presented.as_deref(),
            )
        };
        match decide() {
            Look::Holder(grant) if via == BindVia::Url => {
                return Ok(Bound {
                    grant: grant.grant.id.clone(),
                    holder_token: None,
                    url_token: None,
                    expires_at: grant.grant.expires_at,
                });
            }
            Look::Holder(_) | Look::Unbound(_, Ok(())) => {}
            Look::Unknown if via == BindVia::Code => {
                return self.deny(caller, what, None, DenyReason::UnknownCode);
            }
            other => return self.refuse(caller, what, other),
        }
        let turn = self.turn();
        let (grant, holder, holder_token) = match decide() {
            Look::Unbound(id, Ok(())) => {
                let (holder, token) = match &caller.credentials.certificate {
                    Some(cert) => (Holder::Certificate(cert.clone()), None),
                    None => {
                        let (token, hash) = secret::new_holder_token();
                        (Holder::Token { hash }, Some(token))
                    }
                };
                (self.read().by_id.get(&id).cloned(), holder, token)
            }
            // Already theirs: a code redeemer gets a URL of its own.
            Look::Holder(grant) if grant.url_aliases.len() < MAX_ALIASES => {
                let holder = grant.holder.clone();
                (
                    Some(*grant),
                    holder.unwrap_or(Holder::Token {
                        hash: String::new(),
                    }),
                    None,
                )
            }
            Look::Holder(grant) => {
                return self.deny(
                    caller,
                    what,
                    Some(&grant.grant.id),
                    DenyReason::InvalidRequest,
                );
            }
            other => {
                drop(turn);
                return self.refuse(caller, what, other);
            }
        };
        let Some(grant) = grant else {
            return self.deny(caller, what, None, DenyReason::UnknownToken);
        };
        let (url_token, alias) = match via {
            BindVia::Url => (None, None),
            BindVia::Code => {
                let (token, hash) = secret::new_url_token();
                (Some(token), Some(hash))
            }
        };
        let id = grant.grant.id.clone();
        let event = Event::GrantBound {
            grant: id.clone(),
            holder: HolderRecord::from(&holder),
            via,
            from: caller.from.to_string(),
            alias,
        };
        self.change_in_turn(&turn, event)
            .map_err(|e| Denied::Unavailable(e.to_string()))?;
        drop(turn);
        self.record(caller, what, Some(&id), Outcome::Allowed);
        if holder_token.is_some() || grant.holder.is_none() {
            tracing::info!(grant = %id, holder = %holder.describe(), "grant bound");
        }
        Ok(Bound {
            grant: id,
            holder_token,
            url_token,
            expires_at: grant.grant.expires_at,
        })
    }
}
