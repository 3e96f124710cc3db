//! Sync of the address book from a URL: the book and its detached,
//! armored OpenPGP signature (`{url}.sig`) by a configured publisher. A
//! book is written to the local file only when the signature verifies, it
//! validates and its serial is higher than the one in force; the watcher
//! then applies it like any other change.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use rustls::ClientConfig;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use sequoia_openpgp::policy::StandardPolicy;
use sequoia_openpgp::{Cert, KeyHandle};

use super::{Book, BookError, HttpsUrl, base_dir_of, check_public_cert, parse};
use crate::http_client::{self, Limits, Target};
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// Largest book or signature fetched.
pub const MAX_FETCH: usize = 4 << 20;

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The fetched book was written to the file (the watcher applies it).
    Written { serial: u64, gateways: usize },
    /// The fetched book is not newer than the one in force; nothing written.
    NotNewer { fetched: u64, current: u64 },
}

/// A TLS client trusting the system CA bundle, for fetching the book.
pub fn system_roots_client_config() -> Result<Arc<ClientConfig>, BookError> {
    Ok(crate::tls::system_roots_client_config()?)
}

/// A TLS client trusting the CA certificates of a PEM bundle.
pub fn roots_client_config(bundle: &Path) -> Result<Arc<ClientConfig>, BookError> {
    Ok(crate::tls::roots_client_config(bundle)?)
}

/// The publisher's public certificate (armored or binary), checked like a
/// peer's but without the need for an encryption key.
pub fn load_publisher(path: &Path) -> Result<Cert, BookError> {
    let publisher_err = |reason: String| BookError::Publisher {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|cause| BookError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let cert = Cert::from_bytes(&bytes)
        .map_err(|e| publisher_err(format!("not an OpenPGP certificate: {e}")))?;
    check_public_cert(&cert, false).map_err(publisher_err)?;
    Ok(cert)
}

/// Fetches `url` and `{url}.sig`, verifies the signature against
/// `publisher`, validates the book (relative `tls_ca` paths against
/// `path`'s directory) and, if its serial is higher than `current_serial`,
/// writes it atomically to `path`.
pub async fn sync_once(
    url: &str,
    publisher: &Cert,
    path: &Path,
    current_serial: u64,
    tls: Arc<ClientConfig>,
) -> Result<SyncOutcome, BookError> {
    let fetch_err = |reason: String| BookError::Fetch {
        url: url.to_string(),
        reason,
    };
    let book_url = HttpsUrl::parse(url).map_err(|r| fetch_err(format!("bad URL: {r}")))?;
    let sig_url =
        HttpsUrl::parse(&format!("{url}.sig")).map_err(|r| fetch_err(format!("bad URL: {r}")))?;
    let text = fetch(&book_url, tls.clone()).await.map_err(fetch_err)?;
    let signature = fetch(&sig_url, tls).await.map_err(|r| BookError::Fetch {
        url: format!("{url}.sig"),
        reason: r,
    })?;
    verify_detached(publisher, &text, &signature).map_err(|reason| BookError::BadSignature {
        url: url.to_string(),
        reason,
    })?;
    let text = String::from_utf8(text.to_vec()).map_err(|_| fetch_err("not UTF-8 text".into()))?;
    let book = parse(&text, &base_dir_of(path)).map_err(|error| BookError::Fetched {
        url: url.to_string(),
        error: Box::new(error),
    })?;
    if book.serial <= current_serial {
        return Ok(SyncOutcome::NotNewer {
            fetched: book.serial,
            current: current_serial,
        });
    }
    let target = path.to_path_buf();
    let bytes = text.into_bytes();
    tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
        .await
        .map_err(|e| fetch_err(format!("writer task: {e}")))??;
    Ok(SyncOutcome::Written {
        serial: book.serial,
        gateways: book.len(),
    })
}

/// Syncs now and then every `every`; outcomes and errors are logged (an
/// error keeps the book in force and is retried next time: never a
/// failure).
pub struct BookSync {
    url: String,
    publisher: Cert,
    path: PathBuf,
    every: Duration,
    tls: Arc<ClientConfig>,
    book: Book,
    /// The serial last written, in case the watcher has not applied it yet.
    written: u64,
}

impl BookSync {
    pub fn new(
        url: String,
        publisher: Cert,
        path: PathBuf,
        every: Duration,
        tls: Arc<ClientConfig>,
        book: Book,
    ) -> BookSync {
        BookSync {
            url,
            publisher,
            path,
            every,
            tls,
            book,
            written: 0,
        }
    }
}

impl Worker for BookSync {
    fn name(&self) -> &'static str {
        "address_book_sync"
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        let (url, path) = (&self.url, &self.path);
        let current = self.book.current().serial.max(self.written);
        match sync_once(url, &self.publisher, path, current, self.tls.clone()).await {
            Ok(SyncOutcome::Written { serial, gateways }) => {
                self.written = serial;
                tracing::info!(%url, serial, gateways, path = %path.display(), "address book synced");
            }
            Ok(SyncOutcome::NotNewer { fetched, current }) => {
                tracing::debug!(%url, fetched, current, "address book sync: not newer");
            }
            Err(error) => {
                tracing::error!(%error, "address book sync failed; the book in force stays");
            }
        }
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.every).await;
    }
}

/// GET over HTTPS, 200 only, body at most [`MAX_FETCH`], within the
/// one client's timeouts.
async fn fetch(url: &HttpsUrl, tls: Arc<ClientConfig>) -> Result<Bytes, String> {
    let target = Target {
        host: url.host_text.clone(),
        port: url.port,
        name: url.host.clone(),
    };
    let request = hyper::Request::get(url.target())
        .header(hyper::header::HOST, url.host_header())
        .header(hyper::header::USER_AGENT, http_client::USER_AGENT)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let limits = Limits::default().with_max_body(MAX_FETCH);
    let answer = http_client::exchange(&target, tls, request, limits)
        .await
        .map_err(|e| e.to_string())?;
    if answer.status != hyper::StatusCode::OK {
        return Err(format!("HTTP status {}", answer.status));
    }
    Ok(answer.body)
}

/// A good signature by a valid signing key of `publisher` (standard
/// policy, now) over `data`.
fn verify_detached(publisher: &Cert, data: &[u8], signature: &[u8]) -> Result<(), String> {
    struct Helper<'a> {
        publisher: &'a Cert,
        errors: Vec<String>,
    }
    impl VerificationHelper for Helper<'_> {
        fn get_certs(&mut self, _ids: &[KeyHandle]) -> sequoia_openpgp::Result<Vec<Cert>> {
            Ok(vec![self.publisher.clone()])
        }
        fn check(&mut self, structure: MessageStructure) -> sequoia_openpgp::Result<()> {
            for layer in structure {
                if let MessageLayer::SignatureGroup { results } = layer {
                    for result in results {
                        match result {
                            Ok(_) => return Ok(()),
                            Err(e) => self.errors.push(e.to_string()),
                        }
                    }
                }
            }
            Err(anyhow::anyhow!("no good signature"))
        }
    }
    let policy = StandardPolicy::new();
    let helper = Helper {
        publisher,
        errors: Vec::new(),
    };
    let no_signature = |e: anyhow::Error| {
        format!(
            "{e} (no signature by publisher {})",
            publisher.fingerprint()
        )
    };
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .and_then(|builder| builder.with_policy(&policy, None, helper))
        .map_err(no_signature)?;
    match verifier.verify_bytes(data) {
        Ok(()) => Ok(()),
        Err(e) if verifier.helper_ref().errors.is_empty() => Err(no_signature(e)),
        Err(_) => Err(verifier.helper_ref().errors.join("; ")),
    }
}

/// Temp file in the same directory, fsync, rename over `path`, fsync the
/// directory: readers see the old or the new book, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BookError> {
    let dir = base_dir_of(path);
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |cause| BookError::Io { path: p, cause }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "address-book".into());
    let temp = dir.join(format!(".{name}.sync-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp).map_err(io_err(&temp))?;
        file.write_all(bytes).map_err(io_err(&temp))?;
        file.sync_all().map_err(io_err(&temp))?;
        std::fs::rename(&temp, path).map_err(io_err(path))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
