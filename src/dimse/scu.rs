//! C-STORE SCU: sends stored instances to a PACS over one association per
//! up to 64 (SOP class, stored transfer syntax) pairs.
//!
//! Negotiation: for each pair, one presentation context with the stored
//! transfer syntax alone (so an acceptor that takes it cannot pick another)
//! and one with the uncompressed fallbacks (Explicit VR Little Endian, then
//! Implicit VR Little Endian, minus the stored one). An instance whose
//! stored syntax was accepted goes as it lies on disk, streamed from the
//! file in P-DATA PDUs bounded by the peer's maximum PDU length; otherwise
//! it is re-encoded (`crate::pixels::write_explicit_le`, decoding
//! compressed pixel data frame by frame) on a blocking thread and streamed
//! as it is produced. An instance that cannot be sent fails on its own;
//! only the association failing (refused, rejected, aborted, timed out,
//! connection lost) is an [`ScuError`].

mod payload;
pub mod qr;
mod wire;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use dicom_ul::ClientAssociationOptions;
use dicom_ul::association::AsyncClientAssociation;
use dicom_ul::pdu::{AbortRQSource, AssociationRJResult, AssociationRJSource, PDataValueType, Pdu};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::base::valid_ae;
pub use crate::base::{AddressError, PacsAddress};
use payload::Target;

/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Implicit VR Little Endian, which every SCP accepts.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Presentation contexts in one A-ASSOCIATE-RQ (odd IDs 1–255).
pub const MAX_CONTEXTS: usize = 128;
/// Status of an instance that was not sent because the peer accepted no
/// presentation context for it (what a PACS says for an unsupported SOP
/// class: Refused, SOP Class not supported).
pub const NOT_ACCEPTED: u16 = 0x0122;
/// Status of an instance that was not sent because it could not be read or
/// re-encoded here (Processing failure).
pub const NOT_SENT: u16 = 0x0110;
/// Largest PDU we accept (responses are small).
const OUR_MAX_PDU: u32 = 64 * 1024;
/// File reads for the as-is path: this much at a time, cut into PDUs.
const READ_BUFFER: usize = 1 << 20;
/// Largest value per PDU we send, whatever the peer admits.
const MAX_CHUNK: usize = 256 * 1024;

/// A stored Part 10 file to send; its data set starts at `dataset_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub path: PathBuf,
    pub sop_class: String,
    pub sop_instance: String,
    pub transfer_syntax: String,
    pub dataset_offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Stored, with a warning status (0x0001, 0xBxxx).
    Warning,
    /// The peer's failure status with its Error Comment, or why the
    /// instance was not sent.
    Failure(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceResult {
    pub sop_instance: String,
    /// The peer's C-STORE-RSP status, or [`NOT_ACCEPTED`] / [`NOT_SENT`]
    /// when the instance never left (then `sent_as` is `None`).
    pub status: u16,
    pub outcome: Outcome,
    /// The transfer syntax it was sent in.
    pub sent_as: Option<String>,
}

impl InstanceResult {
    fn not_sent(item: &Outgoing, status: u16, reason: String) -> InstanceResult {
        InstanceResult {
            sop_instance: item.sop_instance.clone(),
            status,
            outcome: Outcome::Failure(format!("not sent: {reason}")),
            sent_as: None,
        }
    }

    pub fn is_stored(&self) -> bool {
        matches!(self.outcome, Outcome::Success | Outcome::Warning)
    }
}

/// Why an association failed: nothing more went over it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScuError {
    #[error("invalid calling AE title {0:?}")]
    CallingAe(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// `A-ASSOCIATE-RJ (permanent, service user): called AE title not recognized`
    #[error("A-ASSOCIATE-RJ ({result}, {source_kind}): {reason}")]
    Rejected {
        result: &'static str,
        source_kind: &'static str,
        reason: String,
    },
    #[error("A-ABORT by the {by} {during}")]
    Aborted { by: String, during: String },
    #[error("no answer within {after:?} {during}")]
    Timeout { during: String, after: Duration },
    #[error("connection lost {during}: {reason}")]
    ConnectionLost { during: String, reason: String },
    #[error("protocol error {during}: {reason}")]
    Protocol { during: String, reason: String },
    /// The PACS answered the whole operation (C-FIND, C-MOVE, C-GET) with
    /// a failure status; the association was released.
    #[error("{during}: failure status {status:#06X}{}", fmt_comment(.comment))]
    Status {
        during: String,
        status: u16,
        comment: Option<String>,
    },
    #[error("{pacs} accepted no presentation context for {service}")]
    NotAccepted { pacs: String, service: &'static str },
    /// The identifier given cannot be sent (nothing was).
    #[error("invalid identifier: {0}")]
    Identifier(String),
    #[error("invalid move destination AE title {0:?}")]
    MoveDestination(String),
    /// An instance could not be read or re-encoded after part of it was
    /// sent; the association was aborted.
    #[error("instance {sop_instance} failed mid-transfer ({reason}); association aborted")]
    MidTransfer {
        sop_instance: String,
        reason: String,
    },
}

fn fmt_comment(comment: &Option<String>) -> String {
    comment
        .as_deref()
        .map(|c| format!(": {c}"))
        .unwrap_or_default()
}

/// Sends `items` over one association per [`MAX_CONTEXTS`] presentation
/// contexts, in order, and returns one result per item in the same order.
/// `timeout` bounds every step (connecting and negotiating, each write,
/// each wait for a response, the release).
pub async fn store_all(
    pacs: &PacsAddress,
    calling_ae: &str,
    items: &[Outgoing],
    timeout: Duration,
) -> Result<Vec<InstanceResult>, ScuError> {
    let (results, error) = store_all_partial(pacs, calling_ae, items, timeout).await;
    match error {
        Some(e) => Err(e),
        None => Ok(results.into_iter().flatten().collect()),
    }
}

/// As [`store_all`], but an association failure keeps what was settled
/// before it: `results[i]` is the result of `items[i]` if it got one.
pub async fn store_all_partial(
    pacs: &PacsAddress,
    calling_ae: &str,
    items: &[Outgoing],
    timeout: Duration,
) -> (Vec<Option<InstanceResult>>, Option<ScuError>) {
    let mut results: Vec<Option<InstanceResult>> = vec![None; items.len()];
    if !valid_ae(calling_ae) {
        return (results, Some(ScuError::CallingAe(calling_ae.to_string())));
    }
    // (SOP class, stored syntax) pairs in order of first appearance
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut pair_of: Vec<Option<usize>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if !wire::valid_uid(&item.sop_class)
            || !wire::valid_uid(&item.sop_instance)
            || !wire::valid_uid(&item.transfer_syntax)
        {
            results[i] = Some(InstanceResult::not_sent(
                item,
                NOT_SENT,
                "invalid SOP Class, SOP Instance or Transfer Syntax UID".into(),
            ));
            pair_of.push(None);
            continue;
        }
        let pair = (item.sop_class.as_str(), item.transfer_syntax.as_str());
        let p = match pairs.iter().position(|p| *p == pair) {
            Some(p) => p,
            None => {
                pairs.push(pair);
                pairs.len() - 1
            }
        };
        pair_of.push(Some(p));
    }
    let per_association = MAX_CONTEXTS / 2;
    for (group, group_pairs) in pairs.chunks(per_association).enumerate() {
        let members: Vec<usize> = (0..items.len())
            .filter(|&i| pair_of[i].is_some_and(|p| p / per_association == group))
            .collect();
        let mut session = Session {
            pacs,
            timeout,
            results: &mut results,
        };
        if let Err(e) = session
            .associate(calling_ae, group_pairs, items, &members)
            .await
        {
            return (results, Some(e));
        }
    }
    (results, None)
}

struct Session<'a> {
    pacs: &'a PacsAddress,
    timeout: Duration,
    results: &'a mut Vec<Option<InstanceResult>>,
}

type Assoc = AsyncClientAssociation<TcpStream>;

/// How an item goes over the association.
#[derive(Clone, Copy)]
enum Route<'a> {
    AsStored(u8),
    Transcoded(u8, &'a str),
}

fn rejection(result: &AssociationRJResult, source: &AssociationRJSource) -> ScuError {
    let result = match result {
        AssociationRJResult::Permanent => "permanent",
        AssociationRJResult::Transient => "transient",
    };
    let source_kind = match source {
        AssociationRJSource::ServiceUser(_) => "service user",
        AssociationRJSource::ServiceProviderASCE(_) => "service provider (ACSE)",
        AssociationRJSource::ServiceProviderPresentation(_) => "service provider (presentation)",
    };
    ScuError::Rejected {
        result,
        source_kind,
        reason: source.to_string(),
    }
}

fn abort_source(source: &AbortRQSource) -> String {
    match source {
        AbortRQSource::ServiceUser => "peer (service user)".into(),
        AbortRQSource::ServiceProvider(reason) => format!("peer's service provider: {reason}"),
        AbortRQSource::Reserved => "peer".into(),
    }
}

impl Session<'_> {
    fn lost(&self, during: impl Into<String>, e: &dyn std::error::Error) -> ScuError {
        lost(during, e)
    }

    fn timed_out(&self, during: impl Into<String>) -> ScuError {
        ScuError::Timeout {
            during: during.into(),
            after: self.timeout,
        }
    }

    async fn associate(
        &mut self,
        calling_ae: &str,
        pairs: &[(&str, &str)],
        items: &[Outgoing],
        members: &[usize],
    ) -> Result<(), ScuError> {
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(calling_ae)
            .called_ae_title(self.pacs.called_ae.as_str())
            .max_pdu_length(OUR_MAX_PDU)
            .strict(false);
        // context IDs are 2i+1 in the order proposed: the pair p has 4p+1
        // (stored syntax) and 4p+3 (fallbacks)
        for (sop_class, stored) in pairs {
            let fallbacks: Vec<&str> = [EXPLICIT_VR_LE, IMPLICIT_VR_LE]
                .into_iter()
                .filter(|ts| ts != stored)
                .collect();
            options = options
                .with_presentation_context(*sop_class, vec![*stored])
                .with_presentation_context(*sop_class, fallbacks);
        }
        let addr = self.pacs.to_string();
        let Some(mut assoc) = establish(options, self.pacs, self.timeout).await? else {
            for &i in members {
                let item = &items[i];
                self.results[i] = Some(InstanceResult::not_sent(
                    item,
                    NOT_ACCEPTED,
                    format!(
                        "{addr} accepted no presentation context at all (SOP Class {} among those proposed)",
                        item.sop_class
                    ),
                ));
            }
            return Ok(());
        };
        let accepted: HashMap<u8, String> = assoc
            .presentation_contexts()
            .iter()
            .map(|pc| (pc.id, pc.transfer_syntax.trim_end_matches('\0').to_string()))
            .collect();
        let chunk = wire::max_pdv_value(assoc.acceptor_max_pdu_length()).min(MAX_CHUNK);
        tracing::debug!(
            pacs = %addr,
            proposed = pairs.len() * 2,
            accepted = accepted.len(),
            max_pdu = assoc.acceptor_max_pdu_length(),
            "association established"
        );
        let mut message_id: u16 = 0;
        for &i in members {
            let item = &items[i];
            let Some(p) = pairs
                .iter()
                .position(|(c, t)| *c == item.sop_class && *t == item.transfer_syntax)
            else {
                continue;
            };
            let stored_id = (4 * p + 1) as u8;
            let fallback_id = (4 * p + 3) as u8;
            let route = match (accepted.get(&stored_id), accepted.get(&fallback_id)) {
                (Some(_), _) => Route::AsStored(stored_id),
                (None, Some(ts)) => Route::Transcoded(fallback_id, ts.as_str()),
                (None, None) => {
                    self.results[i] = Some(InstanceResult::not_sent(
                        item,
                        NOT_ACCEPTED,
                        format!(
                            "{addr} accepted SOP Class {} neither in {} nor uncompressed",
                            item.sop_class, item.transfer_syntax
                        ),
                    ));
                    continue;
                }
            };
            message_id = message_id.wrapping_add(1).max(1);
            match self
                .send_one(&mut assoc, item, route, message_id, chunk)
                .await
            {
                Ok(result) => self.results[i] = Some(result),
                Err(e) => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), assoc.abort()).await;
                    return Err(e);
                }
            }
        }
        match tokio::time::timeout(self.timeout, assoc.release()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(pacs = %addr, "release failed: {}", crate::base::error_chain(&e))
            }
            Err(_) => tracing::warn!(pacs = %addr, "no A-RELEASE-RP within {:?}", self.timeout),
        }
        Ok(())
    }

    /// One C-STORE. `Ok` with a failure result when the instance could not
    /// be sent but the association is intact.
    async fn send_one(
        &mut self,
        assoc: &mut Assoc,
        item: &Outgoing,
        route: Route<'_>,
        message_id: u16,
        chunk: usize,
    ) -> Result<InstanceResult, ScuError> {
        let sop = item.sop_instance.as_str();
        let sent = match route {
            Route::AsStored(context) => self
                .send_stored(assoc, item, context, message_id, chunk)
                .await?
                .map(|()| item.transfer_syntax.clone()),
            Route::Transcoded(context, ts) => {
                let target = if ts == EXPLICIT_VR_LE {
                    Target::ExplicitLittle
                } else {
                    Target::ImplicitLittle
                };
                self.send_transcoded(assoc, item, context, target, message_id, chunk)
                    .await?
                    .map(|()| ts.to_string())
                    .map_err(|reason| {
                        format!(
                            "the PACS did not accept {} and re-encoding to {ts} failed: {reason}",
                            item.transfer_syntax
                        )
                    })
            }
        };
        let sent_as = match sent {
            Ok(ts) => ts,
            Err(reason) => return Ok(InstanceResult::not_sent(item, NOT_SENT, reason)),
        };
        let rsp = self.receive_response(assoc, sop).await?;
        if rsp.message_id != message_id {
            return Err(ScuError::Protocol {
                during: format!("storing {sop}"),
                reason: format!(
                    "response to message {} while waiting for {message_id}",
                    rsp.message_id
                ),
            });
        }
        let outcome = match rsp.status {
            0x0000 => Outcome::Success,
            0x0001 | 0xB000..=0xBFFF => Outcome::Warning,
            code => Outcome::Failure(match &rsp.comment {
                Some(c) => format!("status {code:#06X}: {c}"),
                None => format!("status {code:#06X}"),
            }),
        };
        Ok(InstanceResult {
            sop_instance: item.sop_instance.clone(),
            status: rsp.status,
            outcome,
            sent_as: Some(sent_as),
        })
    }
}

impl Session<'_> {
    /// Writes one whole PDU.
    async fn write(&self, assoc: &mut Assoc, pdu: &[u8], sop: &str) -> Result<(), ScuError> {
        write_pdu(
            assoc,
            pdu,
            self.timeout,
            || format!("sending {sop}"),
            || format!("while {sop} was being sent"),
        )
        .await
    }

    async fn send_command(
        &self,
        assoc: &mut Assoc,
        item: &Outgoing,
        context: u8,
        message_id: u16,
    ) -> Result<(), ScuError> {
        let command = wire::c_store_rq(message_id, &item.sop_class, &item.sop_instance);
        let mut pdu = vec![0u8; wire::PDATA_HEADER];
        pdu.extend_from_slice(&command);
        wire::pdata_header(&mut pdu, context, true, true);
        self.write(assoc, &pdu, &item.sop_instance).await
    }

    /// The data set as it lies in the file, from `dataset_offset` to the
    /// end. `Ok(Err)` when the file cannot be opened (nothing was sent).
    async fn send_stored(
        &self,
        assoc: &mut Assoc,
        item: &Outgoing,
        context: u8,
        message_id: u16,
        chunk: usize,
    ) -> Result<Result<(), String>, ScuError> {
        let sop = item.sop_instance.as_str();
        let opened = async {
            let mut file = tokio::fs::File::open(&item.path).await?;
            let len = file.metadata().await?.len();
            if len < item.dataset_offset {
                return Err(io::Error::other(format!(
                    "{len} bytes, but the data set should start at {}",
                    item.dataset_offset
                )));
            }
            file.seek(io::SeekFrom::Start(item.dataset_offset)).await?;
            Ok((file, len - item.dataset_offset))
        }
        .await;
        let (file, mut left) = match opened {
            Ok(opened) => opened,
            Err(e) => return Ok(Err(format!("cannot read {}: {e}", item.path.display()))),
        };
        let mut file = tokio::io::BufReader::with_capacity(READ_BUFFER, file);
        self.send_command(assoc, item, context, message_id).await?;
        let mut pdu = vec![0u8; wire::PDATA_HEADER + chunk];
        loop {
            let n = left.min(chunk as u64) as usize;
            let value = &mut pdu[wire::PDATA_HEADER..wire::PDATA_HEADER + n];
            if let Err(e) = file.read_exact(value).await {
                return Err(ScuError::MidTransfer {
                    sop_instance: sop.to_string(),
                    reason: format!("reading {}: {e}", item.path.display()),
                });
            }
            left -= n as u64;
            let pdu = &mut pdu[..wire::PDATA_HEADER + n];
            wire::pdata_header(pdu, context, false, left == 0);
            self.write(assoc, pdu, sop).await?;
            if left == 0 {
                return Ok(Ok(()));
            }
        }
    }

    /// The data set re-encoded as it is produced. `Ok(Err)` when the
    /// re-encoding failed before its first chunk (nothing was sent).
    async fn send_transcoded(
        &self,
        assoc: &mut Assoc,
        item: &Outgoing,
        context: u8,
        target: Target,
        message_id: u16,
        chunk: usize,
    ) -> Result<Result<(), String>, ScuError> {
        let sop = item.sop_instance.as_str();
        let mut transcoded = payload::start(item.path.clone(), target, chunk);
        let finished = |done: Result<Result<(), String>, tokio::task::JoinError>| match done {
            Ok(r) => r,
            Err(e) => Err(format!("the re-encoding task failed: {e}")),
        };
        let Some(mut current) = transcoded.chunks.recv().await else {
            return Ok(match finished(transcoded.done.await) {
                Ok(()) => Err("the re-encoded data set is empty".into()),
                Err(reason) => Err(reason),
            });
        };
        self.send_command(assoc, item, context, message_id).await?;
        loop {
            let next = transcoded.chunks.recv().await;
            if next.is_none()
                && let Err(reason) = finished((&mut transcoded.done).await)
            {
                return Err(ScuError::MidTransfer {
                    sop_instance: sop.to_string(),
                    reason: format!("re-encoding: {reason}"),
                });
            }
            wire::pdata_header(&mut current, context, false, next.is_none());
            self.write(assoc, &current, sop).await?;
            match next {
                Some(next) => current = next,
                None => return Ok(Ok(())),
            }
        }
    }

    /// Waits for the C-STORE-RSP (possibly in several command PDVs).
    async fn receive_response(
        &self,
        assoc: &mut Assoc,
        sop: &str,
    ) -> Result<wire::Response, ScuError> {
        let during = || format!("waiting for the response to {sop}");
        let mut command = Vec::new();
        loop {
            let pdu = match tokio::time::timeout(self.timeout, assoc.receive()).await {
                Err(_) => return Err(self.timed_out(during())),
                Ok(Err(e)) => return Err(self.lost(during(), &e)),
                Ok(Ok(pdu)) => pdu,
            };
            match pdu {
                Pdu::PData { data } => {
                    for pdv in data {
                        if pdv.value_type != PDataValueType::Command {
                            return Err(ScuError::Protocol {
                                during: during(),
                                reason: "a data PDV instead of a C-STORE-RSP".into(),
                            });
                        }
                        command.extend_from_slice(&pdv.data);
                        if command.len() > OUR_MAX_PDU as usize * 4 {
                            return Err(ScuError::Protocol {
                                during: during(),
                                reason: "an oversized response command set".into(),
                            });
                        }
                        if pdv.is_last {
                            return wire::parse_response(&command, wire::C_STORE_RSP).map_err(
                                |reason| ScuError::Protocol {
                                    during: during(),
                                    reason,
                                },
                            );
                        }
                    }
                }
                Pdu::AbortRQ { source } => {
                    return Err(ScuError::Aborted {
                        by: abort_source(&source),
                        during: during(),
                    });
                }
                other => {
                    return Err(ScuError::Protocol {
                        during: during(),
                        reason: format!("unexpected {}", pdu_name(&other)),
                    });
                }
            }
        }
    }
}

fn lost(during: impl Into<String>, e: &dyn std::error::Error) -> ScuError {
    ScuError::ConnectionLost {
        during: during.into(),
        reason: crate::base::error_chain(e),
    }
}

/// Connects to `pacs` and negotiates within `timeout`. `Ok(None)`: the
/// peer accepted none of the presentation contexts proposed.
async fn establish(
    options: ClientAssociationOptions<'_>,
    pacs: &PacsAddress,
    timeout: Duration,
) -> Result<Option<Assoc>, ScuError> {
    use dicom_ul::association::Error as UlError;
    let addr = pacs.to_string();
    let established = tokio::time::timeout(
        timeout,
        options.establish_async((pacs.host.as_str(), pacs.port)),
    )
    .await;
    let mut assoc = match established {
        Err(_) => {
            return Err(ScuError::Timeout {
                during: format!("connecting to and negotiating with {addr}"),
                after: timeout,
            });
        }
        Ok(Ok(assoc)) => assoc,
        Ok(Err(UlError::Connect { source, .. })) => {
            return Err(ScuError::Connect { addr, source });
        }
        Ok(Err(UlError::Rejected { association_rj, .. })) => {
            return Err(rejection(&association_rj.result, &association_rj.source));
        }
        Ok(Err(UlError::NoAcceptedPresentationContexts { .. })) => return Ok(None),
        Ok(Err(UlError::Aborted { .. })) => {
            return Err(ScuError::Aborted {
                by: "peer".into(),
                during: "during negotiation".into(),
            });
        }
        Ok(Err(
            e @ (UlError::ReceivePdu { .. }
            | UlError::WireRead { .. }
            | UlError::WireSend { .. }
            | UlError::ConnectionClosed { .. }),
        )) => {
            return Err(lost(format!("negotiating with {addr}"), &e));
        }
        Ok(Err(e)) => {
            return Err(ScuError::Protocol {
                during: format!("negotiating with {addr}"),
                reason: crate::base::error_chain(&e),
            });
        }
    };
    let _ = assoc.inner_stream().set_nodelay(true);
    Ok(Some(assoc))
}

/// Writes one whole PDU within `timeout`. If the connection fails, an
/// A-ABORT the peer sent just before is reported as such (`aborted` says
/// when), otherwise the connection as lost (`during` what).
async fn write_pdu(
    assoc: &mut Assoc,
    pdu: &[u8],
    timeout: Duration,
    during: impl Fn() -> String,
    aborted: impl Fn() -> String,
) -> Result<(), ScuError> {
    match tokio::time::timeout(timeout, assoc.inner_stream().write_all(pdu)).await {
        Ok(Ok(())) => Ok(()),
        Err(_) => Err(ScuError::Timeout {
            during: during(),
            after: timeout,
        }),
        Ok(Err(e)) => {
            // the peer may have said why before closing
            if let Ok(Ok(Pdu::AbortRQ { source })) =
                tokio::time::timeout(Duration::from_secs(1), assoc.receive()).await
            {
                return Err(ScuError::Aborted {
                    by: abort_source(&source),
                    during: aborted(),
                });
            }
            Err(lost(during(), &e))
        }
    }
}

fn pdu_name(pdu: &Pdu) -> &'static str {
    match pdu {
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::PData { .. } => "P-DATA-TF",
        Pdu::ReleaseRQ => "A-RELEASE-RQ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::AbortRQ { .. } => "A-ABORT",
        Pdu::Unknown { .. } => "unknown PDU",
    }
}
