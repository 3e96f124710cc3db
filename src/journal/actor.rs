//! Who did something, as the journal names them: a member of staff logged
//! in to the console (by the hospital's identity provider or a local
//! account), or a program holding the admin token. The grant's issuer and
//! the revoker are this, never text someone typed.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// Stable and unique: `oidc:<issuer>#<sub>`, `local:<account>`, or
    /// `admin-token`.
    pub id: String,
    /// As people read it: the provider's `name` claim, the account name,
    /// or "admin token".
    pub name: String,
    /// `user` (gebruiker), `admin` (applicatiebeheerder) or `token`.
    pub role: String,
}

impl ActorRecord {
    /// Whoever holds the admin token (the CLI, scripts).
    pub fn admin_token() -> ActorRecord {
        ActorRecord {
            id: "admin-token".into(),
            name: "admin token".into(),
            role: "token".into(),
        }
    }
}

/// What happened in the console: logins, refusals, account changes.
/// Grant changes made there are the grant events, with their actor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ConsoleEvent {
    LoggedIn {
        actor: ActorRecord,
        /// `oidc` or `local`.
        via: String,
        from: String,
    },
    /// A login that did not succeed; `account`: the name tried (local) or
    /// the subject the provider named (OIDC), when there is one.
    LoginFailed {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        account: String,
        via: String,
        reason: String,
        from: String,
    },
    LoggedOut {
        actor: ActorRecord,
        from: String,
    },
    /// A page or action the person's role does not allow.
    Refused {
        actor: ActorRecord,
        what: String,
        from: String,
    },
    /// The journal searched, exported or reported on in the console
    /// (reading the audit is itself recorded); `query`: the filter asked.
    Audited {
        actor: ActorRecord,
        /// `search`, `export.jsonl`, `export.csv`, `patient report`.
        what: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        query: String,
        from: String,
    },
    /// A local account made, disabled, reset or enrolled.
    Account {
        account: String,
        change: String,
        by: ActorRecord,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        from: String,
    },
}
