//! The daemon: opens the store, binds the listeners, runs the components
//! until told to stop, then drains them. `start` returns once every listener
//! is bound, so tests (and systemd) know when it is ready.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::accounts::{Accounts, AccountsError};
use crate::authz::{
    AccessionResolver, AdminToken, AdminTokenError, Authz, AuthzError, ExpirySweeper,
};
use crate::capacity::DiskWatcher;
use crate::config::Config;
use crate::console::{self, Console};
use crate::dimse::{DicomListener, Scp};
use crate::ingest::dropfolder::DropFolderWorker;
use crate::ingest::stability::StabilityWorker;
use crate::ingest::{Events, Ingestor, reindex};
use crate::journal::{HeadPublisher, HeadWorker, Journal, JournalError};
use crate::relay::book::{BookSync, BookWatcher};
use crate::relay::{self, CompletionWaker, Relay, RelayError};
use crate::retention::{Retention, RetentionWorker};
use crate::store::{Store, StoreError};
use crate::tls;
use crate::web::{self, App, HttpListener};
use crate::worker::{Health, Supervisor};

/// How long running transfers (associations, downloads) may take to finish
/// after a stop request: within systemd's TimeoutStopSec=30 with room for
/// the index and journal to close.
const DRAIN: Duration = Duration::from_secs(25);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    AdminToken(#[from] AdminTokenError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("grants: {0}")]
    Authz(#[from] AuthzError),
    #[error("cannot listen on {addr} ({what}): {cause}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("relay: {0}")]
    Relay(#[from] RelayError),
    #[error("accounts: {0}")]
    Accounts(#[from] AccountsError),
    #[error("internal: {0}")]
    Internal(String),
}

/// A running daemon.
pub struct Running {
    pub dicom_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The console and the admin API.
    pub console_addr: SocketAddr,
    pub cert_path: PathBuf,
    pub cert_fingerprint: String,
    /// Every background loop and both listeners.
    workers: Supervisor,
    store: Arc<Store>,
    journal: Journal,
    /// Publishes the journal's head; once more after the journal closed.
    head: Arc<HeadPublisher>,
    /// What is running now.
    config: Arc<Config>,
    app: Arc<App>,
    scp: Arc<Scp>,
    relay: Arc<Relay>,
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Changed settings that only a restart applies.
    pub need_restart: Vec<String>,
    /// Address book entries now, if there is a book.
    pub book_entries: Option<usize>,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|cause| DaemonError::Bind { what, addr, cause })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))
}

pub async fn start(config: Config) -> Result<Running, DaemonError> {
    let config = Arc::new(config);
    let store = {
        let config = config.clone();
        Arc::new(blocking(move || Store::open(&config)).await??)
    };
    let events = Events::new();
    let ingestor = Ingestor::new(
        store.files.clone(),
        store.index.clone(),
        events.clone(),
        store.dirty.clone(),
    )
    .with_disk(crate::capacity::Disk::new(
        &config.data_dir,
        &config.capacity,
    ));
    if store.needs_reconcile {
        tracing::warn!(
            "the previous run did not stop cleanly; checking the index against the files"
        );
        let ingestor = ingestor.clone();
        let report = blocking(move || reindex::reconcile(&ingestor)).await??;
        tracing::info!(
            indexed = report.indexed,
            removed = report.removed,
            orphaned = report.orphaned.len(),
            problems = report.problems.len(),
            "index caught up with the files"
        );
        for (path, reason) in &report.problems {
            tracing::warn!(file = %path.display(), "not indexed: {reason}");
        }
    }
    let journal = {
        let dir = config.journal_dir();
        blocking(move || Journal::open(&dir)).await??
    };
    let authz = {
        let (grants, journal, index) = (store.grants.clone(), journal.clone(), store.index.clone());
        let (key, settings, url) = (
            config.data_dir.join("authz.key"),
            config.grants.clone(),
            config.public_url.clone(),
        );
        Arc::new(blocking(move || Authz::open(grants, journal, index, &key, settings, url)).await??)
    };
    let admin = {
        let path = config.admin.token_file.clone();
        blocking(move || AdminToken::load_or_create(&path)).await??
    };
    let tls_state = {
        let config = config.clone();
        blocking(move || tls::TlsState::load(&config)).await??
    };
    let relay = {
        let (config, queue, inbox, ingestor, journal, authz) = (
            config.clone(),
            store.queue.clone(),
            store.inbox.clone(),
            ingestor.clone(),
            journal.clone(),
            authz.clone(),
        );
        let (chain, key) = tls::own_identity(&config)?;
        Arc::new(
            blocking(move || {
                Relay::open(&config, queue, inbox, ingestor, journal, authz, chain, key)
            })
            .await??,
        )
    };
    let head = {
        // the journal cannot reach the key (layers go one way): it gets a
        // signing function
        let relay = relay.clone();
        let sign: crate::journal::SignText = Box::new(move |text| {
            relay::openpgp::sign_cleartext(&relay.key, text).map_err(|e| e.to_string())
        });
        Arc::new(HeadPublisher::new(
            journal.clone(),
            config.org_ura.to_string(),
            Some(sign),
        ))
    };
    let (cert_path, _) = tls::cert_paths(&config);
    let cert_fingerprint = tls::load_certs(&cert_path)?
        .first()
        .map(tls::fingerprint)
        .unwrap_or_default();

    let dicom_listener = bind("DICOM", config.dicom.listen).await?;
    let http_listener = bind("HTTPS", config.http.listen).await?;
    let console_listener = bind("console", config.console.listen).await?;
    let dicom_addr = dicom_listener
        .local_addr()
        .map_err(|e| DaemonError::Internal(e.to_string()))?;
    let http_addr = web::bound(&http_listener).map_err(|e| DaemonError::Internal(e.to_string()))?;
    let console_addr =
        web::bound(&console_listener).map_err(|e| DaemonError::Internal(e.to_string()))?;

    let mut workers = Supervisor::new();
    workers.spawn(StabilityWorker::new(
        store.index.clone(),
        events.clone(),
        config.dicom.stable_after,
    ));
    let scp = Arc::new(Scp::new(&config.dicom, ingestor.clone()));
    workers.spawn(DicomListener::new(dicom_listener, scp.clone(), DRAIN));
    workers.spawn(ExpirySweeper::new(authz.clone()));
    workers.spawn(HeadWorker::new(head.clone(), config.journal.head_every));
    workers.spawn(DiskWatcher::new(
        ingestor.disk().clone(),
        Duration::from_secs(10),
    ));
    workers.spawn(RetentionWorker::new(Retention::new(
        &config,
        ingestor.clone(),
        authz.clone(),
        &relay,
    )));
    workers.spawn(AccessionResolver::new(authz.clone(), &events));
    let app = Arc::new(App {
        index: store.index.clone(),
        admin,
        authz,
        org_name: config.org_name.clone(),
        files: store.files.clone(),
        events: events.clone(),
        cors_origins: config.http.cors_origins.clone(),
        tls: arc_swap::ArcSwap::from_pointee(tls_state),
        relay: relay.clone(),
        workers: workers.health(),
        gates: web::Gates::default(),
        admin_on_public: config.admin.on_public_listener,
    });
    if config.admin.on_public_listener {
        tracing::warn!(
            "admin.on_public_listener = true: the admin API also answers on {http_addr}, the recipients' listener; it belongs on the console's ({console_addr})"
        );
    }
    start_relay(&config, &relay, &store, &events, &mut workers)?;
    workers.spawn(HttpListener::new(
        "https",
        http_listener,
        app.clone(),
        web::Limits::from(&config.http),
        DRAIN,
    ));
    let console = {
        let accounts = {
            let (config, store, authz) = (config.clone(), store.clone(), app.authz.clone());
            blocking(move || Accounts::open(&config, &store, authz)).await??
        };
        let own_tls = {
            let config = config.clone();
            blocking(move || console::own_tls(&config)).await??
        };
        Arc::new(Console::new(
            app.clone(),
            config.clone(),
            Arc::new(accounts),
            own_tls,
        ))
    };
    workers.spawn(HttpListener::new(
        "console",
        console_listener,
        console,
        web::Limits::from(&config.http),
        DRAIN,
    ));
    if let Some(watch_dir) = config.import.watch_dir.clone() {
        workers.spawn(DropFolderWorker::new(
            watch_dir,
            config.import.settle,
            ingestor.clone(),
        ));
    }
    Ok(Running {
        dicom_addr,
        http_addr,
        console_addr,
        cert_path,
        cert_fingerprint,
        workers,
        store,
        journal,
        head,
        config,
        app,
        scp,
        relay,
    })
}

/// The outbox worker, the address book's watcher and sync, and forwarding
/// to the local PACS.
fn start_relay(
    config: &Config,
    relay: &Arc<Relay>,
    store: &Arc<Store>,
    events: &Events,
    workers: &mut Supervisor,
) -> Result<(), DaemonError> {
    workers.spawn(relay::OutboxWorker::new(relay.clone()));
    workers.spawn(CompletionWaker::new(relay.clone(), events));
    if let Some(path) = config.relay.address_book.clone() {
        workers.spawn(BookWatcher::new(relay.book.clone(), path));
    }
    if let (Some(sync), Some(path)) = (config.relay.sync.clone(), config.relay.address_book.clone())
    {
        let publisher = relay::book::load_publisher(&sync.publisher)
            .map_err(|e| DaemonError::Internal(format!("relay.address_book_publisher: {e}")))?;
        let tls = relay::book::system_roots_client_config()
            .map_err(|e| DaemonError::Internal(format!("address book sync: {e}")))?;
        workers.spawn(BookSync::new(
            sync.url,
            publisher,
            path,
            sync.every,
            tls,
            relay.book.clone(),
        ));
    }
    if let (Some(forwarder), Some(pacs)) = (relay.forwarder.clone(), config.forward.pacs.as_ref()) {
        let pacs = pacs.clone();
        workers.spawn(relay::forward::ForwardWorker::new(
            forwarder,
            pacs,
            config.dicom.ae_title.to_string(),
            store.index.clone(),
            store.files.clone(),
        ));
    }
    Ok(())
}

impl Running {
    /// Applies what can change while running (SIGHUP): the TLS certificate
    /// and key, client CAs, CRLs and UZI CAs, the calling AE titles
    /// allowed, and the address book. Everything is loaded and checked
    /// first; if anything fails, nothing changes and the error says why.
    ///
    /// `changed`: the keys whose values differ from the running
    /// configuration ([`crate::config::changed_keys`]); those this cannot
    /// apply are returned in `need_restart`.
    pub async fn reload(
        &mut self,
        new: Config,
        changed: &[String],
    ) -> Result<Reloaded, DaemonError> {
        let new = Arc::new(new);
        let (tls_state, identity) = {
            let new = new.clone();
            blocking(move || {
                let tls_state = tls::TlsState::load(&new)?;
                let identity = tls::own_identity(&new)?;
                Ok::<_, DaemonError>((tls_state, identity))
            })
            .await??
        };
        let mut reloaded = Reloaded::default();
        // The book last of what can fail and first of what is applied:
        // `Book::reload` keeps the old book on any error, and until it has
        // succeeded nothing else has changed. A synced book that has not
        // arrived yet is no reason to refuse a renewed certificate.
        if let Some(path) = self.config.relay.address_book.clone()
            && (self.config.relay.sync.is_none() || path.exists())
        {
            let relay = self.relay.clone();
            let entries = blocking(move || relay.book.reload(&path)).await?;
            reloaded.book_entries = Some(entries.map_err(|e| DaemonError::Relay(e.into()))?);
        }
        self.app.tls.store(Arc::new(tls_state));
        self.relay.set_identity(identity.0, identity.1);
        self.scp
            .set_allowed_calling(new.dicom.allowed_calling_aes.clone());
        reloaded.need_restart = changed
            .iter()
            .filter(|k| !RELOADABLE.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(reloaded)
    }

    /// The workers' states: `main` waits for the first failure.
    pub fn health(&self) -> Arc<Health> {
        self.workers.health()
    }

    /// Asks every component to stop and waits until they have drained;
    /// returns the workers that failed during the run (by name, with why).
    pub async fn stop(self) -> Result<Vec<(&'static str, String)>, DaemonError> {
        // Within DRAIN: the listeners drain their transfers in it, and a
        // worker still busy after it is cut off.
        let failed = self.workers.stop(DRAIN + Duration::from_secs(1)).await;
        let journal = self.journal.clone();
        blocking(move || journal.close()).await?;
        let head = self.head.clone();
        blocking(move || head.publish("stop")).await?;
        let store = self.store.clone();
        blocking(move || store.close()).await??;
        Ok(failed)
    }
}

/// The keys a reload applies; any other changed key needs a restart.
const RELOADABLE: &[&str] = &[
    "http.tls_cert",
    "http.tls_key",
    "http.client_ca",
    "http.uzi_ca",
    "http.client_crl",
    "dicom.allowed_calling_aes",
];

/// What the service manager asks of the daemon.
pub enum Signal {
    /// SIGTERM or SIGINT: drain and exit.
    Stop,
    /// SIGHUP: reload what can be reloaded.
    Reload,
}

/// Listens for the signals a service manager sends.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; call before announcing readiness, so that a
    /// reload right after READY=1 is not the default action (exit).
    pub fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT only (a SIGHUP before the daemon runs
    /// has nothing to reload).
    pub async fn stop(&mut self) {
        loop {
            if let Signal::Stop = self.next().await {
                return;
            }
        }
    }

    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => {
                tracing::info!("SIGTERM: stopping");
                Signal::Stop
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("SIGINT: stopping");
                Signal::Stop
            }
            _ = self.hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                Signal::Reload
            }
        }
    }
}
