//! Every access decision in one place. For now: the administrator's bearer
//! token. Push authorizations (grants, holders, delegation) join here.

mod admin;

pub use admin::read_token;

pub use admin::{AdminToken, AdminTokenError};
