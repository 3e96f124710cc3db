//! A grant and its holder as the journal records them: the journal's own
//! shapes, so that a change to `authz::Grant` (a field added, renamed or
//! given another type) cannot change the audit format, nor make old
//! journals unreadable. authz builds these from its types and reads them
//! back when it replays the journal; `tests/data/journal/golden.jsonl`
//! holds lines these shapes must read and write byte for byte.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::base::GrantId;
use crate::store::{Timestamp, Uid};

/// A grant as issued or passed on. Its secrets are recorded only as
/// hashes (the URL token's SHA-256, the code's HMAC).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub id: GrantId,
    pub target: TargetRecord,
    #[serde(default)]
    pub scope: ScopeRecord,
    pub issuer: String,
    pub recipient: RecipientRecord,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub delegation_depth: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<GrantId>,
    pub token_hash: String,
    pub code_hash: String,
}

/// `{"study":"<uid>"}` or `{"accession":{"number":"<number>","patient_id":"<id>"}}`
/// (`{"accession":"<number>"}`: written before a grant by accession had to
/// name its patient; read, never pinned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetRecord {
    Study(Uid),
    Accession(AccessionRecord),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AccessionRecord {
    Number(String),
    Of {
        number: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patient_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bsn: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_ae: Option<String>,
    },
}

impl AccessionRecord {
    pub fn number(&self) -> &str {
        match self {
            AccessionRecord::Number(n) | AccessionRecord::Of { number: n, .. } => n,
        }
    }
}

/// `{}` for a whole study.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<BTreeSet<Uid>>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exclude_modalities: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exclude_sop_classes: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecipientRecord {
    Anyone,
    Organization {
        ura: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
    },
}

/// Who a grant was bound to: `{"kind":"certificate",…}` with the
/// certificate's fields beside the kind, or `{"kind":"token","hash":…}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HolderRecord {
    Certificate(CertRecord),
    Token { hash: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    pub subject: String,
    pub spki_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uzi: Option<UziRecord>,
}

/// The fields of a UZI pass's identity string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UziRecord {
    pub ca_oid: String,
    pub version: String,
    pub uzi_number: String,
    pub pass_type: String,
    pub ura: String,
    pub role: String,
    pub agb: String,
}

/// Why a grant may be issued at all: a referral, the patient's consent
/// presumed (the WGBO's treatment relation), or consent asked and given,
/// with who gave it and how. `{"kind":"referral"}` or
/// `{"kind":"explicit_consent","note":"…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LegalBasisRecord {
    Referral,
    ExplicitConsent { note: String },
}

/// The patient of a grant's study as the index had it when the grant was
/// issued (or, by accession number, when its study arrived): what lets an
/// audit name the patient after retention deleted the study.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientRecord {
    /// Patient ID (0010,0020) and its issuer (0010,0021).
    pub id: String,
    #[serde(default)]
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bsn: Option<String>,
    /// Patient's Name as received (DICOM PN, `^` between the parts).
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub birth_date: String,
}
