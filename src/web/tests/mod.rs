//! The web layer in-process: an `App` over a temporary data directory,
//! built the way `daemon::start` builds it but without the DICOM side and
//! the background work, served by `web::serve` on 127.0.0.1:0 and spoken
//! to with curl (HTTP/2 when offered), as a browser or a program would.

mod edge;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{App, Gates, serve};
use crate::authz::{AdminToken, Authz};
use crate::config::Config;
use crate::ingest::{Events, Ingestor};
use crate::journal::Journal;
use crate::relay::Relay;
use crate::store::Store;
use crate::tls;

pub struct Harness {
    pub app: Arc<App>,
    pub addr: std::net::SocketAddr,
    pub admin_token: String,
    stop: watch::Sender<bool>,
    served: Option<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    _store: Arc<Store>,
    _dir: tempfile::TempDir,
}

/// One answer, as curl saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// Lower-case names; `date` left out (it differs between answers).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

impl Harness {
    pub fn start() -> Harness {
        Harness::with_gates(Gates::default())
    }

    pub fn with_gates(gates: Gates) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            // no high-water mark: /readyz must not depend on the host's disk
            "data_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [capacity]\nhigh_water = \"100%\"\nmin_free = \"0\"\n",
            dir.path().display()
        );
        let config = Config::from_toml_str(&text, &dir.path().join("pushgate.toml")).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, store) = runtime.block_on(async { build(&config, gates) });
        let admin_token = crate::authz::read_token(&config.admin.token_file).unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = crate::worker::Stop::new();
        let served = runtime.spawn(serve(
            listener,
            app.clone(),
            super::Limits::from(&config.http),
            stopped,
            Duration::from_secs(2),
        ));
        Harness {
            app,
            addr,
            admin_token,
            stop,
            served: Some(served),
            runtime: Some(runtime),
            _store: store,
            _dir: dir,
        }
    }

    /// One request; `headers` as `Name: value`.
    pub fn ask(&self, method: &str, path: &str, headers: &[&str], body: Option<&str>) -> Answer {
        let mut cmd = Command::new("curl");
        cmd.args(["-sk", "-i", "--max-time", "20", "-X", method]);
        for header in headers {
            cmd.arg("-H").arg(header);
        }
        if let Some(body) = body {
            cmd.arg("--data-binary").arg(body);
        }
        cmd.arg(format!("https://{}{}", self.addr, path));
        let out = cmd.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .filter(|(n, _)| n != "date")
            .collect();
        Answer {
            status,
            headers,
            body: body.to_string(),
        }
    }

    pub fn get(&self, path: &str, headers: &[&str]) -> Answer {
        self.ask("GET", path, headers, None)
    }

    /// An admin API call with the admin token.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        let bearer = format!("Authorization: Bearer {}", self.admin_token);
        let json = "Content-Type: application/json";
        self.ask(method, path, &[bearer.as_str(), json], body)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let (Some(runtime), Some(served)) = (self.runtime.take(), self.served.take()) {
            let _ = runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), served).await });
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// What `daemon::start` opens for the web layer, in its order. Blocking
/// calls are fine here: nothing is being served yet.
fn build(config: &Config, gates: Gates) -> (Arc<App>, Arc<Store>) {
    let store = Arc::new(Store::open(config).unwrap());
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
    let journal = Journal::open(&config.journal_dir()).unwrap();
    let authz = Arc::new(
        Authz::open(
            store.grants.clone(),
            journal.clone(),
            store.index.clone(),
            &config.data_dir.join("authz.key"),
            config.grants.clone(),
            config.public_url.clone(),
        )
        .unwrap(),
    );
    let admin = AdminToken::load_or_create(&config.admin.token_file).unwrap();
    let tls_state = tls::TlsState::load(config).unwrap();
    let (chain, key) = tls::own_identity(config).unwrap();
    let relay = Arc::new(
        Relay::open(
            config,
            store.queue.clone(),
            store.inbox.clone(),
            ingestor,
            journal,
            authz.clone(),
            chain,
            key,
        )
        .unwrap(),
    );
    let app = Arc::new(App {
        index: store.index.clone(),
        admin,
        authz,
        org_name: config.org_name.clone(),
        files: store.files.clone(),
        events,
        cors_origins: config.http.cors_origins.clone(),
        tls: arc_swap::ArcSwap::from_pointee(tls_state),
        relay,
        workers: crate::worker::Supervisor::new().health(),
        gates,
        // the harness tests the web layer's admin API in place (the
        // console's listener serves the same handler)
        admin_on_public: true,
    });
    (app, store)
}
