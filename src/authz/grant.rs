//! Push authorizations: what a grant covers, who may hold it, how long,
//! and how far it may be passed on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::identity::Holder;
pub use crate::base::GrantId;
use crate::store::{InstanceKey, StudyRecord, Timestamp, Uid};

/// The study a grant is for: known, or named by its accession number
/// before it has arrived (spoed: the link goes out while the CT scans).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Study(Uid),
    Accession(Awaited),
}

/// A study still to come, by its accession number and its patient.
/// Accession numbers are unique per RIS, not across the CDs and foreign
/// studies a department imports: the grant pins only to a study with this
/// number *and* this patient (and, if given, from this sending AE) that
/// receives an instance after the grant was issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AwaitedStored")]
pub struct Awaited {
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bsn: Option<String>,
    /// The calling AE title it must come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ae: Option<String>,
}

/// How an `Awaited` may be stored: the grant mirror of a release before
/// grants by accession named their patient holds the number alone.
#[derive(Deserialize)]
#[serde(untagged)]
enum AwaitedStored {
    Number(String),
    Of {
        number: String,
        #[serde(default)]
        patient_id: Option<String>,
        #[serde(default)]
        bsn: Option<String>,
        #[serde(default)]
        source_ae: Option<String>,
    },
}

impl From<AwaitedStored> for Awaited {
    fn from(stored: AwaitedStored) -> Awaited {
        match stored {
            AwaitedStored::Number(number) => Awaited {
                number,
                patient_id: None,
                bsn: None,
                source_ae: None,
            },
            AwaitedStored::Of {
                number,
                patient_id,
                bsn,
                source_ae,
            } => Awaited {
                number,
                patient_id,
                bsn,
                source_ae,
            },
        }
    }
}

/// The reason a study is not a grant's because it was here before: the one
/// mismatch a study may outgrow (a scan still in progress).
pub const HERE_BEFORE: &str = "it was here before the share";

impl Awaited {
    /// The number alone, as a holder may see it (not whose it is).
    pub fn number_only(&self) -> Awaited {
        Awaited {
            number: self.number.clone(),
            patient_id: None,
            bsn: None,
            source_ae: None,
        }
    }

    /// Whether `study` is (still) of the awaited patient: checked when the
    /// grant pins it and again at every access, since a later instance can
    /// change the study's patient in the index.
    pub fn patient_mismatch(&self, study: &StudyRecord) -> Option<String> {
        if self.patient_id.is_none() && self.bsn.is_none() {
            return Some(
                "the share names no patient (made before this was required): share it again with the patient ID or BSN".into(),
            );
        }
        if let Some(id) = &self.patient_id
            && study.patient.id.trim() != id
        {
            return Some(format!(
                "another patient: patient ID {:?}, not {id:?}",
                study.patient.id.trim()
            ));
        }
        if let Some(bsn) = &self.bsn
            && study.patient.bsn.as_deref() != Some(bsn.as_str())
        {
            return Some(match &study.patient.bsn {
                Some(_) => "another patient: another BSN".to_string(),
                None => format!(
                    "no BSN in the study (patient ID {:?})",
                    study.patient.id.trim()
                ),
            });
        }
        None
    }

    /// Why `study` (carrying this accession number) is not the one awaited,
    /// or `None` when it is. `since`: when the grant was issued.
    pub fn mismatch(&self, study: &StudyRecord, since: Timestamp) -> Option<String> {
        if let Some(reason) = self.patient_mismatch(study) {
            return Some(reason);
        }
        if study.last_arrival < since {
            return Some(format!(
                "{HERE_BEFORE} and nothing of it arrived since: share that study itself ({})",
                study.study_uid
            ));
        }
        // every instance from that AE, not one among others
        if let Some(ae) = &self.source_ae
            && study.sources.iter().any(|s| s != &format!("dicom:{ae}"))
        {
            let from: Vec<&str> = study.sources.iter().map(String::as_str).collect();
            return Some(format!("sent by {}, not only by {ae}", from.join(", ")));
        }
        None
    }
}

/// Which part of the study: a subset of series, minus modalities and SOP
/// classes (presentation states, say).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// `None`: every series of the study.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<BTreeSet<Uid>>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exclude_modalities: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exclude_sop_classes: BTreeSet<String>,
}

impl Scope {
    /// Whether an instance of this series (its modality) and SOP class is
    /// covered. The one scope check behind every kind of access.
    pub fn covers(&self, series: &Uid, modality: &str, sop_class: &str) -> bool {
        self.covers_series(series, modality) && !self.exclude_sop_classes.contains(sop_class)
    }

    /// Whether a series is covered at all (some of its SOP classes may
    /// still be excluded).
    pub fn covers_series(&self, series: &Uid, modality: &str) -> bool {
        self.series.as_ref().is_none_or(|s| s.contains(series)) && !self.excludes(modality)
    }

    /// An excluded modality, as a file may spell it: the stored codes are
    /// upper case (`base::modality_code`), a sender's may be ` pr`.
    pub fn excludes(&self, modality: &str) -> bool {
        let modality = modality.trim();
        self.exclude_modalities
            .iter()
            .any(|m| m.eq_ignore_ascii_case(modality))
    }

    /// Whether `narrower` covers nothing this scope does not.
    pub fn contains(&self, narrower: &Scope) -> bool {
        let series_ok = match (&self.series, &narrower.series) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.is_subset(mine),
        };
        series_ok
            && self
                .exclude_modalities
                .is_subset(&narrower.exclude_modalities)
            && self
                .exclude_sop_classes
                .is_subset(&narrower.exclude_sop_classes)
    }
}

/// Who may bind a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipient {
    /// Whoever redeems it first: with a client certificate, or a holder
    /// token.
    Anyone,
    /// Only a UZI certificate of this organization (URA), optionally of
    /// one of these roles (e.g. 01.039, radiologist).
    Organization {
        ura: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
    },
}

impl Recipient {
    /// Whether everyone `narrower` lets bind, this lets bind too; if not,
    /// why. Anyone contains every organization; an organization contains
    /// only itself, with the same or fewer roles (no roles: any role).
    pub fn contains(&self, narrower: &Recipient) -> Result<(), String> {
        match (self, narrower) {
            (Recipient::Anyone, _) => Ok(()),
            (Recipient::Organization { ura, .. }, Recipient::Anyone) => Err(format!(
                "a grant for URA {ura} can only be passed on within URA {ura} (a UZI card), \
                 not to whoever redeems it"
            )),
            (Recipient::Organization { ura, .. }, Recipient::Organization { ura: other, .. })
                if ura != other =>
            {
                Err(format!(
                    "a grant for URA {ura} can only be passed on within URA {ura}, not to URA {other}"
                ))
            }
            (Recipient::Organization { roles, .. }, _) if roles.is_empty() => Ok(()),
            (
                Recipient::Organization { ura, roles },
                Recipient::Organization { roles: theirs, .. },
            ) => {
                if theirs.is_empty() {
                    return Err(format!(
                        "a grant for roles {} of URA {ura} cannot be passed on to any role",
                        roles.join(", ")
                    ));
                }
                match theirs.iter().find(|r| !roles.contains(r)) {
                    Some(role) => Err(format!(
                        "role {role} is not among the roles this grant is for ({})",
                        roles.join(", ")
                    )),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Why a grant may be issued at all (AVG art. 9, WGBO): the study goes
/// with a referral, the patient's consent presumed; or the patient (or
/// their representative) consented explicitly, and `note` records who and
/// how. Required on every grant an operator issues; a grant passed on has
/// its root's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LegalBasis {
    Referral,
    ExplicitConsent { note: String },
}

/// The longest consent note kept.
const MAX_CONSENT_NOTE: usize = 500;

impl LegalBasis {
    /// The basis with its note trimmed, or why it cannot be used.
    pub fn checked(self) -> Result<LegalBasis, String> {
        match self {
            LegalBasis::Referral => Ok(LegalBasis::Referral),
            LegalBasis::ExplicitConsent { note } => {
                let note = note.trim().to_string();
                if note.is_empty() {
                    Err("explicit consent: say who consented and how (the note)".into())
                } else if note.chars().count() > MAX_CONSENT_NOTE {
                    Err(format!(
                        "the consent note is at most {MAX_CONSENT_NOTE} characters"
                    ))
                } else {
                    Ok(LegalBasis::ExplicitConsent { note })
                }
            }
        }
    }

    /// `referral` or `explicit_consent`, as the API and the journal name it.
    pub fn kind(&self) -> &'static str {
        match self {
            LegalBasis::Referral => "referral",
            LegalBasis::ExplicitConsent { .. } => "explicit_consent",
        }
    }
}

/// How a grant passed on would be wider than its parent: each dimension
/// of a grant, named with the parent's bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Widening {
    #[error("a grant passed on is for its parent's study, no other")]
    Target,
    #[error(
        "a grant passed on cannot cover more than its parent (series, modalities, SOP classes)"
    )]
    Scope,
    #[error("a grant passed on cannot outlive its parent ({0})")]
    Expiry(Timestamp),
    #[error("delegation_depth is at most {0}")]
    Depth(u8),
    #[error("{0}")]
    Recipient(String),
}

/// A grant as issued. Its secrets are kept only as hashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub target: Target,
    #[serde(default)]
    pub scope: Scope,
    /// The operator (or, for a delegated grant, the holder) who issued it.
    pub issuer: String,
    pub recipient: Recipient,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// How many more times it may be passed on (0: not at all).
    pub delegation_depth: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<GrantId>,
    /// SHA-256 of the URL token.
    pub token_hash: String,
    /// HMAC of the authorization code.
    pub code_hash: String,
}

impl Grant {
    /// Whether `child` is within this grant in every dimension — study,
    /// scope, expiry, how far it may be passed on, who may bind it — the one
    /// check that decides what "narrower" means for a grant passed on.
    pub fn admits(&self, child: &Grant) -> Result<(), Widening> {
        if child.target != self.target {
            return Err(Widening::Target);
        }
        if !self.scope.contains(&child.scope) {
            return Err(Widening::Scope);
        }
        if child.expires_at > self.expires_at {
            return Err(Widening::Expiry(self.expires_at));
        }
        if child.delegation_depth >= self.delegation_depth {
            return Err(Widening::Depth(self.delegation_depth.saturating_sub(1)));
        }
        self.recipient
            .contains(&child.recipient)
            .map_err(Widening::Recipient)
    }
}

/// A grant with what happened to it since.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantState {
    #[serde(flatten)]
    pub grant: Grant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
    /// The expiry has been journaled.
    #[serde(default)]
    pub expiry_logged: bool,
    /// Hashes of further URL tokens, made when the code was redeemed (the
    /// URL token itself is known only as a hash, so redeeming the code gives
    /// the holder a URL of its own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url_aliases: Vec<String>,
    /// For a grant by accession number: the study it was pinned to when
    /// that study arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Uid>,
    /// For a grant by accession number not yet pinned: studies with that
    /// number that are not the one awaited, and why (reported to the
    /// issuer, never served).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    /// Who issued it in the console or with the admin token (None: passed
    /// on by a holder, or issued before the console).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<crate::journal::ActorRecord>,
    /// Why it may be shared (None: issued before the console); a grant
    /// passed on has its parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<LegalBasis>,
    /// The study's patient as stored at issue time (or when a grant by
    /// accession found its study); a grant passed on has its parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<crate::journal::PatientRecord>,
}

/// A study carrying a grant's accession number that is not its study.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub study: Uid,
    pub reason: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    pub at: Timestamp,
    pub by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Revoked because an ancestor was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<GrantId>,
}

impl GrantState {
    pub fn new(grant: Grant) -> GrantState {
        GrantState {
            grant,
            holder: None,
            bound_at: None,
            revoked: None,
            expiry_logged: false,
            url_aliases: Vec::new(),
            resolved: None,
            mismatches: Vec::new(),
            issued_by: None,
            legal_basis: None,
            patient: None,
        }
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.grant.expires_at
    }
}

impl GrantState {
    /// The study this grant is for, if known: named, or (by accession
    /// number) pinned when it arrived.
    pub fn study_uid(&self) -> Option<&Uid> {
        match &self.grant.target {
            Target::Study(uid) => Some(uid),
            Target::Accession(_) => self.resolved.as_ref(),
        }
    }

    /// Whether an instance of `study` is within this grant: the one check
    /// behind every kind of access (page, DICOMweb, download, thumbnails).
    pub fn covers_instance(&self, study: &StudyRecord, key: &InstanceKey, sop_class: &str) -> bool {
        let still_its_patient = match &self.grant.target {
            Target::Study(_) => true,
            Target::Accession(awaited) => awaited.patient_mismatch(study).is_none(),
        };
        still_its_patient
            && self.study_uid() == Some(&study.study_uid)
            && key.study == study.study_uid
            && study.series.get(&key.series).is_some_and(|s| {
                self.grant
                    .scope
                    .covers(&key.series, &s.attrs.modality, sop_class)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &str) -> Uid {
        Uid::parse(s).unwrap()
    }

    fn scope(series: Option<&[&str]>, modalities: &[&str]) -> Scope {
        Scope {
            series: series.map(|s| s.iter().map(|u| uid(u)).collect()),
            exclude_modalities: modalities.iter().map(|m| m.to_string()).collect(),
            exclude_sop_classes: BTreeSet::new(),
        }
    }

    #[test]
    fn covers_by_series_modality_and_class() {
        let all = Scope::default();
        assert!(all.covers(&uid("1.1"), "CT", "1.2.3"));
        let no_pr = scope(None, &["PR"]);
        assert!(no_pr.covers(&uid("1.1"), "CT", "1.2.3"));
        assert!(!no_pr.covers(&uid("1.2"), "PR", "1.2.4"));
        // as a sender may spell it
        for spelt in ["pr", " PR", "Pr "] {
            assert!(!no_pr.covers(&uid("1.2"), spelt, "1.2.4"), "{spelt:?}");
            assert!(!no_pr.covers_series(&uid("1.2"), spelt), "{spelt:?}");
        }
        let one = scope(Some(&["1.1"]), &[]);
        assert!(one.covers(&uid("1.1"), "CT", "x") && !one.covers(&uid("1.2"), "CT", "x"));
        let mut no_sr = Scope::default();
        no_sr
            .exclude_sop_classes
            .insert("1.2.840.10008.5.1.4.1.1.88.11".into());
        assert!(!no_sr.covers(&uid("1.1"), "SR", "1.2.840.10008.5.1.4.1.1.88.11"));
    }

    #[test]
    fn a_child_scope_may_only_narrow() {
        let parent = scope(Some(&["1.1", "1.2"]), &["PR"]);
        assert!(parent.contains(&scope(Some(&["1.1"]), &["PR", "SR"])));
        assert!(
            !parent.contains(&scope(Some(&["1.1", "1.3"]), &["PR"])),
            "new series"
        );
        assert!(!parent.contains(&scope(None, &["PR"])), "all series");
        assert!(!parent.contains(&scope(Some(&["1.1"]), &[])), "PR back in");
        assert!(Scope::default().contains(&scope(None, &[])));
    }

    fn org(ura: &str, roles: &[&str]) -> Recipient {
        Recipient::Organization {
            ura: ura.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn grant(recipient: Recipient) -> Grant {
        Grant {
            id: GrantId("parent".into()),
            target: Target::Study(uid("1.2.3")),
            scope: scope(Some(&["1.1", "1.2"]), &["PR"]),
            issuer: "operator".into(),
            recipient,
            created_at: Timestamp(1_000),
            expires_at: Timestamp(10_000),
            message: String::new(),
            delegation_depth: 2,
            parent: None,
            token_hash: String::new(),
            code_hash: String::new(),
        }
    }

    #[test]
    fn a_recipient_narrows_to_an_organization_and_fewer_roles_of_it() {
        let anyone = Recipient::Anyone;
        assert!(anyone.contains(&Recipient::Anyone).is_ok());
        assert!(anyone.contains(&org("11111111", &[])).is_ok());
        let any_role = org("11111111", &[]);
        assert!(any_role.contains(&org("11111111", &[])).is_ok());
        assert!(any_role.contains(&org("11111111", &["01.015"])).is_ok());
        let e = any_role.contains(&Recipient::Anyone).unwrap_err();
        assert!(e.contains("URA 11111111"), "{e}");
        let e = any_role.contains(&org("22222222", &[])).unwrap_err();
        assert!(e.contains("not to URA 22222222"), "{e}");
        let two = org("11111111", &["01.015", "01.039"]);
        assert!(two.contains(&org("11111111", &["01.039"])).is_ok());
        assert!(two.contains(&two).is_ok());
        let e = two.contains(&org("11111111", &[])).unwrap_err();
        assert!(e.contains("any role"), "{e}");
        let e = two
            .contains(&org("11111111", &["01.039", "01.003"]))
            .unwrap_err();
        assert!(e.contains("01.003"), "{e}");
        assert!(two.contains(&org("22222222", &["01.039"])).is_err());
    }

    #[test]
    fn a_child_is_admitted_only_within_its_parent_in_every_dimension() {
        let parent = grant(org("11111111", &["01.015"]));
        let mut child = parent.clone();
        child.delegation_depth = 1;
        assert_eq!(parent.admits(&child), Ok(()));
        let narrowest = Grant {
            scope: scope(Some(&["1.1"]), &["PR", "SR"]),
            expires_at: Timestamp(5_000),
            delegation_depth: 0,
            ..child.clone()
        };
        assert_eq!(parent.admits(&narrowest), Ok(()));

        let widened = |change: &dyn Fn(&mut Grant)| {
            let mut c = child.clone();
            change(&mut c);
            parent.admits(&c)
        };
        assert_eq!(
            widened(&|c| c.target = Target::Study(uid("1.2.4"))),
            Err(Widening::Target)
        );
        assert_eq!(
            widened(&|c| {
                c.target = Target::Accession(Awaited {
                    number: "A1".into(),
                    patient_id: Some("P1".into()),
                    bsn: None,
                    source_ae: None,
                })
            }),
            Err(Widening::Target)
        );
        assert_eq!(
            widened(&|c| c.scope = scope(None, &["PR"])),
            Err(Widening::Scope)
        );
        assert_eq!(
            widened(&|c| c.scope = scope(Some(&["1.1"]), &[])),
            Err(Widening::Scope)
        );
        assert_eq!(
            widened(&|c| c.expires_at = Timestamp(10_001)),
            Err(Widening::Expiry(Timestamp(10_000)))
        );
        assert_eq!(
            widened(&|c| c.delegation_depth = 2),
            Err(Widening::Depth(1))
        );
        for recipient in [
            Recipient::Anyone,
            org("22222222", &["01.015"]),
            org("11111111", &[]),
            org("11111111", &["01.039"]),
        ] {
            assert!(
                matches!(
                    widened(&|c| c.recipient = recipient.clone()),
                    Err(Widening::Recipient(_))
                ),
                "{recipient:?}"
            );
        }
        // a parent that may not be passed on admits no child at all
        let last = Grant {
            delegation_depth: 0,
            ..parent.clone()
        };
        assert_eq!(last.admits(&narrowest), Err(Widening::Depth(0)));
    }
}

#[cfg(test)]
mod stored_tests {
    use super::*;

    /// The grant mirror of a release before grants by accession named
    /// their patient holds `{"accession":"N"}`: it must still load.
    #[test]
    fn an_accession_target_stored_as_a_number_still_loads() {
        let old: Target = serde_json::from_str(r#"{"accession":"ACC7"}"#).unwrap();
        assert_eq!(
            old,
            Target::Accession(Awaited {
                number: "ACC7".into(),
                patient_id: None,
                bsn: None,
                source_ae: None,
            })
        );
        let new: Target =
            serde_json::from_str(r#"{"accession":{"number":"A","patient_id":"P"}}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&new).unwrap(),
            r#"{"accession":{"number":"A","patient_id":"P"}}"#
        );
    }
}
