//! Connections at the HTTPS edge (issue #12): silent connections are
//! closed, one address cannot take every place, a slow download in
//! progress is not cut, and early refusals reach HTTP/2 clients (curl and
//! Python httpx) with their status and reason.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::sharing::{as_holder, bind, path_of, share, study_with};
use common::{Ask, Daemon, sample_files, text};

/// The idle timeout the timeout tests configure.
const IDLE: Duration = Duration::from_secs(2);

fn ct_files() -> Vec<std::path::PathBuf> {
    sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
        .collect()
}

/// A TLS client that trusts any server certificate (the daemon's is
/// self-signed), offering `alpn`.
mod tls {
    use super::*;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    struct AnyServer;

    impl ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    pub type Stream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

    /// A TCP connection from `from` (127.0.0.x), bound before connecting.
    pub fn tcp(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        let local: SocketAddr = format!("{from}:0").parse().unwrap();
        socket.bind(&local.into())?;
        socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
        Ok(socket.into())
    }

    /// A completed TLS handshake from `from`, or the error that ended it.
    pub fn connect(from: &str, to: SocketAddr, alpn: &[&[u8]]) -> std::io::Result<Stream> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer))
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from("localhost").unwrap();
        let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = tcp(from, to)?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(stream)
    }
}

/// Reads until the server closes the connection; how long that took from
/// `since`, or `None` if it was still open at `limit`.
fn closed_within(read: &mut impl Read, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    while since.elapsed() < limit {
        match read.read(&mut buf) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(since.elapsed()),
        }
    }
    None
}

/// TCP from `from` to `to` that never sends a byte (no TLS ClientHello)
/// is closed within the handshake timeout, capped by the idle timeout.
fn silent_tcp_is_closed(from: &str, to: SocketAddr) {
    let since = Instant::now();
    let mut silent = tls::tcp(from, to).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let took = closed_within(&mut silent, since, IDLE + Duration::from_secs(6))
        .expect("silent TCP closed");
    assert!(took < IDLE + Duration::from_secs(2), "{took:?}");
}

#[test]
fn silent_connections_are_closed_after_the_idle_timeout() {
    let daemon = Daemon::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\nidle_timeout = \"{}s\"\n",
        IDLE.as_secs()
    ));
    let limit = IDLE + Duration::from_secs(6);
    // TCP that never sends a byte (no TLS ClientHello)
    silent_tcp_is_closed("127.0.0.20", daemon.http);

    // TLS handshake done, then nothing (HTTP/1.1 offered)
    let since = Instant::now();
    let mut quiet = tls::connect("127.0.0.21", daemon.http, &[b"http/1.1"]).unwrap();
    let took = closed_within(&mut quiet, since, limit).expect("silent TLS closed");
    assert!(took >= IDLE - Duration::from_millis(500), "{took:?}");

    // HTTP/2: preface and SETTINGS, but never a stream
    let since = Instant::now();
    let mut h2 = tls::connect("127.0.0.22", daemon.http, &[b"h2"]).unwrap();
    assert_eq!(h2.conn.alpn_protocol(), Some(&b"h2"[..]));
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    h2.flush().unwrap();
    closed_within(&mut h2, since, limit).expect("HTTP/2 without a stream closed");

    // HTTP/1.1 keep-alive after one answer
    let mut keep = tls::connect("127.0.0.23", daemon.http, &[b"http/1.1"]).unwrap();
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    keep.flush().unwrap();
    let mut answer = [0u8; 512];
    let n = keep.read(&mut answer).unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &answer[..n]
    );
    let since = Instant::now();
    let took = closed_within(&mut keep, since, limit).expect("idle keep-alive closed");
    assert!(took >= IDLE - Duration::from_millis(500), "{took:?}");
    assert_eq!(daemon.get("/healthz").status, 200);
}

#[test]
fn a_slow_download_in_progress_outlives_the_idle_timeout() {
    let daemon = Daemon::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\nidle_timeout = \"{}s\"\n",
        IDLE.as_secs()
    ));
    daemon.send_all(&ct_files());
    let grant = share(&daemon, &[&study_with(&daemon, "CT")]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    for version in ["--http1.1", "--http2"] {
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("study.zip");
        let started = Instant::now();
        // over a megabyte at 200 kB/s: several idle timeouts long
        let out = Command::new("curl")
            .args(["-sk", version, "--limit-rate", "200k", "--max-time", "60"])
            .args(["-H", &format!("Authorization: Bearer {holder}")])
            .arg("-o")
            .arg(&zip)
            .args(["-w", "%{http_code} %{size_download}"])
            .arg(format!("https://{}{path}/download.zip", daemon.http))
            .output()
            .unwrap();
        assert!(out.status.success(), "{version}: {}", text(&out));
        let took = started.elapsed();
        assert!(took > IDLE * 2, "{version}: only {took:?}: not slow enough");
        let printed = String::from_utf8_lossy(&out.stdout).to_string();
        let size = std::fs::metadata(&zip).unwrap().len();
        assert_eq!(printed, format!("200 {size}"), "{version}");
        assert!(size > 1_000_000, "{size}");
    }
}

#[test]
fn one_address_holding_its_connections_leaves_room_for_others() {
    // the default: 64 connections per address
    let daemon = Daemon::start();
    daemon.send_all(&ct_files());
    let grant = share(&daemon, &[&study_with(&daemon, "CT")]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    let held: Vec<tls::Stream> = (0..64)
        .map(|n| {
            tls::connect("127.0.0.2", daemon.http, &[b"http/1.1"])
                .unwrap_or_else(|e| panic!("connection {n}: {e}"))
        })
        .collect();
    // the 65th from the same address is closed before any handshake
    let refused = tls::connect("127.0.0.2", daemon.http, &[b"http/1.1"]);
    assert!(refused.is_err(), "a 65th connection from one address");
    // another address is served: liveness and a recipient's page
    let from = Some("127.0.0.3".to_string());
    let health = daemon.https(
        "GET",
        "/healthz",
        Ask {
            from: from.clone(),
            ..Ask::default()
        },
    );
    assert_eq!(health.status, 200, "{health:?}");
    let page = daemon.https(
        "GET",
        &path,
        Ask {
            from,
            ..as_holder(&holder)
        },
    );
    assert_eq!(page.status, 200, "{page:?}");
    // given back, the place is free again
    drop(held);
    assert!(common::eventually(Duration::from_secs(5), || {
        tls::connect("127.0.0.2", daemon.http, &[b"http/1.1"]).is_ok()
    }));
}

/// A JSON body large enough that the client is still sending when an
/// early refusal comes back.
fn padded_json() -> String {
    format!(
        "{{\"code\":\"0000-0000-00\",\"pad\":\"{}\"}}",
        "x".repeat(48 * 1024)
    )
}

#[test]
fn early_refusals_reach_http2_clients_with_their_reason() {
    // the admin API on the public listener too (the upgrade path), so that
    // one listener shows all three refusals
    let daemon = Daemon::start_with("[admin]\non_public_listener = true\n");
    let body = padded_json();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(&file, &body).unwrap();
    let base = format!("https://{}", daemon.http);
    // (path, extra header, expected status, expected in the body)
    let cases: [(&str, &str, u16, &str); 3] = [
        (
            "/admin/v1/grants",
            "X-Nothing: 1",
            401,
            "authorization required",
        ),
        ("/redeem", "Sec-Fetch-Site: cross-site", 403, "another site"),
        ("/s/no-such-token-at-all", "X-Nothing: 1", 404, "not found"),
    ];
    for (path, header, status, reason) in cases {
        for n in 0..20 {
            // wrong admin tokens are limited per address: one each
            let from = format!("127.0.1.{}", 10 + n);
            let out = Command::new("curl")
                .args(["-sk", "--http2", "--max-time", "20", "--interface", &from])
                .args(["-H", "Content-Type: application/json", "-H", header])
                .arg("--data-binary")
                .arg(format!("@{}", file.display()))
                .args(["-w", "\n%{http_version} %{http_code}"])
                .arg(format!("{base}{path}"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{path} try {n}: {}", text(&out));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let (answer, last) = stdout.rsplit_once('\n').unwrap();
            assert_eq!(last, format!("2 {status}"), "{path} try {n}: {stdout}");
            assert!(answer.contains(reason), "{path} try {n}: {answer}");
        }
    }
    // Python httpx over HTTP/2 (h2), the same three
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    assert!(python.exists(), "`make pyenv` creates {}", python.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/h2_refusals_check.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&base)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "httpx: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("60 refusals received over HTTP/2"),
        "{}",
        text(&out)
    );
}

/// The console's listener has the same edge: silent connections are
/// closed, one address holding its 64 places leaves the console to the
/// others, and a flood of the public listener does not reach it (each
/// listener has places of its own).
#[test]
fn the_console_listener_is_held_open_by_no_one() {
    let daemon = Daemon::start_with(&format!(
        "[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\nidle_timeout = \"{}s\"\n",
        IDLE.as_secs()
    ));
    let limit = IDLE + Duration::from_secs(6);
    silent_tcp_is_closed("127.0.0.30", daemon.console);
    let since = Instant::now();
    let mut quiet = tls::connect("127.0.0.31", daemon.console, &[b"h2"]).unwrap();
    closed_within(&mut quiet, since, limit).expect("silent TLS closed");

    let held: Vec<tls::Stream> = (0..64)
        .map(|n| {
            tls::connect("127.0.0.32", daemon.console, &[b"http/1.1"])
                .unwrap_or_else(|e| panic!("console connection {n}: {e}"))
        })
        .collect();
    assert!(tls::connect("127.0.0.32", daemon.console, &[b"http/1.1"]).is_err());
    // the public listener full from another address too
    let public: Vec<tls::Stream> = (0..64)
        .map(|n| {
            tls::connect("127.0.0.33", daemon.http, &[b"http/1.1"])
                .unwrap_or_else(|e| panic!("public connection {n}: {e}"))
        })
        .collect();
    let mut login = tls::connect("127.0.0.34", daemon.console, &[b"http/1.1"]).unwrap();
    login
        .write_all(b"GET /console/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    login.flush().unwrap();
    let mut answer = Vec::new();
    let _ = login.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(300)])
    );
    drop((held, public));
}
