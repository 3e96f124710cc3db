use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const NOW: u64 = 1_800_000_000;

/// A P-256 key: its PKCS#8 for signing and its public JWK under `kid`.
fn ec_key(kid: &str) -> (EncodingKey, Jwk) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    assert_eq!(raw.len(), 65);
    let jwk = serde_json::from_value(json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
    }))
    .unwrap();
    (EncodingKey::from_ec_der(&pair.serialize_der()), jwk)
}

fn claims() -> Value {
    json!({
        "iss": "https://idp.example.org", "aud": "pushgate", "sub": "u-1",
        "exp": NOW + 300, "iat": NOW - 5, "nonce": "n-1", "name": "A. Laborant",
    })
}

fn expect() -> Expect<'static> {
    Expect {
        issuer: "https://idp.example.org",
        client_id: "pushgate",
        nonce: "n-1",
        now: NOW,
    }
}

fn signed(key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims();
    change(&mut c);
    c
}

#[test]
fn a_good_token_verifies_and_passes() {
    let (key, jwk) = ec_key("k1");
    let token = signed(&key, Some("k1"), &claims());
    let (alg, kid) = header(&token).unwrap();
    assert_eq!((alg, kid.as_deref()), (Algorithm::ES256, Some("k1")));
    let got = verify_signature(&token, alg, &jwk).unwrap();
    assert_eq!(got["sub"], "u-1");
    check_claims(&got, &expect()).unwrap();
}

#[test]
fn a_tampered_or_foreign_signature_is_refused() {
    let (key, jwk) = ec_key("k1");
    let token = signed(&key, Some("k1"), &claims());
    // another payload under the same signature
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(with(|c| c["sub"] = json!("admin")).to_string());
    let swapped = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(
        verify_signature(&swapped, Algorithm::ES256, &jwk),
        Err(TokenError::Signature)
    );
    // a flipped signature character
    let mut sig = parts[2].as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    );
    assert_eq!(
        verify_signature(&flipped, Algorithm::ES256, &jwk),
        Err(TokenError::Signature)
    );
    // signed by another key claiming the same id
    let (other, _) = ec_key("k1");
    let foreign = signed(&other, Some("k1"), &claims());
    assert_eq!(
        verify_signature(&foreign, Algorithm::ES256, &jwk),
        Err(TokenError::Signature)
    );
}

#[test]
fn unsigned_and_shared_secret_tokens_are_refused_before_any_key() {
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    assert_eq!(
        header(&format!("{none}.{body}.")),
        Err(TokenError::Unsigned)
    );
    let none_upper = URL_SAFE_NO_PAD.encode(r#"{"alg":"NONE"}"#);
    assert_eq!(
        header(&format!("{none_upper}.{body}.x")),
        Err(TokenError::Unsigned)
    );
    let es_empty = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#);
    assert_eq!(
        header(&format!("{es_empty}.{body}.")),
        Err(TokenError::Unsigned)
    );
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"the client secret").unwrap(),
    )
    .unwrap();
    assert_eq!(header(&hs), Err(TokenError::SharedSecret("HS256".into())));
    let odd = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES512"}"#);
    assert_eq!(
        header(&format!("{odd}.{body}.c2ln")),
        Err(TokenError::Algorithm("ES512".into()))
    );
    assert!(matches!(
        header("a.b.c.d.e"),
        Err(TokenError::Malformed(m)) if m.contains("JWE")
    ));
    assert!(matches!(
        header("not a token"),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn keys_are_chosen_by_id_type_and_use() {
    let (_, k1) = ec_key("k1");
    let (_, k2) = ec_key("k2");
    let mut enc = k2.clone();
    enc.common.public_key_use = Some(PublicKeyUse::Encryption);
    enc.common.key_id = Some("k3".into());
    enc.common.key_algorithm = None;
    let keys = vec![k1.clone(), k2.clone(), enc];
    assert_eq!(select(&keys, Some("k2"), Algorithm::ES256), Some(&k2));
    assert_eq!(
        select(&keys, Some("k3"), Algorithm::ES256),
        None,
        "an encryption key"
    );
    assert_eq!(select(&keys, Some("k9"), Algorithm::ES256), None);
    assert_eq!(
        select(&keys, Some("k1"), Algorithm::RS256),
        None,
        "wrong type"
    );
    assert_eq!(
        select(&keys, Some("k1"), Algorithm::ES384),
        None,
        "wrong curve"
    );
    assert_eq!(select(&keys, None, Algorithm::ES256), None, "ambiguous");
    assert_eq!(select(&keys[..1], None, Algorithm::ES256), Some(&k1));
    // a key whose own alg differs is not used for another
    let mut rs_labelled = k1.clone();
    rs_labelled.common.key_algorithm = Some(KeyAlgorithm::ES384);
    assert!(!fits(&rs_labelled, Algorithm::ES256));
}

#[test]
fn a_short_rsa_key_is_refused() {
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "RSA", "kid": "small", "e": "AQAB",
        "n": URL_SAFE_NO_PAD.encode([0xC5u8; 128]),
    }))
    .unwrap();
    assert!(matches!(
        verify_signature("a.b.c", Algorithm::RS256, &jwk),
        Err(TokenError::BadKey(kid, why)) if kid == "small" && why.contains("2048")
    ));
}

#[test]
fn issuer_must_match_exactly() {
    for iss in [
        "https://idp.example.org/",
        "https://IDP.example.org",
        "https://evil.example.org",
    ] {
        let c = with(|c| c["iss"] = json!(iss));
        assert!(
            matches!(check_claims(&c, &expect()), Err(TokenError::Issuer { got, .. }) if got == iss),
            "{iss}"
        );
    }
    let c = with(|c| c.as_object_mut().unwrap().remove("iss").map(drop).unwrap());
    assert_eq!(check_claims(&c, &expect()), Err(TokenError::Missing("iss")));
}

#[test]
fn audience_and_authorized_party() {
    let e = expect();
    let c = with(|c| c["aud"] = json!("someone-else"));
    assert_eq!(
        check_claims(&c, &e),
        Err(TokenError::Audience("pushgate".into()))
    );
    let c = with(|c| c["aud"] = json!(["someone-else", "another"]));
    assert_eq!(
        check_claims(&c, &e),
        Err(TokenError::Audience("pushgate".into()))
    );
    let c = with(|c| c["aud"] = json!(["pushgate"]));
    check_claims(&c, &e).unwrap();
    // several audiences: azp must be there and be pushgate
    let c = with(|c| c["aud"] = json!(["pushgate", "other"]));
    assert_eq!(check_claims(&c, &e), Err(TokenError::Missing("azp")));
    let c = with(|c| {
        c["aud"] = json!(["pushgate", "other"]);
        c["azp"] = json!("other");
    });
    assert_eq!(
        check_claims(&c, &e),
        Err(TokenError::AuthorizedParty("other".into()))
    );
    let c = with(|c| {
        c["aud"] = json!(["pushgate", "other"]);
        c["azp"] = json!("pushgate");
    });
    check_claims(&c, &e).unwrap();
    // an azp naming another party is refused even with one audience
    let c = with(|c| c["azp"] = json!("other"));
    assert_eq!(
        check_claims(&c, &e),
        Err(TokenError::AuthorizedParty("other".into()))
    );
    let c = with(|c| c["aud"] = json!(42));
    assert_eq!(check_claims(&c, &e), Err(TokenError::Missing("aud")));
}

#[test]
fn times_with_a_small_leeway() {
    let e = expect();
    let c = with(|c| c["exp"] = json!(NOW - LEEWAY));
    assert_eq!(check_claims(&c, &e), Err(TokenError::Expired));
    let c = with(|c| c["exp"] = json!(NOW - LEEWAY + 1));
    check_claims(&c, &e).unwrap();
    let c = with(|c| c["exp"] = json!("tomorrow"));
    assert_eq!(check_claims(&c, &e), Err(TokenError::Missing("exp")));
    let c = with(|c| c.as_object_mut().unwrap().remove("exp").map(drop).unwrap());
    assert_eq!(check_claims(&c, &e), Err(TokenError::Missing("exp")));
    let c = with(|c| c["iat"] = json!(NOW + LEEWAY + 60));
    assert_eq!(check_claims(&c, &e), Err(TokenError::IssuedAt(180)));
    let c = with(|c| c["iat"] = json!(NOW - MAX_AGE - 1));
    assert!(matches!(check_claims(&c, &e), Err(TokenError::IssuedAt(_))));
    let c = with(|c| c.as_object_mut().unwrap().remove("iat").map(drop).unwrap());
    assert_eq!(check_claims(&c, &e), Err(TokenError::Missing("iat")));
    let c = with(|c| c["nbf"] = json!(NOW + LEEWAY + 1));
    assert_eq!(check_claims(&c, &e), Err(TokenError::NotYetValid));
    let c = with(|c| c["nbf"] = json!(NOW));
    check_claims(&c, &e).unwrap();
}

#[test]
fn the_nonce_and_the_subject() {
    let e = expect();
    let c = with(|c| c["nonce"] = json!("n-2"));
    assert_eq!(check_claims(&c, &e), Err(TokenError::Nonce));
    let c = with(|c| c["nonce"] = json!("n-1 "));
    assert_eq!(check_claims(&c, &e), Err(TokenError::Nonce));
    let c = with(|c| {
        c.as_object_mut()
            .unwrap()
            .remove("nonce")
            .map(drop)
            .unwrap()
    });
    assert_eq!(check_claims(&c, &e), Err(TokenError::Nonce));
    let c = with(|c| c["sub"] = json!(""));
    assert_eq!(check_claims(&c, &e), Err(TokenError::Missing("sub")));
    let c = with(|c| c["sub"] = json!(7));
    assert_eq!(check_claims(&c, &e), Err(TokenError::Missing("sub")));
}
