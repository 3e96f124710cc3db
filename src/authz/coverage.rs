//! What a grant covers, as two views of one computation: the sender sees
//! what leaves the house and what stays (admin API, CLI); the holder sees
//! only what it was given. What a grant leaves out is the sender's to know:
//! series, modalities, SOP classes or counts of it never reach a holder.

use std::collections::BTreeSet;

use serde::Serialize;

use super::grant::{GrantState, Target};
use super::service::Authz;
use crate::store::StudyRecord;

/// Exactly what leaves the house, and what stays: the sender's view.
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

/// What a grant covers, as its holder is told (study page, its JSON, the
/// answer to passing it on): the covered series with their covered
/// instances, nothing about what was left out.
#[derive(Debug, Clone, Serialize)]
pub struct HolderCoverage {
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bsn_last_digits: Option<String>,
    /// Covered series only, in series number order.
    pub series: Vec<HolderSeries>,
    pub instances: u64,
    pub bytes: u64,
    pub modalities: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HolderSeries {
    pub series_uid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_number: Option<i64>,
    pub modality: String,
    pub description: String,
    /// Covered instances of the series (not how many it has).
    pub instances: u64,
}

impl From<Coverage> for HolderCoverage {
    fn from(c: Coverage) -> HolderCoverage {
        HolderCoverage {
            // the number, not whose: a holder sees the patient only as the
            // study shows it (name, birth date, BSN's last digits)
            target: match c.target {
                Target::Accession(a) => Target::Accession(a.number_only()),
                target => target,
            },
            state: c.state,
            study_uid: c.study_uid,
            patient_name: c.patient_name,
            patient_birth_date: c.patient_birth_date,
            study_description: c.study_description,
            study_date: c.study_date,
            bsn_last_digits: c.bsn_last_digits,
            series: c
                .series
                .into_iter()
                .filter(|s| s.included > 0)
                .map(|s| HolderSeries {
                    series_uid: s.series_uid,
                    series_number: s.series_number,
                    modality: s.modality,
                    description: s.description,
                    instances: s.included,
                })
                .collect(),
            instances: c.instances,
            bytes: c.bytes,
            modalities: c.modalities,
        }
    }
}

impl Authz {
    pub(super) fn study_for(&self, grant: &GrantState) -> Option<StudyRecord> {
        grant
            .study_uid()
            .and_then(|uid| self.index.study(uid).ok().flatten())
    }

    /// What a grant covers now (and, for a study still to come, that), and
    /// what it leaves out: the sender's view (admin API, CLI).
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
                if scope.excludes(&modality) {
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

    /// What a grant covers, as its holder may see it.
    pub fn holder_coverage(&self, grant: &GrantState) -> HolderCoverage {
        self.coverage(grant).into()
    }
}
