//! Staff in the department's console: who they are and what their role
//! lets them do. The accounts module proves who someone is (the hospital's
//! identity provider, or a local account with TOTP); what that person may
//! then do is decided here, like every other access decision, and a
//! refusal is journaled with the person's name.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::limiter::{KeyedLimiter, Limiter, Rate};
use super::service::Authz;
use crate::journal::{ActorRecord, ConsoleEvent, Event};

/// The two profiles of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// gebruiker: studies, share, send, their own shares.
    User,
    /// applicatiebeheerder: everything a user may, and all shares, users,
    /// the audit, the queue, the configuration.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" | "gebruiker" => Some(Role::User),
            "admin" | "applicatiebeheerder" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A member of staff, as proven at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// `oidc:<issuer>#<sub>` or `local:<account>`: stable, unique.
    pub id: String,
    /// As people read it.
    pub name: String,
    pub role: Role,
}

impl Person {
    pub fn actor(&self) -> ActorRecord {
        ActorRecord {
            id: self.id.clone(),
            name: self.name.clone(),
            role: self.role.as_str().into(),
        }
    }
}

/// What a person asks to do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffAction {
    /// Studies, share, send, own shares, revoke own, received.
    Work,
    /// Every grant, revoke any.
    AllShares,
    /// Local accounts.
    Users,
    /// Search and export the journal.
    Audit,
    /// The work queue: outbox and forwarding, retry, cancel.
    Queue,
    /// The effective configuration, read-only.
    Configuration,
}

impl StaffAction {
    fn name(self) -> &'static str {
        match self {
            StaffAction::Work => "work",
            StaffAction::AllShares => "all shares",
            StaffAction::Users => "users",
            StaffAction::Audit => "audit",
            StaffAction::Queue => "queue",
            StaffAction::Configuration => "configuration",
        }
    }
}

/// Why a person may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this is for an applicatiebeheerder; you are logged in as gebruiker")]
pub struct NotYourRole;

fn allows(role: Role, action: StaffAction) -> bool {
    match (role, action) {
        (Role::Admin, _) => true,
        (Role::User, StaffAction::Work) => true,
        (
            Role::User,
            StaffAction::AllShares
            | StaffAction::Users
            | StaffAction::Audit
            | StaffAction::Queue
            | StaffAction::Configuration,
        ) => false,
    }
}

/// How often a console login may fail: per address (ten, then one a
/// minute) and per account (five, then one every three minutes), counting
/// failures only. A hundred wrong passwords for one account cost the
/// guesser five hours; the account's owner from another address is limited
/// too, and told to wait, which is the price of not letting guesses through.
pub struct LoginLimits {
    per_address: Limiter,
    per_account: KeyedLimiter,
    /// Logins started with the identity provider, per address: each holds
    /// a slot among the bounded logins in progress, so that one address
    /// cannot push everyone else's out.
    starts: Limiter,
}

impl LoginLimits {
    pub fn new() -> LoginLimits {
        LoginLimits {
            per_address: Limiter::for_login_failures(),
            per_account: KeyedLimiter::new(Rate {
                burst: 5.0,
                per_second: 1.0 / 180.0,
            }),
            starts: Limiter::new(
                Rate {
                    burst: 20.0,
                    per_second: 20.0 / 60.0,
                },
                Rate {
                    burst: f64::MAX,
                    per_second: 0.0,
                },
            ),
        }
    }
}

/// The per-account limiter's key: the name as typed, lowercase, cut to
/// the longest an account name may be, so that names of any length cost
/// the limiter no more memory than real ones.
fn account_key(account: &str) -> String {
    account.chars().take(64).collect::<String>().to_lowercase()
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits::new()
    }
}

impl Authz {
    /// May a login for `account` from `from` be tried now? Err: how long
    /// to wait. Asked before any password is checked.
    pub fn staff_login_may_try(&self, account: &str, from: IpAddr) -> Result<(), Duration> {
        self.staff_logins.per_address.check(from)?;
        self.staff_logins
            .per_account
            .take(&account_key(account), false)
    }

    /// May a login with the identity provider be started from `from`?
    /// Twenty at once, then twenty a minute; Err: how long to wait.
    pub fn staff_login_may_start(&self, from: IpAddr) -> Result<(), Duration> {
        self.staff_logins.starts.attempt(from)
    }

    /// A login that failed: counted against the address and the account,
    /// journaled (within the bound every refusal shares).
    pub fn staff_login_failed(&self, account: &str, via: &str, reason: &str, from: IpAddr) {
        let _ = self.staff_logins.per_address.attempt(from);
        let _ = self
            .staff_logins
            .per_account
            .take(&account_key(account), true);
        self.journal_refusal(
            from,
            Event::Console(ConsoleEvent::LoginFailed {
                account: account.chars().take(100).collect(),
                via: via.into(),
                reason: reason.into(),
                from: from.to_string(),
            }),
        );
    }

    /// A login that succeeded, journaled.
    pub fn staff_logged_in(&self, person: &Person, via: &str, from: IpAddr) {
        self.journal.append(Event::Console(ConsoleEvent::LoggedIn {
            actor: person.actor(),
            via: via.into(),
            from: from.to_string(),
        }));
    }

    /// May `person` do `action`? A refusal is journaled (bounded per
    /// address, like every refusal).
    pub fn staff_may(
        &self,
        person: &Person,
        action: StaffAction,
        from: IpAddr,
    ) -> Result<(), NotYourRole> {
        if allows(person.role, action) {
            return Ok(());
        }
        self.journal_refusal(
            from,
            Event::Console(ConsoleEvent::Refused {
                actor: person.actor(),
                what: action.name().into(),
                from: from.to_string(),
            }),
        );
        Err(NotYourRole)
    }

    /// May `person` revoke (or see the detail of) a grant `issued_by`? A
    /// user only their own, an admin any.
    pub fn staff_owns(&self, person: &Person, issued_by: Option<&ActorRecord>) -> bool {
        person.role == Role::Admin || issued_by.is_some_and(|a| a.id == person.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_works_an_admin_does_everything() {
        for action in [
            StaffAction::Work,
            StaffAction::AllShares,
            StaffAction::Users,
            StaffAction::Audit,
            StaffAction::Queue,
            StaffAction::Configuration,
        ] {
            assert!(allows(Role::Admin, action));
            assert_eq!(allows(Role::User, action), action == StaffAction::Work);
        }
    }
}
