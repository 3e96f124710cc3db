use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sequoia_openpgp::cert::prelude::*;
use sequoia_openpgp::policy::StandardPolicy;
use sequoia_openpgp::serialize::SerializeInto;
use sequoia_openpgp::serialize::stream::{Armorer, Message, Signer};
use sequoia_openpgp::types::ReasonForRevocation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

// ---------------------------------------------------------------- fixtures

fn pgp(name: &str) -> Cert {
    CertBuilder::general_purpose(Some(format!("{name} <relay@{name}.example>")))
        .generate()
        .expect("generate OpenPGP cert")
        .0
}

fn armored(cert: &Cert) -> String {
    String::from_utf8(cert.armored().to_vec().unwrap()).unwrap()
}

fn armored_tsk(cert: &Cert) -> String {
    String::from_utf8(cert.as_tsk().armored().to_vec().unwrap()).unwrap()
}

struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> TestCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    TestCa {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

struct Leaf {
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

fn leaf(ca: &TestCa, names: &[&str], ekus: Vec<ExtendedKeyUsagePurpose>) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages = ekus;
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        der: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

fn self_signed(names: &[&str]) -> Leaf {
    let generated =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    Leaf {
        der: generated.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()).into(),
    }
}

fn pin_of(leaf: &Leaf) -> String {
    spki_pin_base64(leaf.der.as_ref()).unwrap()
}

fn entry(name: &str, ura: &str, url: &str, cert: &Cert, trust: &str) -> String {
    format!(
        "[[gateway]]\nname = {name:?}\nura = {ura:?}\nurl = {url:?}\nopenpgp = '''\n{}'''\n{trust}\n\n",
        armored(cert)
    )
}

fn ca_line(path: &str) -> String {
    format!("tls_ca = {path:?}")
}

fn pin_line(pin: &str) -> String {
    format!("tls_spki_sha256 = {pin:?}")
}

/// A directory with `peers/ca.pem` and a two-entry book (A by CA, B by pin).
struct Fixture {
    dir: tempfile::TempDir,
    ca: TestCa,
    pinned: Leaf,
    pgp_a: Cert,
    pgp_b: Cert,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("Test CA A");
        std::fs::create_dir(dir.path().join("peers")).unwrap();
        std::fs::write(dir.path().join("peers/ca.pem"), &ca.pem).unwrap();
        Fixture {
            dir,
            ca,
            pinned: self_signed(&["gw-b.example"]),
            pgp_a: pgp("a"),
            pgp_b: pgp("b"),
        }
    }

    fn entry_a(&self) -> String {
        entry(
            "Ziekenhuis A",
            "11111111",
            "https://gw-a.example:8443/",
            &self.pgp_a,
            &ca_line("peers/ca.pem"),
        )
    }

    fn entry_b_with(&self, ura: &str, url: &str, trust: &str) -> String {
        entry("Ziekenhuis B", ura, url, &self.pgp_b, trust)
    }

    fn entry_b(&self) -> String {
        self.entry_b_with(
            "22222222",
            "https://gw-b.example",
            &pin_line(&pin_of(&self.pinned)),
        )
    }

    fn text(&self) -> String {
        format!("serial = 7\n\n{}{}", self.entry_a(), self.entry_b())
    }

    fn parse(&self, text: &str) -> Result<AddressBook, BookError> {
        parse(text, self.dir.path())
    }

    /// The error of the book of entry A and `second`, as text.
    fn error_with_second(&self, second: &str) -> String {
        let text = format!("{}{second}", self.entry_a());
        match self.parse(&text) {
            Ok(_) => panic!("accepted: {second}"),
            Err(e) => e.to_string(),
        }
    }
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "{needle:?} not in error: {haystack}"
        );
    }
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_a_book_with_a_ca_and_a_pinned_gateway() {
    let f = Fixture::new();
    let book = f.parse(&f.text()).unwrap();
    assert_eq!(book.serial, 7);
    assert_eq!(book.len(), 2);
    let a = book.by_ura("11111111").unwrap();
    assert_eq!(a.name, "Ziekenhuis A");
    assert_eq!(a.url, "https://gw-a.example:8443", "trailing slash dropped");
    assert_eq!(a.inbox_url(), "https://gw-a.example:8443/relay/v1/inbox");
    assert_eq!(a.port(), 8443);
    assert_eq!(a.openpgp.fingerprint(), f.pgp_a.fingerprint());
    assert!(!a.openpgp.is_tsk());
    match &a.trust {
        TlsTrust::Ca { path, roots } => {
            assert_eq!(path, &f.dir.path().join("peers/ca.pem"));
            assert_eq!(roots.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    let b = book.by_ura("22222222").unwrap();
    assert_eq!(b.port(), 443);
    match &b.trust {
        TlsTrust::Pin { spki_sha256 } => {
            assert_eq!(*spki_sha256, spki_sha256_of(&f.pinned));
        }
        other => panic!("{other:?}"),
    }
    assert!(book.by_ura("33333333").is_none());
    assert_eq!(
        book.iter().map(|g| g.ura.as_str()).collect::<Vec<_>>(),
        ["11111111", "22222222"]
    );
}

fn spki_sha256_of(leaf: &Leaf) -> [u8; 32] {
    spki_sha256(leaf.der.as_ref()).unwrap()
}

#[test]
fn an_empty_book_is_valid() {
    let book = parse("", Path::new(".")).unwrap();
    assert_eq!((book.serial, book.len()), (0, 0));
    let book = parse("serial = 3\n", Path::new(".")).unwrap();
    assert_eq!((book.serial, book.len()), (3, 0));
}

#[test]
fn pins_with_and_without_padding_and_the_pin_helper() {
    let f = Fixture::new();
    let pin = pin_of(&f.pinned);
    assert_eq!(pin.len(), 44);
    assert!(pin.ends_with('='));
    let unpadded = pin.trim_end_matches('=');
    let book = f
        .parse(&f.entry_b_with("22222222", "https://gw-b.example", &pin_line(unpadded)))
        .unwrap();
    assert!(matches!(
        book.by_ura("22222222").unwrap().trust,
        TlsTrust::Pin { spki_sha256 } if spki_sha256 == spki_sha256_of(&f.pinned)
    ));
    let pem = f.dir.path().join("pinned.pem");
    // the PEM helper reads the first certificate of a file
    let pem_text = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &f.pinned.der)
    );
    std::fs::write(&pem, pem_text).unwrap();
    assert_eq!(spki_pin_of_pem_file(&pem).unwrap(), pin);
    assert!(spki_pin_of_pem_file(&f.dir.path().join("absent.pem")).is_err());
    assert!(spki_sha256(b"not a certificate").is_err());
}

#[test]
fn validation_errors_name_the_entry_and_the_field() {
    let f = Fixture::new();
    let pin = pin_of(&f.pinned);
    let b = |ura: &str, url: &str, trust: &str| f.entry_b_with(ura, url, trust);
    let good_url = "https://gw-b.example";

    assert_contains(
        &f.error_with_second(&b("12", good_url, &pin_line(&pin))),
        &[r#"gateway 2 (Ziekenhuis B): ura "12": a URA number has 8 digits"#],
    );
    assert_contains(
        &f.error_with_second(&b("2222222x", good_url, &pin_line(&pin))),
        &["gateway 2 (Ziekenhuis B)", "ura \"2222222x\""],
    );
    assert_contains(
        &f.error_with_second(&b("22222222", "http://gw-b.example", &pin_line(&pin))),
        &[r#"gateway 2 (Ziekenhuis B): url "http://gw-b.example": must be https://"#],
    );
    assert_contains(
        &f.error_with_second(&b("22222222", "https://gw-b.example?x=1", &pin_line(&pin))),
        &["gateway 2 (Ziekenhuis B): url", "query"],
    );
    assert_contains(
        &f.error_with_second(&b("22222222", "https://gw-b.example:0", &pin_line(&pin))),
        &["gateway 2 (Ziekenhuis B): url", "bad port"],
    );
    assert_contains(
        &f.error_with_second(&b("11111111", good_url, &pin_line(&pin))),
        &[r#"gateway 2 (Ziekenhuis B): ura "11111111": already used by gateway 1 (Ziekenhuis A)"#],
    );
    assert_contains(
        &f.error_with_second(&b(
            "22222222",
            good_url,
            &format!("{}\n{}", pin_line(&pin), ca_line("peers/ca.pem")),
        )),
        &[
            "gateway 2 (Ziekenhuis B)",
            "both tls_ca and tls_spki_sha256",
        ],
    );
    assert_contains(
        &f.error_with_second(&b("22222222", good_url, "")),
        &[
            "gateway 2 (Ziekenhuis B)",
            "neither tls_ca nor tls_spki_sha256",
        ],
    );
    // a typo must not silently drop the trust setting
    assert_contains(
        &f.error_with_second(&b("22222222", good_url, &format!("tls_pin = {pin:?}"))),
        &["gateway 2 (Ziekenhuis B)", "unknown field `tls_pin`"],
    );
    assert_contains(
        &f.error_with_second(&b("22222222", good_url, &ca_line("peers/absent.pem"))),
        &["gateway 2 (Ziekenhuis B): tls_ca", "absent.pem"],
    );
    std::fs::write(f.dir.path().join("peers/junk.pem"), "not a certificate\n").unwrap();
    assert_contains(
        &f.error_with_second(&b("22222222", good_url, &ca_line("peers/junk.pem"))),
        &[
            "gateway 2 (Ziekenhuis B): tls_ca",
            "junk.pem: no PEM certificate found",
        ],
    );
    assert_contains(
        &f.error_with_second(&b(
            "22222222",
            good_url,
            &pin_line("AAAAAAAAAAAAAAAAAAAAAA=="),
        )),
        &[
            "gateway 2 (Ziekenhuis B): tls_spki_sha256",
            "decodes to 16 bytes; a SHA-256 pin is 32 bytes",
        ],
    );
    assert_contains(
        &f.error_with_second(&b("22222222", good_url, &pin_line(&"ab".repeat(32)))),
        &[
            "gateway 2 (Ziekenhuis B): tls_spki_sha256",
            "looks like hex",
        ],
    );
    assert_contains(
        &f.error_with_second(&b("22222222", good_url, &pin_line("not base64!"))),
        &[
            "gateway 2 (Ziekenhuis B): tls_spki_sha256",
            "not standard base64",
        ],
    );
    // the same TLS key for two gateways: which one is calling?
    let second_pinned = format!(
        "{}{}",
        f.entry_b(),
        entry(
            "Ziekenhuis C",
            "33333333",
            "https://gw-c.example",
            &pgp("c"),
            &pin_line(&pin)
        )
    );
    assert_contains(
        &f.error_with_second(&second_pinned),
        &["gateway 3 (Ziekenhuis C): tls_spki_sha256: the same pin as gateway 2"],
    );
    // a missing required key, and the entry's name when there is none
    let no_url = f.entry_b().replace("url = \"https://gw-b.example\"\n", "");
    assert_contains(
        &f.error_with_second(&no_url),
        &["gateway 2 (Ziekenhuis B)", "missing field `url`"],
    );
    let no_name = f.entry_b().replace("name = \"Ziekenhuis B\"\n", "");
    assert_contains(
        &f.error_with_second(&no_name),
        &["gateway 2 (unnamed)", "missing field `name`"],
    );
    // unknown top-level keys too
    let err = f
        .parse(&format!("serail = 3\n{}", f.entry_a()))
        .unwrap_err();
    assert_contains(&err.to_string(), &["unknown field `serail`"]);
    let err = f.parse("[[gateway]\n").unwrap_err();
    assert!(matches!(err, BookError::Syntax(_)), "{err}");
}

fn with_openpgp(f: &Fixture, openpgp: &str) -> String {
    let text = format!(
        "{}[[gateway]]\nname = \"Ziekenhuis B\"\nura = \"22222222\"\nurl = \"https://gw-b.example\"\n\
         openpgp = '''\n{openpgp}'''\n{}\n",
        f.entry_a(),
        pin_line(&pin_of(&f.pinned))
    );
    match f.parse(&text) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn openpgp_certificates_are_checked() {
    let f = Fixture::new();
    let prefix = "gateway 2 (Ziekenhuis B): openpgp";
    assert_contains(
        &with_openpgp(&f, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n"),
        &[prefix, "not an OpenPGP certificate"],
    );
    assert_contains(
        &with_openpgp(&f, &armored_tsk(&f.pgp_b)),
        &[prefix, "secret key material"],
    );

    let (cert, revocation) = CertBuilder::general_purpose(Some("revoked <r@example>"))
        .generate()
        .unwrap();
    let revoked = cert.insert_packets(revocation).unwrap().0;
    assert_contains(&with_openpgp(&f, &armored(&revoked)), &[prefix, "revoked"]);

    let mut signer = f
        .pgp_b
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .into_keypair()
        .unwrap();
    let sig = f
        .pgp_b
        .revoke(&mut signer, ReasonForRevocation::KeyCompromised, b"test")
        .unwrap();
    let revoked_b = f.pgp_b.clone().insert_packets(sig).unwrap().0;
    assert_contains(
        &with_openpgp(&f, &armored(&revoked_b)),
        &[prefix, "revoked"],
    );

    let expired = CertBuilder::general_purpose(Some("expired <e@example>"))
        .set_creation_time(SystemTime::now() - Duration::from_secs(3 * 86400))
        .set_validity_period(Duration::from_secs(86400))
        .generate()
        .unwrap()
        .0;
    assert_contains(&with_openpgp(&f, &armored(&expired)), &[prefix, "expired"]);

    let sign_only = CertBuilder::new()
        .add_userid("sign only <s@example>")
        .add_signing_subkey()
        .generate()
        .unwrap()
        .0;
    assert_contains(
        &with_openpgp(&f, &armored(&sign_only)),
        &[prefix, "no valid encryption key"],
    );
    let encrypt_only = CertBuilder::new()
        .add_userid("encrypt only <x@example>")
        .set_primary_key_flags(sequoia_openpgp::types::KeyFlags::empty().set_certification())
        .add_transport_encryption_subkey()
        .generate()
        .unwrap()
        .0;
    assert_contains(
        &with_openpgp(&f, &armored(&encrypt_only)),
        &[prefix, "no valid signing key"],
    );
}

#[test]
fn load_names_the_file() {
    let f = Fixture::new();
    let path = f.dir.path().join("book.toml");
    std::fs::write(&path, f.text()).unwrap();
    assert_eq!(load(&path).unwrap().len(), 2);
    std::fs::write(&path, format!("{}{}", f.entry_a(), f.entry_a())).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert_contains(
        &err,
        &[&path.display().to_string(), "gateway 2 (Ziekenhuis A)"],
    );
    let err = Book::load(&f.dir.path().join("absent.toml")).unwrap_err();
    assert!(matches!(err, BookError::Io { .. }), "{err}");
    assert!(
        Book::load_if_exists(&f.dir.path().join("absent.toml"))
            .unwrap()
            .current()
            .is_empty()
    );
}

// ---------------------------------------------------------------- client chains

#[test]
fn client_chains_are_matched_to_their_entry() {
    let f = Fixture::new();
    let book = f.parse(&f.text()).unwrap();
    let ura_of = |chain: &[CertificateDer<'_>]| book.by_client_chain(chain).map(|g| g.ura.clone());

    // pinned: exactly that key
    assert_eq!(
        ura_of(std::slice::from_ref(&f.pinned.der)).as_deref(),
        Some("22222222")
    );
    let other = self_signed(&["gw-b.example"]);
    assert_eq!(ura_of(std::slice::from_ref(&other.der)), None);

    // CA: a server certificate (serverAuth only, as a gateway presents its
    // HTTPS certificate) for the entry's host
    let server_only = leaf(
        &f.ca,
        &["gw-a.example"],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    );
    assert_eq!(
        ura_of(std::slice::from_ref(&server_only.der)).as_deref(),
        Some("11111111")
    );
    let both = leaf(
        &f.ca,
        &["gw-a.example"],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    assert_eq!(
        ura_of(std::slice::from_ref(&both.der)).as_deref(),
        Some("11111111")
    );
    let client_only = leaf(
        &f.ca,
        &["gw-a.example"],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    assert_eq!(
        ura_of(std::slice::from_ref(&client_only.der)).as_deref(),
        Some("11111111")
    );
    let no_eku = leaf(&f.ca, &["gw-a.example"], vec![]);
    assert_eq!(
        ura_of(std::slice::from_ref(&no_eku.der)).as_deref(),
        Some("11111111")
    );

    // the same CA, another host: not this entry (a shared CA must not let
    // one gateway pass for another)
    for ekus in [
        vec![ExtendedKeyUsagePurpose::ServerAuth],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    ] {
        let elsewhere = leaf(&f.ca, &["gw-z.example"], ekus);
        assert_eq!(ura_of(std::slice::from_ref(&elsewhere.der)), None);
    }
    // another CA, same host name
    let other_ca = ca("Other CA");
    let foreign = leaf(
        &other_ca,
        &["gw-a.example"],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    );
    assert_eq!(ura_of(std::slice::from_ref(&foreign.der)), None);
    // a leaf that is not for signing TLS at all
    let email_only = leaf(
        &f.ca,
        &["gw-a.example"],
        vec![ExtendedKeyUsagePurpose::EmailProtection],
    );
    assert_eq!(ura_of(std::slice::from_ref(&email_only.der)), None);
    assert_eq!(ura_of(&[]), None);
    assert_eq!(ura_of(&[CertificateDer::from(b"junk".to_vec())]), None);
}

// ---------------------------------------------------------------- outbound TLS

/// Serves TLS on 127.0.0.1 with `leaf`: each connection gets `ok` and the
/// URA of the book entry its client certificate matched (or `-`).
async fn tls_server(leaf: &Leaf, client_book: Book) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(crate::tls::peer_verifier::PeerVerifier::new(
            None,
            crate::tls::crypto_provider(),
        )))
        .with_single_cert(vec![leaf.der.clone()], leaf.key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let book = client_book.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let ura = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| {
                            book.current().by_client_chain(chain).map(|g| g.ura.clone())
                        })
                        .unwrap_or_else(|| "-".into());
                    let _ = tls.write_all(format!("ok {ura}").as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

/// Connects with the gateway's client config; the server's answer.
async fn connect(gateway: &Gateway, own: &Leaf) -> Result<String, String> {
    let config = gateway
        .client_config(vec![own.der.clone()], own.key())
        .map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", gateway.port()))
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(gateway.server_name().clone(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

/// The receiving side's book, which knows `us` by pin.
fn book_knowing(dir: &Path, us: &Leaf) -> Book {
    let path = dir.join("theirs.toml");
    std::fs::write(
        &path,
        entry(
            "Us",
            "55555555",
            "https://us.example",
            &pgp("us"),
            &pin_line(&pin_of(us)),
        ),
    )
    .unwrap();
    Book::load(&path).unwrap()
}

fn one_gateway(dir: &Path, url: &str, trust: &str) -> Gateway {
    let text = entry("Peer", "44444444", url, &pgp("peer"), trust);
    parse(&text, dir).unwrap().iter().next().unwrap().clone()
}

#[tokio::test]
async fn outbound_tls_to_a_pinned_gateway() {
    let f = Fixture::new();
    let us = self_signed(&["us.example"]);
    let their_book = book_knowing(f.dir.path(), &us);
    // a pinned certificate ignores the host name: it says gw-b.example
    let port = tls_server(&f.pinned, their_book).await;
    let url = format!("https://127.0.0.1:{port}");
    let good = one_gateway(f.dir.path(), &url, &pin_line(&pin_of(&f.pinned)));
    assert_eq!(connect(&good, &us).await.unwrap(), "ok 55555555");
    // a client certificate the receiver's book does not know: the
    // handshake completes (the inbox refuses it with a reason), but it
    // names no gateway
    let stranger = self_signed(&["stranger.example"]);
    assert_eq!(connect(&good, &stranger).await.unwrap(), "ok -");

    let wrong = one_gateway(
        f.dir.path(),
        &url,
        &pin_line(&pin_of(&self_signed(&["gw-b.example"]))),
    );
    let err = connect(&wrong, &us).await.unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn outbound_tls_to_a_ca_gateway_checks_the_host_name() {
    let f = Fixture::new();
    let us = self_signed(&["us.example"]);
    let server_leaf = leaf(
        &f.ca,
        &["localhost", "127.0.0.1"],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    );
    let theirs = book_knowing(f.dir.path(), &us);
    let port = tls_server(&server_leaf, theirs.clone()).await;
    for host in ["localhost", "127.0.0.1"] {
        let gateway = one_gateway(
            f.dir.path(),
            &format!("https://{host}:{port}"),
            &ca_line("peers/ca.pem"),
        );
        assert_eq!(
            connect(&gateway, &us).await.unwrap(),
            "ok 55555555",
            "{host}"
        );
    }

    let misnamed = leaf(
        &f.ca,
        &["other.example"],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    );
    let port = tls_server(&misnamed, theirs.clone()).await;
    let gateway = one_gateway(
        f.dir.path(),
        &format!("https://localhost:{port}"),
        &ca_line("peers/ca.pem"),
    );
    let err = connect(&gateway, &us).await.unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");

    // a certificate from a CA the entry does not name
    let other_ca = ca("Other CA");
    let foreign = leaf(
        &other_ca,
        &["localhost"],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    );
    let port = tls_server(&foreign, theirs).await;
    let gateway = one_gateway(
        f.dir.path(),
        &format!("https://localhost:{port}"),
        &ca_line("peers/ca.pem"),
    );
    let err = connect(&gateway, &us).await.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
}

// ---------------------------------------------------------------- watch

fn replace(path: &Path, text: &str) {
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.sync_all().unwrap();
    std::fs::rename(&temp, path).unwrap();
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn watch_applies_good_books_and_keeps_the_last_good_one() {
    let f = Fixture::new();
    let path = f.dir.path().join("book.toml");
    std::fs::write(&path, format!("serial = 1\n{}", f.entry_a())).unwrap();
    let book = Book::load(&path).unwrap();
    assert_eq!(book.current().len(), 1);
    let mut workers = crate::worker::Supervisor::new();
    workers.spawn(BookWatcher::new(book.clone(), path.clone()));

    replace(&path, &f.text());
    eventually("two gateways", || book.current().len() == 2).await;
    assert_eq!(book.current().serial, 7);
    assert_eq!(book.last_error(), None);

    replace(&path, "[[gateway]\nname = ");
    eventually("the error is kept", || book.last_error().is_some()).await;
    let err = book.last_error().unwrap();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert_eq!(book.current().len(), 2, "the previous book stays");

    // in place (no rename) also counts; an invalid entry is refused too
    std::fs::write(&path, format!("{}{}", f.entry_a(), f.entry_a())).unwrap();
    eventually("the duplicate is refused", || {
        book.last_error()
            .is_some_and(|e| e.contains("already used by gateway 1"))
    })
    .await;
    assert_eq!(book.current().len(), 2);

    replace(&path, &format!("serial = 9\n{}", f.entry_b()));
    eventually("recovered", || book.current().serial == 9).await;
    assert_eq!(book.last_error(), None);
    assert_eq!(book.current().len(), 1);

    let failed = tokio::time::timeout(Duration::from_secs(5), workers.stop(Duration::from_secs(3)))
        .await
        .expect("watch stops");
    assert!(failed.is_empty(), "{failed:?}");
}

#[tokio::test]
async fn watch_picks_up_a_book_created_later() {
    let f = Fixture::new();
    let path = f.dir.path().join("later.toml");
    let book = Book::load_if_exists(&path).unwrap();
    assert!(book.current().is_empty());
    let mut workers = crate::worker::Supervisor::new();
    workers.spawn(BookWatcher::new(book.clone(), path.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    replace(&path, &f.text());
    eventually("created", || book.current().len() == 2).await;
    let failed = tokio::time::timeout(Duration::from_secs(5), workers.stop(Duration::from_secs(3)))
        .await
        .expect("watch stops");
    assert!(failed.is_empty(), "{failed:?}");
}

#[tokio::test]
async fn watch_that_cannot_be_set_up_is_a_failure() {
    let f = Fixture::new();
    let path = f.dir.path().join("no-such-dir").join("book.toml");
    let book = Book::load_if_exists(&path).unwrap();
    let mut workers = crate::worker::Supervisor::new();
    let health = workers.health();
    workers.spawn(BookWatcher::new(book, path));
    tokio::time::timeout(Duration::from_secs(5), health.first_failure())
        .await
        .expect("the watcher fails");
    let failed = workers.stop(Duration::from_secs(3)).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "address_book_watch");
    assert!(
        failed[0].1.contains("not watched for changes"),
        "{}",
        failed[0].1
    );
}

// ---------------------------------------------------------------- sync

fn detached_signature(signer_cert: &Cert, data: &[u8]) -> Vec<u8> {
    let policy = StandardPolicy::new();
    let keypair = signer_cert
        .keys()
        .unencrypted_secret()
        .with_policy(&policy, None)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .next()
        .unwrap()
        .key()
        .clone()
        .into_keypair()
        .unwrap();
    let mut sink = Vec::new();
    {
        let message = Message::new(&mut sink);
        let message = Armorer::new(message)
            .kind(sequoia_openpgp::armor::Kind::Signature)
            .build()
            .unwrap();
        let mut signer = Signer::new(message, keypair)
            .unwrap()
            .detached()
            .build()
            .unwrap();
        signer.write_all(data).unwrap();
        signer.finalize().unwrap();
    }
    sink
}

type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A minimal HTTPS/1.1 file server on 127.0.0.1 (one request per connection).
async fn https_files(leaf: &Leaf, files: Files) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der.clone()], leaf.key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let files = files.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let body = files.lock().unwrap().get(&target).cloned();
                let response = match body {
                    Some(body) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&body);
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = tls.write_all(&response).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn sync_writes_only_signed_newer_books() {
    let f = Fixture::new();
    let server_leaf = leaf(
        &f.ca,
        &["localhost", "127.0.0.1"],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    );
    let files: Files = Arc::default();
    let port = https_files(&server_leaf, files.clone()).await;
    let tls = roots_client_config(&f.dir.path().join("peers/ca.pem")).unwrap();
    let publisher = pgp("publisher");
    let publisher_path = f.dir.path().join("publisher.asc");
    std::fs::write(&publisher_path, armored(&publisher)).unwrap();
    let publisher_public = load_publisher(&publisher_path).unwrap();
    assert!(!publisher_public.is_tsk());
    std::fs::write(&publisher_path, armored_tsk(&publisher)).unwrap();
    assert!(
        load_publisher(&publisher_path).is_err(),
        "secret keys refused"
    );

    let url = format!("https://localhost:{port}/book.toml");
    let path = f.dir.path().join("book.toml");
    let local = format!("serial = 1\n{}", f.entry_a());
    std::fs::write(&path, &local).unwrap();
    let serve = |text: &str, signature: Vec<u8>| {
        let mut files = files.lock().unwrap();
        files.insert("/book.toml".into(), text.as_bytes().to_vec());
        files.insert("/book.toml.sig".into(), signature);
    };
    let sync = |current: u64| sync_once(&url, &publisher_public, &path, current, tls.clone());

    // signed by someone else: refused, file untouched
    let remote = f.text(); // serial 7
    serve(
        &remote,
        detached_signature(&pgp("mallory"), remote.as_bytes()),
    );
    let err = sync(1).await.unwrap_err();
    assert!(matches!(err, BookError::BadSignature { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), local);

    // a good signature over other text (the book was altered): refused
    serve(
        &remote.replace("22222222", "22222223"),
        detached_signature(&publisher, remote.as_bytes()),
    );
    let err = sync(1).await.unwrap_err();
    assert!(matches!(err, BookError::BadSignature { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), local);

    // no signature at all
    files.lock().unwrap().remove("/book.toml.sig");
    let err = sync(1).await.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");

    // signed, valid and newer: written
    serve(&remote, detached_signature(&publisher, remote.as_bytes()));
    assert_eq!(
        sync(1).await.unwrap(),
        SyncOutcome::Written {
            serial: 7,
            gateways: 2
        }
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), remote);
    assert_eq!(load(&path).unwrap().serial, 7);

    // the same or an older serial: nothing written
    std::fs::write(&path, &local).unwrap();
    for current in [7, 8] {
        assert_eq!(
            sync(current).await.unwrap(),
            SyncOutcome::NotNewer {
                fetched: 7,
                current
            }
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), local);

    // signed but invalid: refused with the book's own error
    let invalid = format!("serial = 9\n{}{}", f.entry_a(), f.entry_a());
    serve(&invalid, detached_signature(&publisher, invalid.as_bytes()));
    let err = sync(1).await.unwrap_err().to_string();
    assert!(err.contains("already used by gateway 1"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), local);

    // an untrusted server certificate
    let other_roots = {
        let other = ca("Other CA");
        let p = f.dir.path().join("other-ca.pem");
        std::fs::write(&p, other.pem).unwrap();
        roots_client_config(&p).unwrap()
    };
    let err = sync_once(&url, &publisher_public, &path, 1, other_roots)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS"), "{err}");
}

#[test]
fn the_system_bundle_loads_if_present() {
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        system_roots_client_config().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(roots_client_config(&empty).is_err());
}
