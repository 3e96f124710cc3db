//! authz's side of the journal's record shapes: a grant and its holder as
//! recorded, built from authz's types when a change is journaled and read
//! back when the journal is replayed. The journal never sees `Grant`
//! itself, so a change here is a change to this mapping, not to the audit
//! format (the golden lines in tests/data/journal/ hold it to that).

use crate::journal::{
    AccessionRecord, CertRecord, GrantRecord, HolderRecord, LegalBasisRecord, PatientRecord,
    RecipientRecord, ScopeRecord, TargetRecord, UziRecord,
};
use crate::store::PatientAttrs;

use super::grant::{Awaited, Grant, LegalBasis, Recipient, Scope, Target};
use super::identity::{CertIdentity, Holder, Uzi};

impl From<&Grant> for GrantRecord {
    fn from(grant: &Grant) -> GrantRecord {
        GrantRecord {
            id: grant.id.clone(),
            target: match &grant.target {
                Target::Study(uid) => TargetRecord::Study(uid.clone()),
                // a grant journaled before it had to name its patient
                // reads and writes back as it was
                Target::Accession(Awaited {
                    number,
                    patient_id: None,
                    bsn: None,
                    source_ae: None,
                }) => TargetRecord::Accession(AccessionRecord::Number(number.clone())),
                Target::Accession(a) => TargetRecord::Accession(AccessionRecord::Of {
                    number: a.number.clone(),
                    patient_id: a.patient_id.clone(),
                    bsn: a.bsn.clone(),
                    source_ae: a.source_ae.clone(),
                }),
            },
            scope: ScopeRecord {
                series: grant.scope.series.clone(),
                exclude_modalities: grant.scope.exclude_modalities.clone(),
                exclude_sop_classes: grant.scope.exclude_sop_classes.clone(),
            },
            issuer: grant.issuer.clone(),
            recipient: match &grant.recipient {
                Recipient::Anyone => RecipientRecord::Anyone,
                Recipient::Organization { ura, roles } => RecipientRecord::Organization {
                    ura: ura.clone(),
                    roles: roles.clone(),
                },
            },
            created_at: grant.created_at,
            expires_at: grant.expires_at,
            message: grant.message.clone(),
            delegation_depth: grant.delegation_depth,
            parent: grant.parent.clone(),
            token_hash: grant.token_hash.clone(),
            code_hash: grant.code_hash.clone(),
        }
    }
}

impl From<GrantRecord> for Grant {
    fn from(record: GrantRecord) -> Grant {
        Grant {
            id: record.id,
            target: match record.target {
                TargetRecord::Study(uid) => Target::Study(uid),
                TargetRecord::Accession(AccessionRecord::Number(number)) => {
                    Target::Accession(Awaited {
                        number,
                        patient_id: None,
                        bsn: None,
                        source_ae: None,
                    })
                }
                TargetRecord::Accession(AccessionRecord::Of {
                    number,
                    patient_id,
                    bsn,
                    source_ae,
                }) => Target::Accession(Awaited {
                    number,
                    patient_id,
                    bsn,
                    source_ae,
                }),
            },
            scope: Scope {
                series: record.scope.series,
                exclude_modalities: record.scope.exclude_modalities,
                exclude_sop_classes: record.scope.exclude_sop_classes,
            },
            issuer: record.issuer,
            recipient: match record.recipient {
                RecipientRecord::Anyone => Recipient::Anyone,
                RecipientRecord::Organization { ura, roles } => {
                    Recipient::Organization { ura, roles }
                }
            },
            created_at: record.created_at,
            expires_at: record.expires_at,
            message: record.message,
            delegation_depth: record.delegation_depth,
            parent: record.parent,
            token_hash: record.token_hash,
            code_hash: record.code_hash,
        }
    }
}

impl From<&LegalBasis> for LegalBasisRecord {
    fn from(basis: &LegalBasis) -> LegalBasisRecord {
        match basis {
            LegalBasis::Referral => LegalBasisRecord::Referral,
            LegalBasis::ExplicitConsent { note } => {
                LegalBasisRecord::ExplicitConsent { note: note.clone() }
            }
        }
    }
}

impl From<LegalBasisRecord> for LegalBasis {
    fn from(record: LegalBasisRecord) -> LegalBasis {
        match record {
            LegalBasisRecord::Referral => LegalBasis::Referral,
            LegalBasisRecord::ExplicitConsent { note } => LegalBasis::ExplicitConsent { note },
        }
    }
}

/// The patient as the journal keeps them with a grant: what the index
/// holds now, for when the study is gone.
pub fn patient_record(patient: &PatientAttrs) -> PatientRecord {
    PatientRecord {
        id: patient.id.clone(),
        issuer: patient.issuer.clone(),
        bsn: patient.bsn.clone(),
        name: patient.name.clone(),
        birth_date: patient.birth_date.clone(),
    }
}

impl From<&Holder> for HolderRecord {
    fn from(holder: &Holder) -> HolderRecord {
        match holder {
            Holder::Certificate(cert) => HolderRecord::Certificate(CertRecord {
                subject: cert.subject.clone(),
                spki_sha256: cert.spki_sha256.clone(),
                uzi: cert.uzi.as_ref().map(|u| UziRecord {
                    ca_oid: u.ca_oid.clone(),
                    version: u.version.clone(),
                    uzi_number: u.uzi_number.clone(),
                    pass_type: u.pass_type.clone(),
                    ura: u.ura.clone(),
                    role: u.role.clone(),
                    agb: u.agb.clone(),
                }),
            }),
            Holder::Token { hash } => HolderRecord::Token { hash: hash.clone() },
        }
    }
}

impl From<HolderRecord> for Holder {
    fn from(record: HolderRecord) -> Holder {
        match record {
            HolderRecord::Certificate(cert) => Holder::Certificate(CertIdentity {
                subject: cert.subject,
                spki_sha256: cert.spki_sha256,
                uzi: cert.uzi.map(|u| Uzi {
                    ca_oid: u.ca_oid,
                    version: u.version,
                    uzi_number: u.uzi_number,
                    pass_type: u.pass_type,
                    ura: u.ura,
                    role: u.role,
                    agb: u.agb,
                }),
            }),
            HolderRecord::Token { hash } => Holder::Token { hash },
        }
    }
}

#[cfg(test)]
mod tests;
