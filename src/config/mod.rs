//! Configuration: the embedded defaults (`defaults.toml`) overlaid with the
//! operator's TOML file, validated once into typed values. Nothing downstream
//! sees a raw string that still needs checking.

mod console;
mod raw;

pub use console::{ConsoleConfig, OidcConfig};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::DEFAULTS_TOML;

use crate::base::{AeTitle, PacsAddress, Ura};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("config file {path} is not valid TOML for pushgate: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("config key {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The validated configuration of one pushgate instance.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub public_url: String,
    pub org_name: String,
    pub org_ura: Ura,
    pub dicom: DicomConfig,
    pub http: HttpConfig,
    pub admin: AdminConfig,
    pub console: ConsoleConfig,
    pub grants: GrantsConfig,
    pub import: ImportConfig,
    pub relay: RelayConfig,
    pub forward: ForwardConfig,
    pub pacs: PacsConfig,
    pub retention: RetentionConfig,
    pub capacity: CapacityConfig,
    pub journal: JournalConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone)]
pub struct DicomConfig {
    pub listen: SocketAddr,
    pub ae_title: AeTitle,
    /// Empty: any calling AE title is accepted.
    pub allowed_calling_aes: Vec<AeTitle>,
    pub max_associations: usize,
    /// Of `max_associations` (and as many connections waiting for their
    /// A-ASSOCIATE-RQ), what one peer address may hold; at most the whole.
    pub max_associations_per_address: usize,
    pub stable_after: Duration,
    pub max_pdu: u32,
    /// A PDU that has begun must be complete within this; also the wait for
    /// the next PDU of a message, and for the peer to take our answer.
    pub timeout: Duration,
    /// From TCP accept to a complete A-ASSOCIATE-RQ.
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
}

/// HTTPS connections open at once, from everyone (not configurable;
/// `http.max_connections_per_address` is a share of it).
pub const MAX_HTTP_CONNECTIONS: usize = 1024;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// `None`: a self-signed certificate generated into the data directory.
    pub tls: Option<TlsFiles>,
    pub client_ca: Vec<PathBuf>,
    /// CAs whose certificates may carry a UZI identity (empty: all of
    /// `client_ca`).
    pub uzi_ca: Vec<PathBuf>,
    pub client_crl: Vec<PathBuf>,
    /// Origins whose pages may call DICOMweb (`*`: any).
    pub cors_origins: Vec<String>,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// Connections one client address (IPv6: its /64) may hold at once.
    pub max_connections_per_address: usize,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub token_file: PathBuf,
    /// The admin API on the public listener too (the upgrade path for
    /// scripts of before the console); off: only on the console's.
    pub on_public_listener: bool,
}

#[derive(Debug, Clone)]
pub struct GrantsConfig {
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct ImportConfig {
    pub watch_dir: Option<PathBuf>,
    pub settle: Duration,
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub key: PathBuf,
    pub address_book: Option<PathBuf>,
    /// Where the address book is published, if it is synced.
    pub sync: Option<BookSync>,
}

#[derive(Debug, Clone)]
pub struct BookSync {
    /// The book; its detached signature is at the same URL plus `.sig`.
    pub url: String,
    /// The publisher's OpenPGP certificate (a file).
    pub publisher: PathBuf,
    pub every: Duration,
}

#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// `AE@host:port` of the local PACS, if inbound studies are forwarded.
    pub pacs: Option<PacsAddress>,
}

/// The local PACS to query and retrieve from (`pushgate pacs`,
/// `crate::dimse::scu::qr`).
#[derive(Debug, Clone)]
pub struct PacsConfig {
    /// `AE@host:port`; `None`: no PACS to ask.
    pub address: Option<PacsAddress>,
    /// Our AE title towards it (default `dicom.ae_title`).
    pub calling_ae: AeTitle,
    pub retrieve: Retrieve,
}

/// How a study is brought in from the PACS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrieve {
    /// C-MOVE: the PACS sends to `dicom.ae_title`, which it must know.
    Move,
    /// C-GET: on the same association.
    Get,
}

/// When studies are deleted (see `crate::retention`).
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// After the last grant on a study ended (`None`: shared studies stay).
    pub keep_after_last_grant: Option<Duration>,
    /// After the last instance of a study never shared arrived (`None`:
    /// such studies stay).
    pub max_age: Option<Duration>,
    pub sweep_every: Duration,
}

/// Publishing the journal's head (see `crate::journal::HeadPublisher`).
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// How often the head is logged and the signed head file rewritten
    /// (besides at start and stop).
    pub head_every: Duration,
}

/// When intake stops for lack of disk space (see `crate::capacity`).
#[derive(Debug, Clone)]
pub struct CapacityConfig {
    /// Used space of the data_dir filesystem, in percent as `df` shows it,
    /// above which intake stops; 100 means no limit.
    pub high_water_percent: f64,
    /// Free bytes below which intake stops too; 0 means no floor.
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
}

impl Config {
    /// The embedded defaults alone, as `make run` uses them.
    pub fn defaults() -> Result<Config, ConfigError> {
        Self::from_toml_str("", Path::new("<defaults>"))
    }

    /// Load `path` over the embedded defaults (`None`: defaults only), then
    /// the `PUSHGATE__SECTION__KEY` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_effective(path).map(|(config, _)| config)
    }

    /// As [`Config::load`], and the effective configuration as TOML (every
    /// key, after defaults, file and environment): what `config check`
    /// prints.
    pub fn load_effective(path: Option<&Path>) -> Result<(Config, String), ConfigError> {
        let (text, origin) = match path {
            None => (String::new(), Path::new("<defaults>")),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
                    path: path.to_path_buf(),
                    cause,
                })?;
                (text, path)
            }
        };
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with(raw::ENV_PREFIX))
            .collect();
        Self::from_parts(&text, origin, &env)
    }

    /// Parse `text` (the operator's file) over the embedded defaults.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        Self::from_parts(text, origin, &[]).map(|(config, _)| config)
    }

    fn from_parts(
        text: &str,
        origin: &Path,
        env: &[(String, String)],
    ) -> Result<(Config, String), ConfigError> {
        let (raw, table) = raw::RawConfig::merged(text, env).map_err(|e| match e {
            raw::MergeError::File(message) => ConfigError::Parse {
                path: origin.to_path_buf(),
                message,
            },
            raw::MergeError::Env(e) => ConfigError::Env {
                name: e.name,
                message: e.message,
            },
        })?;
        let effective = toml::to_string(&table).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: format!("cannot print the effective configuration: {e}"),
        })?;
        Ok((raw.validate()?, effective))
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    pub fn instances_dir(&self) -> PathBuf {
        self.data_dir.join("instances")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.data_dir.join("journal")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    /// Where a client on this host reaches the HTTPS listener.
    pub fn local_http_addr(&self) -> SocketAddr {
        local_addr(self.http.listen)
    }

    /// Where a client on this host reaches the console (and the admin API).
    pub fn local_console_addr(&self) -> SocketAddr {
        local_addr(self.console.listen)
    }

    /// Where a client on this host reaches the DICOM listener.
    pub fn local_dicom_addr(&self) -> SocketAddr {
        local_addr(self.dicom.listen)
    }
}

/// The keys whose values differ between two effective configurations (as
/// [`Config::load_effective`] prints them), as `section.key`.
pub fn changed_keys(old: &str, new: &str) -> Vec<String> {
    fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
        for (key, value) in table {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(t) => flatten(&name, t, out),
                v => out.push((name, v.clone())),
            }
        }
    }
    let parse = |text: &str| {
        let mut out = Vec::new();
        if let Ok(table) = text.parse::<toml::Table>() {
            flatten("", &table, &mut out);
        }
        out
    };
    let (old, new) = (parse(old), parse(new));
    let mut changed: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.iter().find(|(o, _)| o == k).map(|(_, ov)| ov) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    changed.extend(
        old.iter()
            .filter(|(k, _)| !new.iter().any(|(n, _)| n == k))
            .map(|(k, _)| k.clone()),
    );
    changed.sort();
    changed.dedup();
    changed
}

/// A wildcard listen address is reached over loopback of the same family.
fn local_addr(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into()),
            SocketAddr::V6(_) => addr.set_ip(std::net::Ipv6Addr::LOCALHOST.into()),
        }
    }
    addr
}

/// Parses "20s", "5m", "14d", "1h 30m" (humantime syntax).
pub fn parse_duration(key: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| ConfigError::Invalid {
        key,
        message: format!("{value:?} is not a duration like \"20s\", \"5m\" or \"14d\": {e}"),
    })
}

/// Parses "1GiB", "500MB", "0" (decimal and binary units, bytes without one).
pub fn parse_size(key: &'static str, value: &str) -> Result<u64, ConfigError> {
    let text = value.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => u64::MAX,
    };
    match number.parse::<f64>() {
        Ok(n) if multiplier != u64::MAX && n >= 0.0 && n.is_finite() => {
            Ok((n * multiplier as f64) as u64)
        }
        _ => Err(ConfigError::Invalid {
            key,
            message: format!("{value:?} is not a size like \"1GiB\", \"500MB\" or \"0\""),
        }),
    }
}

#[cfg(test)]
mod tests;
