//! The TOML shape of the configuration, before validation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::base::{AeTitle, PacsAddress, Ura};

use super::{
    AdminConfig, BookSync, CapacityConfig, Config, ConfigError, DicomConfig, ForwardConfig,
    GrantsConfig, HttpConfig, ImportConfig, JournalConfig, LogConfig, LogFormat, PacsConfig,
    RelayConfig, RetentionConfig, Retrieve, TlsFiles, parse_duration, parse_size,
};

pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    data_dir: String,
    public_url: String,
    org_name: String,
    org_ura: String,
    dicom: RawDicom,
    http: RawHttp,
    admin: RawAdmin,
    console: super::console::RawConsole,
    grants: RawGrants,
    import: RawImport,
    relay: RawRelay,
    forward: RawForward,
    pacs: RawPacs,
    retention: RawRetention,
    capacity: RawCapacity,
    journal: RawJournal,
    log: RawLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDicom {
    listen: String,
    ae_title: String,
    allowed_calling_aes: Vec<String>,
    max_associations: usize,
    max_associations_per_address: usize,
    stable_after: String,
    max_pdu: u32,
    timeout: String,
    request_timeout: String,
    idle_timeout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: String,
    tls_cert: String,
    tls_key: String,
    client_ca: Vec<String>,
    uzi_ca: Vec<String>,
    client_crl: Vec<String>,
    cors_origins: Vec<String>,
    idle_timeout: String,
    max_connections_per_address: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    token_file: String,
    on_public_listener: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    default_ttl: String,
    max_ttl: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    watch_dir: String,
    settle: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    key: String,
    address_book: String,
    address_book_url: String,
    address_book_publisher: String,
    address_book_sync_every: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForward {
    pacs: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPacs {
    address: String,
    calling_ae: String,
    retrieve: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    keep_after_last_grant: String,
    max_age: String,
    sweep_every: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapacity {
    high_water: String,
    min_free: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    head_every: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: String,
}

/// Overlay `user` on `base`, table by table; any other value in `user` wins.
fn overlay(base: &mut toml::Table, user: toml::Table) {
    for (key, value) in user {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(u)) => overlay(b, u),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The prefix of environment overrides: `PUSHGATE__DICOM__AE_TITLE=GW1`
/// sets `[dicom] ae_title`. Two underscores separate the path so that keys
/// with one (`ae_title`) stay whole, and `PUSHGATE_CONFIG` is not one.
pub const ENV_PREFIX: &str = "PUSHGATE__";

/// Applies environment overrides to the merged table. A variable must name
/// a key the defaults have (a typo is an error, as in the file). A string
/// key takes the value as it is; any other key takes a TOML value (`64`,
/// `true`, `["A", "B"]`), so a list can be set from a unit file too.
fn apply_env(base: &mut toml::Table, env: &[(String, String)]) -> Result<(), EnvError> {
    for (name, value) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let err = |message: String| EnvError {
            name: name.clone(),
            message,
        };
        let (last, tables) = keys
            .split_last()
            .filter(|(last, _)| !last.is_empty())
            .ok_or_else(|| err("names no key".to_string()))?;
        let mut table = &mut *base;
        for key in tables {
            table = match table.get_mut(key) {
                Some(toml::Value::Table(t)) => t,
                _ => return Err(err(format!("there is no section [{key}]"))),
            };
        }
        let parsed = match table.get(last) {
            None | Some(toml::Value::Table(_)) => {
                return Err(err(format!("there is no key {}", keys.join("."))));
            }
            Some(toml::Value::String(_)) => toml::Value::String(value.clone()),
            Some(_) => format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .ok_or_else(|| err(format!("{value:?} is not a TOML value")))?,
        };
        table.insert(last.clone(), parsed);
    }
    Ok(())
}

pub(super) struct EnvError {
    pub name: String,
    pub message: String,
}

pub(super) enum MergeError {
    File(String),
    Env(EnvError),
}

impl RawConfig {
    /// Defaults, then the operator's file, then the environment. Returns the
    /// typed shape and the merged table (the effective configuration).
    pub(super) fn merged(
        user_text: &str,
        env: &[(String, String)],
    ) -> Result<(RawConfig, toml::Table), MergeError> {
        let mut base: toml::Table = DEFAULTS_TOML
            .parse()
            .map_err(|e| MergeError::File(format!("embedded defaults: {e}")))?;
        let user: toml::Table = user_text
            .parse()
            .map_err(|e: toml::de::Error| MergeError::File(e.to_string()))?;
        overlay(&mut base, user);
        apply_env(&mut base, env).map_err(MergeError::Env)?;
        let raw = toml::Value::Table(base.clone())
            .try_into()
            .map_err(|e: toml::de::Error| MergeError::File(e.to_string()))?;
        Ok((raw, base))
    }

    pub(super) fn validate(self) -> Result<Config, ConfigError> {
        let data_dir = PathBuf::from(non_empty("data_dir", &self.data_dir)?);
        let public_url = self.public_url.trim_end_matches('/').to_string();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(invalid(
                "public_url",
                "must start with https:// (or http://)",
            ));
        }
        let org_ura = Ura::parse(&self.org_ura).map_err(|e| invalid("org_ura", &e.to_string()))?;

        let dicom = self.dicom.validate()?;
        let http = self.http.validate(&data_dir)?;
        let console = self.console.validate()?;
        let token_file = match self.admin.token_file.trim() {
            "" => data_dir.join("admin.token"),
            path => PathBuf::from(path),
        };
        let grants = GrantsConfig {
            default_ttl: parse_duration("grants.default_ttl", &self.grants.default_ttl)?,
            max_ttl: parse_duration("grants.max_ttl", &self.grants.max_ttl)?,
        };
        if grants.default_ttl > grants.max_ttl {
            return Err(invalid(
                "grants.default_ttl",
                "is longer than grants.max_ttl",
            ));
        }
        let import = ImportConfig {
            watch_dir: optional_path(&self.import.watch_dir),
            settle: parse_duration("import.settle", &self.import.settle)?,
        };
        let relay = RelayConfig {
            key: optional_path(&self.relay.key)
                .unwrap_or_else(|| data_dir.join("relay").join("key.pgp")),
            address_book: optional_path(&self.relay.address_book),
            sync: match self.relay.address_book_url.trim() {
                "" => None,
                url => {
                    if !url.starts_with("https://") {
                        return Err(invalid(
                            "relay.address_book_url",
                            &format!("{url:?}: the address book is fetched over https://"),
                        ));
                    }
                    let publisher = optional_path(&self.relay.address_book_publisher)
                        .ok_or_else(|| {
                            invalid(
                                "relay.address_book_publisher",
                                "a synced address book needs the publisher's OpenPGP certificate (a file)",
                            )
                        })?;
                    if optional_path(&self.relay.address_book).is_none() {
                        return Err(invalid(
                            "relay.address_book",
                            "a synced address book needs a local file to keep it in",
                        ));
                    }
                    Some(BookSync {
                        url: url.to_string(),
                        publisher,
                        every: parse_duration(
                            "relay.address_book_sync_every",
                            &self.relay.address_book_sync_every,
                        )?,
                    })
                }
            },
        };
        let pacs = self.forward.pacs.trim();
        let forward = ForwardConfig {
            pacs: if pacs.is_empty() {
                None
            } else {
                Some(validate_ae_address("forward.pacs", pacs)?)
            },
        };
        let pacs = PacsConfig {
            address: match self.pacs.address.trim() {
                "" => None,
                address => Some(validate_ae_address("pacs.address", address)?),
            },
            calling_ae: match self.pacs.calling_ae.trim() {
                "" => dicom.ae_title.clone(),
                ae => validate_ae_title("pacs.calling_ae", ae)?,
            },
            retrieve: match self.pacs.retrieve.as_str() {
                "move" => Retrieve::Move,
                "get" => Retrieve::Get,
                other => {
                    return Err(invalid(
                        "pacs.retrieve",
                        &format!(
                            "{other:?}: \"move\" (C-MOVE to dicom.ae_title) or \"get\" (C-GET)"
                        ),
                    ));
                }
            },
        };
        let retention = self.retention.validate()?;
        let capacity = self.capacity.validate()?;
        let head_every = parse_duration("journal.head_every", &self.journal.head_every)?;
        if head_every.is_zero() {
            return Err(invalid("journal.head_every", "must be longer than 0s"));
        }
        let log = LogConfig {
            format: match self.log.format.as_str() {
                "plain" => LogFormat::Plain,
                "json" => LogFormat::Json,
                other => {
                    return Err(invalid(
                        "log.format",
                        &format!("{other:?}: expected \"plain\" or \"json\""),
                    ));
                }
            },
        };
        Ok(Config {
            data_dir,
            public_url,
            org_name: self.org_name,
            org_ura,
            dicom,
            http,
            admin: AdminConfig {
                token_file,
                on_public_listener: self.admin.on_public_listener,
            },
            console,
            grants,
            import,
            relay,
            forward,
            pacs,
            retention,
            capacity,
            journal: JournalConfig { head_every },
            log,
        })
    }
}

impl RawRetention {
    fn validate(self) -> Result<RetentionConfig, ConfigError> {
        let sweep_every = parse_duration("retention.sweep_every", &self.sweep_every)?;
        if sweep_every.is_zero() {
            return Err(invalid("retention.sweep_every", "must be longer than 0s"));
        }
        Ok(RetentionConfig {
            keep_after_last_grant: duration_or_off(
                "retention.keep_after_last_grant",
                &self.keep_after_last_grant,
            )?,
            max_age: duration_or_off("retention.max_age", &self.max_age)?,
            sweep_every,
        })
    }
}

/// "off" (or empty) turns a retention rule off; anything else is a duration.
fn duration_or_off(
    key: &'static str,
    value: &str,
) -> Result<Option<std::time::Duration>, ConfigError> {
    match value.trim() {
        "" | "off" => Ok(None),
        v => parse_duration(key, v).map(Some),
    }
}

impl RawCapacity {
    fn validate(self) -> Result<CapacityConfig, ConfigError> {
        let percent = self
            .high_water
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|p| *p > 0.0 && *p <= 100.0)
            .ok_or_else(|| {
                invalid(
                    "capacity.high_water",
                    &format!(
                        "{:?} is not a percentage like \"90%\" (above 0, at most 100)",
                        self.high_water
                    ),
                )
            })?;
        Ok(CapacityConfig {
            high_water_percent: percent,
            min_free_bytes: parse_size("capacity.min_free", &self.min_free)?,
        })
    }
}

impl RawDicom {
    fn validate(self) -> Result<DicomConfig, ConfigError> {
        let ae_title = validate_ae_title("dicom.ae_title", &self.ae_title)?;
        let allowed_calling_aes = self
            .allowed_calling_aes
            .iter()
            .map(|ae| validate_ae_title("dicom.allowed_calling_aes", ae))
            .collect::<Result<_, _>>()?;
        if self.max_associations == 0 {
            return Err(invalid("dicom.max_associations", "must be at least 1"));
        }
        if self.max_associations_per_address == 0 {
            return Err(invalid(
                "dicom.max_associations_per_address",
                "must be at least 1",
            ));
        }
        let request_timeout = parse_duration("dicom.request_timeout", &self.request_timeout)?;
        if request_timeout.is_zero() {
            return Err(invalid("dicom.request_timeout", "must be longer than 0s"));
        }
        // PS3.8 allows any length; dicom-ul's reader accepts 1 KiB..16 MiB.
        if !(4096..=16 * 1024 * 1024).contains(&self.max_pdu) {
            return Err(invalid(
                "dicom.max_pdu",
                "must be between 4096 and 16777216 bytes",
            ));
        }
        Ok(DicomConfig {
            listen: parse_socket_addr("dicom.listen", &self.listen)?,
            ae_title,
            allowed_calling_aes,
            max_associations: self.max_associations,
            // More than the whole would only mislead whoever reads it.
            max_associations_per_address: self
                .max_associations_per_address
                .min(self.max_associations),
            stable_after: parse_duration("dicom.stable_after", &self.stable_after)?,
            max_pdu: self.max_pdu,
            timeout: parse_duration("dicom.timeout", &self.timeout)?,
            request_timeout,
            idle_timeout: parse_duration("dicom.idle_timeout", &self.idle_timeout)?,
        })
    }
}

impl RawHttp {
    fn validate(self, _data_dir: &Path) -> Result<HttpConfig, ConfigError> {
        let tls = match (optional_path(&self.tls_cert), optional_path(&self.tls_key)) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => {
                return Err(invalid(
                    "http.tls_cert",
                    "set both http.tls_cert and http.tls_key, or neither (self-signed)",
                ));
            }
        };
        let idle_timeout = parse_duration("http.idle_timeout", &self.idle_timeout)?;
        if idle_timeout < std::time::Duration::from_secs(1) {
            return Err(invalid("http.idle_timeout", "must be at least 1s"));
        }
        let most = super::MAX_HTTP_CONNECTIONS;
        if !(1..=most).contains(&self.max_connections_per_address) {
            return Err(invalid(
                "http.max_connections_per_address",
                &format!("must be between 1 and {most} (all connections at once)"),
            ));
        }
        Ok(HttpConfig {
            listen: parse_socket_addr("http.listen", &self.listen)?,
            idle_timeout,
            max_connections_per_address: self.max_connections_per_address,
            tls,
            client_ca: self.client_ca.iter().map(PathBuf::from).collect(),
            uzi_ca: self.uzi_ca.iter().map(PathBuf::from).collect(),
            client_crl: self.client_crl.iter().map(PathBuf::from).collect(),
            cors_origins: self
                .cors_origins
                .iter()
                .map(|o| cors_origin(o))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// `*`, or an origin: scheme, host and optional port, nothing else.
fn cors_origin(origin: &str) -> Result<String, ConfigError> {
    let origin = origin.trim().trim_end_matches('/');
    let valid = origin == "*"
        || ["https://", "http://"].iter().any(|scheme| {
            origin.strip_prefix(scheme).is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            })
        });
    if valid {
        Ok(origin.to_string())
    } else {
        Err(invalid(
            "http.cors_origins",
            &format!("{origin:?} is not an origin like https://viewer.example.org or *"),
        ))
    }
}

pub(super) fn invalid(key: &'static str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.to_string(),
    }
}

fn non_empty<'a>(key: &'static str, value: &'a str) -> Result<&'a str, ConfigError> {
    match value.trim() {
        "" => Err(invalid(key, "must not be empty")),
        v => Ok(v),
    }
}

pub(super) fn optional_path(value: &str) -> Option<PathBuf> {
    match value.trim() {
        "" => None,
        v => Some(PathBuf::from(v)),
    }
}

pub(super) fn parse_socket_addr(key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        invalid(
            key,
            &format!("{value:?} is not an address like \"0.0.0.0:11112\" or \"[::1]:8443\""),
        )
    })
}

/// An AE title is 1–16 characters of the default repertoire, no backslash or
/// control characters; leading and trailing spaces are not significant.
fn validate_ae_title(key: &'static str, value: &str) -> Result<AeTitle, ConfigError> {
    AeTitle::parse(value).map_err(|e| invalid(key, &e.to_string()))
}

/// The value the SCU connects to, parsed once here.
fn validate_ae_address(key: &'static str, value: &str) -> Result<PacsAddress, ConfigError> {
    value
        .parse::<PacsAddress>()
        .map_err(|e| invalid(key, &format!("expected \"AE@host:port\": {e}")))
}
