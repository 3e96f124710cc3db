//! Gateway to gateway: the address book of peer gateways, OpenPGP packages
//! (signed by us, encrypted to the peer), the outbox that delivers them,
//! the inbox that checks and ingests them, and forwarding to the local PACS.

pub mod book;
pub mod forward;
pub mod openpgp;
