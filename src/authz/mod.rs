//! Every access decision in one place: the administrator's token, and push
//! authorizations — grants, their secrets, binding to a holder,
//! re-authorization (doorautoriseren), scope checks — each decision journaled.

mod admin;
mod audit;
mod coverage;
mod decide;
mod grant;
mod grants;
mod identity;
mod issue;
mod limiter;
mod push;
pub mod secret;
mod service;
mod shares;
mod staff;
mod staff_shares;
mod workers;

pub use admin::{AdminToken, AdminTokenError, bearer, read_token};
pub use audit::patient_record;
pub use coverage::{Coverage, Excluded, HolderCoverage, HolderSeries, SeriesCoverage};
pub use decide::{Allowed, Bound, Caller, Credentials, Denied, Link};
pub use grant::{
    Awaited, Grant, GrantId, GrantState, LegalBasis, Mismatch, Recipient, Revocation, Scope,
    Target, Widening,
};
pub use identity::{CertIdentity, Holder, IdentityError, UZI_OTHER_NAME_OID, Uzi};
pub use issue::{GrantCounts, GrantDetail, GrantView, IssueRequest, Issued, Shape};
pub use limiter::client_key;
pub use push::PushDenied;
pub use service::{Authz, AuthzError, Served};
pub use shares::{Share, Shares};
pub use staff::{NotYourRole, Person, Role, StaffAction};
pub use staff_shares::StaffDenied;
pub use workers::{AccessionResolver, ExpirySweeper};

#[cfg(test)]
mod tests;
