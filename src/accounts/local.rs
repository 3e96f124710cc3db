//! Local accounts, for a department without an identity provider the
//! console can use: made by the application manager (`pushgate users add`
//! or the console's Users page), which gives a one-time enrolment link
//! (24 hours); the person opens it, sets a password (Argon2id) and proves
//! the TOTP second factor their app now holds. Both are needed at every
//! login. `disable` ends an account and its sessions; `reset` gives a new
//! enrolment link (new password, new TOTP secret), which is also how a
//! disabled account comes back.
//!
//! The accounts are one small document (`store::AccountStore`): password
//! hashes in PHC form, TOTP secrets in base32 — the secrets must be kept
//! to check codes, so the file is readable by the daemon only (0600 in a
//! 0750 directory). Enrolment tokens are kept only as their SHA-256.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::totp;
use crate::authz::{Authz, Person, Role, secret};
use crate::journal::{ActorRecord, ConsoleEvent, Event};
use crate::store::{AccountStore, Timestamp};

/// How long an enrolment link works.
const ENROLMENT: Duration = Duration::from_secs(24 * 3600);
/// The shortest password accepted (NCSC and NIST both ask length, not
/// character classes).
pub const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountError {
    #[error("an account name is 1 to 64 of a-z, 0-9, '.', '-', '_' (got {0:?})")]
    BadName(String),
    #[error("there is already an account {0:?}")]
    Exists(String),
    #[error("there is no account {0:?}")]
    Unknown(String),
    #[error("the account store: {0}")]
    Store(String),
}

/// Why an enrolment did not go through: the page says which.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnrolError {
    #[error(
        "this enrolment link is not valid (any more); ask the application manager for a new one"
    )]
    NoSuchLink,
    #[error("the password must be at least {MIN_PASSWORD} characters")]
    TooShort,
    #[error("the password is too long")]
    TooLong,
    #[error("the two passwords are not the same")]
    Mismatch,
    #[error(
        "the code from the authenticator app is not right; check the app's clock and try the next code"
    )]
    WrongCode,
    #[error("{0}")]
    Store(String),
}

/// Why a login did not go through. One answer for a wrong name, a wrong
/// password and a wrong code: nothing tells a guesser which part was right.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginError {
    #[error("the name, password or code is not right")]
    Wrong,
    #[error("too many failed logins; try again in {} minute(s)", .0.as_secs().div_ceil(60).max(1))]
    Limited(Duration),
    #[error("{0}")]
    Store(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum State {
    Enrolling {
        token_hash: String,
        expires: Timestamp,
        totp_secret: String,
    },
    Active {
        password: String,
        totp_secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_step: Option<u64>,
    },
    Disabled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    name: String,
    display_name: String,
    role: Role,
    created: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_login: Option<Timestamp>,
    #[serde(flatten)]
    state: State,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    version: u32,
    accounts: BTreeMap<String, Account>,
}

/// An account as the Users page and `pushgate users list` show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountView {
    pub name: String,
    pub display_name: String,
    pub role: Role,
    /// "enrolling", "active" or "disabled".
    pub state: &'static str,
    pub created: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Timestamp>,
    /// Until when the enrolment link works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrol_expires: Option<Timestamp>,
}

/// A new enrolment: the link's token, shown once.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub name: String,
    pub token: String,
    pub expires: Timestamp,
}

/// What the enrolment page shows.
#[derive(Debug, Clone)]
pub struct Pending {
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub secret: Vec<u8>,
}

pub struct LocalAccounts {
    store: Arc<dyn AccountStore>,
    authz: Arc<Authz>,
    accounts: Mutex<Document>,
    /// The issuer named in the authenticator app ("pushgate — <org>").
    issuer: String,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

fn now_seconds() -> u64 {
    Timestamp::now().0 / 1000
}

fn decode_secret(base32: &str) -> Vec<u8> {
    data_encoding::BASE32_NOPAD
        .decode(base32.as_bytes())
        .unwrap_or_default()
}

impl LocalAccounts {
    /// Reads the accounts. Blocking.
    pub fn open(
        store: Arc<dyn AccountStore>,
        authz: Arc<Authz>,
        org: &str,
    ) -> Result<LocalAccounts, AccountError> {
        let document = match store
            .load()
            .map_err(|e| AccountError::Store(e.to_string()))?
        {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| AccountError::Store(format!("accounts.json cannot be read: {e}")))?,
            None => Document {
                version: 1,
                ..Document::default()
            },
        };
        Ok(LocalAccounts {
            store,
            authz,
            accounts: Mutex::new(document),
            issuer: format!("pushgate {org}"),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Document> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the document with `change` applied, or changes nothing.
    fn change<T>(
        &self,
        change: impl FnOnce(&mut Document) -> Result<T, AccountError>,
    ) -> Result<T, AccountError> {
        let mut document = self.lock();
        let mut next = Document {
            version: document.version,
            accounts: document.accounts.clone(),
        };
        let out = change(&mut next)?;
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| AccountError::Store(e.to_string()))?;
        self.store
            .save(&bytes)
            .map_err(|e| AccountError::Store(e.to_string()))?;
        *document = next;
        Ok(out)
    }

    fn journal(&self, account: &str, change: &str, by: &ActorRecord, from: &str) {
        self.authz
            .journal()
            .append(Event::Console(ConsoleEvent::Account {
                account: account.into(),
                change: change.into(),
                by: by.clone(),
                from: from.into(),
            }));
    }

    fn new_enrolment() -> Result<(String, State, Timestamp), AccountError> {
        let (token, token_hash) = secret::new_url_token();
        let totp_secret = totp::new_secret().map_err(AccountError::Store)?;
        let expires = Timestamp::now().saturating_add(ENROLMENT);
        let state = State::Enrolling {
            token_hash,
            expires,
            totp_secret: totp::base32(&totp_secret),
        };
        Ok((token, state, expires))
    }

    /// A new account, waiting for its person to enrol. Blocking.
    pub fn add(
        &self,
        name: &str,
        display_name: &str,
        role: Role,
        by: &ActorRecord,
        from: &str,
    ) -> Result<Enrolment, AccountError> {
        let name = name.trim().to_lowercase();
        if !valid_name(&name) {
            return Err(AccountError::BadName(name));
        }
        let (token, state, expires) = Self::new_enrolment()?;
        let display_name = match display_name.trim() {
            "" => name.clone(),
            given => given.chars().take(100).collect(),
        };
        self.change(|doc| {
            if doc.accounts.contains_key(&name) {
                return Err(AccountError::Exists(name.clone()));
            }
            doc.accounts.insert(
                name.clone(),
                Account {
                    name: name.clone(),
                    display_name,
                    role,
                    created: Timestamp::now(),
                    last_login: None,
                    state,
                },
            );
            Ok(())
        })?;
        self.journal(&name, &format!("added as {}", role.as_str()), by, from);
        Ok(Enrolment {
            name,
            token,
            expires,
        })
    }

    /// A new enrolment link for an account; its password, TOTP secret and
    /// sessions are gone (the caller ends the sessions). Blocking.
    pub fn reset(
        &self,
        name: &str,
        by: &ActorRecord,
        from: &str,
    ) -> Result<Enrolment, AccountError> {
        let name = name.trim().to_lowercase();
        let (token, state, expires) = Self::new_enrolment()?;
        self.change(|doc| {
            let account = doc
                .accounts
                .get_mut(&name)
                .ok_or_else(|| AccountError::Unknown(name.clone()))?;
            account.state = state;
            Ok(())
        })?;
        self.journal(&name, "reset", by, from);
        Ok(Enrolment {
            name,
            token,
            expires,
        })
    }

    /// Ends an account (the caller ends its sessions). Blocking.
    pub fn disable(&self, name: &str, by: &ActorRecord, from: &str) -> Result<(), AccountError> {
        let name = name.trim().to_lowercase();
        self.change(|doc| {
            let account = doc
                .accounts
                .get_mut(&name)
                .ok_or_else(|| AccountError::Unknown(name.clone()))?;
            account.state = State::Disabled;
            Ok(())
        })?;
        self.journal(&name, "disabled", by, from);
        Ok(())
    }

    pub fn list(&self) -> Vec<AccountView> {
        self.lock()
            .accounts
            .values()
            .map(|a| AccountView {
                name: a.name.clone(),
                display_name: a.display_name.clone(),
                role: a.role,
                state: match a.state {
                    State::Enrolling { .. } => "enrolling",
                    State::Active { .. } => "active",
                    State::Disabled => "disabled",
                },
                created: a.created,
                last_login: a.last_login,
                enrol_expires: match a.state {
                    State::Enrolling { expires, .. } => Some(expires),
                    _ => None,
                },
            })
            .collect()
    }

    /// May someone logged in as `name` still act?
    pub fn is_active(&self, name: &str) -> bool {
        matches!(
            self.lock().accounts.get(name).map(|a| &a.state),
            Some(State::Active { .. })
        )
    }

    /// The account an enrolment token belongs to, while it is valid.
    fn find_enrolling<'d>(doc: &'d Document, token: &str) -> Option<&'d Account> {
        let hash = secret::token_hash(token);
        let now = Timestamp::now();
        doc.accounts.values().find(|a| match &a.state {
            State::Enrolling {
                token_hash,
                expires,
                ..
            } => bool::from(token_hash.as_bytes().ct_eq(hash.as_bytes())) && *expires > now,
            _ => false,
        })
    }

    /// What the enrolment page shows, while the link is valid.
    pub fn pending(&self, token: &str) -> Option<Pending> {
        let doc = self.lock();
        let account = Self::find_enrolling(&doc, token)?;
        let State::Enrolling { totp_secret, .. } = &account.state else {
            return None;
        };
        Some(Pending {
            name: account.name.clone(),
            display_name: account.display_name.clone(),
            role: account.role,
            secret: decode_secret(totp_secret),
        })
    }

    /// The `otpauth://` URI for the app.
    pub fn totp_uri(&self, pending: &Pending) -> String {
        totp::uri(&self.issuer, &pending.name, &pending.secret)
    }

    /// Sets the password and proves the second factor; the link is used
    /// up, the person logged in. Blocking (Argon2id).
    pub fn enrol(
        &self,
        token: &str,
        password: &str,
        repeat: &str,
        code: &str,
        from: IpAddr,
    ) -> Result<Person, EnrolError> {
        let pending = self.pending(token).ok_or(EnrolError::NoSuchLink)?;
        if password.chars().count() < MIN_PASSWORD {
            return Err(EnrolError::TooShort);
        }
        if password.len() > MAX_PASSWORD {
            return Err(EnrolError::TooLong);
        }
        if password != repeat {
            return Err(EnrolError::Mismatch);
        }
        let Some(step) = totp::verify(&pending.secret, code, now_seconds(), None) else {
            self.authz
                .staff_login_failed(&pending.name, "local", "wrong TOTP at enrolment", from);
            return Err(EnrolError::WrongCode);
        };
        let hash = hash_password(password).map_err(EnrolError::Store)?;
        let person = self
            .change(|doc| {
                // the token is checked again under the lock: used once
                let name = Self::find_enrolling(doc, token)
                    .map(|a| a.name.clone())
                    .ok_or(AccountError::Unknown(pending.name.clone()))?;
                let account = doc
                    .accounts
                    .get_mut(&name)
                    .ok_or(AccountError::Unknown(name.clone()))?;
                account.state = State::Active {
                    password: hash,
                    totp_secret: totp::base32(&pending.secret),
                    last_step: Some(step),
                };
                account.last_login = Some(Timestamp::now());
                Ok(person_of(account))
            })
            .map_err(|e| match e {
                AccountError::Unknown(_) => EnrolError::NoSuchLink,
                other => EnrolError::Store(other.to_string()),
            })?;
        self.journal(
            &person_name(&person),
            "enrolled",
            &person.actor(),
            &from.to_string(),
        );
        self.authz.staff_logged_in(&person, "local", from);
        Ok(person)
    }

    /// Name, password and TOTP code; limited per account and per address,
    /// every failure journaled. Blocking (Argon2id).
    pub fn login(
        &self,
        name: &str,
        password: &str,
        code: &str,
        from: IpAddr,
    ) -> Result<Person, LoginError> {
        let name = name.trim().to_lowercase();
        if let Err(wait) = self.authz.staff_login_may_try(&name, from) {
            self.authz
                .staff_login_failed(&name, "local", "rate limited", from);
            return Err(LoginError::Limited(wait));
        }
        let found = self.lock().accounts.get(&name).cloned();
        let (hash, secret, last_step) = match found.as_ref().map(|a| &a.state) {
            Some(State::Active {
                password,
                totp_secret,
                last_step,
            }) => (password.clone(), decode_secret(totp_secret), *last_step),
            _ => {
                // the same work as for an account that exists
                let _ = verify_password(DUMMY_HASH, password);
                let reason = match found {
                    None => "no such account",
                    Some(_) => "account not active",
                };
                self.authz.staff_login_failed(&name, "local", reason, from);
                return Err(LoginError::Wrong);
            }
        };
        let password_ok = verify_password(&hash, password);
        let step = totp::verify(&secret, code, now_seconds(), last_step);
        let (true, Some(step)) = (password_ok, step) else {
            let reason = if password_ok {
                "wrong or reused TOTP code"
            } else {
                "wrong password"
            };
            self.authz.staff_login_failed(&name, "local", reason, from);
            return Err(LoginError::Wrong);
        };
        let person = self
            .change(|doc| {
                let account = doc
                    .accounts
                    .get_mut(&name)
                    .ok_or(AccountError::Unknown(name.clone()))?;
                match &mut account.state {
                    // the step is recorded: the same code cannot log in twice
                    State::Active { last_step, .. } if last_step.is_none_or(|l| step > l) => {
                        *last_step = Some(step);
                    }
                    _ => return Err(AccountError::Unknown(name.clone())),
                }
                account.last_login = Some(Timestamp::now());
                Ok(person_of(account))
            })
            .map_err(|e| match e {
                AccountError::Unknown(_) => LoginError::Wrong,
                other => LoginError::Store(other.to_string()),
            })?;
        self.authz.staff_logged_in(&person, "local", from);
        Ok(person)
    }
}

/// The TOTP secret as people type it: base32 in groups of four.
pub fn spaced_base32(secret: &[u8]) -> String {
    let plain = totp::base32(secret);
    plain
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn person_of(account: &Account) -> Person {
    Person {
        id: format!("local:{}", account.name),
        name: account.display_name.clone(),
        role: account.role,
    }
}

fn person_name(person: &Person) -> String {
    person
        .id
        .strip_prefix("local:")
        .unwrap_or(&person.id)
        .to_string()
}

/// A hash checked when the account does not exist, so that an unknown
/// name costs as long as a wrong password (the password is "unused").
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Lsuqz+4W3B1xhfTLQDF8L0oBHTPq0SXaNXyBNIeUMgk";

fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut salt)
        .map_err(|e| format!("no randomness from the operating system: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests;
