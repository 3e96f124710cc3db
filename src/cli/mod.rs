//! The commands besides `serve`: they talk to the running daemon through its
//! admin API (sled allows one opener), except `reindex`, which needs the
//! daemon stopped.

mod client;
mod studies;

pub use client::{AdminClient, ClientError};
pub use studies::{print_studies, reindex};
