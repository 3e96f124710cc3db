//! `pushgate init`: makes what a new installation needs (the data directory,
//! the admin token, the self-signed TLS certificate, the OpenPGP key) and
//! keeps whatever is already there. The Debian package's postinst runs it on
//! every configure, so it must never replace a secret: a new admin token
//! would lock the operator's scripts out, a new OpenPGP key every peer.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;

use crate::authz::AdminToken;
use crate::config::Config;
use crate::relay;
use crate::tls;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    #[error("data directory {path}: {cause}")]
    DataDir {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error("admin token: {0}")]
    AdminToken(#[from] crate::authz::AdminTokenError),
    #[error("TLS certificate: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("OpenPGP key: {0}")]
    Key(#[from] relay::RelayError),
}

fn report(out: &mut impl Write, existed: bool, what: &str, path: &std::path::Path) {
    let verb = if existed { "kept   " } else { "created" };
    let _ = writeln!(out, "{verb} {what:<16} {}", path.display());
}

pub fn init(config: &Config, out: &mut impl Write) -> Result<(), InitError> {
    let dir = &config.data_dir;
    let existed = dir.is_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(|cause| InitError::DataDir {
            path: dir.clone(),
            cause,
        })?;
    report(out, existed, "data directory", dir);

    let token = &config.admin.token_file;
    let existed = token.exists();
    AdminToken::load_or_create(token)?;
    report(out, existed, "admin token", token);

    let (cert, key) = tls::cert_paths(config);
    if config.http.tls.is_some() {
        // The operator's own certificate: only check that it loads.
        tls::load_certs(&cert)?;
        let _ = writeln!(
            out,
            "uses    TLS certificate  {} (http.tls_cert)",
            cert.display()
        );
    } else {
        let existed = cert.exists() && key.exists();
        tls::ensure_certificate(config)?;
        report(out, existed, "TLS certificate", &cert);
    }

    let existed = config.relay.key.exists();
    let key = relay::own_key(config)?;
    report(out, existed, "OpenPGP key", &config.relay.key);
    let _ = writeln!(out, "        fingerprint      {}", key.fingerprint());
    Ok(())
}

/// `pushgate config check`: what the configuration refers to must also be
/// usable — the TLS certificate and key, the client CAs and CRLs, the
/// address book and the publisher's certificate. Returns the problems; the
/// syntax and values were checked when the configuration was loaded.
pub fn check_references(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(files) = &config.http.tls {
        if let Err(e) = tls::load_certs(&files.cert) {
            problems.push(format!("http.tls_cert: {e}"));
        }
        if let Err(e) = std::fs::File::open(&files.key) {
            problems.push(format!("http.tls_key {}: {e}", files.key.display()));
        }
    }
    if let Err(e) = tls::client_verifier(config) {
        problems.push(format!("http.client_ca / client_crl: {e}"));
    }
    if let Err(e) = tls::uzi_issuers(config) {
        problems.push(format!("http.uzi_ca: {e}"));
    }
    if let Some(book) = &config.relay.address_book {
        // A synced book may not have been fetched yet.
        let loaded = if config.relay.sync.is_some() {
            relay::book::Book::load_if_exists(book)
        } else {
            relay::book::Book::load(book)
        };
        if let Err(e) = loaded {
            problems.push(format!("relay.address_book: {e}"));
        }
    }
    if let Some(sync) = &config.relay.sync
        && let Err(e) = relay::book::load_publisher(&sync.publisher)
    {
        problems.push(format!("relay.address_book_publisher: {e}"));
    }
    problems
}
