//! Which grants a member of staff may see and revoke in the console: an
//! applicatiebeheerder every grant, a gebruiker the shares they issued,
//! with every grant passed on from them (the delegation tree hangs under
//! its root, and the root is theirs). Decided here, not by which links a
//! page shows; a refusal is journaled with the person.

use std::net::IpAddr;

use super::grant::{GrantId, GrantState};
use super::grants::State;
use super::issue::{GrantDetail, GrantView};
use super::service::{Authz, AuthzError};
use super::staff::{Person, Role};
use crate::journal::{ActorRecord, ConsoleEvent, Event};

/// Parent chains are short (delegation depth is a u8); this bounds the walk.
const MAX_ANCESTORS: usize = 256;

/// Why a member of staff may not see or revoke a grant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaffDenied {
    #[error("no such grant")]
    NotFound,
    /// A gebruiker asked for a grant someone else issued.
    #[error("this share was issued by someone else; a gebruiker may revoke only their own shares")]
    NotYours,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Authz(#[from] AuthzError),
}

/// Who issued the share `grant` belongs to: the issuer of its root.
fn root_issuer<'s>(state: &'s State, grant: &'s GrantState) -> Option<&'s ActorRecord> {
    let mut current = grant;
    for _ in 0..MAX_ANCESTORS {
        let Some(parent) = &current.grant.parent else {
            return current.issued_by.as_ref();
        };
        current = state.by_id.get(parent)?;
    }
    None
}

impl Authz {
    /// Whether `person` may see and revoke `grant`: an admin any, a user
    /// one in a share they issued.
    fn staff_may_manage(&self, state: &State, person: &Person, grant: &GrantState) -> bool {
        person.role == Role::Admin || self.staff_owns(person, root_issuer(state, grant))
    }

    /// The grants `person` may see, newest first: all of them for an
    /// admin; for a user, those in shares they issued.
    pub fn staff_grants(&self, person: &Person) -> Vec<GrantView> {
        let visible: std::collections::HashSet<GrantId> = {
            let state = self.read();
            state
                .by_id
                .values()
                .filter(|g| self.staff_may_manage(&state, person, g))
                .map(|g| g.grant.id.clone())
                .collect()
        };
        self.list()
            .into_iter()
            .filter(|v| visible.contains(&v.id))
            .collect()
    }

    /// Who issued the share `id` belongs to (its root's issuer).
    pub fn share_issuer(&self, id: &GrantId) -> Option<ActorRecord> {
        let state = self.read();
        let grant = state.by_id.get(id)?;
        root_issuer(&state, grant).cloned()
    }

    /// One grant with its chain, if `person` may see it; a refusal is
    /// journaled (`from`: their address).
    pub fn staff_grant(
        &self,
        person: &Person,
        id: &GrantId,
        from: IpAddr,
    ) -> Result<GrantDetail, StaffDenied> {
        self.staff_check(person, id, from, "share")?;
        self.show(id).ok_or(StaffDenied::NotFound)
    }

    /// The grants revoking `id` now would revoke with it (those passed on
    /// from it and not yet revoked), if `person` may revoke it.
    pub fn staff_cascade(
        &self,
        person: &Person,
        id: &GrantId,
        from: IpAddr,
    ) -> Result<Vec<GrantId>, StaffDenied> {
        self.staff_check(person, id, from, "share")?;
        let state = self.read();
        Ok(state
            .descendants(id)
            .into_iter()
            .filter(|d| state.by_id.get(d).is_some_and(|g| g.revoked.is_none()))
            .collect())
    }

    /// Revokes `id` (and every grant passed on from it) for `person`, with
    /// their reason (required); a user only a grant of their own shares.
    /// Journaled with the person, a refusal too. Blocking.
    pub fn staff_revoke(
        &self,
        person: &Person,
        id: &GrantId,
        reason: &str,
        from: IpAddr,
    ) -> Result<Vec<GrantId>, StaffDenied> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StaffDenied::Invalid(
                "say why the share is revoked (the reason is kept in the journal)".into(),
            ));
        }
        if reason.chars().count() > 500 {
            return Err(StaffDenied::Invalid(
                "the reason is at most 500 characters".into(),
            ));
        }
        self.staff_check(person, id, from, "revoke")?;
        Ok(self.revoke(id, &person.actor(), reason, &from.to_string())?)
    }

    fn staff_check(
        &self,
        person: &Person,
        id: &GrantId,
        from: IpAddr,
        what: &str,
    ) -> Result<(), StaffDenied> {
        let allowed = {
            let state = self.read();
            let grant = state.by_id.get(id).ok_or(StaffDenied::NotFound)?;
            self.staff_may_manage(&state, person, grant)
        };
        if allowed {
            return Ok(());
        }
        self.journal_refusal(
            from,
            Event::Console(ConsoleEvent::Refused {
                actor: person.actor(),
                what: format!("{what} {} (issued by someone else)", id.0),
                from: from.to_string(),
            }),
        );
        Err(StaffDenied::NotYours)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::authz::{IssueRequest, Shape};
    use crate::config::GrantsConfig;
    use crate::journal::Journal;
    use crate::store::Store;

    fn person(name: &str, role: Role) -> Person {
        Person {
            id: format!("local:{name}"),
            name: name.into(),
            role,
        }
    }

    #[test]
    fn a_user_sees_and_revokes_only_their_own_shares_an_admin_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::temporary(dir.path()).unwrap();
        let journal = Journal::open(&dir.path().join("journal")).unwrap();
        let authz = Authz::open(
            store.grants.clone(),
            journal,
            store.index.clone(),
            &dir.path().join("authz.key"),
            GrantsConfig {
                default_ttl: Duration::from_secs(86400),
                max_ttl: Duration::from_secs(86400 * 9),
            },
            "https://gw.example".into(),
        )
        .unwrap();
        let (ann, bob, admin) = (
            person("ann", Role::User),
            person("bob", Role::User),
            person("root", Role::Admin),
        );
        let issue = |p: &Person| {
            authz
                .issue(
                    IssueRequest {
                        study_uid: Some("1.2.3".into()),
                        accession: None,
                        shape: Shape::default(),
                        legal_basis: Some(crate::authz::LegalBasis::Referral),
                        ..IssueRequest::default()
                    },
                    &p.actor(),
                    "127.0.0.1",
                )
                .unwrap()
                .id
        };
        let (mine, theirs) = (issue(&ann), issue(&bob));
        let from = IpAddr::from([127, 0, 0, 1]);
        let seen: Vec<GrantId> = authz.staff_grants(&ann).into_iter().map(|v| v.id).collect();
        assert_eq!(seen, vec![mine.clone()]);
        assert_eq!(authz.staff_grants(&admin).len(), 2);
        assert!(matches!(
            authz.staff_revoke(&ann, &theirs, "wrong patient", from),
            Err(StaffDenied::NotYours)
        ));
        assert!(matches!(
            authz.staff_grant(&ann, &theirs, from),
            Err(StaffDenied::NotYours)
        ));
        assert!(matches!(
            authz.staff_revoke(&ann, &mine, "  ", from),
            Err(StaffDenied::Invalid(_))
        ));
        authz
            .staff_revoke(&ann, &mine, "wrong patient", from)
            .unwrap();
        authz.staff_revoke(&admin, &theirs, "asked", from).unwrap();
        assert!(authz.grant_state(&theirs).unwrap().revoked.is_some());
        assert_eq!(
            authz.share_issuer(&mine).map(|a| a.id),
            Some("local:ann".to_string())
        );
    }
}
