//! Issuing, passing on and revoking grants, and what the sender sees of
//! them: exactly what a grant covers.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::coverage::{Coverage, HolderCoverage};
use super::decide::{Caller, Denied, live};
use super::grant::{
    Awaited, Grant, GrantId, GrantState, LegalBasis, Recipient, Revocation, Scope, Target,
};
use super::secret;
use super::service::{Authz, AuthzError};
use crate::journal::{
    AccessKind, ActorRecord, DenyReason, Event, GrantRecord, Outcome, PatientRecord,
};
use crate::store::{Timestamp, Uid};

/// Longest chain of re-authorizations a grant may start.
const MAX_DELEGATION_DEPTH: u8 = 5;
/// Grants one grant may be passed on to directly.
const MAX_CHILDREN: usize = 20;

/// What an operator asks for (admin API, `pushgate share`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    #[serde(default)]
    pub study_uid: Option<String>,
    #[serde(default)]
    pub accession: Option<String>,
    /// With `accession`: the patient the study must be for (Patient ID, or
    /// BSN, or both), and optionally the calling AE it must come from.
    #[serde(default)]
    pub patient_id: Option<String>,
    #[serde(default)]
    pub bsn: Option<String>,
    #[serde(default)]
    pub source_ae: Option<String>,
    /// Why it may be shared: required (absent: refused, nothing issued).
    #[serde(default)]
    pub legal_basis: Option<LegalBasis>,
    #[serde(flatten)]
    pub shape: Shape,
}

/// Scope, recipient, expiry, message and depth: what an operator sets for
/// a grant and a holder for a grant passed on.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Shape {
    #[serde(default)]
    pub series: Vec<String>,
    #[serde(default)]
    pub exclude_modalities: Vec<String>,
    #[serde(default)]
    pub exclude_sop_classes: Vec<String>,
    #[serde(default)]
    pub to_ura: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// A duration like "7d"; default `grants.default_ttl` (for a grant
    /// passed on: the parent's expiry).
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub delegation_depth: Option<u8>,
}

/// A new grant, with the secrets shown this once, and what it covers: the
/// sender's [`Coverage`] for an operator, a [`HolderCoverage`] for a holder
/// passing a grant on.
#[derive(Debug, Clone, Serialize)]
pub struct Issued<C = Coverage> {
    pub id: GrantId,
    pub url: String,
    pub code: String,
    /// Where the recipient enters the code: the public site's front page.
    pub enter_code_at: String,
    pub expires_at: Timestamp,
    pub covers: C,
}

/// A grant as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    pub id: GrantId,
    /// "active", "bound", "revoked", "expired" — counting ancestors.
    pub status: &'static str,
    pub target: Target,
    pub scope: Scope,
    pub recipient: Recipient,
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<ActorRecord>,
    /// Why it may be shared (absent: issued before the console).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<LegalBasis>,
    /// The study's patient as stored at issue time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientRecord>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub delegation_depth: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<GrantId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<GrantId>,
    /// By accession number, not pinned yet: studies with that number that
    /// are not its study, and why. Never served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<super::grant::Mismatch>,
}

/// One grant with its whole chain.
#[derive(Debug, Clone, Serialize)]
pub struct GrantDetail {
    #[serde(flatten)]
    pub grant: GrantView,
    /// From the root to the parent.
    pub ancestors: Vec<GrantView>,
    pub descendants: Vec<GrantView>,
    pub covers: Coverage,
}

/// The study a grant by accession number waits for: the number and its
/// patient (required: accession numbers repeat across RISes and imported
/// CDs), optionally its sender.
fn awaited(number: &str, request: &IssueRequest) -> Result<Awaited, AuthzError> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let patient_id = given(&request.patient_id);
    let bsn = match given(&request.bsn) {
        None => None,
        Some(b) => Some(
            crate::ingest::normalize_bsn(&b)
                .ok_or_else(|| invalid(format!("{b:?} is not a BSN (9 digits, elfproef)")))?,
        ),
    };
    if patient_id.is_none() && bsn.is_none() {
        return Err(invalid(
            "a share by accession number names the patient too: patient_id or bsn \
             (accession numbers are not unique across the studies a department receives)",
        ));
    }
    if let Some(id) = &patient_id
        && (id.len() > 64 || id.chars().any(|c| c.is_control() || c == '\\'))
    {
        return Err(invalid(format!("{id:?} is not a Patient ID")));
    }
    let source_ae = given(&request.source_ae);
    if let Some(ae) = &source_ae
        && !crate::base::valid_ae(ae)
    {
        return Err(invalid(format!("{ae:?} is not an AE title")));
    }
    Ok(Awaited {
        number: number.to_string(),
        patient_id,
        bsn,
        source_ae,
    })
}

fn invalid(message: impl Into<String>) -> AuthzError {
    AuthzError::Invalid(message.into())
}

fn valid_ura(ura: &str) -> bool {
    ura.len() == 8 && ura.bytes().all(|b| b.is_ascii_digit())
}

fn valid_role(role: &str) -> bool {
    let mut parts = role.split('.');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty() && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit()))
}

impl Shape {
    fn recipient(&self) -> Result<Recipient, AuthzError> {
        match &self.to_ura {
            None if self.roles.is_empty() => Ok(Recipient::Anyone),
            None => Err(invalid("roles narrow an organization: give to_ura too")),
            Some(ura) if !valid_ura(ura) => {
                Err(invalid(format!("{ura:?} is not a URA (eight digits)")))
            }
            Some(ura) => {
                if let Some(bad) = self.roles.iter().find(|r| !valid_role(r)) {
                    return Err(invalid(format!(
                        "{bad:?} is not a UZI role code like 01.039"
                    )));
                }
                Ok(Recipient::Organization {
                    ura: ura.clone(),
                    roles: self.roles.clone(),
                })
            }
        }
    }

    /// Who may bind a grant passed on, as the holder asks: the parent's
    /// recipient where it asks nothing, the parent's organization where it
    /// names only roles. Whether that is narrower is [`Grant::admits`]'s
    /// to say.
    fn recipient_within(&self, parent: &Recipient) -> Result<Recipient, AuthzError> {
        match (&self.to_ura, parent) {
            (None, _) if self.roles.is_empty() => Ok(parent.clone()),
            (None, Recipient::Organization { ura, .. }) => Shape {
                to_ura: Some(ura.clone()),
                ..self.clone()
            }
            .recipient(),
            _ => self.recipient(),
        }
    }

    fn scope(&self) -> Result<Scope, AuthzError> {
        let series = self
            .series
            .iter()
            .map(|s| Uid::parse(s).map_err(|e| invalid(format!("series: {e}"))))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let modalities = self
            .exclude_modalities
            .iter()
            .map(|m| {
                crate::base::modality_code(m)
                    .ok_or_else(|| invalid(format!("{:?} is not a modality", m.trim())))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        let sop_classes = self
            .exclude_sop_classes
            .iter()
            .map(|s| {
                Uid::parse(s)
                    .map(|u| u.to_string())
                    .map_err(|e| invalid(format!("SOP class: {e}")))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Scope {
            series: (!series.is_empty()).then_some(series),
            exclude_modalities: modalities,
            exclude_sop_classes: sop_classes,
        })
    }

    fn lifetime(&self) -> Result<Option<Duration>, AuthzError> {
        self.expires
            .as_deref()
            .map(|text| {
                crate::config::parse_duration("expires", text).map_err(|e| invalid(e.to_string()))
            })
            .transpose()
    }
}

/// Grants by state; `issued` is all of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GrantCounts {
    pub issued: u64,
    pub active: u64,
    pub bound: u64,
    pub expired: u64,
    pub revoked: u64,
}

impl Authz {
    fn expiry(&self, requested: Option<Duration>, now: Timestamp) -> Timestamp {
        let lifetime = requested
            .unwrap_or(self.config.default_ttl)
            .min(self.config.max_ttl);
        now.saturating_add(lifetime)
    }

    /// Issues a grant; durable (journaled) before it returns. `by`: who is
    /// logged in (or the admin token), the grant's issuer; `from`: the
    /// address of their connection, for the audit trail. Blocking.
    pub fn issue(
        &self,
        request: IssueRequest,
        by: &ActorRecord,
        from: &str,
    ) -> Result<Issued, AuthzError> {
        let target = match (&request.study_uid, &request.accession) {
            (Some(uid), None) => {
                Target::Study(Uid::parse(uid).map_err(|e| invalid(format!("study: {e}")))?)
            }
            (None, Some(acc)) if !acc.trim().is_empty() && acc.len() <= 16 => {
                Target::Accession(awaited(acc.trim(), &request)?)
            }
            (None, Some(acc)) => {
                return Err(invalid(format!("{acc:?} is not an accession number")));
            }
            _ => {
                return Err(invalid(
                    "name the study: study_uid or accession (one of them)",
                ));
            }
        };
        let legal_basis = request
            .legal_basis
            .clone()
            .ok_or_else(|| {
                invalid(
                    "legal_basis is required: referral (a referral, consent presumed) \
                     or explicit_consent with a note of who consented and how",
                )
            })?
            .checked()
            .map_err(invalid)?;
        let scope = request.shape.scope()?;
        let known = match &target {
            Target::Study(uid) => self.index.study(uid).ok().flatten(),
            Target::Accession(_) => None,
        };
        let patient = known
            .as_ref()
            .map(|study| super::audit::patient_record(&study.patient));
        if let (Some(study), Some(series)) = (&known, &scope.series)
            && let Some(missing) = series.iter().find(|s| !study.series.contains_key(*s))
        {
            return Err(invalid(format!(
                "series {missing} is not part of the study"
            )));
        }
        let depth = request.shape.delegation_depth.unwrap_or(0);
        if depth > MAX_DELEGATION_DEPTH {
            return Err(invalid(format!(
                "delegation_depth is at most {MAX_DELEGATION_DEPTH}"
            )));
        }
        let now = Timestamp::now();
        let (grant, url, code) = self.new_grant(
            target,
            scope,
            by.name.clone(),
            request.shape.recipient()?,
            self.expiry(request.shape.lifetime()?, now),
            request.shape.message.trim().to_string(),
            depth,
            None,
        );
        {
            // Under the change lock, where retention marks a study it
            // deletes: a grant is issued before the mark or not at all.
            let turn = self.turn();
            if let Target::Study(uid) = &grant.target
                && self.is_deleting(uid)
            {
                return Err(invalid(format!(
                    "study {uid} is being deleted (retention); send it again to share it"
                )));
            }
            self.change_in_turn(
                &turn,
                Event::GrantIssued {
                    grant: GrantRecord::from(&grant),
                    from: from.to_string(),
                    by: Some(by.clone()),
                    legal_basis: Some((&legal_basis).into()),
                    patient,
                },
            )?;
        }
        tracing::info!(grant = %grant.id, "grant issued");
        if matches!(grant.target, Target::Accession(_)) {
            // The study may be there already.
            self.resolve_accessions();
        }
        Ok(self.issued(grant, url, code))
    }

    fn issued<C: From<Coverage>>(&self, grant: Grant, url: String, code: String) -> Issued<C> {
        let state = self
            .read()
            .by_id
            .get(&grant.id)
            .cloned()
            .unwrap_or_else(|| GrantState::new(grant.clone()));
        Issued {
            covers: self.coverage(&state).into(),
            id: grant.id,
            url,
            code,
            enter_code_at: self.code_page(),
            expires_at: grant.expires_at,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_grant(
        &self,
        target: Target,
        scope: Scope,
        issuer: String,
        recipient: Recipient,
        expires_at: Timestamp,
        message: String,
        delegation_depth: u8,
        parent: Option<GrantId>,
    ) -> (Grant, String, String) {
        let (token, token_hash) = secret::new_url_token();
        let (code, normalized) = secret::new_code();
        let grant = Grant {
            id: GrantId(secret::new_grant_id()),
            target,
            scope,
            issuer,
            recipient,
            created_at: Timestamp::now(),
            expires_at,
            message,
            delegation_depth,
            parent,
            token_hash,
            code_hash: self.codes.hash(&normalized),
        };
        (grant, self.url_for(&token), code)
    }

    /// A holder passes a grant on: never wider, never longer, one level less
    /// deep. Blocking.
    pub fn delegate(
        &self,
        token: &str,
        caller: Caller<'_>,
        shape: Shape,
    ) -> Result<Issued<HolderCoverage>, Denied> {
        // Decided and changed under the change lock: a revocation cannot
        // slip in between, and every child is in the parent's cascade.
        let turn = self.turn();
        let parent_state = self.check(token, caller, AccessKind::Delegate)?.grant;
        let parent = parent_state.grant.clone();
        let refuse = |reason: DenyReason, message: String| {
            self.record(
                caller,
                AccessKind::Delegate,
                Some(&parent.id),
                Outcome::Denied(reason),
            );
            Err(Denied::Invalid(message))
        };
        if parent.delegation_depth == 0 {
            return refuse(
                DenyReason::NotDelegable,
                "this grant may not be passed on".into(),
            );
        }
        let children = self.read().children.get(&parent.id).map_or(0, Vec::len);
        if children >= MAX_CHILDREN {
            return refuse(
                DenyReason::InvalidRequest,
                format!("a grant may be passed on at most {MAX_CHILDREN} times"),
            );
        }
        let requested = match shape.scope() {
            Ok(scope) => scope,
            Err(e) => return refuse(DenyReason::InvalidRequest, e.to_string()),
        };
        let scope = Scope {
            series: requested.series.or_else(|| parent.scope.series.clone()),
            exclude_modalities: &requested.exclude_modalities | &parent.scope.exclude_modalities,
            exclude_sop_classes: &requested.exclude_sop_classes | &parent.scope.exclude_sop_classes,
        };
        if let (Some(study), Some(series)) = (self.study_for(&parent_state), &scope.series)
            && let Some(missing) = series.iter().find(|s| !study.series.contains_key(*s))
        {
            return refuse(
                DenyReason::WiderThanParent,
                format!("series {missing} is not part of the study"),
            );
        }
        let now = Timestamp::now();
        let expires_at = match shape.lifetime() {
            Ok(None) => parent.expires_at,
            Ok(Some(lifetime)) => now.saturating_add(lifetime),
            Err(e) => return refuse(DenyReason::InvalidRequest, e.to_string()),
        };
        let depth = shape
            .delegation_depth
            .unwrap_or(parent.delegation_depth - 1);
        let recipient = match shape.recipient_within(&parent.recipient) {
            Ok(r) => r,
            Err(e) => return refuse(DenyReason::InvalidRequest, e.to_string()),
        };
        let by = caller.credentials.certificate.as_ref().map_or_else(
            || format!("holder of {}", parent.id),
            |c| {
                format!(
                    "{} (holder of {})",
                    super::Holder::Certificate(c.clone()).describe(),
                    parent.id
                )
            },
        );
        let (grant, url, code) = self.new_grant(
            parent.target.clone(),
            scope,
            by,
            recipient,
            expires_at,
            shape.message.trim().to_string(),
            depth,
            Some(parent.id.clone()),
        );
        if let Err(widening) = parent.admits(&grant) {
            return refuse(DenyReason::WiderThanParent, widening.to_string());
        }
        let event = Event::GrantDelegated {
            grant: GrantRecord::from(&grant),
            by: caller.who(),
            from: caller.from.to_string(),
        };
        self.change_in_turn(&turn, event)
            .map_err(|e| Denied::Unavailable(e.to_string()))?;
        drop(turn);
        self.record(
            caller,
            AccessKind::Delegate,
            Some(&parent.id),
            Outcome::Allowed,
        );
        tracing::info!(grant = %grant.id, parent = %parent.id, "grant passed on");
        Ok(self.issued(grant, url, code))
    }

    /// Revokes a grant and, with it, every grant passed on from it. Durable
    /// before it returns; revoking twice changes nothing. `by`: who revoked it; `from`: their
    /// address. Blocking.
    pub fn revoke(
        &self,
        id: &GrantId,
        by: &ActorRecord,
        reason: &str,
        from: &str,
    ) -> Result<Vec<GrantId>, AuthzError> {
        let turn = self.turn();
        let (already, cascade) = {
            let state = self.read();
            let grant = state.by_id.get(id).ok_or(AuthzError::NotFound)?;
            let cascade: Vec<GrantId> = state
                .descendants(id)
                .into_iter()
                .filter(|d| state.by_id.get(d).is_some_and(|g| g.revoked.is_none()))
                .collect();
            (grant.revoked.is_some(), cascade)
        };
        if already {
            return Ok(Vec::new());
        }
        self.change_in_turn(
            &turn,
            Event::GrantRevoked {
                grant: id.clone(),
                by: by.name.clone(),
                reason: reason.to_string(),
                cascade: cascade.clone(),
                from: from.to_string(),
                actor: Some(by.clone()),
            },
        )?;
        tracing::info!(grant = %id, cascade = cascade.len(), "grant revoked");
        Ok(cascade)
    }

    fn view(&self, state: &super::grants::State, grant: &GrantState, now: Timestamp) -> GrantView {
        let status = match live(state, grant, now) {
            Ok(()) if grant.holder.is_some() => "bound",
            Ok(()) => "active",
            Err(DenyReason::Expired | DenyReason::AncestorExpired) => "expired",
            Err(_) => "revoked",
        };
        let g = &grant.grant;
        GrantView {
            id: g.id.clone(),
            status,
            target: g.target.clone(),
            scope: g.scope.clone(),
            recipient: g.recipient.clone(),
            issuer: g.issuer.clone(),
            issued_by: grant.issued_by.clone(),
            legal_basis: grant.legal_basis.clone(),
            patient: grant.patient.clone(),
            created_at: g.created_at,
            expires_at: g.expires_at,
            message: g.message.clone(),
            delegation_depth: g.delegation_depth,
            parent: g.parent.clone(),
            holder: grant.holder.as_ref().map(|h| h.describe()),
            bound_at: grant.bound_at,
            revoked: grant.revoked.clone(),
            children: state.children.get(&g.id).cloned().unwrap_or_default(),
            mismatches: match &grant.resolved {
                None => grant.mismatches.clone(),
                // a study that first did not match (here before the share)
                // and then did: only the others
                Some(pinned) => grant
                    .mismatches
                    .iter()
                    .filter(|m| {
                        &m.study != pinned || !m.reason.starts_with(super::grant::HERE_BEFORE)
                    })
                    .cloned()
                    .collect(),
            },
        }
    }

    /// How many grants there are in each state now (`/metrics`).
    pub fn counts(&self) -> GrantCounts {
        let now = Timestamp::now();
        let state = self.read();
        let mut counts = GrantCounts::default();
        for grant in state.by_id.values() {
            counts.issued += 1;
            match live(&state, grant, now) {
                Ok(()) if grant.holder.is_some() => counts.bound += 1,
                Ok(()) => counts.active += 1,
                Err(DenyReason::Expired | DenyReason::AncestorExpired) => counts.expired += 1,
                Err(_) => counts.revoked += 1,
            }
        }
        counts
    }

    /// All grants, newest first.
    pub fn list(&self) -> Vec<GrantView> {
        let now = Timestamp::now();
        let state = self.read();
        let mut views: Vec<GrantView> = state
            .by_id
            .values()
            .map(|g| self.view(&state, g, now))
            .collect();
        views.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        views
    }

    /// One grant as it stands now.
    pub fn grant_state(&self, id: &GrantId) -> Option<GrantState> {
        self.read().by_id.get(id).cloned()
    }

    /// One grant with its ancestors, descendants and coverage.
    pub fn show(&self, id: &GrantId) -> Option<GrantDetail> {
        let now = Timestamp::now();
        let (grant, ancestors, descendants) = {
            let state = self.read();
            let grant = state.by_id.get(id)?;
            let mut ancestors = Vec::new();
            let mut parent = grant.grant.parent.as_ref();
            while let Some(p) = parent.and_then(|p| state.by_id.get(p)) {
                ancestors.push(self.view(&state, p, now));
                parent = p.grant.parent.as_ref();
            }
            ancestors.reverse();
            let descendants = state
                .descendants(id)
                .iter()
                .filter_map(|d| state.by_id.get(d))
                .map(|d| self.view(&state, d, now))
                .collect();
            (self.view(&state, grant, now), ancestors, descendants)
        };
        let covers = self.coverage(&self.read().by_id.get(id)?.clone());
        Some(GrantDetail {
            grant,
            ancestors,
            descendants,
            covers,
        })
    }
}
