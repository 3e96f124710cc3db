//! pushgate: an on-prem daemon beside the PACS that receives studies over
//! DICOM, shares them with push authorizations, serves them over DICOMweb,
//! and pushes them OpenPGP-encrypted to other gateways.
//!
//! One module per component of DESIGN.md; `main.rs` only parses the command
//! line and calls in here.

pub mod accounts;
pub mod authz;
pub mod base;
pub mod capacity;
pub mod cli;
pub mod config;
pub mod console;
pub mod daemon;
pub mod dimse;
pub mod http_client;
pub mod ingest;
pub mod journal;
pub mod metrics;
pub mod package;
pub mod part10;
pub mod pixels;
pub mod queue;
pub mod relay;
pub mod retention;
pub mod store;
pub mod tls;
pub mod web;
pub mod worker;
