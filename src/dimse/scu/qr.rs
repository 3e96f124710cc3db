//! Query/retrieve SCU on the Study Root information model, for bringing
//! studies in from the local PACS: C-FIND ([`find`]), C-MOVE ([`move_to`])
//! and C-GET ([`get`], whose C-STORE sub-operations come back on the same
//! association and go through intake like any C-STORE).
//!
//! One association per operation, one request per association (message
//! ID 1). `timeout` bounds every step: connecting and negotiating, each
//! write, each wait for a PDU (so the wait between two pending responses
//! of a long C-MOVE too), the release. Command sets are at most 64 KiB,
//! identifiers at most 1 MiB and checked before they are decoded; PDUs
//! beyond the maximum length we announced are refused (strict mode).
//! The association failing is an [`ScuError`] saying when; the PACS's
//! failure status for the operation is [`ScuError::Status`].

mod get;
mod identifier;
mod link;
mod storage;

// Orthanc and dcmqrscp as PACSes, shared with the integration tests.
#[cfg(test)]
#[path = "../../../tests/common/pacs.rs"]
mod peers;
#[cfg(test)]
use crate::dimse::scu::testing::free_port;
#[cfg(test)]
mod tests;

use std::time::Duration;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags, uids};
use dicom_object::InMemDicomObject;
use dicom_ul::ClientAssociationOptions;

use super::{EXPLICIT_VR_LE, IMPLICIT_VR_LE, PacsAddress, ScuError, wire};
use crate::base::valid_ae;
pub use get::get;
use identifier::MAX_IDENTIFIER;
use link::Link;

pub const STUDY_ROOT_FIND: &str = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND;
pub const STUDY_ROOT_MOVE: &str = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE;
pub const STUDY_ROOT_GET: &str = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET;

/// Status: Pending (C-FIND: matches are continuing).
pub const PENDING: u16 = 0xFF00;
/// C-FIND Pending, some optional keys not supported.
pub const PENDING_WARNING: u16 = 0xFF01;
/// Matching or sub-operations terminated due to Cancel.
pub const CANCELLED: u16 = 0xFE00;

/// Our only request on each association.
const MESSAGE_ID: u16 = 1;
/// Largest PDU we accept for C-FIND and C-MOVE (responses are small).
const OUR_MAX_PDU: u32 = 64 * 1024;
/// Pending responses we still read after a C-CANCEL-RQ, waiting for the
/// final one, before giving up on the PACS.
const AFTER_CANCEL: usize = 1000;

const FIND_SERVICE: &str = "Study Root Query/Retrieve - FIND";
const MOVE_SERVICE: &str = "Study Root Query/Retrieve - MOVE";

const C_FIND_RSP: u16 = wire::C_FIND_RQ | 0x8000;
const C_MOVE_RSP: u16 = wire::C_MOVE_RQ | 0x8000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindResult {
    pub matches: Vec<InMemDicomObject>,
    /// Why the identifier of a pending response could not be decoded; that
    /// response was skipped.
    pub malformed: Vec<String>,
    /// The PACS had more than `max_matches` pending responses: a
    /// C-CANCEL-RQ was sent after the first `max_matches` and the rest
    /// was not collected.
    pub truncated: bool,
    /// Success (0x0000), Cancel (0xFE00) or a warning.
    pub final_status: u16,
    pub comment: Option<String>,
}

/// Sub-operation counts of a C-MOVE or C-GET response (0 where absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubOps {
    pub remaining: u16,
    pub completed: u16,
    pub failed: u16,
    pub warning: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveOutcome {
    /// Success (0x0000), Cancel (0xFE00) or Warning (0xB000: some
    /// sub-operations failed).
    pub final_status: u16,
    pub comment: Option<String>,
    /// The final response's counts (the last pending one's where the final
    /// one has none).
    pub sub_ops: SubOps,
    /// (0008,0058) Failed SOP Instance UID List of the final response.
    pub failed_sop_instances: Vec<String>,
}

/// Statuses that end an operation without failing it.
fn is_final_success(status: u16) -> bool {
    matches!(status, 0x0000 | CANCELLED | 0x0001 | 0xB000..=0xBFFF)
}

/// An identifier at `level` (STUDY, SERIES or IMAGE) with `keys`: each
/// attribute with the value to match, empty for a return key. VRs are the
/// standard dictionary's; a value with `\` is several values.
pub fn query(level: &str, keys: &[(Tag, &str)]) -> Result<InMemDicomObject, ScuError> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from(level),
    ));
    for (tag, value) in keys {
        let vr = StandardDataDictionary
            .by_tag(*tag)
            .map(|e| e.vr().relaxed())
            .filter(|vr| *vr != VR::SQ)
            .ok_or_else(|| {
                ScuError::Identifier(format!("{tag} is not a standard non-sequence attribute"))
            })?;
        obj.put(DataElement::new(*tag, vr, PrimitiveValue::from(*value)));
    }
    identifier::check_level(&obj)?;
    Ok(obj)
}

/// A STUDY-level identifier.
pub fn study_query(keys: &[(Tag, &str)]) -> Result<InMemDicomObject, ScuError> {
    query("STUDY", keys)
}

/// A SERIES-level identifier for the series of one study.
pub fn series_query(study_uid: &str, keys: &[(Tag, &str)]) -> Result<InMemDicomObject, ScuError> {
    let mut all = vec![(tags::STUDY_INSTANCE_UID, study_uid)];
    all.extend_from_slice(keys);
    query("SERIES", &all)
}

fn options<'a>(
    calling_ae: &'a str,
    pacs: &'a PacsAddress,
    max_pdu: u32,
) -> Result<ClientAssociationOptions<'a>, ScuError> {
    if !valid_ae(calling_ae) {
        return Err(ScuError::CallingAe(calling_ae.to_string()));
    }
    Ok(ClientAssociationOptions::new()
        .calling_ae_title(calling_ae)
        .called_ae_title(pacs.called_ae.as_str())
        .max_pdu_length(max_pdu)
        .strict(true))
}

/// C-FIND: the matches for `identifier`, at most `max_matches` of them.
pub async fn find(
    pacs: &PacsAddress,
    calling_ae: &str,
    identifier: &InMemDicomObject,
    max_matches: usize,
    timeout: Duration,
) -> Result<FindResult, ScuError> {
    identifier::check_level(identifier)?;
    let options = options(calling_ae, pacs, OUR_MAX_PDU)?
        .with_presentation_context(STUDY_ROOT_FIND, vec![EXPLICIT_VR_LE, IMPLICIT_VR_LE]);
    let mut link = Link::open(pacs, options, timeout, FIND_SERVICE).await?;
    let outcome = find_on(&mut link, identifier, max_matches).await;
    link.close(outcome).await
}

async fn find_on(
    link: &mut Link,
    identifier: &InMemDicomObject,
    max_matches: usize,
) -> Result<FindResult, ScuError> {
    let (context, ts) = link.context(STUDY_ROOT_FIND, FIND_SERVICE)?;
    let data = identifier::encode(identifier, &ts)?;
    let command = wire::query_rq(wire::C_FIND_RQ, MESSAGE_ID, STUDY_ROOT_FIND, None);
    let sending = format!("sending the C-FIND-RQ to {}", link.pacs);
    link.send(context, &command, Some(&data), &sending).await?;
    let during = format!("waiting for C-FIND responses from {}", link.pacs);
    let mut result = FindResult::default();
    let mut pending = 0usize;
    loop {
        let (on, command) = link.command(&during).await?;
        let rsp = response(on, context, &command, C_FIND_RSP, &during)?;
        let data = match rsp.has_data_set {
            true => Some(link.dataset(context, MAX_IDENTIFIER, &during).await?),
            false => None,
        };
        if !matches!(rsp.status, PENDING | PENDING_WARNING) {
            return finished(rsp.status, rsp.comment, || {
                format!("C-FIND at {}", link.pacs)
            })
            .map(|(final_status, comment)| FindResult {
                final_status,
                comment,
                ..result
            });
        }
        pending += 1;
        if result.truncated {
            if pending > max_matches.saturating_add(AFTER_CANCEL) {
                return Err(ScuError::Protocol {
                    during,
                    reason: format!("{AFTER_CANCEL} more matches after our C-CANCEL-RQ"),
                });
            }
            continue;
        }
        if pending > max_matches {
            result.truncated = true;
            let cancelling = format!("sending a C-CANCEL-RQ to {}", link.pacs);
            link.send(context, &wire::c_cancel_rq(MESSAGE_ID), None, &cancelling)
                .await?;
            continue;
        }
        match data.map(|d| d.and_then(|bytes| identifier::decode(&bytes, &ts))) {
            Some(Ok(obj)) => result.matches.push(obj),
            Some(Err(reason)) => result.malformed.push(reason),
            None => result
                .malformed
                .push("a pending response without an identifier".into()),
        }
    }
}

/// A final status: `Ok` with it and its comment unless it is a failure.
fn finished(
    status: u16,
    comment: Option<String>,
    during: impl FnOnce() -> String,
) -> Result<(u16, Option<String>), ScuError> {
    if is_final_success(status) {
        Ok((status, comment))
    } else {
        Err(ScuError::Status {
            during: during(),
            status,
            comment,
        })
    }
}

/// Parses a response to our request, which must come on its context.
fn response(
    on: u8,
    context: u8,
    command: &[u8],
    expected: u16,
    during: &str,
) -> Result<wire::Response, ScuError> {
    let protocol = |reason: String| ScuError::Protocol {
        during: during.to_string(),
        reason,
    };
    if on != context {
        return Err(protocol(format!(
            "a response on presentation context {on}, the request went on {context}"
        )));
    }
    let rsp = wire::parse_response(command, expected).map_err(protocol)?;
    if rsp.message_id != MESSAGE_ID {
        return Err(protocol(format!(
            "a response to message {} while waiting for {MESSAGE_ID}",
            rsp.message_id
        )));
    }
    Ok(rsp)
}

/// C-MOVE: asks the PACS to send what `identifier` selects to
/// `destination_ae` (which the PACS must know). `progress` sees the counts
/// of every pending response.
pub async fn move_to(
    pacs: &PacsAddress,
    calling_ae: &str,
    destination_ae: &str,
    identifier: &InMemDicomObject,
    timeout: Duration,
    progress: &mut (dyn FnMut(SubOps) + Send),
) -> Result<RetrieveOutcome, ScuError> {
    identifier::check_level(identifier)?;
    if !valid_ae(destination_ae) {
        return Err(ScuError::MoveDestination(destination_ae.to_string()));
    }
    let options = options(calling_ae, pacs, OUR_MAX_PDU)?
        .with_presentation_context(STUDY_ROOT_MOVE, vec![EXPLICIT_VR_LE, IMPLICIT_VR_LE]);
    let mut link = Link::open(pacs, options, timeout, MOVE_SERVICE).await?;
    let outcome = move_on(&mut link, destination_ae, identifier, progress).await;
    link.close(outcome).await
}

async fn move_on(
    link: &mut Link,
    destination_ae: &str,
    identifier: &InMemDicomObject,
    progress: &mut (dyn FnMut(SubOps) + Send),
) -> Result<RetrieveOutcome, ScuError> {
    let (context, ts) = link.context(STUDY_ROOT_MOVE, MOVE_SERVICE)?;
    let data = identifier::encode(identifier, &ts)?;
    let command = wire::query_rq(
        wire::C_MOVE_RQ,
        MESSAGE_ID,
        STUDY_ROOT_MOVE,
        Some(destination_ae),
    );
    let sending = format!("sending the C-MOVE-RQ to {}", link.pacs);
    link.send(context, &command, Some(&data), &sending).await?;
    let during = format!(
        "waiting for C-MOVE responses from {} (to {destination_ae})",
        link.pacs
    );
    let what = format!("C-MOVE to {destination_ae} at {}", link.pacs);
    let mut last = SubOps::default();
    loop {
        let (on, command) = link.command(&during).await?;
        let rsp = response(on, context, &command, C_MOVE_RSP, &during)?;
        if let Some(outcome) =
            retrieve_response(link, context, &ts, rsp, &mut last, progress, &during, &what).await?
        {
            return Ok(outcome);
        }
    }
}

/// Follows one C-MOVE-RSP or C-GET-RSP (its identifier read too):
/// `Ok(None)` while pending, after telling `progress`.
#[allow(clippy::too_many_arguments)]
async fn retrieve_response(
    link: &mut Link,
    context: u8,
    ts: &str,
    rsp: wire::Response,
    last: &mut SubOps,
    progress: &mut (dyn FnMut(SubOps) + Send),
    during: &str,
    what: &str,
) -> Result<Option<RetrieveOutcome>, ScuError> {
    let data = match rsp.has_data_set {
        true => Some(link.dataset(context, MAX_IDENTIFIER, during).await?),
        false => None,
    };
    let [remaining, completed, failed, warning] = rsp.sub_ops;
    if rsp.status == PENDING {
        *last = SubOps {
            remaining: remaining.unwrap_or(0),
            completed: completed.unwrap_or(last.completed),
            failed: failed.unwrap_or(last.failed),
            warning: warning.unwrap_or(last.warning),
        };
        progress(*last);
        return Ok(None);
    }
    let (final_status, comment) = finished(rsp.status, rsp.comment, || what.to_string())?;
    let sub_ops = SubOps {
        remaining: remaining.unwrap_or(0),
        completed: completed.unwrap_or(last.completed),
        failed: failed.unwrap_or(last.failed),
        warning: warning.unwrap_or(last.warning),
    };
    let failed_sop_instances = match data.map(|d| d.and_then(|b| identifier::decode(&b, ts))) {
        Some(Ok(obj)) => identifier::failed_sop_instances(&obj),
        Some(Err(reason)) => {
            tracing::warn!(
                pacs = link.pacs,
                "{what}: final identifier skipped: {reason}"
            );
            Vec::new()
        }
        None => Vec::new(),
    };
    Ok(Some(RetrieveOutcome {
        final_status,
        comment,
        sub_ops,
        failed_sop_instances,
    }))
}
