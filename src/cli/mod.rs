//! The commands besides `serve`: they talk to the running daemon through its
//! admin API (sled allows one opener), except `reindex`, which needs the
//! daemon stopped.

pub mod audit;
mod client;
mod grants;
pub mod init;
pub mod pacs;
pub mod relay;
mod studies;
mod users;

pub use client::{AdminClient, ClientError};
pub use grants::{ShareArgs, list as list_grants, revoke, share};
pub use studies::{print_studies, reindex};
pub use users::{UsersAction, users};
