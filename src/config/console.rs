//! `[console]` and `[console.oidc]`: the department's console, on its own
//! listener (loopback by default: the staff side never faces the internet
//! unless the operator says so).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::raw::{invalid, optional_path, parse_socket_addr};
use super::{ConfigError, TlsFiles, parse_duration};

#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub listen: SocketAddr,
    /// How staff reach the console (`https://host[:port]`), for the links
    /// it hands out (enrolment) and the OIDC redirect URI; `None`: the
    /// address each request came to.
    pub url: Option<String>,
    /// `None`: the public listener's certificate.
    pub tls: Option<TlsFiles>,
    /// A session with no request this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, however busy.
    pub absolute_lifetime: Duration,
    /// Modalities left unticked when a study is shared (e.g. PR).
    pub exclude_by_default: Vec<String>,
    /// `None`: local accounts only.
    pub oidc: Option<OidcConfig>,
}

/// The hospital's identity provider (authorization code flow with PKCE).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Its discovery document lives at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    pub scopes: Vec<String>,
    /// The ID token claim whose values give the role (a string or a list).
    pub role_claim: String,
    pub admin_values: Vec<String>,
    pub user_values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    listen: String,
    url: String,
    tls_cert: String,
    tls_key: String,
    idle_timeout: String,
    absolute_lifetime: String,
    exclude_by_default: Vec<String>,
    oidc: RawOidc,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    client_id: String,
    client_secret_file: String,
    scopes: Vec<String>,
    role_claim: String,
    admin_values: Vec<String>,
    user_values: Vec<String>,
}

impl RawConsole {
    pub(super) fn validate(self) -> Result<ConsoleConfig, ConfigError> {
        let tls = match (optional_path(&self.tls_cert), optional_path(&self.tls_key)) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => {
                return Err(invalid(
                    "console.tls_cert",
                    "set both console.tls_cert and console.tls_key, or neither (the public listener's)",
                ));
            }
        };
        let idle_timeout = parse_duration("console.idle_timeout", &self.idle_timeout)?;
        let absolute_lifetime =
            parse_duration("console.absolute_lifetime", &self.absolute_lifetime)?;
        if idle_timeout < Duration::from_secs(60) {
            return Err(invalid("console.idle_timeout", "must be at least 1m"));
        }
        if absolute_lifetime < idle_timeout {
            return Err(invalid(
                "console.absolute_lifetime",
                "is shorter than console.idle_timeout",
            ));
        }
        Ok(ConsoleConfig {
            listen: parse_socket_addr("console.listen", &self.listen)?,
            url: console_url(&self.url)?,
            tls,
            idle_timeout,
            absolute_lifetime,
            exclude_by_default: self
                .exclude_by_default
                .iter()
                .map(|m| {
                    crate::base::modality_code(m).ok_or_else(|| {
                        invalid(
                            "console.exclude_by_default",
                            &format!("{:?} is not a modality code (such as PR)", m.trim()),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            oidc: self.oidc.validate()?,
        })
    }
}

/// `console.url`: `https://` and an authority, nothing after it (the
/// console's paths are its own); empty: none.
fn console_url(raw: &str) -> Result<Option<String>, ConfigError> {
    let url = raw.trim().trim_end_matches('/');
    if url.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| invalid("console.url", &format!("{url:?}: {why}"));
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(bad("the console is reached over https://"));
    };
    let authority: hyper::http::uri::Authority = rest
        .parse()
        .map_err(|_| bad("give https://host or https://host:port, nothing after it"))?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad(
            "give https://host or https://host:port, nothing after it",
        ));
    }
    Ok(Some(format!("https://{authority}")))
}

impl RawOidc {
    fn validate(self) -> Result<Option<OidcConfig>, ConfigError> {
        let issuer = self.issuer.trim().trim_end_matches('/').to_string();
        if issuer.is_empty() {
            return Ok(None);
        }
        // plain http only on loopback (a test provider, a local proxy)
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| issuer.starts_with(p));
        if !issuer.starts_with("https://") && !loopback {
            return Err(invalid(
                "console.oidc.issuer",
                &format!("{issuer:?}: the identity provider is reached over https://"),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(invalid(
                "console.oidc.client_id",
                "an identity provider needs the client_id it knows pushgate by",
            ));
        }
        if self.admin_values.is_empty() && self.user_values.is_empty() {
            return Err(invalid(
                "console.oidc.user_values",
                "name the values of console.oidc.role_claim that may log in (user_values, admin_values)",
            ));
        }
        if self.role_claim.trim().is_empty() {
            return Err(invalid("console.oidc.role_claim", "must name a claim"));
        }
        let mut scopes = self.scopes;
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        Ok(Some(OidcConfig {
            issuer,
            client_id: self.client_id.trim().to_string(),
            client_secret_file: optional_path(&self.client_secret_file),
            scopes,
            role_claim: self.role_claim.trim().to_string(),
            admin_values: self.admin_values,
            user_values: self.user_values,
        }))
    }
}
