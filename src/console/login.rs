//! Login with a local account (password and TOTP), enrolment of a new account.

super::unbuilt_section!();
