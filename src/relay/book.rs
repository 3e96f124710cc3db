//! The address book of peer gateways (placeholder).
