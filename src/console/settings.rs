//! The effective configuration, read-only (applicatiebeheerder).

super::unbuilt_section!();
