//! Black-box harness: the real `pushgate` binary on loopback ports, real
//! DCMTK tools as peers.
#![allow(dead_code)]

pub mod clients;
pub mod console;
pub mod gateways;
pub mod pacs;
pub mod pki;
pub mod scu;
pub mod sharing;
pub mod wire;

/// A copy of a sample file with some attributes changed (dcmodify `-i`
/// `tag=value`); `new_study`: with new study, series and instance UIDs.
pub fn variant(
    dir: &Path,
    from: &Path,
    name: &str,
    new_study: bool,
    changes: &[(&str, &str)],
) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    let mut dcmodify = Command::new("dcmodify");
    dcmodify.arg("-nb");
    if new_study {
        dcmodify.args(["-gst", "-gse", "-gin"]);
    }
    for (tag, value) in changes {
        dcmodify.arg("-i").arg(format!("{tag}={value}"));
    }
    let out = dcmodify.arg(&to).output().expect("dcmodify (dcmtk)");
    assert!(out.status.success(), "dcmodify: {}", text(&out));
    to
}

pub use pushgate::base::PacsAddress;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const STORESCU: &str = "/usr/bin/storescu";
pub const ECHOSCU: &str = "/usr/bin/echoscu";
pub const STORESCP: &str = "/usr/bin/storescp";

pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-dicom")
}

/// Every sample file, sorted.
pub fn sample_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![samples()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("sample-dicom exists") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "dcm") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no samples in sample-dicom/");
    files
}

/// The storescu flag that proposes a file's transfer syntax.
pub fn storescu_flag(transfer_syntax: &str) -> &'static str {
    match transfer_syntax {
        "1.2.840.10008.1.2" => "-xi",
        "1.2.840.10008.1.2.2" => "-xb",
        "1.2.840.10008.1.2.1.99" => "-xd",
        "1.2.840.10008.1.2.4.50" => "-xy",
        "1.2.840.10008.1.2.4.51" => "-xx",
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "-xs",
        "1.2.840.10008.1.2.4.80" => "-xt",
        "1.2.840.10008.1.2.4.81" => "-xu",
        "1.2.840.10008.1.2.4.90" => "-xv",
        "1.2.840.10008.1.2.4.91" => "-xw",
        "1.2.840.10008.1.2.5" => "-xr",
        _ => "-xe",
    }
}

pub fn transfer_syntax(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap();
    pushgate::ingest::read_part10_header(&file)
        .unwrap()
        .transfer_syntax
}

/// Files grouped by the storescu flag their transfer syntax needs (storescu
/// proposes one compressed syntax per run).
pub fn by_storescu_flag(files: &[PathBuf]) -> Vec<(&'static str, Vec<PathBuf>)> {
    let mut groups: Vec<(&'static str, Vec<PathBuf>)> = Vec::new();
    for f in files {
        let flag = storescu_flag(&transfer_syntax(f));
        match groups.iter_mut().find(|(g, _)| *g == flag) {
            Some((_, list)) => list.push(f.clone()),
            None => groups.push((flag, vec![f.clone()])),
        }
    }
    groups
}

/// The data set as DCMTK decodes it: a deflated data set is inflated, so it
/// can be compared with what storescp (which inflates on receipt) kept.
pub fn decoded_dataset_bytes(path: &Path) -> Vec<u8> {
    let bytes = dataset_bytes(path);
    if transfer_syntax(path) == "1.2.840.10008.1.2.1.99" {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(&bytes[..]), &mut out)
            .unwrap();
        out
    } else {
        bytes
    }
}

/// A loopback port nothing listens on, outside Linux's ephemeral range
/// (32768-60999): a port from that range can be taken as the local end of
/// some other test's client connection before the server we start binds
/// it (seen once: a reference storescp that could not bind).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // spread over 20000-32767, different per process and per call
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() as u16).wrapping_mul(7919);
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + (seed.wrapping_add(n.wrapping_mul(97)) % 12768);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A pushgate daemon in its own data directory.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub dicom: SocketAddr,
    pub http: SocketAddr,
    /// The console's listener, where the admin API lives too.
    pub console: SocketAddr,
    pub child: Option<Child>,
    dicom_port: u16,
    http_port: u16,
    console_port: u16,
    extra: String,
    /// Environment for the daemon process (after RUST_LOG, so it can
    /// replace it).
    pub env: Vec<(String, String)>,
    /// Set WATCHDOG_PID to the daemon's pid, as systemd does (a shell
    /// exports it and execs the daemon, keeping the pid).
    pub watchdog_pid: bool,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with("")
    }

    /// Starts with `extra` TOML appended to the test configuration (keys of
    /// sections other than those written here, or whole sections).
    pub fn start_with(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        Daemon::start_in(dir, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> Daemon {
        let mut daemon = Daemon::prepare_in(dir, extra);
        daemon.spawn().expect("daemon starts");
        daemon
    }

    /// Writes the configuration but does not start the process: set `env`
    /// first, then `spawn`.
    pub fn prepare(extra: &str) -> Daemon {
        Daemon::prepare_in(tempfile::tempdir().unwrap(), extra)
    }

    fn prepare_in(dir: tempfile::TempDir, extra: &str) -> Daemon {
        let daemon = Daemon {
            config: dir.path().join("pushgate.toml"),
            dir,
            dicom: "127.0.0.1:0".parse().unwrap(),
            http: "127.0.0.1:0".parse().unwrap(),
            console: "127.0.0.1:0".parse().unwrap(),
            child: None,
            dicom_port: free_port(),
            http_port: free_port(),
            console_port: free_port(),
            extra: extra.to_string(),
            env: Vec::new(),
            watchdog_pid: false,
        };
        daemon.write_config();
        daemon
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_config(&self) {
        // Sections named in `extra` replace ours.
        let dicom = if self.extra.contains("[dicom]") {
            String::new()
        } else {
            format!(
                "[dicom]\nlisten = \"127.0.0.1:{}\"\nstable_after = \"2s\"\n",
                self.dicom_port
            )
        };
        let http = if self.extra.contains("[http]") {
            String::new()
        } else {
            format!("[http]\nlisten = \"127.0.0.1:{}\"\n", self.http_port)
        };
        let console = if self.extra.contains("[console]") {
            // else the daemon would listen on the default 8444, which tests
            // running side by side would share
            assert!(
                self.extra.contains("CONSOLE_PORT") || self.extra.contains("listen = \"127.0.0.1:"),
                "a test's [console] must say listen = \"127.0.0.1:CONSOLE_PORT\""
            );
            String::new()
        } else {
            format!("[console]\nlisten = \"127.0.0.1:{}\"\n", self.console_port)
        };
        let extra = self
            .extra
            .replace("DICOM_PORT", &self.dicom_port.to_string())
            .replace("HTTP_PORT", &self.http_port.to_string())
            .replace("CONSOLE_PORT", &self.console_port.to_string());
        // keys before extra's first section are top-level: they go first
        let split = extra
            .lines()
            .position(|l| l.trim_start().starts_with('['))
            .unwrap_or(extra.lines().count());
        let top: Vec<&str> = extra.lines().take(split).collect();
        let sections: Vec<&str> = extra.lines().skip(split).collect();
        let text = format!(
            "data_dir = \"{}\"\n{}\n{dicom}{http}{console}{}\n",
            self.data_dir().display(),
            top.join("\n"),
            sections.join("\n"),
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts the process and waits for its "listening" line. On failure
    /// returns what it printed.
    pub fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let mut command = if self.watchdog_pid {
            let mut sh = Command::new("sh");
            sh.args(["-c", "export WATCHDOG_PID=$$; exec \"$0\" \"$@\""])
                .arg(env!("CARGO_BIN_EXE_pushgate"));
            sh
        } else {
            Command::new(env!("CARGO_BIN_EXE_pushgate"))
        };
        let mut child = command
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info,pushgate=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("pushgate listening ") {
                        for part in rest.split_whitespace() {
                            if let Some(a) = part.strip_prefix("dicom=") {
                                self.dicom = a.parse().unwrap();
                            }
                            if let Some(a) = part.strip_prefix("http=") {
                                self.http = a.parse().unwrap();
                            }
                            if let Some(a) = part.strip_prefix("console=") {
                                self.console = a.parse().unwrap();
                            }
                        }
                        self.child = Some(child);
                        return Ok(());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    return Err(format!(
                        "daemon did not start ({status:?}):\n{}",
                        self.log()
                    ));
                }
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn().expect("daemon restarts");
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Peak resident memory of the daemon so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    /// Runs a pushgate CLI command against this daemon's configuration.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap()
    }

    /// Every journal record, as `pushgate audit export` prints them.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["audit", "export"]);
        assert!(out.status.success(), "audit export: {}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn studies(&self) -> serde_json::Value {
        let out = self.cli(&["studies", "--json"]);
        assert!(
            out.status.success(),
            "studies failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn instance_count(&self) -> u64 {
        self.studies()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["num_instances"].as_u64().unwrap())
            .sum()
    }

    /// Instance files under the data directory, sorted.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let root = self.data_dir().join("instances");
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p)
                } else {
                    out.push(p)
                }
            }
        }
        out.sort();
        out
    }

    /// Sends every file, each with the storescu flag its transfer syntax
    /// needs; panics if any run fails.
    pub fn send_all(&self, files: &[PathBuf]) {
        for (flag, group) in by_storescu_flag(files) {
            let out = self.storescu(&[flag], &group);
            assert!(out.status.success(), "storescu {flag}: {}", text(&out));
        }
    }

    pub fn storescu(&self, args: &[&str], files: &[PathBuf]) -> Output {
        Command::new(STORESCU)
            .args(["-aec", "PUSHGATE"])
            .args(args)
            .arg(self.dicom.ip().to_string())
            .arg(self.dicom.port().to_string())
            .args(files)
            .output()
            .unwrap()
    }

    pub fn echoscu(&self, args: &[&str]) -> Output {
        Command::new(ECHOSCU)
            .args(args)
            .arg(self.dicom.ip().to_string())
            .arg(self.dicom.port().to_string())
            .output()
            .unwrap()
    }
}

/// An HTTPS answer as curl saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    /// Header lines, lower-cased names, without Date.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body as received (binary answers).
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// What to send besides method and path.
#[derive(Default, Clone)]
pub struct Ask<'a> {
    pub headers: Vec<(&'a str, String)>,
    pub body: Option<String>,
    pub form: bool,
    pub cert: Option<&'a pki::ClientCert>,
    /// Source address on loopback (127.0.0.x), to be several clients.
    pub from: Option<String>,
}

impl Daemon {
    /// One request with curl (HTTP/2 when offered), no redirects followed;
    /// `/admin/…` and `/console/…` go to the console's listener, the rest
    /// to the public one.
    pub fn https(&self, method: &str, path: &str, ask: Ask<'_>) -> Reply {
        let on = if path.starts_with("/admin/") || path.starts_with("/console") {
            self.console
        } else {
            self.http
        };
        self.https_on(on, method, path, ask)
    }

    /// One request to the listener at `on`.
    pub fn https_on(&self, on: SocketAddr, method: &str, path: &str, ask: Ask<'_>) -> Reply {
        let mut cmd = Command::new("curl");
        cmd.args(["-sk", "-i", "--max-time", "20", "-X", method]);
        for (name, value) in &ask.headers {
            cmd.arg("-H").arg(format!("{name}: {value}"));
        }
        if let Some(body) = &ask.body {
            if !ask.form {
                cmd.args(["-H", "Content-Type: application/json"]);
            }
            cmd.arg("--data-binary").arg(body);
        }
        if let Some(cert) = ask.cert {
            cmd.arg("--cert")
                .arg(&cert.cert)
                .arg("--key")
                .arg(&cert.key);
        }
        if let Some(from) = &ask.from {
            cmd.arg("--interface").arg(from);
        }
        cmd.arg(format!("https://{on}{path}"));
        let out = cmd.output().unwrap();
        // No answer at all (a refused TLS handshake): status 0.
        let split = out
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(out.stdout.len());
        let head = String::from_utf8_lossy(&out.stdout[..split]).to_string();
        let raw = out.stdout.get(split + 4..).unwrap_or_default().to_vec();
        let body = String::from_utf8_lossy(&raw).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .filter(|(n, _)| n != "date")
            .collect();
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.https("GET", path, Ask::default())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.log());
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The bytes of the data set in a Part 10 file (everything after the file
/// meta group).
pub fn dataset_bytes(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap();
    let header = pushgate::ingest::read_part10_header(&file).unwrap();
    std::fs::read(path).unwrap()[header.dataset_offset as usize..].to_vec()
}

/// SOP Instance UID of a file (from its meta group).
pub fn sop_instance(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap();
    pushgate::ingest::read_part10_header(&file)
        .unwrap()
        .sop_instance
}

/// A DCMTK storescp that keeps received data sets bit for bit, as the
/// reference for "what storescu actually sent".
pub struct Storescp {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Storescp {
    pub fn start() -> Storescp {
        let dir = tempfile::tempdir().unwrap();
        // a storescp that lost its port to another process exits: the
        // port answering is not enough, it must be ours and still running
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(STORESCP)
                .args(["-aet", "STORESCP", "--bit-preserving", "+xa", "-od"])
                .arg(dir.path())
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            wait_for_port(port);
            let echo = Command::new("/usr/bin/echoscu")
                .args([
                    "-to",
                    "10",
                    "-aec",
                    "STORESCP",
                    "127.0.0.1",
                    &port.to_string(),
                ])
                .output()
                .unwrap();
            if echo.status.success() && child.try_wait().unwrap().is_none() {
                return Storescp { child, dir, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("storescp did not start on five ports");
    }

    /// Sends `files` to this storescp (each group with its storescu flag).
    pub fn receive(&self, files: &[PathBuf]) {
        for (flag, group) in by_storescu_flag(files) {
            // -R: propose each file's own SOP class, also those outside
            // storescu's default list (Segmentation, retired US)
            let out = Command::new(STORESCU)
                .args([
                    "-R",
                    "-aec",
                    "STORESCP",
                    flag,
                    "127.0.0.1",
                    &self.port.to_string(),
                ])
                .args(&group)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "storescu {flag} → storescp: {}",
                text(&out)
            );
        }
    }

    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }
}

impl Drop for Storescp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `cond` holds, up to `limit`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}
