//! OpenID Connect login against the hospital's identity provider (Entra
//! ID, AD FS, Keycloak): the authorization code flow with PKCE (S256).
//!
//! - The discovery document (`{issuer}/.well-known/openid-configuration`)
//!   and the provider's keys (its `jwks_uri`) are fetched when first
//!   needed and kept for [`CACHE_FOR`]; an ID token signed with a key id
//!   not in the cached set fetches the keys again (key rotation), at most
//!   once per [`REFETCH_AT_MOST`].
//! - The provider is reached over `https://` (checked against the system's
//!   CA bundle, `/etc/ssl/certs/ca-certificates.crt`), or over plain
//!   `http://` when it is on a loopback address (a provider on this host, a
//!   test); every fetch is bounded in time and size (`fetch`).
//! - A login in progress is kept here, keyed by its `state` (256 random
//!   bits) with its `nonce`, PKCE verifier, the page to return to and the
//!   hash of a browser binding (the `__Host-pushgate_oidc` cookie), for at
//!   most [`PENDING_FOR`] and once: the answer of the provider is accepted
//!   only by the browser that started the login (no login CSRF).
//! - The code is exchanged at the token endpoint with `client_secret_basic`
//!   (`client_secret_post` when the provider offers only that; a public
//!   client without a secret sends its id); the ID token is checked in
//!   `token`; the role comes from [`OidcConfig::role_claim`].

mod fetch;
mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use rustls::ClientConfig;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::authz::{Person, Role, secret};
use crate::config::OidcConfig;
use fetch::{Endpoint, form, form_encode};
pub use token::TokenError;

/// How long the discovery document and the keys are used before they are
/// fetched again.
pub const CACHE_FOR: Duration = Duration::from_secs(3600);
/// An unknown key id fetches the keys again, but not more often than this.
pub const REFETCH_AT_MOST: Duration = Duration::from_secs(30);
/// A login started and not finished within this is forgotten.
pub const PENDING_FOR: Duration = Duration::from_secs(600);
/// Logins in progress at once; beyond it the oldest is forgotten.
const MAX_PENDING: usize = 10_000;
/// What of the provider's own error text is shown and journaled.
const MAX_PROVIDER_TEXT: usize = 300;

/// The console's way in through the hospital's identity provider.
pub struct Oidc {
    config: OidcConfig,
    secret: Option<String>,
    /// `None`: no CA bundle; only a loopback `http://` provider works.
    tls: Option<Arc<ClientConfig>>,
    discovery: tokio::sync::Mutex<Option<(Instant, Arc<Discovery>)>>,
    keys: tokio::sync::Mutex<Option<Keys>>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// The provider's keys as last fetched.
struct Keys {
    fetched: Instant,
    /// The last fetch for a key id the set did not have.
    forced: Option<Instant>,
    keys: Arc<Vec<Jwk>>,
}

/// What pushgate uses of the discovery document.
#[derive(Debug)]
struct Discovery {
    authorization: Endpoint,
    token: Endpoint,
    jwks: Endpoint,
    end_session: Option<Endpoint>,
    post_secret: bool,
}

#[derive(Debug, Deserialize)]
struct RawDiscovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

#[derive(Debug)]
struct Pending {
    nonce: String,
    verifier: String,
    next: String,
    redirect_uri: String,
    binding: String,
    started: Instant,
}

/// A login begun: where to send the browser, and the browser binding for
/// its cookie.
#[derive(Debug)]
pub struct Started {
    pub location: String,
    pub binding: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Clone, Copy)]
pub enum Callback<'a> {
    Code {
        code: &'a str,
        /// RFC 9207's `iss`, when the provider sends it.
        iss: Option<&'a str>,
    },
    /// The provider's `error` and `error_description`.
    Error {
        error: &'a str,
        description: &'a str,
    },
}

/// A login finished.
#[derive(Debug)]
pub struct LoggedIn {
    pub person: Person,
    /// For the provider's logout (`id_token_hint`).
    pub id_token: String,
    /// The local page to go to.
    pub next: String,
}

/// Why a login through the provider did not succeed. None of these carry
/// a token or a code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    #[error("the identity provider cannot be used: {0}")]
    Provider(String),
    #[error("the identity provider refused the login: {error}{}", dash(.description))]
    Denied { error: String, description: String },
    #[error("this login has expired or was already used; start again")]
    State,
    #[error("this login was started in another browser; start again")]
    OtherBrowser,
    #[error("the identity provider sent the answer of another issuer ({0:?})")]
    MixUp(String),
    #[error("the identity provider did not accept the login code: {error}{}", dash(.description))]
    Code { error: String, description: String },
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("your account has no pushgate role; ask the application manager")]
    NoRole { sub: String },
}

fn dash(description: &str) -> String {
    if description.is_empty() {
        String::new()
    } else {
        format!(" — {description}")
    }
}

impl OidcError {
    /// The reason in Dutch, for the page.
    pub fn nl(&self) -> String {
        match self {
            OidcError::Provider(why) => format!("de identity provider is niet bruikbaar: {why}"),
            OidcError::Denied { error, description } => {
                format!(
                    "de identity provider weigerde het inloggen: {error}{}",
                    dash(description)
                )
            }
            OidcError::State => "deze inlogpoging is verlopen of al gebruikt; begin opnieuw".into(),
            OidcError::OtherBrowser => {
                "deze inlogpoging is in een andere browser begonnen; begin opnieuw".into()
            }
            OidcError::MixUp(iss) => {
                format!("het antwoord komt van een andere identity provider ({iss:?})")
            }
            OidcError::Code { error, description } => format!(
                "de identity provider accepteerde de inlogcode niet: {error}{}",
                dash(description)
            ),
            OidcError::Token(e) => e.nl(),
            OidcError::NoRole { .. } => {
                "uw account heeft geen rol in pushgate; vraag de applicatiebeheerder".into()
            }
        }
    }

    /// The subject the provider named, when the token was good.
    pub fn account(&self) -> &str {
        match self {
            OidcError::NoRole { sub } => sub,
            _ => "",
        }
    }
}

impl Oidc {
    /// Reads the client secret (a file, trimmed); loads the system's CA
    /// bundle (required for an `https://` issuer). Blocking; nothing is
    /// fetched yet.
    pub fn open(config: &OidcConfig) -> Result<Oidc, String> {
        let issuer =
            Endpoint::parse(&config.issuer).map_err(|e| format!("console.oidc.issuer: {e}"))?;
        let secret = match &config.client_secret_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("console.oidc.client_secret_file {}: {e}", path.display())
                })?;
                let text = text.trim();
                if text.is_empty() {
                    return Err(format!(
                        "console.oidc.client_secret_file {} is empty",
                        path.display()
                    ));
                }
                Some(text.to_string())
            }
        };
        let tls = match crate::tls::system_roots_client_config() {
            Ok(tls) => Some(tls),
            Err(e) if issuer.uri.scheme_str() == Some("https") => {
                return Err(format!(
                    "console.oidc.issuer {}: no CA bundle to check its certificate: {e}",
                    config.issuer
                ));
            }
            Err(_) => None,
        };
        Ok(Oidc {
            config: config.clone(),
            secret,
            tls,
            discovery: tokio::sync::Mutex::new(None),
            keys: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The issuer, as configured.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Starts a login: a fresh state, nonce and PKCE verifier kept here;
    /// the authorization endpoint's URL to send the browser to.
    /// `redirect_uri` is the console's callback as the browser reaches it;
    /// `next` a local page (checked by the caller); `binding` the browser's
    /// binding cookie, if it has one already (several tabs).
    pub async fn begin(
        &self,
        redirect_uri: &str,
        next: &str,
        binding: Option<&str>,
    ) -> Result<Started, OidcError> {
        let discovery = self.discovery().await?;
        let state = secret::new_holder_token().0;
        let nonce = secret::new_holder_token().0;
        let verifier = secret::new_holder_token().0;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let binding = binding
            .filter(|b| {
                b.len() == 43
                    && b.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            })
            .map_or_else(|| secret::new_holder_token().0, str::to_string);
        let scope = self.config.scopes.join(" ");
        let query = form(&[
            ("response_type", "code"),
            ("client_id", &self.config.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", &scope),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let base = discovery.authorization.uri.to_string();
        let joiner = if base.contains('?') { '&' } else { '?' };
        let location = format!("{base}{joiner}{query}");
        let pending = Pending {
            nonce,
            verifier,
            next: next.to_string(),
            redirect_uri: redirect_uri.to_string(),
            binding: secret::token_hash(&binding),
            started: Instant::now(),
        };
        let mut open = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, p| p.started.elapsed() < PENDING_FOR);
        if open.len() >= MAX_PENDING
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(state, pending);
        Ok(Started { location, binding })
    }

    /// The provider's answer for `state`, from the browser holding
    /// `binding`: the login in progress is used up whatever happens; a code
    /// is exchanged and its ID token checked; the person and their role
    /// from its claims.
    pub async fn finish(
        &self,
        state: &str,
        binding: Option<&str>,
        callback: Callback<'_>,
    ) -> Result<LoggedIn, OidcError> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .filter(|p| p.started.elapsed() < PENDING_FOR)
            .ok_or(OidcError::State)?;
        let bound = binding.is_some_and(|b| {
            subtle::ConstantTimeEq::ct_eq(
                secret::token_hash(b).as_bytes(),
                pending.binding.as_bytes(),
            )
            .into()
        });
        if !bound {
            return Err(OidcError::OtherBrowser);
        }
        let code = match callback {
            Callback::Error { error, description } => {
                return Err(OidcError::Denied {
                    error: clip(error),
                    description: clip(description),
                });
            }
            Callback::Code { iss: Some(iss), .. } if iss != self.config.issuer => {
                return Err(OidcError::MixUp(clip(iss)));
            }
            Callback::Code { code, .. } => code,
        };
        let id_token = self.exchange(code, &pending).await?;
        let claims = self.verify(&id_token, &pending.nonce).await?;
        let person = self.person(&claims)?;
        Ok(LoggedIn {
            person,
            id_token,
            next: pending.next,
        })
    }

    /// The provider's logout URL for a session that logged in with
    /// `id_token`, back to `post_logout_redirect_uri`; `None` when the
    /// provider has no `end_session_endpoint` (or cannot be reached).
    pub async fn end_session_url(
        &self,
        id_token: &str,
        post_logout_redirect_uri: &str,
    ) -> Option<String> {
        let discovery = self.discovery().await.ok()?;
        let end = discovery.end_session.as_ref()?.uri.to_string();
        let joiner = if end.contains('?') { '&' } else { '?' };
        let query = form(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", post_logout_redirect_uri),
            ("client_id", &self.config.client_id),
        ]);
        Some(format!("{end}{joiner}{query}"))
    }

    /// The code for the ID token, at the token endpoint.
    async fn exchange(&self, code: &str, pending: &Pending) -> Result<String, OidcError> {
        let discovery = self.discovery().await?;
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        let mut authorization = None;
        match &self.secret {
            Some(secret) if discovery.post_secret => {
                pairs.push(("client_id", &self.config.client_id));
                pairs.push(("client_secret", secret));
            }
            Some(secret) => {
                // RFC 6749 §2.3.1: both form-encoded before Basic
                let credentials = format!(
                    "{}:{}",
                    form_encode(&self.config.client_id),
                    form_encode(secret)
                );
                authorization = Some(format!("Basic {}", STANDARD.encode(credentials)));
            }
            None => pairs.push(("client_id", &self.config.client_id)),
        }
        let answer = fetch::post_form(
            &discovery.token,
            self.tls.as_ref(),
            form(&pairs),
            authorization,
        )
        .await
        .map_err(OidcError::Provider)?;
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if !answer.status.is_success() {
            return Err(OidcError::Code {
                error: clip(body["error"].as_str().unwrap_or(answer.status.as_str())),
                description: clip(body["error_description"].as_str().unwrap_or("")),
            });
        }
        body["id_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| OidcError::Provider("the token endpoint sent no id_token".into()))
    }

    /// The ID token's claims, when it passes every check.
    async fn verify(&self, id_token: &str, nonce: &str) -> Result<Value, OidcError> {
        let (alg, kid) = token::header(id_token)?;
        let key = self.key(alg, kid.as_deref()).await?;
        let claims = token::verify_signature(id_token, alg, &key)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        token::check_claims(
            &claims,
            &token::Expect {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce,
                now,
            },
        )?;
        Ok(claims)
    }

    fn person(&self, claims: &Value) -> Result<Person, OidcError> {
        let sub = claims["sub"].as_str().unwrap_or_default();
        let role =
            role_of(claims, &self.config).ok_or_else(|| OidcError::NoRole { sub: clip(sub) })?;
        let name = ["name", "preferred_username"]
            .iter()
            .filter_map(|c| claims[*c].as_str())
            .map(str::trim)
            .find(|n| !n.is_empty())
            .unwrap_or(sub);
        Ok(Person {
            id: format!("oidc:{}#{sub}", self.config.issuer),
            name: clip(name),
            role,
        })
    }

    /// The discovery document, cached for [`CACHE_FOR`].
    async fn discovery(&self) -> Result<Arc<Discovery>, OidcError> {
        let mut cached = self.discovery.lock().await;
        if let Some((at, discovery)) = cached.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return Ok(discovery.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
        let discovery = Arc::new(
            self.fetch_discovery(&url)
                .await
                .map_err(|e| OidcError::Provider(format!("its discovery document {url}: {e}")))?,
        );
        *cached = Some((Instant::now(), discovery.clone()));
        Ok(discovery)
    }

    async fn fetch_discovery(&self, url: &str) -> Result<Discovery, String> {
        let answer = fetch::get(&Endpoint::parse(url)?, self.tls.as_ref()).await?;
        if !answer.status.is_success() {
            return Err(format!("HTTP status {}", answer.status));
        }
        let raw: RawDiscovery =
            serde_json::from_slice(&answer.body).map_err(|e| format!("not usable: {e}"))?;
        parse_discovery(raw, &self.config.issuer)
    }

    /// The provider's key for a token's `alg` and `kid`: from the cached
    /// set, or from a set fetched again when the cached one is old or does
    /// not have it (a rotated key; at most once per [`REFETCH_AT_MOST`]).
    async fn key(&self, alg: jsonwebtoken::Algorithm, kid: Option<&str>) -> Result<Jwk, OidcError> {
        let mut cached = self.keys.lock().await;
        let mut forced = None;
        if let Some(c) = cached.as_ref() {
            let found = token::select(&c.keys, kid, alg);
            match found {
                Some(key) if c.fetched.elapsed() < CACHE_FOR => return Ok(key.clone()),
                Some(_) => {}
                None if c.forced.is_some_and(|at| at.elapsed() < REFETCH_AT_MOST) => {
                    return Err(unknown_key(kid));
                }
                None => forced = Some(Instant::now()),
            }
        }
        let discovery = self.discovery().await?;
        let keys =
            Arc::new(self.fetch_keys(&discovery.jwks).await.map_err(|e| {
                OidcError::Provider(format!("its keys {}: {e}", discovery.jwks.uri))
            })?);
        let forced = forced.or(cached.as_ref().and_then(|c| c.forced));
        *cached = Some(Keys {
            fetched: Instant::now(),
            forced,
            keys: keys.clone(),
        });
        token::select(&keys, kid, alg)
            .cloned()
            .ok_or_else(|| unknown_key(kid))
    }

    async fn fetch_keys(&self, jwks: &Endpoint) -> Result<Vec<Jwk>, String> {
        let answer = fetch::get(jwks, self.tls.as_ref()).await?;
        if !answer.status.is_success() {
            return Err(format!("HTTP status {}", answer.status));
        }
        let set: Value =
            serde_json::from_slice(&answer.body).map_err(|e| format!("not JSON: {e}"))?;
        let keys = set["keys"].as_array().ok_or("no \"keys\"")?;
        // keys pushgate cannot use (encryption keys, other types) are skipped
        Ok(keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect())
    }
}

fn unknown_key(kid: Option<&str>) -> OidcError {
    OidcError::Token(TokenError::UnknownKey(clip(kid.unwrap_or("none"))))
}

/// The discovery document's endpoints, checked: the issuer it names is
/// the configured one exactly (OpenID Connect Discovery §4.3), each
/// endpoint https (or loopback http), PKCE with S256 possible.
fn parse_discovery(raw: RawDiscovery, issuer: &str) -> Result<Discovery, String> {
    if raw.issuer != issuer {
        return Err(format!(
            "it names the issuer {:?}, not {issuer:?} as configured",
            raw.issuer
        ));
    }
    if let Some(methods) = &raw.code_challenge_methods_supported
        && !methods.iter().any(|m| m == "S256")
    {
        return Err("it does not offer PKCE with S256".into());
    }
    let methods = raw
        .token_endpoint_auth_methods_supported
        .unwrap_or_default();
    let post_secret = !methods.is_empty()
        && !methods.iter().any(|m| m == "client_secret_basic")
        && methods.iter().any(|m| m == "client_secret_post");
    let endpoint = |name: &str, url: &str| Endpoint::parse(url).map_err(|e| format!("{name}: {e}"));
    Ok(Discovery {
        authorization: endpoint("authorization_endpoint", &raw.authorization_endpoint)?,
        token: endpoint("token_endpoint", &raw.token_endpoint)?,
        jwks: endpoint("jwks_uri", &raw.jwks_uri)?,
        end_session: match raw.end_session_endpoint.as_deref() {
            None | Some("") => None,
            Some(url) => Some(endpoint("end_session_endpoint", url)?),
        },
        post_secret,
    })
}

/// The role the claims give: a value of `role_claim` (a string or a list
/// of strings; a dotted name such as `realm_access.roles` reaches into an
/// object when no claim has that name) in `admin_values` makes an
/// applicatiebeheerder, in `user_values` a gebruiker; admin wins.
pub fn role_of(claims: &Value, config: &OidcConfig) -> Option<Role> {
    let claim = match claims.get(&config.role_claim) {
        Some(value) => value,
        None => config
            .role_claim
            .split('.')
            .try_fold(claims, |v, part| v.get(part))?,
    };
    let values: Vec<&str> = match claim {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let any = |wanted: &[String]| values.iter().any(|v| wanted.iter().any(|w| w == v));
    if any(&config.admin_values) {
        Some(Role::Admin)
    } else if any(&config.user_values) {
        Some(Role::User)
    } else {
        None
    }
}

/// The provider's text, as much as is shown: bounded, one line.
fn clip(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_PROVIDER_TEXT)
        .collect()
}

#[cfg(test)]
mod tests;
