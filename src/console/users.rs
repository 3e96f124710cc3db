//! Local accounts (applicatiebeheerder): add, disable, reset.

super::unbuilt_section!();
