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
                    shares.awaited.insert(accession.clone());
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
    pub fn record_deletion(
        &self,
        study: &StudyRecord,
        deletion: Event,
    ) -> Result<bool, AuthzError> {
        let turn = self.turn();
        if self.shares(Timestamp::now()).of(study) == Some(Share::Active) {
            return Ok(false);
        }
        self.change_in_turn(&turn, deletion)?;
        Ok(true)
    }
}
