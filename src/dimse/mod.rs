//! DICOM upper layer: the C-ECHO / C-STORE SCP that takes studies in.
//! Built on dicom-ul's async association (negotiation, PDU codec with a
//! strict maximum PDU length); the DIMSE layer and streaming are ours.

mod association;
pub mod command;
pub mod scu;
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
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::DicomConfig;
use crate::ingest::{Ingestor, sop_classes};

/// Over-cap connections answered with A-ASSOCIATE-RJ at the same time.
const MAX_REFUSALS: usize = 16;
/// How long an over-cap peer gets to send its A-ASSOCIATE-RQ.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Called AE must be ours; calling AE must be on the allow-list if one is set.
#[derive(Debug, Clone)]
pub struct AeAccess {
    /// `dicom.allowed_calling_aes`; SIGHUP replaces it.
    allowed_calling: Arc<ArcSwap<Vec<String>>>,
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
            tracing::warn!(
                called_ae_title,
                calling_ae_title,
                "refused: called AE title is not ours"
            );
            refused("called_ae_title");
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        let calling = calling_ae_title.trim();
        let allowed = self.allowed_calling.load();
        if !allowed.is_empty() && !allowed.iter().any(|a| a == calling) {
            tracing::warn!(
                calling_ae_title,
                "refused: calling AE title not in dicom.allowed_calling_aes"
            );
            refused("calling_ae_title");
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
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
    idle_timeout: Duration,
    max_associations: usize,
    /// Associations being served right now.
    open: AtomicUsize,
    allowed_calling: Arc<ArcSwap<Vec<String>>>,
}

impl Scp {
    /// Replaces the calling AE titles accepted from the next association on.
    pub fn set_allowed_calling(&self, titles: Vec<String>) {
        self.allowed_calling.store(Arc::new(titles));
    }

    pub fn new(config: &DicomConfig, ingestor: Ingestor) -> Scp {
        let allowed_calling = Arc::new(ArcSwap::from_pointee(config.allowed_calling_aes.clone()));
        let mut options = ServerAssociationOptions::new()
            .ae_access_control(AeAccess {
                allowed_calling: allowed_calling.clone(),
            })
            .ae_title(config.ae_title.clone())
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
            idle_timeout: config.idle_timeout,
            max_associations: config.max_associations,
            open: AtomicUsize::new(0),
            allowed_calling,
        }
    }
}

/// Accepts associations on `listener` until `shutdown` turns true, then
/// lets running transfers finish within `drain`.
pub async fn serve(
    listener: TcpListener,
    scp: Arc<Scp>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let permits = Arc::new(Semaphore::new(scp.max_associations));
    // Refusing politely costs a task and a buffer per connection; beyond
    // this many at once, excess connections are just closed.
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let scp = scp.clone();
                            let shutdown = shutdown.clone();
                            tasks.spawn(async move {
                                let metrics = &crate::metrics::METRICS;
                                metrics.associations.inc();
                                metrics.associations_open.inc();
                                scp.open.fetch_add(1, Ordering::Relaxed);
                                association::serve(&scp, socket, peer, shutdown).await;
                                scp.open.fetch_sub(1, Ordering::Relaxed);
                                metrics.associations_open.dec();
                                drop(permit);
                            });
                        }
                        Err(_) => match refusals.clone().try_acquire_owned() {
                            Ok(slot) => {
                                let metrics = &crate::metrics::METRICS;
                                metrics.associations.inc();
                                metrics.associations_refused.get_or_create(&crate::metrics::ReasonLabel { reason: "busy" }).inc();
                                let (timeout, max) = (scp.timeout.min(REFUSAL_TIMEOUT), scp.max_associations);
                                tasks.spawn(async move {
                                    refuse_busy(socket, peer, timeout, max).await;
                                    drop(slot);
                                });
                            }
                            Err(_) => drop(socket),
                        },
                    }
                }
                Err(e) => {
                    // e.g. out of file descriptors: back off instead of spinning
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
        if *shutdown.borrow() {
            break;
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

/// Over the association cap: read the request and answer A-ASSOCIATE-RJ
/// "transient, service provider (presentation), local limit exceeded", so a
/// modality retries later instead of treating us as broken.
async fn refuse_busy(mut socket: TcpStream, peer: SocketAddr, timeout: Duration, max: usize) {
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    let request = tokio::time::timeout(
        timeout,
        dicom_ul::association::read_pdu_from_wire_async(&mut socket, &mut buffer, 64 * 1024, true),
    )
    .await;
    if !matches!(request, Ok(Ok(Pdu::AssociationRQ(_)))) {
        return;
    }
    let rj = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    });
    let mut out = Vec::new();
    if dicom_ul::write_pdu(&mut out, &rj).is_ok() {
        let _ = socket.write_all(&out).await;
        let _ = socket.shutdown().await;
    }
    tracing::warn!(%peer, "association refused: {max} associations already open (dicom.max_associations)");
}
