//! The authz service: grant state, the journal, and how changes are made.
//! A change is journaled durably first and applied second, one at a time
//! under the change lock, with the journal's own time, exactly as a replay
//! would apply it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use super::decide::Caller;
use super::grant::{Awaited, GrantId, HERE_BEFORE, Target};

/// Studies reported per grant by accession as not its study, at most.
const MAX_MISMATCHES: usize = 20;
use super::grants::{Mirror, ReplayError, State, catch_up};
use super::limiter::{Limiter, Rate};
use super::secret::CodeKey;
use crate::config::GrantsConfig;
use crate::journal::{Access, AccessKind, DenyReason, Event, Journal, JournalError, Outcome};
use crate::store::{GrantStore, Index, StoreError, StudyRecord, Timestamp, Uid};

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
    #[error(
        "the journal ends at record {journal} but grant state was applied up to record {applied}: \
         records were removed from the journal; run `pushgate audit verify`"
    )]
    JournalShorter { journal: u64, applied: u64 },
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

pub struct Authz {
    pub(super) journal: Journal,
    pub(super) index: Arc<dyn Index>,
    pub(super) state: RwLock<State>,
    pub(super) mirror: Mirror,
    /// A change reached the journal but not sled: the next successful save
    /// writes every grant, and until then the applied number stays behind.
    mirror_behind: AtomicBool,
    pub(super) codes: CodeKey,
    /// Code redemption: per address, and in all.
    pub(super) limiter: Limiter,
    /// Journaling refusals: per address, and in all; beyond it they are
    /// counted (`Suppressed`), so nobody can fill the disk with refusals.
    denials: Limiter,
    suppressed: AtomicU64,
    /// Failed admin authentications, per address (only failures count).
    pub(super) admin_failures: Limiter,
    /// Failed console logins, per address and per account.
    pub(super) staff_logins: super::staff::LoginLimits,
    pub(super) config: GrantsConfig,
    pub(super) public_url: String,
    /// Changes are journaled and applied one at a time, in journal order.
    changes: Mutex<()>,
    /// Studies retention has journaled as deleted and is removing: no new
    /// grant and no push may name them.
    pub(super) deleting: Mutex<std::collections::HashSet<crate::store::Uid>>,
    /// The journal number of the last change applied, for those that act on
    /// a change (the outbox cancels the pushes of a grant revoked or expired).
    changed: tokio::sync::watch::Sender<u64>,
}

impl Authz {
    /// Loads grant state from sled, replays the journal's tail, and pins
    /// accession grants whose study has arrived.
    pub fn open(
        grants: Arc<dyn GrantStore>,
        journal: Journal,
        index: Arc<dyn Index>,
        code_key: &Path,
        config: GrantsConfig,
        public_url: String,
    ) -> Result<Authz, AuthzError> {
        let mirror = Mirror::new(grants);
        let mut state = mirror.load()?;
        let journal_end = journal.opened_at.0;
        if state.applied > journal_end {
            return Err(AuthzError::JournalShorter {
                journal: journal_end,
                applied: state.applied,
            });
        }
        let replayed = catch_up(&mut state, &mirror, journal.dir())?;
        if replayed > 0 {
            tracing::info!(replayed, "grant changes replayed from the journal");
        }
        let authz = Authz {
            codes: CodeKey::load_or_create(code_key).map_err(StoreError::Io)?,
            journal,
            index,
            state: RwLock::new(state),
            mirror,
            mirror_behind: AtomicBool::new(false),
            limiter: Limiter::for_codes(),
            denials: Limiter::new(
                Rate {
                    burst: 60.0,
                    per_second: 1.0,
                },
                Rate {
                    burst: 1000.0,
                    per_second: 100.0,
                },
            ),
            suppressed: AtomicU64::new(0),
            admin_failures: Limiter::for_admin_failures(),
            staff_logins: super::staff::LoginLimits::new(),
            config,
            public_url,
            changes: Mutex::new(()),
            deleting: Mutex::new(std::collections::HashSet::new()),
            changed: tokio::sync::watch::Sender::new(0),
        };
        authz.resolve_accessions();
        Ok(authz)
    }

    /// Rebuilds the mirror from the whole journal (`reindex`).
    pub fn rebuild(grants: Arc<dyn GrantStore>, journal_dir: &Path) -> Result<usize, AuthzError> {
        let mirror = Mirror::new(grants);
        mirror.clear()?;
        let mut state = State::default();
        catch_up(&mut state, &mirror, journal_dir)?;
        Ok(state.by_id.len())
    }

    /// Ticks after every grant change (issue, revocation, expiry, …).
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn url_for(&self, token: &str) -> String {
        format!("{}/s/{token}", self.public_url)
    }

    /// The page where a recipient enters a code (`http.public_url`).
    pub fn code_page(&self) -> String {
        format!("{}/", self.public_url)
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The change lock: check and change under it.
    pub(super) fn turn(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Journals a change durably, then applies it. Blocking.
    pub(super) fn change(&self, event: Event) -> Result<u64, JournalError> {
        let turn = self.turn();
        self.change_in_turn(&turn, event)
    }

    /// `change` for a caller that holds the change lock.
    pub(super) fn change_in_turn(
        &self,
        _turn: &MutexGuard<'_, ()>,
        event: Event,
    ) -> Result<u64, JournalError> {
        let (seq, at) = self.journal.append_durable(event.clone())?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let changed = state.apply(at, &event);
        state.applied = seq;
        self.changed.send_replace(seq);
        let behind = self.mirror_behind.load(Ordering::SeqCst);
        let to_save: Vec<GrantId> = if behind {
            state.by_id.keys().cloned().collect()
        } else {
            changed
        };
        match self.mirror.save(&state, &to_save, seq) {
            Ok(()) => self.mirror_behind.store(false, Ordering::SeqCst),
            Err(e) => {
                // The journal has it, and the applied number in sled stays
                // before it, so the next start replays it.
                self.mirror_behind.store(true, Ordering::SeqCst);
                tracing::error!(
                    "grant change journaled but not mirrored ({e}); it is replayed at the next start"
                );
            }
        }
        Ok(seq)
    }

    /// Journals what a holder was served (after serving it); never waits.
    pub fn record_served(&self, caller: Caller<'_>, served: Served<'_>) {
        crate::metrics::METRICS.bytes_served.inc_by(served.bytes);
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

    /// Journals a decision without payload; never waits. Returns whether
    /// it was journaled (a refusal may be only counted).
    pub(super) fn record(
        &self,
        caller: Caller<'_>,
        what: AccessKind,
        grant: Option<&GrantId>,
        outcome: Outcome,
    ) -> bool {
        let denied = match &outcome {
            Outcome::Allowed => None,
            Outcome::Denied(reason) => Some(*reason),
        };
        crate::metrics::METRICS.access(what, denied);
        let event = Event::Access(Access {
            grant: grant.cloned(),
            study: None,
            what,
            who: caller.who(),
            from: caller.from.to_string(),
            outcome,
            instances: 0,
            bytes: 0,
        });
        if denied.is_some() {
            self.journal_refusal(caller.from, event)
        } else {
            self.journal.append(event);
            true
        }
    }

    /// Journals a refusal from `from`, within the bound every refusal
    /// shares (`denials`); beyond it the refusal is only counted, and the
    /// next sweep journals the count as one `Suppressed`. Returns whether
    /// it was journaled: callers log a refusal only then, so neither the
    /// journal nor the log grows at an anonymous caller's pace. Never waits.
    pub fn journal_refusal(&self, from: IpAddr, event: Event) -> bool {
        if self.denials.attempt(from).is_err() {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            crate::metrics::METRICS.accesses_unjournaled.inc();
            return false;
        }
        self.journal.append(event);
        true
    }

    pub(super) fn deny<T>(
        &self,
        caller: Caller<'_>,
        what: AccessKind,
        grant: Option<&GrantId>,
        reason: DenyReason,
    ) -> Result<T, super::Denied> {
        let _ = self.record(caller, what, grant, Outcome::Denied(reason));
        Err(super::Denied::Neutral(reason))
    }

    /// Journals the expiry of grants whose time ran out, and how many
    /// refusals were only counted. Returns how many grants expired.
    pub fn sweep(&self) -> usize {
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        if suppressed > 0 {
            self.journal.append(Event::Suppressed { count: suppressed });
        }
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

    /// Pins each grant made by accession number to the first study with
    /// that number and the grant's patient (and sender, if named) that
    /// received an instance after the grant was issued (journaled): it
    /// covers that study and no other. Every other study with the number is
    /// journaled once as a mismatch, for the issuer. Blocking.
    pub fn resolve_accessions(&self) {
        // One pass at a time (the worker, and `issue`): a mismatch or a pin
        // is journaled once.
        static RESOLVING: Mutex<()> = Mutex::new(());
        let _one = RESOLVING.lock().unwrap_or_else(|e| e.into_inner());
        let now = Timestamp::now();
        // Grants passed on take their root's study (`GrantResolved`);
        // expired and patient-less ones never pin; each reports at most
        // MAX_MISMATCHES studies, so a sender reusing a number cannot fill
        // the journal.
        let pending: Vec<(GrantId, Awaited, Timestamp, HashMap<Uid, bool>)> = self
            .read()
            .by_id
            .values()
            .filter(|g| g.resolved.is_none() && g.revoked.is_none() && g.grant.parent.is_none())
            .filter(|g| !g.is_expired(now))
            .filter_map(|g| match &g.grant.target {
                Target::Accession(awaited)
                    if awaited.patient_id.is_some() || awaited.bsn.is_some() =>
                {
                    Some((
                        g.grant.id.clone(),
                        awaited.clone(),
                        g.grant.created_at,
                        g.mismatches
                            .iter()
                            .map(|m| (m.study.clone(), m.reason.starts_with(HERE_BEFORE)))
                            .collect(),
                    ))
                }
                _ => None,
            })
            .collect();
        for (grant, awaited, since, reported) in pending {
            let mut candidates: Vec<StudyRecord> = self
                .index
                .studies_by_accession(&awaited.number)
                .ok()
                .into_iter()
                .flatten()
                .filter_map(|uid| self.index.study(&uid).ok().flatten())
                .collect();
            candidates.sort_by_key(|s| (s.first_arrival, s.study_uid.clone()));
            let mut pinned = None;
            let mut room = MAX_MISMATCHES.saturating_sub(reported.len());
            for study in candidates {
                match awaited.mismatch(&study, since) {
                    // once reported as another patient's or sender's, never
                    // pinned (a study whose instances disagree on whose it is)
                    None if pinned.is_none()
                        && reported.get(&study.study_uid).is_none_or(|before| *before) =>
                    {
                        pinned = Some(study)
                    }
                    None => {}
                    Some(reason) if !reported.contains_key(&study.study_uid) && room > 0 => {
                        room -= 1;
                        tracing::warn!(grant = %grant, study = %study.study_uid, "a study with the grant's accession number is not its study: {reason}");
                        if let Err(e) = self.change(Event::GrantMismatch {
                            grant: grant.clone(),
                            study: study.study_uid.clone(),
                            reason,
                        }) {
                            tracing::error!(grant = %grant, "cannot journal a mismatch: {e}");
                        }
                    }
                    Some(_) => {}
                }
            }
            if let Some(study) = pinned {
                match self.change(Event::GrantResolved {
                    grant: grant.clone(),
                    study: study.study_uid.clone(),
                    patient: Some(super::audit::patient_record(&study.patient)),
                }) {
                    Ok(_) => {
                        tracing::info!(grant = %grant, study = %study.study_uid, "grant by accession found its study")
                    }
                    Err(e) => {
                        tracing::error!(grant = %grant, "cannot journal the study of a grant: {e}")
                    }
                }
            }
        }
    }
}
