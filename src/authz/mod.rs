//! Every access decision in one place: the administrator's token, and push
//! authorizations — grants, their secrets, binding to a holder,
//! re-authorization (doorautoriseren), scope checks — each decision journaled.

mod admin;
mod decide;
mod grant;
mod grants;
mod identity;
mod issue;
mod limiter;
pub mod secret;
mod service;
mod shares;

pub use admin::{AdminToken, AdminTokenError, bearer, read_token};
pub use decide::{Allowed, Bound, Caller, Credentials, Denied, Link};
pub use grant::{Grant, GrantId, GrantState, Recipient, Revocation, Scope, Target};
pub use identity::{CertIdentity, Holder, IdentityError, UZI_OTHER_NAME_OID, Uzi};
pub use issue::{Coverage, GrantCounts, GrantDetail, GrantView, IssueRequest, Issued, Shape};
pub use limiter::client_key;
pub use service::{Authz, AuthzError, Served};
pub use shares::{Share, Shares};

#[cfg(test)]
mod tests;
