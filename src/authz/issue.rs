//! Issuing, passing on and revoking grants, and what the sender sees of
//! them: exactly what a grant covers.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::decide::{Caller, Denied, live};
use super::grant::{Grant, GrantId, GrantState, Recipient, Revocation, Scope, Target};
use super::secret;
use super::service::{Authz, AuthzError};
use crate::journal::{AccessKind, DenyReason, Event, Outcome};
use crate::store::{StudyRecord, Timestamp, Uid};

/// Longest chain of re-authorizations a grant may start.
const MAX_DELEGATION_DEPTH: u8 = 5;
/// Grants one grant may be passed on to directly.
const MAX_CHILDREN: usize = 20;

/// Who may bind a grant passed on. The holder of a grant for an
/// organization (UZI cards only) may name another organization and roles
/// (that is what passing on is for), but never "anyone": the child of a
/// UZI-only grant stays UZI-only. Without a wish, the parent's recipient.
fn narrower_recipient(parent: &Recipient, shape: &Shape) -> Result<Recipient, String> {
    if shape.to_ura.is_none() && shape.roles.is_empty() {
        return Ok(parent.clone());
    }
    let wanted = shape.recipient().map_err(|e| e.to_string())?;
    match (parent, &wanted) {
        (Recipient::Organization { .. }, Recipient::Anyone) => Err(
            "a grant for an organization can only be passed on to an organization (a UZI card)"
                .into(),
        ),
        _ => Ok(wanted),
    }
}

/// What an operator asks for (admin API, `pushgate share`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    #[serde(default)]
    pub study_uid: Option<String>,
    #[serde(default)]
    pub accession: Option<String>,
    #[serde(flatten)]
    pub shape: Shape,
    pub issuer: String,
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

/// A new grant, with the secrets shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub id: GrantId,
    pub url: String,
    pub code: String,
    pub expires_at: Timestamp,
    pub covers: Coverage,
}

/// Exactly what leaves the house.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub target: Target,
    /// "complete", "arriving", or "not arrived yet".
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_birth_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_date: Option<String>,
    /// The last four digits of the patient's BSN, for the recipient to
    /// confirm the patient without the whole number on screen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bsn_last_digits: Option<String>,
    /// In series number order.
    pub series: Vec<SeriesCoverage>,
    pub instances: u64,
    /// Bytes of the covered instances (prorated where only some SOP
    /// classes of a series are).
    pub bytes: u64,
    pub modalities: Vec<String>,
    pub excluded: Excluded,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesCoverage {
    pub series_uid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_number: Option<i64>,
    pub modality: String,
    pub description: String,
    pub instances: u64,
    /// Instances of this series the grant covers.
    pub included: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Excluded {
    pub series: usize,
    pub instances: u64,
    pub modalities: Vec<String>,
    pub sop_classes: Vec<String>,
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

    fn scope(&self) -> Result<Scope, AuthzError> {
        let series = self
            .series
            .iter()
            .map(|s| Uid::parse(s).map_err(|e| invalid(format!("series: {e}"))))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let modalities = self
            .exclude_modalities
            .iter()
            .map(|m| m.trim().to_ascii_uppercase())
            .collect::<BTreeSet<_>>();
        if let Some(bad) = modalities.iter().find(|m| {
            m.is_empty()
                || m.len() > 16
                || !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }) {
            return Err(invalid(format!("{bad:?} is not a modality")));
        }
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
    fn study_for(&self, grant: &GrantState) -> Option<StudyRecord> {
        grant
            .study_uid()
            .and_then(|uid| self.index.study(uid).ok().flatten())
    }

    /// What a grant covers now (and, for a study still to come, that).
    pub fn coverage(&self, grant: &GrantState) -> Coverage {
        let (target, scope) = (&grant.grant.target, &grant.grant.scope);
        let study = self.study_for(grant);
        let mut coverage = Coverage {
            target: target.clone(),
            state: match &study {
                None => "not arrived yet",
                Some(s) if s.is_complete() => "complete",
                Some(_) => "arriving",
            },
            study_uid: study.as_ref().map(|s| s.study_uid.to_string()),
            patient_name: study.as_ref().map(|s| s.patient.name.clone()),
            patient_birth_date: study.as_ref().map(|s| s.patient.birth_date.clone()),
            study_description: study.as_ref().map(|s| s.attrs.study_description.clone()),
            study_date: study.as_ref().map(|s| s.attrs.study_date.clone()),
            bsn_last_digits: study.as_ref().and_then(|s| {
                let bsn = s.patient.bsn.as_deref()?;
                Some(bsn[bsn.len().saturating_sub(4)..].to_string())
            }),
            series: Vec::new(),
            instances: 0,
            bytes: 0,
            modalities: Vec::new(),
            excluded: Excluded::default(),
        };
        let Some(study) = study else {
            return coverage;
        };
        let (mut modalities, mut ex_modalities, mut ex_classes) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (uid, series) in &study.series {
            let modality = series.attrs.modality.clone();
            let included: u64 = if scope.covers_series(uid, &modality) {
                series
                    .sop_classes
                    .iter()
                    .map(|(class, count)| {
                        if scope.covers(uid, &modality, class) {
                            *count
                        } else {
                            ex_classes.insert(class.clone());
                            0
                        }
                    })
                    .sum()
            } else {
                if scope.exclude_modalities.contains(&modality) {
                    ex_modalities.insert(modality.clone());
                }
                0
            };
            if included == 0 {
                coverage.excluded.series += 1;
            } else {
                modalities.insert(modality.clone());
            }
            coverage.instances += included;
            coverage.bytes += series.bytes * included / series.num_instances.max(1);
            coverage.excluded.instances += series.num_instances - included;
            coverage.series.push(SeriesCoverage {
                series_uid: uid.to_string(),
                series_number: series.attrs.series_number,
                modality,
                description: series.attrs.series_description.clone(),
                instances: series.num_instances,
                included,
            });
        }
        coverage.series.sort_by(|a, b| {
            (a.series_number, &a.series_uid).cmp(&(b.series_number, &b.series_uid))
        });
        coverage.modalities = modalities.into_iter().collect();
        coverage.excluded.modalities = ex_modalities.into_iter().collect();
        coverage.excluded.sop_classes = ex_classes.into_iter().collect();
        coverage
    }

    fn expiry(&self, requested: Option<Duration>, now: Timestamp) -> Timestamp {
        let lifetime = requested
            .unwrap_or(self.config.default_ttl)
            .min(self.config.max_ttl);
        now.saturating_add(lifetime)
    }

    /// Issues a grant; durable (journaled) before it returns. `from` is the
    /// address of the administrator's connection, for the audit trail.
    /// Blocking.
    pub fn issue(&self, request: IssueRequest, from: &str) -> Result<Issued, AuthzError> {
        let target = match (&request.study_uid, &request.accession) {
            (Some(uid), None) => {
                Target::Study(Uid::parse(uid).map_err(|e| invalid(format!("study: {e}")))?)
            }
            (None, Some(acc)) if !acc.trim().is_empty() && acc.len() <= 16 => {
                Target::Accession(acc.trim().to_string())
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
        if request.issuer.trim().is_empty() {
            return Err(invalid("issuer: the operator's name is required"));
        }
        let scope = request.shape.scope()?;
        let known = match &target {
            Target::Study(uid) => self.index.study(uid).ok().flatten(),
            Target::Accession(_) => None,
        };
        if let (Some(study), Some(series)) = (known, &scope.series)
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
            request.issuer.trim().to_string(),
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
                    grant: grant.clone(),
                    from: from.to_string(),
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

    fn issued(&self, grant: Grant, url: String, code: String) -> Issued {
        let state = self
            .read()
            .by_id
            .get(&grant.id)
            .cloned()
            .unwrap_or_else(|| GrantState::new(grant.clone()));
        Issued {
            covers: self.coverage(&state),
            id: grant.id,
            url,
            code,
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
    ) -> Result<Issued, Denied> {
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
        if !parent.scope.contains(&scope) {
            return refuse(
                DenyReason::WiderThanParent,
                "a grant passed on cannot cover more than its parent".into(),
            );
        }
        let now = Timestamp::now();
        let expires_at = match shape.lifetime() {
            Ok(None) => parent.expires_at,
            Ok(Some(lifetime)) if now.saturating_add(lifetime) <= parent.expires_at => {
                now.saturating_add(lifetime)
            }
            Ok(Some(_)) => {
                return refuse(
                    DenyReason::WiderThanParent,
                    format!(
                        "a grant passed on cannot outlive its parent ({})",
                        parent.expires_at
                    ),
                );
            }
            Err(e) => return refuse(DenyReason::InvalidRequest, e.to_string()),
        };
        let depth = shape
            .delegation_depth
            .unwrap_or(parent.delegation_depth - 1);
        if depth >= parent.delegation_depth {
            return refuse(
                DenyReason::WiderThanParent,
                format!(
                    "delegation_depth is at most {}",
                    parent.delegation_depth - 1
                ),
            );
        }
        let recipient = match narrower_recipient(&parent.recipient, &shape) {
            Ok(r) => r,
            Err(message) => return refuse(DenyReason::WiderThanParent, message),
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
        let event = Event::GrantDelegated {
            grant: grant.clone(),
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
    /// before it returns; revoking twice changes nothing. `from`: the
    /// administrator's address. Blocking.
    pub fn revoke(
        &self,
        id: &GrantId,
        by: &str,
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
                by: by.to_string(),
                reason: reason.to_string(),
                cascade: cascade.clone(),
                from: from.to_string(),
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
            created_at: g.created_at,
            expires_at: g.expires_at,
            message: g.message.clone(),
            delegation_depth: g.delegation_depth,
            parent: g.parent.clone(),
            holder: grant.holder.as_ref().map(|h| h.describe()),
            bound_at: grant.bound_at,
            revoked: grant.revoked.clone(),
            children: state.children.get(&g.id).cloned().unwrap_or_default(),
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
