//! Every access decision in one place: the administrator's token, and push
//! authorizations — grants, their secrets, binding to a holder,
//! re-authorization (doorautoriseren), scope checks — each decision journaled.

mod admin;
mod grant;
mod grants;
mod identity;
mod issue;
mod limiter;
pub mod secret;
mod service;

pub use admin::{AdminToken, AdminTokenError, read_token};
pub use grant::{
    Grant, GrantId, GrantState, Recipient, Revocation, Scope, Target, covers_instance, targets,
};
pub use identity::{CertIdentity, Holder, IdentityError, UZI_OTHER_NAME_OID, Uzi};
pub use issue::{Coverage, GrantDetail, GrantView, IssueRequest, Issued, Shape};
pub use service::{Allowed, Authz, AuthzError, Bound, Caller, Credentials, Denied, Link, Served};

#[cfg(test)]
mod tests;
