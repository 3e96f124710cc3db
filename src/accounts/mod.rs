//! Who staff are: the hospital's identity provider (OpenID Connect) or
//! local accounts (Argon2id password plus a TOTP second factor), each
//! giving a [`Person`] with a role. What a person may do is decided in
//! `authz::staff`.

pub mod local;
pub mod oidc;
mod totp;

use std::sync::Arc;

use crate::authz::{Authz, Person};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    #[error("{0}")]
    Store(String),
    #[error("{0}")]
    Config(String),
}

/// Both ways in, as configured.
pub struct Accounts {
    pub local: local::LocalAccounts,
    /// `[console.oidc]`, when an issuer is set.
    pub oidc: Option<oidc::Oidc>,
}

impl Accounts {
    /// Blocking (opens the account store, reads the client secret).
    pub fn open(
        config: &Config,
        store: &Store,
        authz: Arc<Authz>,
    ) -> Result<Accounts, AccountsError> {
        let local = local::LocalAccounts::open(store.accounts.clone(), authz, &config.org_name)
            .map_err(|e| AccountsError::Store(e.to_string()))?;
        let oidc = match &config.console.oidc {
            Some(oidc) => Some(oidc::Oidc::open(oidc).map_err(AccountsError::Config)?),
            None => None,
        };
        Ok(Accounts { local, oidc })
    }

    /// May this person, logged in earlier, still act? A local account
    /// disabled or reset since ends its sessions.
    pub fn still_active(&self, person: &Person) -> bool {
        match person.id.strip_prefix("local:") {
            Some(name) => self.local.is_active(name),
            None => true,
        }
    }
}
