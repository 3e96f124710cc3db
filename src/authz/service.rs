//! The decision point. Every question "may this caller do this with this
//! token or code" is answered here, the same way for every kind of access,
//! and journaled with its outcome. Changes to grants go through `change`:
//! journaled durably first, then applied.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use subtle::ConstantTimeEq;

use super::grant::{GrantId, GrantState, Recipient};
use super::grants::{Mirror, ReplayError, State, catch_up};
use super::identity::{CertIdentity, Holder};
use super::limiter::Limiter;
use super::secret::{self, CodeError, CodeKey};
use crate::config::GrantsConfig;
use crate::journal::{
    Access, AccessKind, BindVia, DenyReason, Event, Journal, JournalError, Outcome, Who,
};
use crate::store::{Index, StoreError, Timestamp, Uid};

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
    RateLimited(Duration),
    /// A code with a wrong check character: a typo, said before any lookup.
    Typo(CodeError),
    /// A well-formed request that cannot be granted as asked (delegation
    /// wider than the parent, say) by its holder.
    Invalid(String),
    /// The journal could not record a change: nothing changed.
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such grant")]
    NotFound,
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// What a holder was served, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    pub grant: &'a GrantId,
    pub study: Option<&'a Uid>,
    pub what: AccessKind,
    pub instances: u32,
    pub bytes: u64,
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
    /// previewers and virus scanners fetching the URL bind nothing.
    Unbound(GrantState),
    Held(Allowed),
}

/// The result of binding: a holder token for callers without a
/// certificate, and for code redeemers a URL token of their own.
#[derive(Debug, Clone)]
pub struct Bound {
    pub grant: GrantId,
    pub holder_token: Option<String>,
    pub url_token: Option<String>,
}

pub struct Authz {
    pub(super) journal: Journal,
    pub(super) index: Arc<dyn Index>,
    pub(super) state: RwLock<State>,
    pub(super) mirror: Mirror,
    pub(super) codes: CodeKey,
    pub(super) limiter: Limiter,
    pub(super) config: GrantsConfig,
    pub(super) public_url: String,
    /// Changes are journaled and applied one at a time, in journal order.
    pub(super) changes: Mutex<()>,
}

impl Authz {
    /// Loads grant state from sled and replays the journal's tail.
    pub fn open(
        db: &sled::Db,
        journal: Journal,
        index: Arc<dyn Index>,
        code_key: &Path,
        config: GrantsConfig,
        public_url: String,
    ) -> Result<Authz, AuthzError> {
        let mirror = Mirror::open(db)?;
        let mut state = mirror.load()?;
        let replayed = catch_up(&mut state, &mirror, journal.dir())?;
        if replayed > 0 {
            tracing::info!(replayed, "grant changes replayed from the journal");
        }
        Ok(Authz {
            codes: CodeKey::load_or_create(code_key).map_err(StoreError::Io)?,
            journal,
            index,
            state: RwLock::new(state),
            mirror,
            limiter: Limiter::for_codes(),
            config,
            public_url,
            changes: Mutex::new(()),
        })
    }

    /// Rebuilds the sled mirror from the whole journal (`reindex`).
    pub fn rebuild(db: &sled::Db, journal_dir: &Path) -> Result<usize, AuthzError> {
        let mirror = Mirror::open(db)?;
        mirror.clear()?;
        let mut state = State::default();
        catch_up(&mut state, &mirror, journal_dir)?;
        Ok(state.by_id.len())
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn url_for(&self, token: &str) -> String {
        format!("{}/s/{token}", self.public_url)
    }

    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Journals a change durably, then applies it. Blocking.
    pub(super) fn change(&self, event: Event) -> Result<u64, JournalError> {
        let turn = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        self.change_in_turn(&turn, event)
    }

    /// `change` for a caller that already holds the change lock (to check
    /// and change in one step).
    pub(super) fn change_in_turn(
        &self,
        _turn: &std::sync::MutexGuard<'_, ()>,
        event: Event,
    ) -> Result<u64, JournalError> {
        let seq = self.journal.append_durable(event.clone())?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let changed = state.apply(Timestamp::now(), &event);
        state.applied = seq;
        if let Err(e) = self.mirror.save(&state, &changed, seq) {
            // The journal has it; the next start replays it into sled.
            tracing::error!(
                "grant change journaled but not mirrored ({e}); it is replayed at the next start"
            );
        }
        Ok(seq)
    }

    /// Journals what a holder was served (after serving it); never waits.
    pub fn record_served(&self, caller: Caller<'_>, served: Served<'_>) {
        self.journal.append(Event::Access(Access {
            grant: Some(served.grant.clone()),
            study: served.study.cloned(),
            what: served.what,
            who: caller.who(),
            from: caller.from.to_string(),
            outcome: Outcome::Allowed,
            instances: served.instances,
            bytes: served.bytes,
        }));
    }

    /// Journals a decision without payload; never waits.
    pub(super) fn record(
        &self,
        caller: Caller<'_>,
        what: AccessKind,
        grant: Option<&GrantId>,
        outcome: Outcome,
    ) {
        self.journal.append(Event::Access(Access {
            grant: grant.cloned(),
            study: None,
            what,
            who: caller.who(),
            from: caller.from.to_string(),
            outcome,
            instances: 0,
            bytes: 0,
        }));
    }

    fn deny<T>(
        &self,
        grant: Option<&GrantId>,
        what: AccessKind,
        caller: Caller<'_>,
        reason: DenyReason,
    ) -> Result<T, Denied> {
        self.record(caller, what, grant, Outcome::Denied(reason));
        Err(Denied::Neutral(reason))
    }

    /// Whether the grant and all its ancestors are neither revoked nor
    /// expired.
    pub(super) fn live(
        state: &State,
        grant: &GrantState,
        now: Timestamp,
    ) -> Result<(), DenyReason> {
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

    /// Whether the caller is the holder, compared in constant time.
    fn holds(holder: &Holder, credentials: &Credentials) -> bool {
        let presented = credentials.holder_token.as_deref().map(secret::token_hash);
        Self::holds_hashed(holder, credentials, presented.as_deref())
    }

    /// `holds`, with the presented holder token already hashed.
    fn holds_hashed(holder: &Holder, credentials: &Credentials, presented: Option<&str>) -> bool {
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
    fn may_bind(grant: &GrantState, credentials: &Credentials) -> Result<(), DenyReason> {
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

    /// The grant a URL token names, if it is live.
    fn find(
        &self,
        token: &str,
        now: Timestamp,
    ) -> (Option<GrantId>, Result<GrantState, DenyReason>) {
        let hash = secret::token_hash(token);
        let state = self.read();
        let Some(id) = state.by_token.get(&hash).cloned() else {
            return (None, Err(DenyReason::UnknownToken));
        };
        let Some(grant) = state.by_id.get(&id) else {
            return (Some(id), Err(DenyReason::UnknownToken));
        };
        let verdict = Self::live(&state, grant, now).map(|()| grant.clone());
        (Some(id), verdict)
    }

    /// Every access by token goes through here: page, DICOMweb, download,
    /// thumbnails, delegation. Allowed only for the live grant's holder.
    pub fn check(
        &self,
        token: &str,
        caller: Caller<'_>,
        what: AccessKind,
    ) -> Result<Allowed, Denied> {
        // The same work whatever the outcome: both hashes first, one lookup,
        // the grant copied only once it is allowed. A refusal then takes as
        // long for an unknown token as for someone else's.
        let hash = secret::token_hash(token);
        let presented = caller
            .credentials
            .holder_token
            .as_deref()
            .map(secret::token_hash);
        let now = Timestamp::now();
        let (id, verdict) = {
            let state = self.read();
            match state.by_token.get(&hash).and_then(|id| state.by_id.get(id)) {
                None => (None, Err(DenyReason::UnknownToken)),
                Some(grant) => {
                    let verdict =
                        Self::live(&state, grant, now).and_then(|()| match &grant.holder {
                            Some(holder)
                                if Self::holds_hashed(
                                    holder,
                                    caller.credentials,
                                    presented.as_deref(),
                                ) =>
                            {
                                Ok(Allowed {
                                    grant: grant.clone(),
                                })
                            }
                            Some(_) => Err(DenyReason::OtherHolder),
                            None => Err(DenyReason::NoCredential),
                        });
                    (Some(grant.grant.id.clone()), verdict)
                }
            }
        };
        verdict.or_else(|reason| self.deny(id.as_ref(), what, caller, reason))
    }

    /// Opening a link: the holder gets in; an unbound grant is offered for
    /// binding (without showing what it holds); anyone else gets the
    /// neutral answer.
    pub fn open_link(&self, token: &str, caller: Caller<'_>) -> Result<Link, Denied> {
        let (id, found) = self.find(token, Timestamp::now());
        match found {
            Ok(grant) if grant.holder.is_none() => match Self::may_bind(&grant, caller.credentials)
            {
                Ok(()) => Ok(Link::Unbound(grant)),
                Err(reason) => self.deny(id.as_ref(), AccessKind::Page, caller, reason),
            },
            Ok(_) => {
                let allowed = self.check(token, caller, AccessKind::Page)?;
                self.record(caller, AccessKind::Page, id.as_ref(), Outcome::Allowed);
                Ok(Link::Held(allowed))
            }
            Err(reason) => self.deny(id.as_ref(), AccessKind::Page, caller, reason),
        }
    }

    /// Binds an unbound grant to the caller (idempotent for its holder).
    /// Blocking: waits for the journal.
    pub fn bind_link(&self, token: &str, caller: Caller<'_>) -> Result<Bound, Denied> {
        let (id, found) = self.find(token, Timestamp::now());
        match found {
            Ok(grant) => self.bind(grant, caller, BindVia::Url),
            Err(reason) => self.deny(id.as_ref(), AccessKind::Bind, caller, reason),
        }
    }

    /// Redeems an authorization code: rate-limited per address and in all,
    /// a typo is said as such, anything else wrong gets the neutral answer.
    /// Blocking: waits for the journal.
    pub fn redeem(&self, code: &str, caller: Caller<'_>) -> Result<Bound, Denied> {
        let normalized = match secret::parse_code(code) {
            Ok(normalized) => normalized,
            Err(e @ CodeError::Typo) => {
                self.record(
                    caller,
                    AccessKind::Redeem,
                    None,
                    Outcome::Denied(DenyReason::CodeTypo),
                );
                return Err(Denied::Typo(e));
            }
            Err(e) => {
                self.record(
                    caller,
                    AccessKind::Redeem,
                    None,
                    Outcome::Denied(DenyReason::InvalidRequest),
                );
                return Err(Denied::Typo(e));
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
        let (id, found) = {
            let state = self.read();
            match state.by_code.get(&hash).and_then(|id| state.by_id.get(id)) {
                Some(grant) => (
                    Some(grant.grant.id.clone()),
                    Self::live(&state, grant, Timestamp::now()).map(|()| grant.clone()),
                ),
                None => (None, Err(DenyReason::UnknownCode)),
            }
        };
        match found {
            Ok(grant) => self.bind(grant, caller, BindVia::Code),
            Err(reason) => self.deny(id.as_ref(), AccessKind::Redeem, caller, reason),
        }
    }

    fn bind(&self, grant: GrantState, caller: Caller<'_>, via: BindVia) -> Result<Bound, Denied> {
        let what = match via {
            BindVia::Url => AccessKind::Bind,
            BindVia::Code => AccessKind::Redeem,
        };
        let id = grant.grant.id.clone();
        if let Err(reason) = Self::may_bind(&grant, caller.credentials) {
            return self.deny(Some(&id), what, caller, reason);
        }
        // Check and bind under the change lock, so two first uses cannot
        // both win.
        let turn = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.read().by_id.get(&id).and_then(|g| g.holder.clone());
        match current {
            Some(holder) if Self::holds(&holder, caller.credentials) => {
                // Already theirs: a code redeemer gets a URL, nothing else changes.
                return match via {
                    BindVia::Url => Ok(Bound {
                        grant: id,
                        holder_token: None,
                        url_token: None,
                    }),
                    BindVia::Code => self.add_alias(&turn, &id, holder, caller),
                };
            }
            Some(_) => return self.deny(Some(&id), what, caller, DenyReason::OtherHolder),
            None => {}
        }
        let (holder, holder_token) = match &caller.credentials.certificate {
            Some(cert) => (Holder::Certificate(cert.clone()), None),
            None => {
                let (token, hash) = secret::new_holder_token();
                (Holder::Token { hash }, Some(token))
            }
        };
        let (url_token, alias) = match via {
            BindVia::Url => (None, None),
            BindVia::Code => {
                let (token, hash) = secret::new_url_token();
                (Some(token), Some(hash))
            }
        };
        let event = Event::GrantBound {
            grant: id.clone(),
            holder: holder.clone(),
            via,
            from: caller.from.to_string(),
            alias,
        };
        self.change_in_turn(&turn, event)
            .map_err(|e| Denied::Unavailable(e.to_string()))?;
        drop(turn);
        self.record(caller, what, Some(&id), Outcome::Allowed);
        tracing::info!(grant = %id, holder = %holder.describe(), "grant bound");
        Ok(Bound {
            grant: id,
            holder_token,
            url_token,
        })
    }

    fn add_alias(
        &self,
        turn: &std::sync::MutexGuard<'_, ()>,
        id: &GrantId,
        holder: Holder,
        caller: Caller<'_>,
    ) -> Result<Bound, Denied> {
        let (token, hash) = secret::new_url_token();
        let event = Event::GrantBound {
            grant: id.clone(),
            holder,
            via: BindVia::Code,
            from: caller.from.to_string(),
            alias: Some(hash),
        };
        self.change_in_turn(turn, event)
            .map_err(|e| Denied::Unavailable(e.to_string()))?;
        Ok(Bound {
            grant: id.clone(),
            holder_token: None,
            url_token: Some(token),
        })
    }

    /// Journals the expiry of grants whose time ran out. Returns how many.
    pub fn expire_due(&self) -> usize {
        let now = Timestamp::now();
        let due: Vec<GrantId> = self
            .read()
            .by_id
            .values()
            .filter(|g| g.is_expired(now) && !g.expiry_logged && g.revoked.is_none())
            .map(|g| g.grant.id.clone())
            .collect();
        let mut done = 0;
        for grant in due {
            match self.change(Event::GrantExpired {
                grant: grant.clone(),
            }) {
                Ok(_) => done += 1,
                Err(e) => tracing::error!(grant = %grant, "cannot journal expiry: {e}"),
            }
        }
        done
    }
}
