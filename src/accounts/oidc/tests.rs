use serde_json::json;

use super::*;

fn config() -> OidcConfig {
    OidcConfig {
        issuer: "http://127.0.0.1:9".into(),
        client_id: "pushgate".into(),
        client_secret_file: None,
        scopes: vec!["openid".into(), "profile".into()],
        role_claim: "roles".into(),
        admin_values: vec!["pushgate-beheer".into()],
        user_values: vec!["pushgate".into(), "radiologie".into()],
    }
}

fn raw(issuer: &str) -> RawDiscovery {
    RawDiscovery {
        issuer: issuer.into(),
        authorization_endpoint: format!("{issuer}/auth"),
        token_endpoint: format!("{issuer}/token"),
        jwks_uri: format!("{issuer}/jwks"),
        end_session_endpoint: None,
        token_endpoint_auth_methods_supported: None,
        code_challenge_methods_supported: None,
    }
}

/// An `Oidc` whose discovery is already cached (nothing is fetched).
fn oidc() -> Oidc {
    let c = config();
    let discovery = parse_discovery(raw(&c.issuer), &c.issuer).unwrap();
    let oidc = Oidc::open(&c).unwrap();
    *oidc.discovery.try_lock().unwrap() = Some((Instant::now(), Arc::new(discovery)));
    oidc
}

#[test]
fn the_role_comes_from_the_claim() {
    let c = config();
    let role = |claims: Value| role_of(&claims, &c);
    assert_eq!(role(json!({"roles": "pushgate"})), Some(Role::User));
    assert_eq!(
        role(json!({"roles": ["x", "radiologie"]})),
        Some(Role::User)
    );
    assert_eq!(
        role(json!({"roles": ["pushgate", "pushgate-beheer"]})),
        Some(Role::Admin)
    );
    assert_eq!(role(json!({"roles": ["x"]})), None);
    assert_eq!(role(json!({"roles": "PUSHGATE"})), None, "exact values");
    assert_eq!(role(json!({"roles": 1})), None);
    assert_eq!(role(json!({"groups": ["pushgate"]})), None);
    assert_eq!(role(json!({})), None);
    // Keycloak's realm roles, by a dotted name
    let keycloak = OidcConfig {
        role_claim: "realm_access.roles".into(),
        ..config()
    };
    assert_eq!(
        role_of(
            &json!({"realm_access": {"roles": ["pushgate-beheer"]}}),
            &keycloak
        ),
        Some(Role::Admin)
    );
    assert_eq!(
        role_of(&json!({"realm_access.roles": "pushgate"}), &keycloak),
        Some(Role::User)
    );
}

#[test]
fn the_person_is_named_by_issuer_and_subject() {
    let oidc = oidc();
    let p = oidc
        .person(&json!({"sub": "abc", "name": "Dr. Ü. de Vries", "preferred_username": "vries", "roles": "pushgate"}))
        .unwrap();
    assert_eq!(p.id, "oidc:http://127.0.0.1:9#abc");
    assert_eq!(p.name, "Dr. Ü. de Vries");
    assert_eq!(p.role, Role::User);
    let p = oidc
        .person(
            &json!({"sub": "abc", "name": " ", "preferred_username": "vries", "roles": "pushgate"}),
        )
        .unwrap();
    assert_eq!(p.name, "vries");
    let p = oidc
        .person(&json!({"sub": "abc", "roles": "pushgate-beheer"}))
        .unwrap();
    assert_eq!((p.name.as_str(), p.role), ("abc", Role::Admin));
    let refused = oidc
        .person(&json!({"sub": "abc", "roles": []}))
        .unwrap_err();
    assert_eq!(refused.account(), "abc");
    assert_eq!(
        refused.to_string(),
        "your account has no pushgate role; ask the application manager"
    );
}

#[test]
fn the_discovery_document_is_checked() {
    let issuer = "https://idp.example.org/realms/zh";
    assert!(parse_discovery(raw(issuer), issuer).is_ok());
    let other = parse_discovery(raw("https://idp.example.org/realms/other"), issuer).unwrap_err();
    assert!(
        other.contains("not \"https://idp.example.org/realms/zh\""),
        "{other}"
    );
    let mut plain = raw(issuer);
    plain.token_endpoint = "http://idp.example.org/token".into();
    assert!(
        parse_discovery(plain, issuer)
            .unwrap_err()
            .contains("token_endpoint")
    );
    let mut no_s256 = raw(issuer);
    no_s256.code_challenge_methods_supported = Some(vec!["plain".into()]);
    assert!(
        parse_discovery(no_s256, issuer)
            .unwrap_err()
            .contains("S256")
    );
    let mut post_only = raw(issuer);
    post_only.token_endpoint_auth_methods_supported = Some(vec!["client_secret_post".into()]);
    assert!(parse_discovery(post_only, issuer).unwrap().post_secret);
    let mut both = raw(issuer);
    both.token_endpoint_auth_methods_supported = Some(vec![
        "client_secret_post".into(),
        "client_secret_basic".into(),
    ]);
    assert!(!parse_discovery(both, issuer).unwrap().post_secret);
}

#[tokio::test]
async fn a_login_is_used_once_and_only_by_its_browser() {
    let oidc = oidc();
    let started = oidc
        .begin(
            "https://console.example/console/oidc/callback",
            "/console/shares",
            None,
        )
        .await
        .unwrap();
    assert!(started.location.starts_with("http://127.0.0.1:9/auth?response_type=code&client_id=pushgate&redirect_uri=https%3A%2F%2Fconsole.example%2Fconsole%2Foidc%2Fcallback&scope=openid%20profile&state="));
    assert!(started.location.contains("&code_challenge_method=S256"));
    let query: HashMap<String, String> = started
        .location
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let state = &query["state"];
    assert_eq!(state.len(), 43, "256 bits");
    assert_eq!(query["nonce"].len(), 43);
    assert_ne!(state, &query["nonce"]);
    let pending_verifier = oidc.pending.lock().unwrap()[state].verifier.clone();
    assert_eq!(
        query["code_challenge"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(pending_verifier.as_bytes()))
    );
    // another browser's answer: refused, and the login is used up
    let error = Callback::Error {
        error: "access_denied",
        description: "",
    };
    let other = oidc
        .finish(state, Some("x".repeat(43).as_str()), error)
        .await;
    assert!(matches!(other, Err(OidcError::OtherBrowser)), "{other:?}");
    let again = oidc.finish(state, Some(&started.binding), error).await;
    assert!(matches!(again, Err(OidcError::State)), "{again:?}");

    // the provider's error, from the right browser
    let second = oidc
        .begin(
            "https://c/console/oidc/callback",
            "/console/",
            Some(&started.binding),
        )
        .await
        .unwrap();
    assert_eq!(
        second.binding, started.binding,
        "one binding for several tabs"
    );
    let state2 = second
        .location
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let denied = oidc
        .finish(
            state2,
            Some(&started.binding),
            Callback::Error {
                error: "access_denied",
                description: "End-User aborted\ninteraction",
            },
        )
        .await;
    match denied {
        Err(e @ OidcError::Denied { .. }) => {
            assert_eq!(
                e.to_string(),
                "the identity provider refused the login: access_denied — End-User abortedinteraction"
            );
        }
        other => panic!("{other:?}"),
    }
    // an answer naming another issuer (RFC 9207)
    let third = oidc
        .begin(
            "https://c/console/oidc/callback",
            "/console/",
            Some(&started.binding),
        )
        .await
        .unwrap();
    let state3 = third
        .location
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let mixed = oidc
        .finish(
            state3,
            Some(&started.binding),
            Callback::Code {
                code: "c",
                iss: Some("https://evil"),
            },
        )
        .await;
    assert!(matches!(mixed, Err(OidcError::MixUp(_))), "{mixed:?}");
    assert!(oidc.pending.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_login_left_too_long_is_forgotten() {
    let oidc = oidc();
    let started = oidc
        .begin("https://c/console/oidc/callback", "/console/", None)
        .await
        .unwrap();
    let state = started
        .location
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    oidc.pending
        .lock()
        .unwrap()
        .get_mut(&state)
        .unwrap()
        .started -= PENDING_FOR;
    let late = oidc
        .finish(
            &state,
            Some(&started.binding),
            Callback::Code {
                code: "c",
                iss: None,
            },
        )
        .await;
    assert!(matches!(late, Err(OidcError::State)), "{late:?}");
}
