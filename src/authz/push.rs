//! Pushes made for a grant: a push to another gateway that names a grant
//! carries exactly what the grant covers, so the grant decides — here, like
//! every access — when the push is queued and again before every attempt.
//! A grant that is unknown, revoked or expired (itself or an ancestor)
//! carries nothing: its pushes are refused or cancelled, never widened to
//! the whole study.

use super::decide::live;
use super::grant::{GrantId, GrantState, Recipient};
use super::service::Authz;
use crate::journal::DenyReason;
use crate::store::{Timestamp, Uid};

/// Why a grant cannot carry a push (said to the operator, and kept with a
/// cancelled push).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushDenied {
    #[error("no grant {0}")]
    Unknown(GrantId),
    #[error("grant revoked")]
    Revoked,
    #[error("grant expired")]
    Expired,
    #[error("grant {grant} is not for study {study}")]
    OtherStudy { grant: GrantId, study: Uid },
    #[error("grant {grant} is not for URA {ura}")]
    OtherRecipient { grant: GrantId, ura: String },
}

impl Authz {
    /// The grant a push of `study` to the gateway of `to_ura` is made for,
    /// if it may carry that push now: live (neither it nor an ancestor
    /// revoked or expired), for that study, for that organization. The push
    /// carries the grant's scope and nothing more.
    pub fn grant_for_push(
        &self,
        id: &GrantId,
        study: &Uid,
        to_ura: &str,
    ) -> Result<GrantState, PushDenied> {
        let state = self.read();
        let grant = state
            .by_id
            .get(id)
            .ok_or_else(|| PushDenied::Unknown(id.clone()))?;
        live(&state, grant, Timestamp::now()).map_err(|reason| match reason {
            DenyReason::Expired | DenyReason::AncestorExpired => PushDenied::Expired,
            _ => PushDenied::Revoked,
        })?;
        if grant.study_uid() != Some(study) {
            return Err(PushDenied::OtherStudy {
                grant: id.clone(),
                study: study.clone(),
            });
        }
        match &grant.grant.recipient {
            Recipient::Organization { ura, .. } if ura == to_ura => Ok(grant.clone()),
            _ => Err(PushDenied::OtherRecipient {
                grant: id.clone(),
                ura: to_ura.to_string(),
            }),
        }
    }
}
