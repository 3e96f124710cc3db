//! OpenID Connect login (to be built): discovery, authorization code with
//! PKCE, ID token checked against the issuer's JWKS.

pub struct Oidc;
