use std::net::SocketAddr;

use http_body_util::Empty;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A TLS server for "localhost" that answers every request with `answer`
/// (raw HTTP/1.1), or never answers when it is `None`; and a client
/// configuration trusting it.
async fn server(answer: Option<Vec<u8>>) -> (SocketAddr, Arc<ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                match answer {
                    Some(answer) => {
                        let _ = tls.write_all(&answer).await;
                        let _ = tls.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (addr, Arc::new(client))
}

fn target(addr: SocketAddr) -> Target {
    Target {
        host: addr.ip().to_string(),
        port: addr.port(),
        name: ServerName::try_from("localhost").unwrap(),
    }
}

fn get() -> Request<Empty<Bytes>> {
    Request::get("/")
        .header(hyper::header::HOST, "localhost")
        .body(Empty::new())
        .unwrap()
}

fn ok_with(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn an_answer_is_read_whole() {
    let (addr, tls) = server(Some(ok_with("hello"))).await;
    let answer = exchange(&target(addr), tls, get(), Limits::default())
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(&answer.body[..], b"hello");
}

#[tokio::test]
async fn a_refused_connection_names_the_connect_stage_and_the_target() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (_, tls) = server(None).await;
    let e = exchange(&target(addr), tls, get(), Limits::default())
        .await
        .unwrap_err();
    assert_eq!(e.stage(), Stage::Connect, "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot connect to {addr}")),
        "{e}"
    );
}

#[tokio::test]
async fn a_peer_that_speaks_no_tls_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let (_, tls) = server(None).await;
    let e = exchange(&target(addr), tls, get(), Limits::default())
        .await
        .unwrap_err();
    assert_eq!(e.stage(), Stage::Handshake, "{e}");
    assert!(e.to_string().starts_with("TLS with"), "{e}");
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    let (addr, tls) = server(Some(ok_with(&"x".repeat(100)))).await;
    let limits = Limits::default().with_max_body(10);
    let e = exchange(&target(addr), tls, get(), limits)
        .await
        .unwrap_err();
    assert_eq!(e.stage(), Stage::Body, "{e}");
    assert!(e.to_string().contains("at most 10 bytes"), "{e}");
}

#[tokio::test]
async fn a_peer_that_never_answers_times_the_exchange_out() {
    let (addr, tls) = server(None).await;
    let limits = Limits {
        exchange: Duration::from_millis(300),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let e = exchange(&target(addr), tls, get(), limits)
        .await
        .unwrap_err();
    assert_eq!(e.stage(), Stage::Exchange, "{e}");
    assert!(e.to_string().contains("no complete answer within"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_upload_gets_time_for_its_bytes_and_the_answer() {
    let limits = Limits::upload(10 << 20);
    assert_eq!(
        limits.exchange,
        EXCHANGE_TIMEOUT + Duration::from_secs(10) + UPLOAD_ANSWER_TIMEOUT
    );
    assert_eq!(limits.max_body, MAX_BODY);
}
