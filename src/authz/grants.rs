//! Grant state: applied from journal events, held in memory for decisions
//! in microseconds, mirrored in the store (`GrantStore`, with the number of
//! the last journal record applied) so a start only replays the journal's tail.
//! `reindex` rebuilds it from the whole journal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::grant::{Grant, GrantId, GrantState, Mismatch, Revocation};
use super::identity::Holder;
use crate::journal::{self, Event, JournalError};
use crate::store::{GrantStore, StoreError, Timestamp};

#[derive(Default)]
pub(super) struct State {
    pub by_id: HashMap<GrantId, GrantState>,
    pub by_token: HashMap<String, GrantId>,
    pub by_code: HashMap<String, GrantId>,
    pub children: HashMap<GrantId, Vec<GrantId>>,
    pub applied: u64,
}

impl State {
    fn index(&mut self, state: &GrantState) {
        let id = &state.grant.id;
        self.by_token
            .insert(state.grant.token_hash.clone(), id.clone());
        for alias in &state.url_aliases {
            self.by_token.insert(alias.clone(), id.clone());
        }
        self.by_code
            .insert(state.grant.code_hash.clone(), id.clone());
        if let Some(parent) = &state.grant.parent {
            let siblings = self.children.entry(parent.clone()).or_default();
            if !siblings.contains(id) {
                siblings.push(id.clone());
            }
        }
    }

    /// Applies one journal event; returns the grants it changed.
    pub fn apply(&mut self, at: Timestamp, event: &Event) -> Vec<GrantId> {
        match event {
            Event::GrantIssued { grant, .. } | Event::GrantDelegated { grant, .. } => {
                let id = grant.id.clone();
                let mut state = GrantState::new(Grant::from(grant.clone()));
                match event {
                    Event::GrantIssued {
                        by,
                        legal_basis,
                        patient,
                        ..
                    } => {
                        state.issued_by = by.clone();
                        state.legal_basis = legal_basis.clone().map(Into::into);
                        state.patient = patient.clone();
                    }
                    // passed on: the same basis, the same patient
                    _ => {
                        if let Some(parent) = grant.parent.as_ref().and_then(|p| self.by_id.get(p))
                        {
                            state.legal_basis = parent.legal_basis.clone();
                            state.patient = parent.patient.clone();
                            // by accession: the parent's study, never one of its own
                            state.resolved = parent.resolved.clone();
                        }
                    }
                }
                self.index(&state);
                self.by_id.insert(id.clone(), state);
                vec![id]
            }
            Event::GrantBound {
                grant,
                holder,
                alias,
                ..
            } => {
                let Some(state) = self.by_id.get_mut(grant) else {
                    return vec![];
                };
                // The first binding wins, in replay as live: a later one
                // for someone else changes nothing.
                let holder = Holder::from(holder.clone());
                match &state.holder {
                    Some(existing) if *existing != holder => return vec![],
                    Some(_) => {}
                    None => state.holder = Some(holder),
                }
                state.bound_at.get_or_insert(at);
                if let Some(alias) = alias {
                    state.url_aliases.push(alias.clone());
                    self.by_token.insert(alias.clone(), grant.clone());
                }
                vec![grant.clone()]
            }
            Event::GrantRevoked {
                grant,
                by,
                reason,
                cascade,
                ..
            } => {
                let mut changed = Vec::new();
                for (id, via) in std::iter::once((grant, None))
                    .chain(cascade.iter().map(|c| (c, Some(grant.clone()))))
                {
                    if let Some(state) = self.by_id.get_mut(id)
                        && state.revoked.is_none()
                    {
                        state.revoked = Some(Revocation {
                            at,
                            by: by.clone(),
                            reason: reason.clone(),
                            via,
                        });
                        changed.push(id.clone());
                    }
                }
                changed
            }
            Event::GrantExpired { grant } => match self.by_id.get_mut(grant) {
                Some(state) => {
                    state.expiry_logged = true;
                    vec![grant.clone()]
                }
                None => vec![],
            },
            Event::GrantResolved {
                grant,
                study,
                patient,
            } => match self.by_id.get_mut(grant) {
                Some(state) if state.resolved.is_none() => {
                    state.resolved = Some(study.clone());
                    if state.patient.is_none() {
                        state.patient = patient.clone();
                    }
                    // grants passed on before it was pinned: the same study
                    let mut changed = vec![grant.clone()];
                    let mut i = 0;
                    while i < changed.len() {
                        let parent = changed[i].clone();
                        let children: Vec<GrantId> = self
                            .by_id
                            .values()
                            .filter(|g| g.grant.parent.as_ref() == Some(&parent))
                            .map(|g| g.grant.id.clone())
                            .collect();
                        for child in children {
                            if let Some(c) = self.by_id.get_mut(&child)
                                && c.resolved.is_none()
                            {
                                c.resolved = Some(study.clone());
                                if c.patient.is_none() {
                                    c.patient = patient.clone();
                                }
                                changed.push(child);
                            }
                        }
                        i += 1;
                    }
                    changed
                }
                _ => vec![],
            },
            Event::GrantMismatch {
                grant,
                study,
                reason,
            } => match self.by_id.get_mut(grant) {
                Some(state) if !state.mismatches.iter().any(|m| &m.study == study) => {
                    state.mismatches.push(Mismatch {
                        study: study.clone(),
                        reason: reason.clone(),
                        at,
                    });
                    vec![grant.clone()]
                }
                _ => vec![],
            },
            Event::Access(_)
            | Event::Relay(_)
            | Event::Console(_)
            | Event::Forwarded { .. }
            | Event::StudyDeleted { .. }
            | Event::Dropped { .. }
            | Event::Suppressed { .. } => vec![],
        }
    }

    /// Every descendant of `id`, depth first.
    pub fn descendants(&self, id: &GrantId) -> Vec<GrantId> {
        let mut out = Vec::new();
        let mut stack: Vec<GrantId> = self.children.get(id).cloned().unwrap_or_default();
        while let Some(next) = stack.pop() {
            if let Some(more) = self.children.get(&next) {
                stack.extend(more.iter().cloned());
            }
            out.push(next);
        }
        out
    }
}

/// The mirror in the store: each grant's state as JSON, saved with the
/// number of the journal record that last changed it.
pub(super) struct Mirror {
    store: Arc<dyn GrantStore>,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("grant record: {e}"))
}

impl Mirror {
    pub fn new(store: Arc<dyn GrantStore>) -> Mirror {
        Mirror { store }
    }

    pub fn load(&self) -> Result<State, StoreError> {
        let mut state = State::default();
        let (records, applied) = self.store.load()?;
        for bytes in records {
            let grant: GrantState = serde_json::from_slice(&bytes).map_err(corrupt)?;
            state.index(&grant);
            state.by_id.insert(grant.grant.id.clone(), grant);
        }
        state.applied = applied;
        Ok(state)
    }

    /// Writes the changed grants and the applied sequence number together.
    pub fn save(&self, state: &State, changed: &[GrantId], seq: u64) -> Result<(), StoreError> {
        let mut records = Vec::with_capacity(changed.len());
        for id in changed {
            if let Some(grant) = state.by_id.get(id) {
                records.push((id.clone(), serde_json::to_vec(grant).map_err(corrupt)?));
            }
        }
        self.store.save(&records, seq)
    }

    pub fn clear(&self) -> Result<(), StoreError> {
        self.store.clear()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies every journal record after `state.applied` (all of them for a
/// fresh state), saving each change to the mirror.
pub(super) fn catch_up(
    state: &mut State,
    mirror: &Mirror,
    journal_dir: &Path,
) -> Result<usize, ReplayError> {
    let mut applied = 0;
    if !journal_dir.exists() {
        return Ok(0);
    }
    for item in journal::read(journal_dir, state.applied + 1)? {
        let (record, _) = item?;
        let changed = state.apply(record.at, &record.event);
        if !changed.is_empty() {
            mirror.save(state, &changed, record.seq)?;
            applied += 1;
        }
        state.applied = record.seq;
    }
    Ok(applied)
}
