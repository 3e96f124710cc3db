//! The ID token, checked as OpenID Connect Core §3.1.3.7 says: signed by
//! one of the issuer's public keys (RS*, PS*, ES256/384, EdDSA — never
//! `none`, never a shared-secret HS*), issued by the configured issuer
//! exactly, for pushgate's client id (and authorized for it when there are
//! several audiences), not expired, issued recently, and carrying the
//! nonce of the login it answers. The signature is checked by
//! `jsonwebtoken`; the claims here, so that each refusal says what was
//! wrong.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// Clock difference tolerated between pushgate and the provider.
pub const LEEWAY: u64 = 120;
/// An ID token issued longer ago than this is not a fresh answer.
pub const MAX_AGE: u64 = 3600;
/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;

/// Why an ID token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the ID token is not a signed JWT: {0}")]
    Malformed(String),
    #[error("the ID token is not signed (alg \"none\")")]
    Unsigned,
    #[error(
        "the ID token is signed with a shared secret ({0}); only the provider's public keys are trusted"
    )]
    SharedSecret(String),
    #[error("the ID token's algorithm {0:?} is not accepted (RS*, PS*, ES256, ES384, EdDSA)")]
    Algorithm(String),
    #[error("the ID token is signed with a key the provider does not publish (kid {0:?})")]
    UnknownKey(String),
    #[error("the provider's key {0:?} cannot be used: {1}")]
    BadKey(String, String),
    #[error("the ID token's signature is not valid")]
    Signature,
    #[error("the ID token was issued by {got:?}, not by {expected:?}")]
    Issuer { got: String, expected: String },
    #[error("the ID token is not meant for pushgate (its audience does not name {0:?})")]
    Audience(String),
    #[error("the ID token is authorized for another party (azp {0:?})")]
    AuthorizedParty(String),
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet (nbf); is a clock wrong?")]
    NotYetValid,
    #[error(
        "the ID token's issue time is {0} s from now; is the clock of this server or of the provider wrong?"
    )]
    IssuedAt(i64),
    #[error("the ID token does not answer this login (nonce)")]
    Nonce,
    #[error("the ID token lacks the claim {0:?}")]
    Missing(&'static str),
}

impl TokenError {
    /// The reason in Dutch, for the page.
    pub fn nl(&self) -> String {
        match self {
            TokenError::Malformed(why) => format!("het ID-token is geen ondertekende JWT: {why}"),
            TokenError::Unsigned => "het ID-token is niet ondertekend (alg \"none\")".into(),
            TokenError::SharedSecret(alg) => format!(
                "het ID-token is ondertekend met een gedeeld geheim ({alg}); alleen de publieke sleutels van de identity provider worden vertrouwd"
            ),
            TokenError::Algorithm(alg) => format!(
                "het algoritme {alg:?} van het ID-token wordt niet geaccepteerd (RS*, PS*, ES256, ES384, EdDSA)"
            ),
            TokenError::UnknownKey(kid) => format!(
                "het ID-token is ondertekend met een sleutel die de identity provider niet publiceert (kid {kid:?})"
            ),
            TokenError::BadKey(kid, why) => {
                format!("de sleutel {kid:?} van de identity provider is onbruikbaar: {why}")
            }
            TokenError::Signature => "de handtekening van het ID-token is ongeldig".into(),
            TokenError::Issuer { got, expected } => {
                format!("het ID-token is uitgegeven door {got:?}, niet door {expected:?}")
            }
            TokenError::Audience(id) => format!(
                "het ID-token is niet voor pushgate bedoeld (de audience noemt {id:?} niet)"
            ),
            TokenError::AuthorizedParty(azp) => {
                format!("het ID-token is voor een andere partij bestemd (azp {azp:?})")
            }
            TokenError::Expired => "het ID-token is verlopen".into(),
            TokenError::NotYetValid => {
                "het ID-token is nog niet geldig (nbf); staat een klok verkeerd?".into()
            }
            TokenError::IssuedAt(s) => format!(
                "het ID-token is {s} s van nu uitgegeven; staat de klok van deze server of van de identity provider verkeerd?"
            ),
            TokenError::Nonce => "het ID-token hoort niet bij deze inlogpoging (nonce)".into(),
            TokenError::Missing(claim) => format!("het ID-token mist de claim {claim:?}"),
        }
    }
}

/// What the token must say.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Seconds since the epoch.
    pub now: u64,
}

/// The header's algorithm and key id; `none` and HS* refused here, before
/// any key is looked at.
pub fn header(token: &str) -> Result<(Algorithm, Option<String>), TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() == 5 {
        return Err(TokenError::Malformed(
            "an encrypted ID token (JWE) is not supported".into(),
        ));
    }
    if parts.len() != 3 {
        return Err(TokenError::Malformed(format!(
            "{} parts instead of 3",
            parts.len()
        )));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[0])
        .map_err(|_| TokenError::Malformed("the header is not base64url".into()))?;
    let header: Value = serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Malformed("the header is not JSON".into()))?;
    let alg = header["alg"]
        .as_str()
        .ok_or_else(|| TokenError::Malformed("the header names no alg".into()))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::Unsigned);
    }
    if alg.starts_with("HS") {
        return Err(TokenError::SharedSecret(alg.into()));
    }
    if parts[2].is_empty() {
        return Err(TokenError::Unsigned);
    }
    let algorithm = match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        other => return Err(TokenError::Algorithm(other.into())),
    };
    let kid = header["kid"].as_str().map(str::to_string);
    Ok((algorithm, kid))
}

/// Whether `jwk` is a signing key fit for `alg` (type, curve, size, its
/// own `alg` and `use` when it names them).
pub fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg_name(key_alg) != Some(alg)
    {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

fn key_alg_name(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The key of `keys` for a token's `kid` and `alg`: the one with that id,
/// or, when the token names none, the only key that fits.
pub fn select<'k>(keys: &'k [Jwk], kid: Option<&str>, alg: Algorithm) -> Option<&'k Jwk> {
    let mut fitting = keys.iter().filter(|k| fits(k, alg));
    match kid {
        Some(kid) => fitting.find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => {
            let first = fitting.next()?;
            fitting.next().is_none().then_some(first)
        }
    }
}

/// The token's claims, when its signature verifies with `jwk`.
pub fn verify_signature(token: &str, alg: Algorithm, jwk: &Jwk) -> Result<Value, TokenError> {
    let kid = jwk.common.key_id.clone().unwrap_or_default();
    if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
        let modulus = URL_SAFE_NO_PAD
            .decode(&rsa.n)
            .map(|n| n.iter().skip_while(|b| **b == 0).count())
            .unwrap_or(0);
        if modulus < MIN_RSA_BYTES {
            return Err(TokenError::BadKey(
                kid,
                "an RSA key shorter than 2048 bits".into(),
            ));
        }
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenError::BadKey(kid, e.to_string()))?;
    let mut validation = Validation::new(alg);
    // the claims are checked by `check_claims`, each with its own reason
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::Base64(_) => TokenError::Signature,
            _ => TokenError::Malformed(e.to_string()),
        }
    })?;
    Ok(data.claims)
}

/// The checks of OpenID Connect Core §3.1.3.7 on the verified claims.
pub fn check_claims(claims: &Value, expect: &Expect<'_>) -> Result<(), TokenError> {
    let iss = claims["iss"].as_str().ok_or(TokenError::Missing("iss"))?;
    if iss != expect.issuer {
        return Err(TokenError::Issuer {
            got: iss.into(),
            expected: expect.issuer.into(),
        });
    }
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => return Err(TokenError::Missing("aud")),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(TokenError::Audience(expect.client_id.into()));
    }
    match claims["azp"].as_str() {
        Some(azp) if azp != expect.client_id => {
            return Err(TokenError::AuthorizedParty(azp.into()));
        }
        None if audiences.len() > 1 => return Err(TokenError::Missing("azp")),
        _ => {}
    }
    let now = expect.now;
    let exp = number(claims, "exp")?.ok_or(TokenError::Missing("exp"))?;
    if exp.saturating_add(LEEWAY) <= now {
        return Err(TokenError::Expired);
    }
    let iat = number(claims, "iat")?.ok_or(TokenError::Missing("iat"))?;
    if iat > now.saturating_add(LEEWAY) || iat.saturating_add(MAX_AGE) < now {
        let from_now = i64::try_from(iat).unwrap_or(i64::MAX) - i64::try_from(now).unwrap_or(0);
        return Err(TokenError::IssuedAt(from_now));
    }
    if let Some(nbf) = number(claims, "nbf")?
        && nbf > now.saturating_add(LEEWAY)
    {
        return Err(TokenError::NotYetValid);
    }
    let nonce = claims["nonce"].as_str().ok_or(TokenError::Nonce)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        nonce.as_bytes(),
        expect.nonce.as_bytes(),
    )) {
        return Err(TokenError::Nonce);
    }
    match claims["sub"].as_str() {
        Some(sub) if !sub.is_empty() => Ok(()),
        _ => Err(TokenError::Missing("sub")),
    }
}

/// A NumericDate claim: absent is `None`, anything but a number refused.
fn number(claims: &Value, name: &'static str) -> Result<Option<u64>, TokenError> {
    match &claims[name] {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(TokenError::Missing(name)),
        _ => Err(TokenError::Missing(name)),
    }
}

#[cfg(test)]
mod tests;
