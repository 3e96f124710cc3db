//! Studies sent to other gateways (the outbox): live state, retry now, cancel.

super::unbuilt_section!();
