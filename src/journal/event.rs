//! What the journal records (NEN 7513-style): every change to a grant and
//! every access, allowed or denied — who, what, when (the record's time),
//! from where, and the outcome.

use serde::{Deserialize, Serialize};

use super::actor::{ActorRecord, ConsoleEvent};
use super::grant::{GrantRecord, HolderRecord, LegalBasisRecord, PatientRecord};
use crate::base::GrantId;
use crate::store::Uid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An operator issued a grant.
    GrantIssued {
        grant: GrantRecord,
        /// The administrator's address and how it authenticated.
        #[serde(default)]
        from: String,
        /// Who issued it (absent in journals from before the console).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ActorRecord>,
        /// Why it may be shared (absent in journals from before the console).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        legal_basis: Option<LegalBasisRecord>,
        /// The study's patient as stored when it was issued (absent: the
        /// study was not here yet, or a journal from before the console).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patient: Option<PatientRecord>,
    },
    /// A holder passed a grant on (doorautoriseren); `grant.parent` is set.
    GrantDelegated {
        grant: GrantRecord,
        by: Who,
        from: String,
    },
    /// The first use bound the grant to its holder.
    GrantBound {
        grant: GrantId,
        holder: HolderRecord,
        via: BindVia,
        from: String,
        /// Hash of the URL token made for a holder who came with the code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alias: Option<String>,
    },
    /// Revoked, with every descendant it cut off.
    GrantRevoked {
        grant: GrantId,
        by: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cascade: Vec<GrantId>,
        #[serde(default)]
        from: String,
        /// Who revoked it (`by` is their name; absent before the console).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<ActorRecord>,
    },
    /// Its time ran out (journaled when noticed).
    GrantExpired {
        grant: GrantId,
    },
    /// A grant by accession number found its study: it covers that study
    /// and no other (accession numbers are not unique across senders).
    GrantResolved {
        grant: GrantId,
        study: Uid,
        /// That study's patient as stored then (absent before the console).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patient: Option<PatientRecord>,
    },
    /// A study carrying a grant's accession number arrived that is not its
    /// study (another patient, another sender, or here before the grant):
    /// reported to the issuer, not served.
    GrantMismatch {
        grant: GrantId,
        study: Uid,
        reason: String,
    },
    Access(Access),
    /// Staff in the console: logins, refusals, accounts.
    Console(ConsoleEvent),
    /// Gateway push: something happened to a package (see [`Relay`]).
    Relay(Relay),
    /// An instance received from a gateway reached the local PACS, or
    /// finally did not.
    Forwarded {
        study: Uid,
        sop: Uid,
        pacs: String,
        /// The DIMSE status the PACS answered (absent: never answered).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// Retention deleted a study: journaled before its files go, so that
    /// no deletion happens unrecorded (a crash before the files are gone
    /// leaves the study to the next sweep, which records it again).
    StudyDeleted {
        study: Uid,
        /// The rule that applied: `retention.keep_after_last_grant` or
        /// `retention.max_age`.
        reason: String,
        instances: u64,
        bytes: u64,
    },
    /// Access events the writer could not keep up with, counted.
    Dropped {
        count: u64,
    },
    /// Refusals beyond what one address may fill the journal with, counted.
    Suppressed {
        count: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindVia {
    Url,
    Code,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Access {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<Uid>,
    pub what: AccessKind,
    pub who: Who,
    /// Client address.
    pub from: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub instances: u32,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub bytes: u64,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    Page,
    Redeem,
    Bind,
    Delegate,
    Qido,
    Wado,
    Metadata,
    Frames,
    Rendered,
    Thumbnail,
    Download,
    /// Authenticating to the admin API (only refusals are journaled).
    Admin,
}

/// Who asked: a holder (certificate or token) or someone unidentified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Who {
    Anonymous,
    /// Presented a client certificate (bound or not).
    Certificate {
        identity: String,
    },
    /// Presented a holder token.
    HolderToken {
        hash_prefix: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    Denied(DenyReason),
}

/// Why access was denied: for the audit trail only; the client always gets
/// one neutral answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    UnknownToken,
    UnknownCode,
    CodeTypo,
    RateLimited,
    Expired,
    Revoked,
    AncestorRevoked,
    AncestorExpired,
    OtherHolder,
    NoCredential,
    CertificateRequired,
    WrongOrganization,
    WrongRole,
    OutOfScope,
    NotDelegable,
    WiderThanParent,
    InvalidRequest,
}

/// A package between gateways: both sides journal what they did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Relay {
    /// Asked for: by `pushgate send`, the admin API or a grant.
    Queued {
        outbox: String,
        study: Uid,
        to_ura: String,
        priority: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grant: Option<GrantId>,
        /// Who asked in the console (absent: the CLI, the admin API, a grant).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<ActorRecord>,
    },
    /// Sealed (signed and encrypted) and about to be delivered.
    Sealed {
        outbox: String,
        package: String,
        to_ura: String,
        sha256: String,
        size: u64,
        instances: u32,
    },
    /// The peer's signed receipt over the package's hash arrived.
    Delivered {
        outbox: String,
        package: String,
        to_ura: String,
        sha256: String,
        /// The peer had it already (a resend after a lost answer).
        #[serde(default)]
        duplicate: bool,
    },
    /// A delivery attempt failed; `last` when no more will be made.
    Failed {
        outbox: String,
        to_ura: String,
        attempt: u32,
        reason: String,
        #[serde(default)]
        last: bool,
    },
    /// A push made for a grant was withdrawn before delivery: the grant
    /// was revoked or expired (itself or an ancestor).
    Cancelled {
        outbox: String,
        to_ura: String,
        grant: GrantId,
        reason: String,
    },
    /// Staff asked in the console for the next attempt now (a push
    /// waiting for its retry, or one that had failed: tried again).
    RetryAsked {
        outbox: String,
        to_ura: String,
        actor: ActorRecord,
        from: String,
    },
    /// Staff cancelled a push in the console: no more attempts.
    Withdrawn {
        outbox: String,
        to_ura: String,
        actor: ActorRecord,
        from: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// A package from a peer was checked and its instances ingested.
    Received {
        package: String,
        from_ura: String,
        from: String,
        studies: Vec<Uid>,
        instances: u32,
        sha256: String,
    },
    /// A package (or an attempt at one) was refused; nothing was ingested.
    Refused {
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender_ura: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<String>,
        reason: String,
    },
}
