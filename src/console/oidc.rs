//! Login with the hospital's identity provider (OpenID Connect, authorization code with PKCE).

super::unbuilt_section!();
