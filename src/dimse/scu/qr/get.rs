//! C-GET: the PACS sends what the identifier selects back over our own
//! association, as C-STORE-RQ sub-operations on the storage contexts we
//! proposed (see `storage`), with us in the SCP role. Each instance is
//! streamed to a temporary file and ingested exactly as the SCP does
//! (`dimse::sink`): the C-STORE-RSP goes back once it is durable and
//! indexed, or with the status intake refused it with.
//!
//! dicom-ul 0.10's `ClientAssociationOptions::with_role_selection` sends
//! the SCP/SCU Role Selection sub-items (SCU role no, SCP role yes, one per
//! storage SOP class), so the A-ASSOCIATE-RQ needs no building by hand. A
//! PACS that answers without role items (PS3.7 D.3.3.4: it then keeps the
//! SCU role to itself) may still send: what arrives on an accepted storage
//! context is taken.

use std::time::Duration;

use dicom_object::InMemDicomObject;
use dicom_ul::pdu::UserVariableItem;

use super::link::Link;
use super::{
    MESSAGE_ID, RetrieveOutcome, STUDY_ROOT_GET, SubOps, identifier, options, response,
    retrieve_response, storage,
};
use crate::dimse::command::{self, C_STORE_RQ, Request};
use crate::dimse::scu::{EXPLICIT_VR_LE, IMPLICIT_VR_LE, PacsAddress, ScuError, wire};
use crate::dimse::sink::Sink;
use crate::dimse::status::{self, Status};
use crate::ingest::Ingestor;
use crate::store::Source;

const GET_SERVICE: &str = "Study Root Query/Retrieve - GET";
const C_GET_RSP: u16 = wire::C_GET_RQ | 0x8000;
/// Largest PDU we accept: instances arrive in PDUs of up to this size.
const GET_MAX_PDU: u32 = 256 * 1024;

/// C-GET: retrieves what `identifier` selects into the store through
/// `ingestor`. `progress` sees the counts of every pending response.
pub async fn get(
    pacs: &PacsAddress,
    calling_ae: &str,
    identifier: &InMemDicomObject,
    ingestor: &Ingestor,
    timeout: Duration,
    progress: &mut (dyn FnMut(SubOps) + Send),
) -> Result<RetrieveOutcome, ScuError> {
    identifier::check_level(identifier)?;
    let mut options = options(calling_ae, pacs, GET_MAX_PDU)?
        .with_presentation_context(STUDY_ROOT_GET, vec![EXPLICIT_VR_LE, IMPLICIT_VR_LE]);
    for (class, syntaxes) in storage::contexts() {
        options = options.with_presentation_context(class, syntaxes);
    }
    for class in storage::classes() {
        options = options.with_role_selection(class, false, true);
    }
    let mut link = Link::open(pacs, options, timeout, GET_SERVICE).await?;
    let outcome = get_on(&mut link, &pacs.called_ae, identifier, ingestor, progress).await;
    link.close(outcome).await
}

/// How many storage classes the PACS granted us the SCP role for.
fn scp_roles(items: &[UserVariableItem]) -> usize {
    items
        .iter()
        .filter(|item| matches!(item, UserVariableItem::ScuScpRoleSelectionSubItem(_, roles) if roles.scp))
        .count()
}

async fn get_on(
    link: &mut Link,
    pacs_ae: &str,
    identifier: &InMemDicomObject,
    ingestor: &Ingestor,
    progress: &mut (dyn FnMut(SubOps) + Send),
) -> Result<RetrieveOutcome, ScuError> {
    let (context, ts) = link.context(STUDY_ROOT_GET, GET_SERVICE)?;
    tracing::debug!(
        pacs = link.pacs,
        storage_contexts = link.contexts.len() - 1,
        scp_roles = scp_roles(link.user_variables()),
        "C-GET association established"
    );
    let data = identifier::encode(identifier, &ts)?;
    let command = wire::query_rq(wire::C_GET_RQ, MESSAGE_ID, STUDY_ROOT_GET, None);
    let sending = format!("sending the C-GET-RQ to {}", link.pacs);
    link.send(context, &command, Some(&data), &sending).await?;
    let during = format!("waiting for C-GET responses from {}", link.pacs);
    let what = format!("C-GET at {}", link.pacs);
    let source = Source::Dimse {
        calling_ae: pacs_ae.to_string(),
        peer: link.peer(),
    };
    let (mut stored, mut refused) = (0u64, 0u64);
    let mut last = SubOps::default();
    loop {
        let (on, command) = link.command(&during).await?;
        let field = wire::command_field(&command).map_err(|reason| ScuError::Protocol {
            during: during.clone(),
            reason,
        })?;
        if field == C_STORE_RQ {
            match store(link, on, &command, ingestor, pacs_ae, &source).await? {
                true => stored += 1,
                false => refused += 1,
            }
            continue;
        }
        let rsp = response(on, context, &command, C_GET_RSP, &during)?;
        if let Some(outcome) =
            retrieve_response(link, context, &ts, rsp, &mut last, progress, &during, &what).await?
        {
            tracing::info!(
                pacs = link.pacs,
                stored,
                refused,
                status = format_args!("{:#06X}", outcome.final_status),
                "C-GET done"
            );
            return Ok(outcome);
        }
    }
}

/// One C-STORE sub-operation: `Ok(true)` if the instance was stored.
async fn store(
    link: &mut Link,
    context: u8,
    command: &[u8],
    ingestor: &Ingestor,
    pacs_ae: &str,
    source: &Source,
) -> Result<bool, ScuError> {
    let during = format!("receiving a C-STORE sub-operation from {}", link.pacs);
    let request = Request::parse(command).map_err(|e| ScuError::Protocol {
        during: during.clone(),
        reason: e.to_string(),
    })?;
    if !request.has_data_set {
        return Err(ScuError::Protocol {
            during,
            reason: "a C-STORE-RQ without a data set".into(),
        });
    }
    // `Link::command` took only commands on accepted contexts
    let Some((abstract_syntax, transfer_syntax)) = link.contexts.get(&context).cloned() else {
        return Err(ScuError::Protocol {
            during,
            reason: format!("a C-STORE-RQ on presentation context {context}, not accepted"),
        });
    };
    let mut sink = Sink::open(
        ingestor,
        &request,
        &abstract_syntax,
        &transfer_syntax,
        pacs_ae,
    );
    let during = format!("{during} ({})", request.sop_instance);
    loop {
        let pdv = link.expect_data(context, &during).await?;
        sink.write(&pdv.data);
        if pdv.is_last {
            break;
        }
    }
    let status = match sink
        .finish(ingestor, &request, transfer_syntax, source.clone())
        .await
    {
        Ok(_) => Status::success(),
        Err(status) => status,
    };
    if !status.is_success() {
        crate::metrics::METRICS.instances_refused.inc();
        tracing::warn!(
            pacs = link.pacs,
            sop_instance = request.sop_instance,
            status = format_args!("{:#06X}", status.code),
            "C-STORE sub-operation refused: {}",
            status.comment.as_deref().unwrap_or("")
        );
    }
    let rsp = command::response(&request, status.code, status.comment.as_deref());
    link.send(context, &rsp, None, &during).await?;
    Ok(status.code == status::SUCCESS)
}
