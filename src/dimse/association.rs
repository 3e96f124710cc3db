//! One association: C-ECHO and C-STORE, with data PDVs streamed to a
//! temporary file as they arrive and the response sent only once the
//! instance is durable and indexed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dicom_ul::Pdu;
use dicom_ul::association::{Association as _, AsyncAssociation as _, AsyncServerAssociation};
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, PDataValue, PDataValueType,
    PresentationContextResultReason,
};
use tokio::net::TcpStream;
use tracing::Instrument;

use super::Scp;
use super::command::{self, C_CANCEL_RQ, C_ECHO_RQ, C_STORE_RQ, Request};
use super::sink::Sink;
use super::status::{self, Status};
use crate::base::error_chain;
use crate::store::Source;
use crate::worker::Stop;

/// Command sets are small; a peer sending more is not speaking DIMSE.
const MAX_COMMAND_BYTES: usize = 64 * 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

type Association = AsyncServerAssociation<TcpStream>;

enum Phase {
    Idle,
    Command {
        context: u8,
        bytes: Vec<u8>,
    },
    Data {
        context: u8,
        request: Request,
        transfer_syntax: String,
        sink: Sink,
    },
}

/// A reason to end the association with an A-ABORT.
struct Fatal(String);

#[derive(Default)]
struct Tally {
    stored: u64,
    failed: u64,
    bytes: u64,
}

struct Session<'a> {
    scp: &'a Scp,
    calling_ae: String,
    peer: SocketAddr,
    /// Accepted presentation contexts: id → (abstract syntax, transfer syntax).
    contexts: HashMap<u8, (String, String)>,
    phase: Phase,
    tally: Tally,
}

/// Serves one association whose A-ASSOCIATE-RQ has arrived; negotiation
/// must be done by `deadline` (`dicom.request_timeout` after the accept).
pub(super) async fn serve(
    scp: &Scp,
    socket: TcpStream,
    peer: SocketAddr,
    deadline: tokio::time::Instant,
    stop: Stop,
) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("association", id, %peer);
    run(scp, socket, peer, deadline, stop)
        .instrument(span)
        .await
}

async fn run(
    scp: &Scp,
    socket: TcpStream,
    peer: SocketAddr,
    deadline: tokio::time::Instant,
    stop: Stop,
) {
    let started = Instant::now();
    let mut assoc =
        match tokio::time::timeout_at(deadline, scp.options.establish_async(socket)).await {
            Err(_) => {
                scp.log_refusal(|unlogged| {
                    tracing::warn!(
                        unlogged,
                        "A-ASSOCIATE-RQ not complete within {:?} (dicom.request_timeout); closing",
                        scp.request_timeout
                    )
                });
                return;
            }
            Ok(Err(e)) => {
                scp.log_refusal(|unlogged| {
                    tracing::warn!(unlogged, "association not established: {}", error_chain(&e))
                });
                return;
            }
            Ok(Ok(assoc)) => assoc,
        };
    let contexts: HashMap<u8, (String, String)> = assoc
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| {
            (
                pc.id,
                (pc.abstract_syntax.clone(), pc.transfer_syntax.clone()),
            )
        })
        .collect();
    tracing::info!(
        calling_ae = assoc.peer_ae_title(),
        accepted = contexts.len(),
        proposed = assoc.presentation_contexts().len(),
        open = scp.open.load(std::sync::atomic::Ordering::Relaxed),
        "association accepted"
    );
    let mut session = Session {
        scp,
        calling_ae: assoc.peer_ae_title().to_string(),
        peer,
        contexts,
        phase: Phase::Idle,
        tally: Tally::default(),
    };
    let end = session.receive_loop(&mut assoc, &stop).await;
    let Tally {
        stored,
        failed,
        bytes,
    } = session.tally;
    let secs = started.elapsed().as_secs_f64();
    match end {
        Ok(how) => tracing::info!(stored, failed, bytes, secs, "association {how}"),
        Err(Fatal(reason)) => {
            tracing::warn!(
                stored,
                failed,
                bytes,
                secs,
                "aborting association: {reason}"
            );
            let abort = Pdu::AbortRQ {
                source: AbortRQSource::ServiceProvider(
                    AbortRQServiceProviderReason::ReasonNotSpecified,
                ),
            };
            let _ = tokio::time::timeout(scp.timeout, assoc.send(&abort)).await;
        }
    }
}

/// Acknowledge received segments at once: a sender with Nagle's algorithm on
/// (DCMTK and Orthanc by default) otherwise waits for our delayed ACK on
/// every small write, ~40 ms per instance.
fn quickack(assoc: &mut Association) {
    let _ = socket2::SockRef::from(&*assoc.inner_stream()).set_tcp_quickack(true);
}

/// Returns once the next PDU has begun: bytes of it are buffered already,
/// or the socket has some to read (or its end, or an error, which reading
/// the PDU then reports). The PDU's own deadline starts from here, not
/// from when we began to wait for it.
async fn next_pdu_begun(assoc: &mut Association) {
    let (socket, buffered) = assoc.get_mut();
    if buffered.is_empty() {
        let _ = socket.peek(&mut [0u8; 1]).await;
    }
}

impl Session<'_> {
    fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    async fn receive_loop(
        &mut self,
        assoc: &mut Association,
        stop: &Stop,
    ) -> Result<&'static str, Fatal> {
        loop {
            // Waiting for the next PDU: an idle association may wait long,
            // one in the middle of a message only `timeout`. Once the PDU
            // has begun, all of it must arrive within `timeout`, however
            // its bytes are spread out.
            let limit = if self.is_idle() {
                self.scp.idle_timeout
            } else {
                self.scp.timeout
            };
            if stop.is_set() && self.is_idle() {
                return Err(Fatal("pushgate is shutting down".into()));
            }
            quickack(assoc);
            let begun = tokio::select! {
                r = tokio::time::timeout(limit, next_pdu_begun(assoc)) => r,
                // checked again at the top of the loop
                () = stop.wait(), if self.is_idle() => continue,
            };
            match begun {
                Err(_) if self.is_idle() => return Err(Fatal(format!("idle for {limit:?}"))),
                Err(_) => return Err(Fatal(format!("peer stalled mid-message for {limit:?}"))),
                Ok(()) => {}
            }
            let pdu = match tokio::time::timeout(self.scp.timeout, assoc.receive()).await {
                Err(_) => return Err(Fatal(pdu_too_slow(self.scp.timeout))),
                Ok(Err(e)) => return self.receive_failed(&e),
                Ok(Ok(pdu)) => pdu,
            };
            quickack(assoc);
            match pdu {
                Pdu::PData { data } => {
                    for pdv in data {
                        self.on_pdv(assoc, pdv).await?;
                    }
                }
                Pdu::ReleaseRQ => {
                    if !self.is_idle() {
                        tracing::warn!(
                            "peer released the association mid-message; the partial instance is discarded"
                        );
                    }
                    let _ =
                        tokio::time::timeout(self.scp.timeout, assoc.send(&Pdu::ReleaseRP)).await;
                    return Ok("released");
                }
                Pdu::AbortRQ { source } => {
                    if !self.is_idle() {
                        tracing::warn!(
                            "peer aborted mid-instance ({source:?}); the partial instance is discarded"
                        );
                    }
                    return Ok("aborted by peer");
                }
                other => return Err(Fatal(format!("unexpected PDU {}", pdu_name(&other)))),
            }
        }
    }

    fn receive_failed(&self, e: &dicom_ul::association::Error) -> Result<&'static str, Fatal> {
        use dicom_ul::association::Error;
        match e {
            Error::ConnectionClosed { .. } if self.is_idle() => Ok("closed by peer"),
            Error::ConnectionClosed { .. } => {
                tracing::warn!(
                    "connection dropped mid-instance; the partial instance is discarded"
                );
                Ok("dropped by peer")
            }
            other => Err(Fatal(error_chain(other))),
        }
    }

    async fn on_pdv(&mut self, assoc: &mut Association, pdv: PDataValue) -> Result<(), Fatal> {
        let context = pdv.presentation_context_id;
        if !self.contexts.contains_key(&context) {
            return Err(Fatal(format!(
                "PDV on presentation context {context} which was not accepted"
            )));
        }
        match (
            pdv.value_type.clone(),
            std::mem::replace(&mut self.phase, Phase::Idle),
        ) {
            (_, Phase::Command { context: c, .. } | Phase::Data { context: c, .. })
                if c != context =>
            {
                Err(Fatal(
                    "fragments of one message on different presentation contexts".into(),
                ))
            }
            (PDataValueType::Command, Phase::Idle) => {
                self.command_fragment(assoc, context, Vec::new(), pdv).await
            }
            (PDataValueType::Command, Phase::Command { bytes, .. }) => {
                self.command_fragment(assoc, context, bytes, pdv).await
            }
            (
                PDataValueType::Data,
                Phase::Data {
                    request,
                    transfer_syntax,
                    sink,
                    ..
                },
            ) => {
                self.data_fragment(assoc, context, request, transfer_syntax, sink, pdv)
                    .await
            }
            (kind, _) => Err(Fatal(format!("{kind:?} fragment out of sequence"))),
        }
    }

    async fn command_fragment(
        &mut self,
        assoc: &mut Association,
        context: u8,
        mut bytes: Vec<u8>,
        pdv: PDataValue,
    ) -> Result<(), Fatal> {
        if bytes.len() + pdv.data.len() > MAX_COMMAND_BYTES {
            return Err(Fatal("command set larger than 64 KiB".into()));
        }
        bytes.extend_from_slice(&pdv.data);
        if pdv.is_last {
            self.on_command(assoc, context, &bytes).await
        } else {
            self.phase = Phase::Command { context, bytes };
            Ok(())
        }
    }

    async fn data_fragment(
        &mut self,
        assoc: &mut Association,
        context: u8,
        request: Request,
        transfer_syntax: String,
        mut sink: Sink,
        pdv: PDataValue,
    ) -> Result<(), Fatal> {
        sink.write(&pdv.data);
        if pdv.is_last {
            let status = self.finish_store(&request, transfer_syntax, sink).await;
            self.respond(assoc, context, &request, &status).await
        } else {
            self.phase = Phase::Data {
                context,
                request,
                transfer_syntax,
                sink,
            };
            Ok(())
        }
    }

    async fn on_command(
        &mut self,
        assoc: &mut Association,
        context: u8,
        bytes: &[u8],
    ) -> Result<(), Fatal> {
        let request = Request::parse(bytes).map_err(|e| Fatal(e.to_string()))?;
        if request.is_response() {
            return Err(Fatal(format!(
                "unexpected response command {:#06x}",
                request.command_field
            )));
        }
        match request.command_field {
            C_ECHO_RQ if !request.has_data_set => {
                self.respond(assoc, context, &request, &Status::success())
                    .await
            }
            C_STORE_RQ if request.has_data_set => {
                let (abstract_syntax, transfer_syntax) = self.contexts[&context].clone();
                let sink = Sink::open(
                    &self.scp.ingestor,
                    &request,
                    &abstract_syntax,
                    &transfer_syntax,
                    &self.calling_ae,
                );
                self.phase = Phase::Data {
                    context,
                    request,
                    transfer_syntax,
                    sink,
                };
                Ok(())
            }
            C_CANCEL_RQ => Ok(()),
            _ => {
                let status = Status::failure(
                    status::UNRECOGNIZED_OPERATION,
                    format!(
                        "command {:#06x} is not supported here",
                        request.command_field
                    ),
                );
                if request.has_data_set {
                    let transfer_syntax = self.contexts[&context].1.clone();
                    self.phase = Phase::Data {
                        context,
                        request,
                        transfer_syntax,
                        sink: Sink::Discard(status),
                    };
                    Ok(())
                } else {
                    self.respond(assoc, context, &request, &status).await
                }
            }
        }
    }

    async fn finish_store(
        &mut self,
        request: &Request,
        transfer_syntax: String,
        sink: Sink,
    ) -> Status {
        let source = Source::Dimse {
            calling_ae: self.calling_ae.clone(),
            peer: self.peer.to_string(),
        };
        let status = match sink
            .finish(&self.scp.ingestor, request, transfer_syntax, source)
            .await
        {
            Ok(size) => {
                self.tally.bytes += size;
                Status::success()
            }
            Err(status) => status,
        };
        if status.is_success() {
            self.tally.stored += 1;
        } else {
            self.tally.failed += 1;
            tracing::warn!(
                sop_instance = request.sop_instance,
                status = format_args!("{:#06X}", status.code),
                "C-STORE refused: {}",
                status.comment.as_deref().unwrap_or("")
            );
        }
        status
    }

    async fn respond(
        &self,
        assoc: &mut Association,
        context: u8,
        request: &Request,
        status: &Status,
    ) -> Result<(), Fatal> {
        // Failure statuses are 0xA…, 0xC… and the 0x01xx/0x02xx refusals;
        // warnings (0xB…) and success store the instance.
        if status.code != crate::dimse::status::SUCCESS && status.code & 0xF000 != 0xB000 {
            crate::metrics::METRICS.instances_refused.inc();
        }
        let data = command::response(request, status.code, status.comment.as_deref());
        let pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context,
                value_type: PDataValueType::Command,
                is_last: true,
                data,
            }],
        };
        tokio::time::timeout(self.scp.timeout, assoc.send(&pdu))
            .await
            .map_err(|_| Fatal("peer does not read our response".into()))?
            .map_err(|e| Fatal(format!("cannot send response: {}", error_chain(&e))))
    }
}

fn pdu_too_slow(limit: Duration) -> String {
    format!("PDU not complete within {limit:?} of its first byte (dicom.timeout)")
}

fn pdu_name(pdu: &Pdu) -> &'static str {
    match pdu {
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::Unknown { .. } => "of unknown type",
        _ => "out of place",
    }
}
