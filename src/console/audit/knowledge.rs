//! What the audit knows to tie a journal record to a study and a patient.
//! A record names a study directly (a push, a deletion), through its grant
//! (an access, a revocation), or through its outbox entry (a delivery);
//! the patient of a study comes from the index while the study is there,
//! and from the journal's own grant records (the patient as stored when
//! the grant was issued) after retention deleted it.

use std::collections::HashMap;

use crate::base::GrantId;
use crate::journal::{Event, PatientRecord, Relay, TargetRecord};
use crate::store::{Index, PatientAttrs, Uid};

/// Parent chains are short (delegation depth is a u8).
const MAX_ANCESTORS: usize = 256;

/// A patient as the audit names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patient {
    /// DICOM PN, `^` between the parts.
    pub name: String,
    pub id: String,
    pub issuer: String,
    pub bsn: Option<String>,
    pub birth_date: String,
}

impl From<&PatientAttrs> for Patient {
    fn from(p: &PatientAttrs) -> Patient {
        Patient {
            name: p.name.clone(),
            id: p.id.clone(),
            issuer: p.issuer.clone(),
            bsn: p.bsn.clone(),
            birth_date: p.birth_date.clone(),
        }
    }
}

impl Patient {
    /// Whether `query` names this patient: their patient ID or BSN
    /// exactly, or part of their name (case-insensitive, `^` as space).
    pub fn matches(&self, query: &str) -> bool {
        let q = query.trim().to_lowercase();
        if q.is_empty() {
            return false;
        }
        let digits: String = q
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect();
        self.id.to_lowercase() == q
            || self.bsn.as_deref().is_some_and(|b| b == digits)
            || super::super::shares::view::searchable_name(&self.name).contains(&q)
    }

    /// One patient across studies: issuer and ID, or failing an ID, name
    /// and birth date (as the index keeps them apart).
    pub fn key(&self) -> String {
        if self.id.is_empty() {
            format!("~{}~{}", self.name, self.birth_date)
        } else {
            format!("{}~{}", self.issuer, self.id)
        }
    }
}

/// Grants, outbox entries and patients of studies, as far as known.
#[derive(Debug, Default)]
pub struct Knowledge {
    grant_study: HashMap<GrantId, Uid>,
    grant_parent: HashMap<GrantId, GrantId>,
    outbox_study: HashMap<String, Uid>,
    patients: HashMap<Uid, Patient>,
}

impl Knowledge {
    /// The patients of the studies in the store now. Blocking.
    pub fn from_index(index: &dyn Index) -> Knowledge {
        let mut knowledge = Knowledge::default();
        match index.studies() {
            Ok(studies) => {
                for s in studies {
                    knowledge
                        .patients
                        .insert(s.study_uid.clone(), Patient::from(&s.patient));
                }
            }
            Err(e) => tracing::warn!("audit: cannot read the studies: {e}"),
        }
        knowledge
    }

    /// Learns what `event` says of grants, pushes and patients.
    pub fn learn(&mut self, event: &Event) {
        match event {
            Event::GrantIssued { grant, .. } | Event::GrantDelegated { grant, .. } => {
                if let TargetRecord::Study(uid) = &grant.target {
                    self.grant_study.insert(grant.id.clone(), uid.clone());
                }
                if let Some(parent) = &grant.parent {
                    self.grant_parent.insert(grant.id.clone(), parent.clone());
                }
            }
            Event::GrantResolved { grant, study, .. } => {
                self.grant_study.insert(grant.clone(), study.clone());
            }
            Event::Relay(Relay::Queued { outbox, study, .. }) => {
                self.outbox_study.insert(outbox.clone(), study.clone());
            }
            _ => {}
        }
        if let Some((study, patient)) = journaled_patient(self, event) {
            // the index's record is the current one; the journal's stands
            // in once the study is gone
            self.patients.entry(study).or_insert(patient);
        }
    }

    /// The study a grant is for (a grant passed on: its root's, which an
    /// accession number may have pinned later).
    pub fn study_of_grant(&self, grant: &GrantId) -> Option<&Uid> {
        let mut current = grant;
        for _ in 0..MAX_ANCESTORS {
            if let Some(uid) = self.grant_study.get(current) {
                return Some(uid);
            }
            current = self.grant_parent.get(current)?;
        }
        None
    }

    pub fn study_of_outbox(&self, outbox: &str) -> Option<&Uid> {
        self.outbox_study.get(outbox)
    }

    pub fn patient(&self, study: &Uid) -> Option<&Patient> {
        self.patients.get(study)
    }

    /// Every study the patient(s) matching `query` have, as known.
    pub fn studies_of_patient(&self, query: &str) -> Vec<(Uid, Patient)> {
        self.patients
            .iter()
            .filter(|(_, p)| p.matches(query))
            .map(|(u, p)| (u.clone(), p.clone()))
            .collect()
    }

    /// The studies `event` concerns.
    pub fn studies_of(&self, event: &Event) -> Vec<Uid> {
        let by_grant = |g: &GrantId| self.study_of_grant(g).cloned();
        let found: Vec<Option<Uid>> = match event {
            Event::GrantIssued { grant, .. } | Event::GrantDelegated { grant, .. } => {
                vec![match &grant.target {
                    TargetRecord::Study(uid) => Some(uid.clone()),
                    TargetRecord::Accession(_) => by_grant(&grant.id),
                }]
            }
            Event::GrantBound { grant, .. } | Event::GrantExpired { grant } => {
                vec![by_grant(grant)]
            }
            Event::GrantRevoked { grant, .. } => vec![by_grant(grant)],
            Event::GrantResolved { study, .. }
            | Event::GrantMismatch { study, .. }
            | Event::Forwarded { study, .. }
            | Event::StudyDeleted { study, .. } => vec![Some(study.clone())],
            Event::Access(a) => vec![
                a.study
                    .clone()
                    .or_else(|| a.grant.as_ref().and_then(by_grant)),
            ],
            Event::Relay(r) => match r {
                Relay::Queued { study, .. } => vec![Some(study.clone())],
                Relay::Received { studies, .. } => studies.iter().cloned().map(Some).collect(),
                Relay::Sealed { outbox, .. }
                | Relay::Delivered { outbox, .. }
                | Relay::Failed { outbox, .. }
                | Relay::Cancelled { outbox, .. }
                | Relay::RetryAsked { outbox, .. }
                | Relay::Withdrawn { outbox, .. } => vec![self.study_of_outbox(outbox).cloned()],
                Relay::Refused { .. } => vec![],
            },
            Event::Console(_) | Event::Dropped { .. } | Event::Suppressed { .. } => vec![],
        };
        let mut out: Vec<Uid> = found.into_iter().flatten().collect();
        out.dedup();
        out
    }
}

/// The patient a grant record carries (the journal's own, as stored when
/// it was issued or pinned), with its study.
fn journaled_patient(known: &Knowledge, event: &Event) -> Option<(Uid, Patient)> {
    let (record, study) = match event {
        Event::GrantIssued {
            grant,
            patient: Some(p),
            ..
        } => (p, known.study_of_grant(&grant.id)?.clone()),
        Event::GrantResolved {
            study,
            patient: Some(p),
            ..
        } => (p, study.clone()),
        _ => return None,
    };
    Some((study, Patient::from(record)))
}

impl From<&PatientRecord> for Patient {
    fn from(p: &PatientRecord) -> Patient {
        Patient {
            name: p.name.clone(),
            id: p.id.clone(),
            issuer: p.issuer.clone(),
            bsn: p.bsn.clone(),
            birth_date: p.birth_date.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> Patient {
        Patient {
            name: "Jansen^Anna^M".into(),
            id: "P-0042".into(),
            issuer: "HOSP".into(),
            bsn: Some("123456782".into()),
            birth_date: "19700101".into(),
        }
    }

    #[test]
    fn a_patient_is_found_by_id_bsn_or_part_of_the_name() {
        let p = patient();
        assert!(p.matches("p-0042"));
        assert!(p.matches("1234.56.782"));
        assert!(p.matches("anna"));
        assert!(p.matches("Jansen Anna"));
        assert!(p.matches("jansen, anna"), "as the page shows it");
        assert!(!p.matches("P-004"), "an ID must be whole");
        assert!(!p.matches("12345678"), "a BSN must be whole");
        assert!(!p.matches("  "));
    }
}
