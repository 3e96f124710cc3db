//! DICOM upper layer: the C-ECHO / C-STORE SCP that takes studies in.
//! Built on dicom-ul's async association (negotiation, PDU codec with a
//! strict maximum PDU length); the DIMSE layer and streaming are ours.

mod admission;
mod association;
pub mod command;
pub mod scu;
mod sink;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::BytesMut;
use dicom_dictionary_std::uids;
use dicom_ul::association::server::{AccessControl, DefaultNegotiation, ServerAssociationOptions};
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJServiceUserReason, AssociationRJSource, Pdu, UserIdentity,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::admission::{LogBudget, Shares, peer_address};
use crate::base::AeTitle;
use crate::config::DicomConfig;
use crate::ingest::{Ingestor, sop_classes};
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// Over-cap connections answered with A-ASSOCIATE-RJ at the same time.
const MAX_REFUSALS: usize = 16;

/// Called AE must be ours; calling AE must be on the allow-list if one is set.
#[derive(Clone)]
pub struct AeAccess {
    /// `dicom.allowed_calling_aes`; SIGHUP replaces it.
    allowed_calling: Arc<ArcSwap<Vec<AeTitle>>>,
    refusals_logged: Arc<LogBudget>,
}

impl std::fmt::Debug for AeAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeAccess")
            .field("allowed_calling", &self.allowed_calling)
            .finish_non_exhaustive()
    }
}

impl AccessControl for AeAccess {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title {
            if let Some(unlogged) = self.refusals_logged.take() {
                tracing::warn!(
                    called_ae_title,
                    calling_ae_title,
                    unlogged,
                    "refused: called AE title is not ours"
                );
            }
            refused("called_ae_title");
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        let calling = calling_ae_title.trim();
        let allowed = self.allowed_calling.load();
        if !allowed.is_empty() && !allowed.iter().any(|a| a == calling) {
            if let Some(unlogged) = self.refusals_logged.take() {
                tracing::warn!(
                    calling_ae_title,
                    unlogged,
                    "refused: calling AE title not in dicom.allowed_calling_aes"
                );
            }
            refused("calling_ae_title");
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// Counts an association as open for as long as it lives, whichever way
/// its task ends.
struct OpenAssociation<'a>(&'a Scp);

impl<'a> OpenAssociation<'a> {
    fn new(scp: &'a Scp) -> Self {
        scp.open.fetch_add(1, Ordering::Relaxed);
        crate::metrics::METRICS.associations_open.inc();
        OpenAssociation(scp)
    }
}

impl Drop for OpenAssociation<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        crate::metrics::METRICS.associations_open.dec();
    }
}

fn refused(reason: &'static str) {
    crate::metrics::METRICS
        .associations_refused
        .get_or_create(&crate::metrics::ReasonLabel { reason })
        .inc();
}

/// What every association of the listener shares.
pub struct Scp {
    options: ServerAssociationOptions<'static, AeAccess, DefaultNegotiation>,
    ingestor: Ingestor,
    timeout: Duration,
    request_timeout: Duration,
    idle_timeout: Duration,
    max_associations: usize,
    max_associations_per_address: usize,
    /// Associations being served right now.
    open: AtomicUsize,
    allowed_calling: Arc<ArcSwap<Vec<AeTitle>>>,
    /// Every refusal is counted in the metrics; only so many are logged.
    refusals_logged: Arc<LogBudget>,
}

impl Scp {
    /// Replaces the calling AE titles accepted from the next association on.
    pub fn set_allowed_calling(&self, titles: Vec<AeTitle>) {
        self.allowed_calling.store(Arc::new(titles));
    }

    pub fn new(config: &DicomConfig, ingestor: Ingestor) -> Scp {
        let allowed_calling = Arc::new(ArcSwap::from_pointee(config.allowed_calling_aes.clone()));
        let refusals_logged = Arc::new(LogBudget::new());
        let mut options = ServerAssociationOptions::new()
            .ae_access_control(AeAccess {
                allowed_calling: allowed_calling.clone(),
                refusals_logged: refusals_logged.clone(),
            })
            .ae_title(config.ae_title.to_string())
            .max_pdu_length(config.max_pdu)
            .strict(true)
            .with_abstract_syntax(uids::VERIFICATION);
        for sop_class in sop_classes::kept() {
            options = options.with_abstract_syntax(sop_class);
        }
        Scp {
            options,
            ingestor,
            timeout: config.timeout,
            request_timeout: config.request_timeout,
            idle_timeout: config.idle_timeout,
            max_associations: config.max_associations,
            max_associations_per_address: config.max_associations_per_address,
            open: AtomicUsize::new(0),
            allowed_calling,
            refusals_logged,
        }
    }

    /// Logs a refusal within the log budget.
    fn log_refusal(&self, say: impl FnOnce(u64)) {
        if let Some(unlogged) = self.refusals_logged.take() {
            say(unlogged);
        }
    }
}

/// The listener's limits: association slots, and as many slots for
/// connections still waiting for their A-ASSOCIATE-RQ, which take an
/// association slot only once the request has arrived whole; per peer
/// address a share of both together.
struct Slots {
    associations: Arc<Semaphore>,
    pending: Arc<Semaphore>,
    shares: Arc<Shares>,
    /// Refusing politely costs a task and a buffer per connection; beyond
    /// this many at once, excess connections are just closed.
    refusals: Arc<Semaphore>,
}

/// The DICOM listener as a worker: its one step serves until stop and
/// drains. An accept error (out of descriptors) is retried, never a failure.
pub struct DicomListener {
    listener: Option<TcpListener>,
    scp: Arc<Scp>,
    drain: Duration,
}

impl DicomListener {
    pub fn new(listener: TcpListener, scp: Arc<Scp>, drain: Duration) -> DicomListener {
        DicomListener {
            listener: Some(listener),
            scp,
            drain,
        }
    }
}

impl Worker for DicomListener {
    fn name(&self) -> &'static str {
        "dicom"
    }

    async fn work(&mut self, stop: &Stop) -> Result<Progress, WorkerError> {
        if let Some(listener) = self.listener.take() {
            serve(listener, self.scp.clone(), stop.clone(), self.drain).await;
        }
        Ok(Progress::Done)
    }

    async fn wait_for_work(&mut self) {}
}

/// Accepts associations on `listener` until `stop`, then lets running
/// transfers finish within `drain`.
pub async fn serve(listener: TcpListener, scp: Arc<Scp>, stop: Stop, drain: Duration) {
    let slots = Slots {
        associations: Arc::new(Semaphore::new(scp.max_associations)),
        pending: Arc::new(Semaphore::new(scp.max_associations)),
        shares: Shares::new(scp.max_associations_per_address),
        refusals: Arc::new(Semaphore::new(MAX_REFUSALS)),
    };
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => admit(&scp, &slots, &mut tasks, socket, peer, &stop),
                Err(e) => {
                    // e.g. out of file descriptors: back off instead of spinning
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = stop.wait() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            "{} association(s) still busy after {drain:?}; closing them",
            tasks.len()
        );
        tasks.shutdown().await;
    }
}

/// Decides what becomes of a connection just accepted: refused at once
/// (disk, the address's share), closed (no slot to wait in), or given
/// `dicom.request_timeout` to send its A-ASSOCIATE-RQ.
fn admit(
    scp: &Arc<Scp>,
    slots: &Slots,
    tasks: &mut JoinSet<()>,
    socket: TcpStream,
    peer: SocketAddr,
    stop: &Stop,
) {
    let accepted = Instant::now();
    let _ = socket.set_nodelay(true);
    let address = peer_address(peer.ip());
    if scp.ingestor.disk().over_high_water() {
        refused("disk_high_water");
        // Crossing the mark is logged once by `Disk`; each refusal only at
        // debug level.
        refuse_politely(slots, tasks, socket, scp.request_timeout, move || {
            tracing::debug!(%address, "association refused: disk above the high-water mark");
        });
        return;
    }
    let Some(share) = slots.shares.take(address) else {
        refused("per_address");
        let (scp2, held) = (scp.clone(), scp.max_associations_per_address);
        refuse_politely(slots, tasks, socket, scp.request_timeout, move || {
            scp2.log_refusal(|unlogged| tracing::warn!(%address, unlogged,
                "association refused: this address already holds {held} connections (dicom.max_associations_per_address)"));
        });
        return;
    };
    let Ok(pending) = slots.pending.clone().try_acquire_owned() else {
        // Without a slot to wait in there is no task to read a request
        // and answer it; the peer sees the connection closed.
        refused("pending");
        scp.log_refusal(|unlogged| tracing::warn!(%address, unlogged,
            "connection closed: {} connections already waiting for their A-ASSOCIATE-RQ", scp.max_associations));
        return;
    };
    let scp = scp.clone();
    let associations = slots.associations.clone();
    let stop = stop.clone();
    tasks.spawn(async move {
        let deadline = accepted + scp.request_timeout;
        let arrived = tokio::select! {
            arrived = tokio::time::timeout_at(deadline, admission::request_arrived(&socket)) => arrived,
            // nothing has begun yet: nothing to drain
            () = stop.wait() => return,
        };
        match arrived {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return, // closed before it asked anything
            Err(_) => {
                refused("request_timeout");
                let wait = scp.request_timeout;
                scp.log_refusal(|unlogged| tracing::warn!(%address, unlogged,
                    "connection closed: no complete A-ASSOCIATE-RQ within {wait:?} (dicom.request_timeout)"));
                return;
            }
        }
        drop(pending);
        match associations.try_acquire_owned() {
            Ok(permit) => associate(&scp, socket, peer, deadline, permit, stop).await,
            Err(_) => {
                refused("busy");
                let remaining = deadline.saturating_duration_since(Instant::now());
                if refuse(socket, remaining).await {
                    let max = scp.max_associations;
                    scp.log_refusal(|unlogged| tracing::warn!(%address, unlogged,
                        "association refused: {max} associations already open (dicom.max_associations)"));
                }
            }
        }
        drop(share);
    });
}

async fn associate(
    scp: &Scp,
    socket: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    permit: OwnedSemaphorePermit,
    stop: Stop,
) {
    crate::metrics::METRICS.associations.inc();
    let _open = OpenAssociation::new(scp);
    association::serve(scp, socket, peer, deadline, stop).await;
    drop(permit);
}

/// Refuses a connection with A-ASSOCIATE-RJ on a task of its own, within
/// the refusal slots (beyond them the connection is just closed); `said`
/// logs it once the peer has heard it.
fn refuse_politely(
    slots: &Slots,
    tasks: &mut JoinSet<()>,
    socket: TcpStream,
    timeout: Duration,
    said: impl FnOnce() + Send + 'static,
) {
    match slots.refusals.clone().try_acquire_owned() {
        Ok(slot) => {
            tasks.spawn(async move {
                if refuse(socket, timeout).await {
                    said();
                }
                drop(slot);
            });
        }
        Err(_) => drop(socket),
    }
}

/// Over the association cap or the address's share of it, or the disk over
/// its high-water mark: read the request and answer A-ASSOCIATE-RJ "rejected-transient, service
/// provider (presentation), local-limit-exceeded" (PS3.8 9.3.4), so a
/// modality retries later instead of treating us as broken. Of the two
/// transient presentation-layer reasons, "temporary-congestion" describes
/// load that passes by itself; all of ours are a configured local limit
/// (dicom.max_associations, dicom.max_associations_per_address,
/// capacity.high_water) that is exceeded. Returns
/// whether the rejection was sent.
async fn refuse(mut socket: TcpStream, timeout: Duration) -> bool {
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    let request = tokio::time::timeout(
        timeout,
        dicom_ul::association::read_pdu_from_wire_async(&mut socket, &mut buffer, 64 * 1024, true),
    )
    .await;
    if !matches!(request, Ok(Ok(Pdu::AssociationRQ(_)))) {
        return false;
    }
    let rj = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    });
    let mut out = Vec::new();
    if dicom_ul::write_pdu(&mut out, &rj).is_err() || socket.write_all(&out).await.is_err() {
        return false;
    }
    let _ = socket.shutdown().await;
    true
}
