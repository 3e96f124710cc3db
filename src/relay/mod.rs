//! Gateway to gateway: the address book of peer gateways, OpenPGP packages
//! (signed by us, encrypted to the peer), the outbox that delivers them,
//! the inbox that checks and ingests them, and forwarding to the local PACS.

pub mod book;
mod deliver;
pub mod forward;
pub mod inbox;
pub mod manifest;
pub mod openpgp;
pub mod outbox;
mod receipt;
pub mod seal;
mod wake;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};

pub use deliver::OutboxWorker;
pub use manifest::Priority;
pub use wake::CompletionWaker;

use crate::authz::{Authz, GrantId};
use crate::config::Config;
use crate::ingest::Ingestor;
use crate::journal::{Event, Journal, Relay as RelayEvent};
use crate::store::{InboxStore, SledQueue, StoreError, Timestamp, Uid, private_dir};
use book::Book;
use forward::Forwarder;
use openpgp::{KeyAlgorithm, OwnKey};
use outbox::{Item, Outbox, State};

/// Packages being received at once; more wait (503, Retry-After).
pub const MAX_RECEIVING: usize = 2;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error("OpenPGP: {0}")]
    Pgp(#[from] openpgp::PgpError),
    #[error("address book: {0}")]
    Book(#[from] book::BookError),
    #[error("package: {0}")]
    Package(#[from] crate::package::PackageError),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("store: {0}")]
    Store(String),
    #[error("study {0} is not in the store")]
    UnknownStudy(String),
    #[error("no gateway with URA {0} in the address book")]
    NoGateway(String),
    #[error("forwarding: {0}")]
    Forward(#[from] forward::ForwardError),
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("{0}")]
    Grant(#[from] crate::authz::PushDenied),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for RelayError {
    fn from(e: StoreError) -> RelayError {
        RelayError::Store(e.to_string())
    }
}

/// Where a study came from, when another gateway pushed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    pub from_name: String,
    pub from_ura: String,
    #[serde(default)]
    pub message: String,
    pub priority: Priority,
    pub package: String,
    pub received_at: Timestamp,
}

/// A push asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct SendRequest {
    pub study: String,
    pub to_ura: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub grant: Option<String>,
}

pub struct Relay {
    pub key: OwnKey,
    pub book: Book,
    pub outbox: Outbox,
    /// The one work queue the outbox and forwarding are kinds of (its
    /// listing).
    pub queue: Arc<dyn crate::store::QueueStore>,
    pub(crate) inbox: inbox::Inbox,
    pub org_name: String,
    pub org_ura: String,
    /// Our HTTPS certificate and key: the client certificate we deliver
    /// with (replaced when SIGHUP reloads the certificate).
    identity: arc_swap::ArcSwap<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    pub(crate) ingestor: Ingestor,
    pub(crate) journal: Journal,
    pub(crate) authz: Arc<Authz>,
    pub forwarder: Option<Forwarder>,
    outbox_dir: PathBuf,
    /// Rung when a push is queued.
    pub(crate) wake: Notify,
    pub(crate) receiving: Arc<Semaphore>,
}

/// The user ID of a gateway's own key.
pub fn user_id(config: &Config) -> String {
    format!("{} (pushgate, URA {})", config.org_name, config.org_ura)
}

/// Loads the gateway key, or makes one (Ed25519/Cv25519) on first start.
pub fn own_key(config: &Config) -> Result<OwnKey, RelayError> {
    let (key, created) =
        OwnKey::load_or_create(&config.relay.key, &user_id(config), KeyAlgorithm::Cv25519)?;
    if created {
        tracing::info!(fingerprint = %key.fingerprint(), path = %config.relay.key.display(), "created the gateway's OpenPGP key");
    }
    Ok(key)
}

impl Relay {
    /// Opens everything the relay keeps. Blocking.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        config: &Config,
        queue: Arc<SledQueue>,
        inbox: Arc<dyn InboxStore>,
        ingestor: Ingestor,
        journal: Journal,
        authz: Arc<Authz>,
        tls_chain: Vec<CertificateDer<'static>>,
        tls_key: PrivateKeyDer<'static>,
    ) -> Result<Relay, RelayError> {
        let key = own_key(config)?;
        let book = match &config.relay.address_book {
            Some(path) => Book::load(path)?,
            None => Book::empty(),
        };
        let outbox_dir = config.data_dir.join("relay").join("outbox");
        std::fs::create_dir_all(&outbox_dir).map_err(RelayError::Io)?;
        private_dir(&outbox_dir).map_err(RelayError::Io)?;
        remove_partial(&outbox_dir);
        // forwarding's entries are adopted even with forwarding off now,
        // so that none stays behind in the old tree
        let forwarder = Forwarder::open(&queue)?;
        let forwarder = config.forward.pacs.as_ref().map(|pacs| {
            forwarder
                .with_target(&pacs.to_string())
                .with_journal(journal.clone())
        });
        Ok(Relay {
            key,
            book,
            outbox: Outbox::open(&queue)?,
            queue,
            inbox: inbox::Inbox::new(inbox),
            org_name: config.org_name.clone(),
            org_ura: config.org_ura.to_string(),
            identity: arc_swap::ArcSwap::from_pointee((tls_chain, tls_key)),
            ingestor,
            journal,
            authz,
            forwarder,
            outbox_dir,
            wake: Notify::new(),
            receiving: Arc::new(Semaphore::new(MAX_RECEIVING)),
        })
    }

    pub fn package_path(&self, outbox_id: &str) -> PathBuf {
        self.outbox_dir.join(format!("{outbox_id}.pgp"))
    }

    pub(crate) fn client_tls(
        &self,
        gateway: &book::Gateway,
    ) -> Result<Arc<rustls::ClientConfig>, RelayError> {
        let identity = self.identity.load();
        Ok(gateway.client_config(identity.0.clone(), identity.1.clone_key())?)
    }

    /// The certificate deliveries present from now on.
    pub fn set_identity(&self, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) {
        self.identity.store(Arc::new((chain, key)));
    }

    pub fn us(&self) -> manifest::Party {
        manifest::Party {
            name: self.org_name.clone(),
            ura: self.org_ura.clone(),
            openpgp: self.key.fingerprint(),
        }
    }

    /// Queues a push; durable and journaled before it returns. Blocking.
    pub fn enqueue(&self, request: SendRequest, by: &str) -> Result<Item, RelayError> {
        self.enqueue_as(request, by, None)
    }

    /// [`Relay::enqueue`] for a member of staff in the console: the push
    /// and its journal record name them. Blocking.
    pub fn enqueue_as(
        &self,
        request: SendRequest,
        by: &str,
        actor: Option<crate::journal::ActorRecord>,
    ) -> Result<Item, RelayError> {
        let study = Uid::parse(request.study.trim())
            .map_err(|_| RelayError::UnknownStudy(request.study.clone()))?;
        let record = self
            .ingestor
            .index()
            .study(&study)?
            .ok_or_else(|| RelayError::UnknownStudy(request.study.clone()))?;
        let book = self.book.current();
        let gateway = book
            .by_ura(request.to_ura.trim())
            .ok_or_else(|| RelayError::NoGateway(request.to_ura.clone()))?;
        // A push naming a grant carries the grant's scope: the grant must
        // exist and may carry it now (checked again before every attempt).
        let grant = request.grant.map(|g| GrantId(g.trim().to_string()));
        if let Some(id) = &grant {
            self.authz.grant_for_push(id, &study, &gateway.ura)?;
        }
        let state = if record.is_complete() {
            State::Pending
        } else {
            State::Waiting
        };
        let push = outbox::Push {
            study: study.clone(),
            to_ura: gateway.ura.clone(),
            to_name: gateway.name.clone(),
            message: request.message,
            priority: request.priority,
            grant: grant.map(|g| g.0),
            by: by.to_string(),
            actor: actor.clone(),
            package: None,
            sent_at: None,
            receipt: None,
        };
        let id = manifest::hex(&rand::random::<[u8; 16]>());
        let seq = self.outbox.queue().next_seq()?;
        let item = Item::new(id, gateway.ura.clone(), state, seq, push);
        self.outbox.put(&item)?;
        // Retention marks a study before it looks at the outbox a last
        // time: a push put in before the mark stops the deletion, one the
        // mark came first for withdraws itself here.
        if self.authz.is_deleting(&study) {
            let _ = self.outbox.remove(&item.id);
            return Err(RelayError::UnknownStudy(format!(
                "{study} (being deleted by retention)"
            )));
        }
        self.journal
            .append_durable(Event::Relay(RelayEvent::Queued {
                outbox: item.id.clone(),
                study,
                to_ura: item.job.to_ura.clone(),
                priority: item.job.priority.as_str().to_string(),
                by: by.to_string(),
                grant: item.job.grant.clone().map(GrantId),
                actor,
            }))?;
        self.wake.notify_one();
        tracing::info!(outbox = %item.id, to_ura = %item.job.to_ura, priority = item.job.priority.as_str(), "push queued");
        Ok(item)
    }

    /// Staff's "retry now": the push is due at once (a failed one is
    /// tried again), the worker woken; journaled with the person.
    /// Blocking.
    pub fn retry_now(
        &self,
        id: &str,
        actor: &crate::journal::ActorRecord,
        from: &str,
    ) -> Result<Item, outbox::OutboxChange> {
        let item = self.outbox.retry_now(id)?;
        self.journal
            .append_durable(Event::Relay(RelayEvent::RetryAsked {
                outbox: item.id.clone(),
                to_ura: item.job.to_ura.clone(),
                actor: actor.clone(),
                from: from.to_string(),
            }))
            .map_err(RelayError::from)?;
        self.wake.notify_one();
        tracing::info!(outbox = %item.id, by = %actor.id, "push to be tried again now");
        Ok(item)
    }

    /// Staff's "cancel": no more attempts, the package deleted; journaled
    /// with the person and their reason. Blocking.
    pub fn cancel_push(
        &self,
        id: &str,
        actor: &crate::journal::ActorRecord,
        from: &str,
        reason: &str,
    ) -> Result<Item, outbox::OutboxChange> {
        let said = match reason.trim() {
            "" => format!("cancelled by {}", actor.name),
            why => format!("cancelled by {}: {why}", actor.name),
        };
        let item = self.outbox.cancel(id, &said)?;
        let _ = std::fs::remove_file(self.package_path(&item.id));
        self.journal
            .append_durable(Event::Relay(RelayEvent::Withdrawn {
                outbox: item.id.clone(),
                to_ura: item.job.to_ura.clone(),
                actor: actor.clone(),
                from: from.to_string(),
                reason: reason.trim().to_string(),
            }))
            .map_err(RelayError::from)?;
        tracing::info!(outbox = %item.id, by = %actor.id, "push cancelled");
        Ok(item)
    }

    /// A grant for an organization whose gateway is in the address book is
    /// also pushed to it. Blocking; failures are logged, the grant stands.
    pub fn push_for_grant(&self, grant: &GrantId) {
        let Some(state) = self.authz.grant_state(grant) else {
            return;
        };
        let g = &state.grant;
        let (crate::authz::Recipient::Organization { ura, .. }, Some(study)) =
            (&g.recipient, state.study_uid())
        else {
            return;
        };
        if self.book.current().by_ura(ura.as_str()).is_none() {
            return;
        }
        match self.outbox.has_open(study, ura.as_str()) {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                tracing::error!("push for grant {}: {e}", g.id.0);
                return;
            }
        }
        let request = SendRequest {
            study: study.to_string(),
            to_ura: ura.clone(),
            message: g.message.clone(),
            priority: Priority::Routine,
            grant: Some(g.id.0.clone()),
        };
        if let Err(e) = self.enqueue(request, "grant") {
            tracing::error!("push for grant {}: {e}", g.id.0);
        }
    }

    /// Where a pushed study came from.
    pub fn origin(&self, study: &Uid) -> Option<Origin> {
        self.inbox.origin(study).unwrap_or_else(|e| {
            tracing::error!("relay origin of a study: {e}");
            None
        })
    }
}

/// A `.part` file is a package a crash interrupted: made again when needed.
fn remove_partial(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "part") {
            let _ = std::fs::remove_file(&path);
        }
    }
}
