//! When the sharing of a study ends: what retention needs to know of the
//! grants. A study is shared while any grant naming it (passed-on ones and
//! grants by accession number once pinned, too) can still be used.

use std::collections::{HashMap, HashSet};

use super::grant::{GrantState, Target};
use super::grants::State;
use super::service::{Authz, AuthzError};
use crate::journal::Event;
use crate::store::{StudyRecord, Timestamp, Uid};

/// Parent chains are short (delegation depth is a u8); this bounds the walk
/// should a record ever name itself as an ancestor.
const MAX_ANCESTORS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Some grant on the study can still be used.
    Active,
    /// Every grant on it has ended, the last at this time.
    Ended(Timestamp),
}

impl Share {
    fn merge(self, other: Share) -> Share {
        match (self, other) {
            (Share::Active, _) | (_, Share::Active) => Share::Active,
            (Share::Ended(a), Share::Ended(b)) => Share::Ended(a.max(b)),
        }
    }
}

/// Sharing per study, at one moment.
#[derive(Debug, Default)]
pub struct Shares {
    by_study: HashMap<Uid, Share>,
    /// Accession numbers of usable grants not pinned to a study yet: a study
    /// with one of them is about to be shared.
    awaited: HashSet<String>,
}

impl Shares {
    /// `None`: the study was never shared.
    pub fn of(&self, study: &StudyRecord) -> Option<Share> {
        let accession = &study.attrs.accession_number;
        if !accession.is_empty() && self.awaited.contains(accession) {
            return Some(Share::Active);
        }
        self.by_study.get(&study.study_uid).copied()
    }

    pub(super) fn from_state(state: &State, now: Timestamp) -> Shares {
        let mut shares = Shares::default();
        for grant in state.by_id.values() {
            let end = end_of(state, grant);
            match (grant.study_uid(), &grant.grant.target) {
                (Some(study), _) => {
                    let share = if end > now {
                        Share::Active
                    } else {
                        Share::Ended(end)
                    };
                    shares
                        .by_study
                        .entry(study.clone())
                        .and_modify(|s| *s = s.merge(share))
                        .or_insert(share);
                }
                (None, Target::Accession(accession)) if end > now => {
                    shares.awaited.insert(accession.number.clone());
                }
                (None, _) => {}
            }
        }
        shares
    }
}

/// When `grant` stopped (or will stop) being usable: its expiry or
/// revocation, or an ancestor's, whichever comes first — the same rule as
/// the access decision's.
fn end_of(state: &State, grant: &GrantState) -> Timestamp {
    let own = |g: &GrantState| match &g.revoked {
        Some(r) => r.at.min(g.grant.expires_at),
        None => g.grant.expires_at,
    };
    let mut end = own(grant);
    let mut parent = grant.grant.parent.as_ref();
    for _ in 0..MAX_ANCESTORS {
        let Some(id) = parent else {
            break;
        };
        let Some(ancestor) = state.by_id.get(id) else {
            // An unknown ancestor counts as revoked: never usable.
            return end.min(grant.grant.created_at);
        };
        end = end.min(own(ancestor));
        parent = ancestor.grant.parent.as_ref();
    }
    end
}

impl Authz {
    /// How sharing stands for every study a grant names, at `now`.
    pub fn shares(&self, now: Timestamp) -> Shares {
        Shares::from_state(&self.read(), now)
    }

    /// Journals `deletion` (a [`Event::StudyDeleted`]) durably, unless a
    /// grant on `study` has become usable since retention looked: checked
    /// under the change lock, so no grant can be issued between the check
    /// and the record. Returns whether it was journaled. Blocking.
    ///
    /// `still_idle` is asked after the study is marked as being deleted
    /// (so a push queued from now on sees the mark and withdraws itself):
    /// whether no push or forward took it up since the sweep looked. Until
    /// [`Authz::deletion_done`], no grant can be issued for it.
    pub fn record_deletion(
        &self,
        study: &StudyRecord,
        deletion: Event,
        still_idle: impl FnOnce() -> bool,
    ) -> Result<bool, AuthzError> {
        let turn = self.turn();
        if self.shares(Timestamp::now()).of(study) == Some(Share::Active) {
            return Ok(false);
        }
        self.deleting_set().insert(study.study_uid.clone());
        if !still_idle() {
            self.deletion_done(&study.study_uid);
            return Ok(false);
        }
        if let Err(e) = self.change_in_turn(&turn, deletion) {
            self.deletion_done(&study.study_uid);
            return Err(e.into());
        }
        Ok(true)
    }

    fn deleting_set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<Uid>> {
        self.deleting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether retention is removing `study` right now.
    pub fn is_deleting(&self, study: &Uid) -> bool {
        self.deleting_set().contains(study)
    }

    /// The deletion of `study` is over (done, or left to the next sweep).
    pub fn deletion_done(&self, study: &Uid) {
        self.deleting_set().remove(study);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::authz::grant::{Grant, GrantId, Recipient, Scope};
    use crate::store::{PatientAttrs, StudyAttrs};

    fn at(s: u64) -> Timestamp {
        Timestamp(1_700_000_000_000 + s * 1000)
    }

    fn grant(id: &str, target: Target, expires: u64, parent: Option<&str>) -> Grant {
        Grant {
            id: GrantId(id.into()),
            target,
            scope: Scope::default(),
            issuer: "test".into(),
            recipient: Recipient::Anyone,
            created_at: at(0),
            expires_at: at(expires),
            message: String::new(),
            delegation_depth: 1,
            parent: parent.map(|p| GrantId(p.into())),
            token_hash: format!("t-{id}"),
            code_hash: format!("c-{id}"),
        }
    }

    fn study(uid: &str, accession: &str) -> StudyRecord {
        StudyRecord {
            study_uid: Uid::parse(uid).unwrap(),
            patient: PatientAttrs::default(),
            attrs: StudyAttrs {
                accession_number: accession.into(),
                ..StudyAttrs::default()
            },
            series: BTreeMap::new(),
            first_arrival: at(0),
            last_arrival: at(0),
            completed_at: Some(at(0)),
            sources: Default::default(),
        }
    }

    fn issue(state: &mut State, g: Grant) {
        let event = match g.parent {
            None => Event::GrantIssued {
                grant: crate::journal::GrantRecord::from(&g),
                from: String::new(),
                by: None,
                legal_basis: None,
                patient: None,
            },
            Some(_) => Event::GrantDelegated {
                grant: crate::journal::GrantRecord::from(&g),
                by: crate::journal::Who::Anonymous,
                from: String::new(),
            },
        };
        state.apply(at(0), &event);
    }

    fn uid(s: &str) -> Uid {
        Uid::parse(s).unwrap()
    }

    #[test]
    fn a_study_is_shared_until_its_last_grant_ends() {
        let mut state = State::default();
        issue(&mut state, grant("a", Target::Study(uid("1.1")), 10, None));
        issue(&mut state, grant("b", Target::Study(uid("1.1")), 50, None));
        issue(
            &mut state,
            grant("c", Target::Study(uid("1.1")), 40, Some("b")),
        );
        let s = study("1.1", "");
        assert_eq!(
            Shares::from_state(&state, at(20)).of(&s),
            Some(Share::Active)
        );
        assert_eq!(
            Shares::from_state(&state, at(50)).of(&s),
            Some(Share::Ended(at(50))),
            "the child ended with its parent's expiry at the latest"
        );
        state.apply(
            at(30),
            &Event::GrantRevoked {
                grant: GrantId("b".into()),
                by: "test".into(),
                reason: String::new(),
                cascade: vec![GrantId("c".into())],
                from: String::new(),
                actor: None,
            },
        );
        assert_eq!(
            Shares::from_state(&state, at(31)).of(&s),
            Some(Share::Ended(at(30))),
            "revoked at 30, with its child; the other expired at 10"
        );
        assert_eq!(
            Shares::from_state(&state, at(31)).of(&study("1.2", "")),
            None
        );
    }

    #[test]
    fn a_child_ends_with_its_parent_even_if_not_cascaded() {
        let mut state = State::default();
        issue(&mut state, grant("p", Target::Study(uid("1.1")), 20, None));
        issue(
            &mut state,
            grant("k", Target::Study(uid("1.1")), 90, Some("p")),
        );
        assert_eq!(
            Shares::from_state(&state, at(25)).of(&study("1.1", "")),
            Some(Share::Ended(at(20)))
        );
    }

    #[test]
    fn grants_by_accession_count_once_pinned_and_hold_a_study_while_awaited() {
        let mut state = State::default();
        issue(
            &mut state,
            grant(
                "x",
                Target::Accession(crate::authz::Awaited {
                    number: "ACC1".into(),
                    patient_id: Some("P1".into()),
                    bsn: None,
                    source_ae: None,
                }),
                50,
                None,
            ),
        );
        let arriving = study("1.5", "ACC1");
        assert_eq!(
            Shares::from_state(&state, at(10)).of(&arriving),
            Some(Share::Active),
            "about to be pinned to it"
        );
        assert_eq!(
            Shares::from_state(&state, at(10)).of(&study("1.6", "ACC2")),
            None
        );
        state.apply(
            at(11),
            &Event::GrantResolved {
                grant: GrantId("x".into()),
                study: uid("1.5"),
                patient: None,
            },
        );
        assert_eq!(
            Shares::from_state(&state, at(60)).of(&arriving),
            Some(Share::Ended(at(50)))
        );
        assert_eq!(
            Shares::from_state(&state, at(60)).of(&study("1.7", "ACC1")),
            None,
            "pinned: another study with that accession was never shared"
        );
    }
}
