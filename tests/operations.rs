//! Running pushgate as a service: systemd's notify protocol, SIGHUP
//! reloads, `/metrics` (read by the Prometheus project's own parser),
//! `/readyz`, logs, `config check` and `init`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Ask, Daemon, eventually, sample_files, text};

fn signal(daemon: &Daemon, sig: i32) {
    // SAFETY: kill only sends a signal to our own child.
    let rc = unsafe { libc::kill(daemon.pid() as i32, sig) };
    assert_eq!(rc, 0, "kill failed");
}

/// Datagrams from the daemon on a NOTIFY_SOCKET, as systemd receives them.
struct Notifications(UnixDatagram);

impl Notifications {
    fn bind(path: &Path) -> Notifications {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Notifications(socket)
    }

    /// Messages until one contains `want` (or `limit` passes); all of them.
    fn until(&self, want: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.0.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).to_string();
                let done = message.lines().any(|l| l == want);
                seen.push(message);
                if done {
                    return seen;
                }
            }
        }
        panic!("no {want:?} within {limit:?}; got {seen:?}");
    }
}

#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    let mut daemon = Daemon::prepare("");
    let socket = daemon.dir.path().join("notify.sock");
    let notes = Notifications::bind(&socket);
    daemon.env = vec![
        ("NOTIFY_SOCKET".into(), socket.display().to_string()),
        ("WATCHDOG_USEC".into(), "400000".into()),
    ];
    daemon.watchdog_pid = true;
    daemon.spawn().expect("daemon starts");
    let first = notes.until("READY=1", Duration::from_secs(5));
    assert!(
        first.iter().any(|m| m.contains("STATUS=serving")),
        "{first:?}"
    );
    // READY=1 comes only once the listeners answer.
    assert_eq!(daemon.get("/healthz").status, 200);
    // Pings at half the interval: several within a second.
    let start = Instant::now();
    notes.until("WATCHDOG=1", Duration::from_secs(2));
    notes.until("WATCHDOG=1", Duration::from_secs(2));
    notes.until("WATCHDOG=1", Duration::from_secs(2));
    assert!(start.elapsed() < Duration::from_millis(1500));

    signal(&daemon, libc::SIGHUP);
    notes.until("RELOADING=1", Duration::from_secs(5));
    notes.until("READY=1", Duration::from_secs(5));
    assert_eq!(daemon.get("/healthz").status, 200, "still serving");

    let pid = daemon.pid();
    signal(&daemon, libc::SIGTERM);
    notes.until("STOPPING=1", Duration::from_secs(5));
    assert_eq!(daemon.stop(), Some(0), "pid {pid} exits cleanly");
}

fn openssl_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
        ])
        .arg(format!("/CN={name}.test"))
        .arg("-addext")
        .arg("subjectAltName=DNS:localhost,IP:127.0.0.1")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    (cert, key)
}

/// The subject of the certificate the server presents now.
fn served_subject(daemon: &Daemon) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -subject",
            daemon.http
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn echo_as(daemon: &Daemon, calling: &str) -> bool {
    daemon
        .echoscu(&["-aet", calling, "-aec", "PUSHGATE", "-to", "5"])
        .status
        .success()
}

fn metrics(daemon: &Daemon) -> String {
    let reply = daemon.get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// The value of one sample line (`name{labels} value`), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn sighup_reloads_allow_list_and_certificate_and_a_bad_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = openssl_cert(dir.path(), "a");
    let (cert_b, key_b) = openssl_cert(dir.path(), "b");
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let config = |allowed: &str| {
        format!(
            "[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nallowed_calling_aes = {allowed}\n\
             [http]\nlisten = \"127.0.0.1:HTTP_PORT\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             [retention]\nmax_age = \"30d\"\n",
            cert.display(),
            key.display()
        )
    };
    let mut daemon = Daemon::prepare(&config("[\"CT1\"]"));
    daemon.spawn().expect("starts");
    assert!(served_subject(&daemon).contains("CN = a.test"));
    assert!(echo_as(&daemon, "CT1"));
    assert!(!echo_as(&daemon, "MR2"), "MR2 is not on the list yet");

    // Edit the list and renew the certificate in place (as certbot does),
    // then reload.
    let written = std::fs::read_to_string(&daemon.config).unwrap();
    std::fs::write(
        &daemon.config,
        written
            .replace("[\"CT1\"]", "[\"CT1\", \"MR2\"]")
            .replace("\"30d\"", "\"1d\""),
    )
    .unwrap();
    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    signal(&daemon, libc::SIGHUP);
    assert!(
        eventually(Duration::from_secs(10), || echo_as(&daemon, "MR2")),
        "MR2 accepted after the reload:\n{}",
        daemon.log()
    );
    assert!(served_subject(&daemon).contains("CN = b.test"));
    assert!(daemon.log().contains("reloaded: TLS certificate"));
    // What a reload cannot apply is named, not silently ignored.
    assert!(
        daemon
            .log()
            .contains("applied only by a restart: retention.max_age"),
        "{}",
        daemon.log()
    );

    // A broken file: nothing changes, the daemon goes on and says why.
    let good = std::fs::read_to_string(&daemon.config).unwrap();
    std::fs::write(&daemon.config, format!("{good}\n[dicom\n")).unwrap();
    signal(&daemon, libc::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || daemon
        .log()
        .contains("reload failed, nothing changed")));
    // A missing certificate: refused as a whole, the list stays as it was.
    std::fs::write(
        &daemon.config,
        good.replace("[\"CT1\", \"MR2\"]", "[\"CT1\"]")
            .replace(&cert.display().to_string(), "/nonexistent/cert.pem"),
    )
    .unwrap();
    signal(&daemon, libc::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || {
        sample(
            &metrics(&daemon),
            "pushgate_config_reloads_total{state=\"failed\"}",
        ) == Some(2.0)
    }));
    assert!(echo_as(&daemon, "MR2"), "the list is unchanged");
    assert!(served_subject(&daemon).contains("CN = b.test"));
    assert_eq!(
        sample(
            &metrics(&daemon),
            "pushgate_config_reloads_total{state=\"ok\"}"
        ),
        Some(1.0)
    );
    assert!(daemon.is_running());
}

#[test]
fn metrics_count_what_happened_and_parse_as_openmetrics() {
    let daemon = Daemon::start();
    let files = sample_files();
    daemon.send_all(&files);
    let received: u64 = daemon
        .stored_files()
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let study = daemon.studies()[0]["study_uid"]
        .as_str()
        .unwrap()
        .to_string();
    let share = daemon.cli(&["share", "--legal-basis", "referral", &study, "--json"]);
    assert!(share.status.success(), "{}", text(&share));
    let wrong = daemon.https(
        "POST",
        "/redeem",
        Ask {
            body: Some("{\"code\":\"AAAA-AAAA-AAAA\"}".into()),
            ..Ask::default()
        },
    );
    assert!(wrong.status >= 400, "{wrong:?}");
    assert!(eventually(Duration::from_secs(15), || {
        sample(&metrics(&daemon), "pushgate_studies_completed_total").unwrap_or(0.0) >= 1.0
    }));

    let body = metrics(&daemon);
    let n = files.len() as f64;
    assert_eq!(sample(&body, "pushgate_instances_received_total"), Some(n));
    assert_eq!(
        sample(&body, "pushgate_received_bytes_total"),
        Some(received as f64)
    );
    assert!(sample(&body, "pushgate_dicom_associations_total").unwrap() >= 1.0);
    assert_eq!(sample(&body, "pushgate_dicom_associations_open"), Some(0.0));
    assert_eq!(sample(&body, "pushgate_grants_issued_total"), Some(1.0));
    assert_eq!(
        sample(&body, "pushgate_grants{state=\"active\"}"),
        Some(1.0)
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("pushgate_accesses_total{outcome=\"denied\",kind=\"redeem\"")),
        "{body}"
    );
    assert_eq!(sample(&body, "pushgate_journal_writable"), Some(1.0));
    assert_eq!(sample(&body, "pushgate_outbox_depth"), Some(0.0));
    assert_eq!(sample(&body, "pushgate_disk_over_high_water"), Some(0.0));
    assert!(sample(&body, "pushgate_disk_free_bytes").unwrap() > 0.0);
    let used = sample(&body, "pushgate_disk_used_ratio").unwrap();
    assert!(used > 0.0 && used < 1.0, "{used}");

    // The Prometheus project's Python parser reads the exposition strictly
    // (OpenMetrics: HELP/TYPE, _total, # EOF).
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    let parsed = Command::new(&python)
        .arg("-c")
        .arg(
            "import sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
             fams = list(text_string_to_metric_families(sys.stdin.read()))\n\
             print(len(fams), sum(len(f.samples) for f in fams))",
        )
        .stdin(std::fs::File::open(save(&daemon, &body)).unwrap())
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", text(&parsed));
    let families: usize = String::from_utf8_lossy(&parsed.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(families >= 15, "{}", text(&parsed));

    // Ready; and not ready, with the reason, when the store cannot write.
    let ready = daemon.get("/readyz");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    let tmp = daemon.data_dir().join("tmp");
    let aside = daemon.data_dir().join("tmp.aside");
    std::fs::rename(&tmp, &aside).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let not_ready = daemon.get("/readyz");
    std::fs::remove_file(&tmp).unwrap();
    std::fs::rename(&aside, &tmp).unwrap();
    assert_eq!(not_ready.status, 503, "{not_ready:?}");
    assert!(
        not_ready.body.contains("not ready: store not writable"),
        "{not_ready:?}"
    );
    assert_eq!(daemon.get("/readyz").status, 200);
}

fn save(daemon: &Daemon, body: &str) -> std::path::PathBuf {
    let path = daemon.dir.path().join("metrics.txt");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn json_logs_carry_association_and_request_ids_and_no_patient_data() {
    let mut daemon = Daemon::prepare("[log]\nformat = \"json\"\n");
    daemon.env = vec![("RUST_LOG".into(), "info".into())];
    daemon.spawn().expect("starts");
    daemon.send_all(&sample_files());
    let _ = daemon.get("/s/not-a-token");
    let studies = daemon.studies();
    daemon.stop();

    let log = daemon.log();
    let mut association_lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let spans = value["spans"].as_array().cloned().unwrap_or_default();
        if spans.iter().any(|s| s["name"] == "association") {
            association_lines += 1;
            assert!(
                spans
                    .iter()
                    .any(|s| s["name"] == "association" && s["id"].is_number()),
                "{line}"
            );
        }
    }
    assert!(association_lines > 0, "no association lines in\n{log}");
    // Nothing that names the patient, at info level.
    for study in studies.as_array().unwrap() {
        for value in [
            study["patient"]["name"].as_str().unwrap_or_default(),
            study["patient"]["id"].as_str().unwrap_or_default(),
        ] {
            let value = value.trim();
            if value.len() >= 3 {
                assert!(
                    !log.contains(value) && !log.contains(&value.replace('^', " ")),
                    "the log names the patient ({value}):\n{log}"
                );
            }
        }
    }
}

#[test]
fn config_check_prints_the_effective_configuration_and_names_problems() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pushgate.toml");
    std::fs::write(&file, "[dicom]\nae_title = \"FROMFILE\"\n").unwrap();
    let check = |extra_env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .args(["config", "check"])
            .arg(&file)
            .envs(extra_env.iter().copied())
            .output()
            .unwrap()
    };
    let ok = check(&[("PUSHGATE__DICOM__MAX_ASSOCIATIONS", "7")]);
    assert!(ok.status.success(), "{}", text(&ok));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.contains("ae_title = \"FROMFILE\""), "{out}");
    assert!(out.contains("max_associations = 7"), "{out}");
    assert!(
        out.contains("[retention]") || out.contains("[log]"),
        "{out}"
    );

    let typo = check(&[("PUSHGATE__DICOM__AE_TITEL", "X")]);
    assert!(!typo.status.success());
    assert!(
        text(&typo).contains("PUSHGATE__DICOM__AE_TITEL"),
        "{}",
        text(&typo)
    );

    std::fs::write(&file, "[dicom]\nmax_pdu = 12\n").unwrap();
    let bad = check(&[]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("dicom.max_pdu"), "{}", text(&bad));

    std::fs::write(
        &file,
        "[http]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n",
    )
    .unwrap();
    let missing = check(&[]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("problem: http.tls_cert"),
        "{}",
        text(&missing)
    );
}

#[test]
fn init_creates_once_and_never_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = || {
        Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .arg("init")
            .env("PUSHGATE__DATA_DIR", &data)
            .output()
            .unwrap()
    };
    let first = init();
    assert!(first.status.success(), "{}", text(&first));
    let paths = [
        data.join("admin.token"),
        data.join("tls/cert.pem"),
        data.join("tls/key.pem"),
        data.join("relay/key.pgp"),
    ];
    let before: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for secret in [&paths[0], &paths[2], &paths[3]] {
        let mode = std::fs::metadata(secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", secret.display());
    }
    assert_eq!(
        String::from_utf8_lossy(&first.stdout)
            .matches("created")
            .count(),
        4,
        "{}",
        text(&first)
    );
    let second = init();
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(
        String::from_utf8_lossy(&second.stdout)
            .matches("kept")
            .count(),
        4,
        "{}",
        text(&second)
    );
    let after: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(before, after, "nothing replaced");
}

/// A reload that drops a client CA takes effect on connections opened
/// before it, too: a UZI holder on a kept-alive connection (Python
/// urllib3, one pooled connection throughout) is no longer recognised.
#[test]
fn a_reload_rejudges_client_certificates_on_open_connections() {
    use common::pki::TestCa;
    use common::sharing::{path_of, share, study_with};
    let pki = tempfile::tempdir().unwrap();
    let (ca, other) = (TestCa::new(pki.path()), {
        let dir = pki.path().join("other");
        std::fs::create_dir(&dir).unwrap();
        TestCa::new(&dir)
    });
    let card = ca.issue("dr A Radioloog", Some(("10000001", "90000380", "01.039")));
    let mut daemon = Daemon::prepare(&format!(
        "[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\nclient_ca = [\"{}\"]\n",
        ca.ca_pem.display()
    ));
    daemon.spawn().expect("starts");
    daemon.send_all(
        &sample_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("ct-phantom/"))
            .collect::<Vec<_>>(),
    );
    let study = study_with(&daemon, "CT");
    let grant = share(&daemon, &[&study, "--to-ura", "90000380"]);
    let go = daemon.dir.path().join("go");
    let script = format!(
        r#"
import os, time, urllib3
urllib3.disable_warnings()
pool = urllib3.HTTPSConnectionPool({host:?}, {port}, cert_file={cert:?}, key_file={key:?},
                                   cert_reqs="CERT_NONE", maxsize=1, block=True)
h = {{"Accept": "application/json"}}
a = pool.request("POST", {path:?}, headers=h).status
b = pool.request("GET", {path:?}, headers=h).status
print(a, b, flush=True)
deadline = time.time() + 30
while not os.path.exists({go:?}) and time.time() < deadline:
    time.sleep(0.05)
c = pool.request("GET", {path:?}, headers=h).status
print(c, pool.num_connections, flush=True)
"#,
        host = daemon.http.ip().to_string(),
        port = daemon.http.port(),
        path = path_of(&grant["url"]),
        cert = card.cert.display().to_string(),
        key = card.key.display().to_string(),
        go = go.display().to_string(),
    );
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    let mut child = Command::new(python)
        .arg("-c")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let Some(Ok(first)) = lines.next() else {
        let out = child.wait_with_output().unwrap();
        panic!("python: {}", String::from_utf8_lossy(&out.stderr));
    };
    assert_eq!(first, "200 200", "bound and served over one connection");

    let written = std::fs::read_to_string(&daemon.config).unwrap();
    std::fs::write(
        &daemon.config,
        written.replace(
            &ca.ca_pem.display().to_string(),
            &other.ca_pem.display().to_string(),
        ),
    )
    .unwrap();
    signal(&daemon, libc::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || daemon
        .log()
        .contains("reloaded: TLS certificate")));
    std::fs::write(&go, b"").unwrap();
    let second = lines.next().unwrap().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        second, "404 1",
        "the card no longer names a holder, on the same connection"
    );
}
