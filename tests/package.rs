//! The Debian package and the systemd unit, checked with the tools that
//! judge them elsewhere: `systemd-analyze` (security, verify, syscall-filter),
//! `lintian`, and `dpkg` installing into a scratch root
//! (`--root --force-script-chrootless`: the maintainer scripts run on this
//! machine with `$DPKG_ROOT` set). Nothing here touches the running system.
//!
//! Needs root (dpkg chowns files in the scratch root) and the tools named in
//! the Makefile's DEB_PACKAGES; without them a test says SKIPPED, except
//! under CI (`PUSHGATE_CI`), where that is a failure.
//!
//! lintian (2.116, bookworm) reports no errors and no warnings, only
//! informational tags, which this test allows:
//! `hardening-no-fortify-functions` (Rust does not use glibc's _chk
//! functions), `package-supports-alternative-init-but-no-init.d-script`
//! (systemd only, by design: Type=notify, watchdog, sandboxing) and
//! `spelling-error-in-binary` (strings from dependencies).

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{ECHOSCU, STORESCU, free_port, sample_files, text};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/pushgate.service");
const BUILD_DEB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-deb.sh");
const BINARY: &str = env!("CARGO_BIN_EXE_pushgate");

/// Whether the tools (and root, if asked) are here. Missing: a failure under
/// CI, elsewhere SKIPPED with the reason and `false`.
fn have(tools: &[&str], root: bool) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !std::env::split_paths(&path).any(|d| is_executable(&d.join(t))))
        .map(|t| t.to_string())
        .collect();
    if root && unsafe { libc::geteuid() } != 0 {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("PUSHGATE_CI").is_none(),
        "missing under CI: {missing:?} (make deps installs them)"
    );
    eprintln!("SKIPPED: missing {missing:?} (make deps installs them)");
    false
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------- the unit

/// `[Service]` settings of the unit, in order (a key may repeat).
fn service_settings() -> Vec<(String, String)> {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let mut section = "";
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]" {
            let (k, v) = line.split_once('=').expect("key=value");
            settings.push((k.to_string(), v.to_string()));
        }
    }
    settings
}

fn setting(settings: &[(String, String)], key: &str) -> Option<String> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn seconds(value: &str) -> f64 {
    let v = value.trim();
    if let Some(min) = v.strip_suffix("min") {
        min.parse::<f64>().unwrap() * 60.0
    } else {
        v.trim_end_matches('s').parse().unwrap()
    }
}

#[test]
fn unit_declares_what_the_daemon_does() {
    let s = service_settings();
    let get = |k: &str| setting(&s, k).unwrap_or_else(|| panic!("{k}= missing"));
    assert_eq!(get("Type"), "notify");
    assert_eq!(get("NotifyAccess"), "main");
    assert_eq!(seconds(&get("WatchdogSec")), 30.0);
    assert_eq!(get("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(get("ExecStart"), "/usr/bin/pushgate serve");
    assert_eq!(
        get("Environment"),
        "PUSHGATE_CONFIG=/etc/pushgate/pushgate.toml"
    );
    // The daemon drains for up to 25 s on SIGTERM, then fsyncs and exits.
    assert!(
        seconds(&get("TimeoutStopSec")) > 25.0,
        "TimeoutStopSec must outlast the 25 s drain"
    );
    // A start after an unclean stop reconciles the index with every file
    // before READY=1; a short limit would kill it in a loop.
    assert!(seconds(&get("TimeoutStartSec")) >= 600.0);
    assert_eq!(get("Restart"), "on-failure");
    assert_eq!(get("User"), "pushgate");
    assert_eq!(get("StateDirectory"), "pushgate");
    assert_eq!(get("ConfigurationDirectory"), "pushgate");
    assert_eq!(get("UMask"), "0027");
    assert_eq!(get("CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");
    assert_eq!(get("AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
    // In a user namespace CAP_NET_BIND_SERVICE would not count for the
    // host's network namespace: ports 104/443 would fail.
    assert_ne!(setting(&s, "PrivateUsers").as_deref(), Some("yes"));
    assert!(
        get("RestrictAddressFamilies").contains("AF_UNIX"),
        "sd_notify"
    );
    assert!(setting(&s, "IPAddressDeny").is_none(), "a network service");
}

#[test]
fn unit_exposure_is_at_most_2() {
    if !have(&["systemd-analyze"], false) {
        return;
    }
    let out = run(Command::new("systemd-analyze").args(["security", "--offline=yes", UNIT]));
    let report = stdout(&out);
    assert!(stderr(&out).trim().is_empty(), "warnings: {}", stderr(&out));
    let level: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for pushgate.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    eprintln!("exposure level {level}");
    assert!(level <= 2.0, "exposure {level} > 2.0:\n{report}");
}

#[test]
fn unit_verifies_clean() {
    if !have(&["systemd-analyze"], false) {
        return;
    }
    // verify wants ExecStart's binary to exist: a copy pointing at the
    // one just built. The file keeps its name (the unit's name is checked).
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(UNIT).unwrap().replace(
        "ExecStart=/usr/bin/pushgate ",
        &format!("ExecStart={BINARY} "),
    );
    let copy = dir.path().join("pushgate.service");
    std::fs::write(&copy, unit).unwrap();
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).trim().is_empty() && stdout(&out).trim().is_empty(),
        "systemd-analyze verify complains:\n{}",
        text(&out)
    );
}

/// Every system call in the groups and names of `SystemCallFilter=` lines,
/// positive ones and `~` ones apart, expanded by systemd-analyze itself.
fn syscall_filter() -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut allow, mut deny) = (BTreeSet::new(), BTreeSet::new());
    for (k, v) in service_settings() {
        if k != "SystemCallFilter" {
            continue;
        }
        let (set, list) = match v.strip_prefix('~') {
            Some(rest) => (&mut deny, rest.to_string()),
            None => (&mut allow, v),
        };
        for item in list.split_whitespace() {
            set.extend(expand(item));
        }
    }
    assert!(!allow.is_empty(), "no SystemCallFilter= allow-list");
    (allow, deny)
}

fn expand(item: &str) -> Vec<String> {
    if !item.starts_with('@') {
        return vec![item.to_string()];
    }
    let out = run(Command::new("systemd-analyze").args(["syscall-filter", item]));
    assert!(out.status.success(), "{}", text(&out));
    stdout(&out)
        .lines()
        .filter(|l| l.starts_with("    ") && !l.trim_start().starts_with('#'))
        .flat_map(|l| expand(l.trim()))
        .collect()
}

/// `strace` and the daemon it runs; both killed if the test fails midway.
struct Traced {
    strace: Child,
    daemon: i32,
}

impl Drop for Traced {
    fn drop(&mut self) {
        if self.strace.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(self.daemon, libc::SIGKILL) };
            let _ = self.strace.kill();
            let _ = self.strace.wait();
        }
    }
}

/// The tracee of a `strace` process: the daemon.
fn traced_child(strace: &Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", strace.id()))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "strace started no daemon");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a notification datagram containing `what`; returns all seen.
fn await_notify(socket: &UnixDatagram, what: &str, seen: &mut Vec<String>, within: Duration) {
    assert!(
        received(socket, what, seen, within),
        "no {what} from the daemon; got {seen:?}"
    );
}

/// Whether a datagram containing the line `what` came within `within`.
fn received(socket: &UnixDatagram, what: &str, seen: &mut Vec<String>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.lines().any(|l| l == what)) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    true
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
        .sum()
}

/// The daemon under `strace`, driven through what it does in service:
/// start, C-ECHO, C-STORE, HTTPS, a drop-folder import, the watchdog, a
/// reload (SIGHUP) and a stop (SIGTERM) — each step as systemd would see
/// it on $NOTIFY_SOCKET. Every system call it made must pass the unit's
/// SystemCallFilter=; one that would not fails with EPERM in service. And
/// it may write only in its data directory and the drop folder, and map no
/// memory writable and executable (MemoryDenyWriteExecute=).
#[test]
fn daemon_notifies_systemd_and_stays_within_the_syscall_filter() {
    if !have(
        &["systemd-analyze", "strace", "curl", "echoscu", "storescu"],
        false,
    ) {
        return;
    }
    let (allow, deny) = syscall_filter();
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    let data = dir.path().join("data");
    let (dicom, http) = (free_port(), free_port());
    let config = dir.path().join("pushgate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[dicom]\nlisten = \"127.0.0.1:{dicom}\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\
             [import]\nwatch_dir = \"{}\"\nsettle = \"1s\"\n",
            data.display(),
            drop.display()
        ),
    )
    .unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let trace = dir.path().join("trace");
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let strace = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        // systemd sets WATCHDOG_PID to the service's pid, which only the
        // traced process itself knows: a shell that execs the daemon.
        .args(["--", "/bin/sh", "-c"])
        .arg("WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" \"$@\"")
        .arg(BINARY)
        .args(["serve", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let daemon = traced_child(&strace);
    let mut traced = Traced { strace, daemon };
    let daemon_log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    let mut seen = Vec::new();

    await_notify(&notify, "READY=1", &mut seen, Duration::from_secs(60));
    let port = dicom.to_string();
    let echo = run(Command::new(ECHOSCU).args(["-aec", "PUSHGATE", "127.0.0.1", &port]));
    assert!(echo.status.success(), "{}", text(&echo));
    let files: Vec<PathBuf> = sample_files().into_iter().take(3).collect();
    let store = run(Command::new(STORESCU)
        .args(["-aec", "PUSHGATE", "127.0.0.1", &port])
        .args(&files));
    assert!(store.status.success(), "{}", text(&store));
    let health = run(Command::new("curl")
        .args(["-sk", "--max-time", "10"])
        .arg(format!("https://127.0.0.1:{http}/healthz")));
    assert!(health.status.success(), "{}", text(&health));
    let before = count_files(&data.join("instances"));
    let last = sample_files().pop().unwrap();
    std::fs::copy(&last, drop.join("dropped.dcm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_files(&data.join("instances")) == before {
        assert!(
            Instant::now() < deadline,
            "drop folder: nothing imported\n{}",
            daemon_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    await_notify(&notify, "WATCHDOG=1", &mut seen, Duration::from_secs(3));

    unsafe { libc::kill(daemon, libc::SIGHUP) };
    assert!(
        received(&notify, "RELOADING=1", &mut seen, Duration::from_secs(30)),
        "no RELOADING=1 after SIGHUP; got {seen:?}\n{}",
        daemon_log()
    );
    assert!(
        traced.strace.try_wait().unwrap().is_none(),
        "SIGHUP (systemctl reload) ended the daemon:\n{}",
        daemon_log()
    );
    let echo = run(Command::new(ECHOSCU).args(["-aec", "PUSHGATE", "127.0.0.1", &port]));
    assert!(echo.status.success(), "after reload: {}", text(&echo));

    unsafe { libc::kill(daemon, libc::SIGTERM) };
    assert!(
        received(&notify, "STOPPING=1", &mut seen, Duration::from_secs(30)),
        "no STOPPING=1 after SIGTERM; got {seen:?}\n{}",
        daemon_log()
    );
    let status = traced.strace.wait().unwrap();
    assert!(status.success(), "exit {status:?}:\n{}", daemon_log());

    let mut used = BTreeSet::new();
    let mut writes_outside = BTreeSet::new();
    let mut wx = Vec::new();
    let mut raw = String::new();
    std::fs::File::open(&trace)
        .unwrap()
        .read_to_string(&mut raw)
        .unwrap();
    // The shell's calls come before it execs the daemon.
    let exec = format!("execve(\"{BINARY}\"");
    let start = raw.find(&exec).expect("the daemon's execve in the trace");
    for line in raw[start..].lines().skip(1) {
        // "PID name(args) = result", "PID <... name resumed>", signals
        let rest = line.split_once(' ').map_or("", |(_, r)| r).trim_start();
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && rest[name.len()..].starts_with('(') {
            for path in written_paths(&name, rest) {
                if !(path.starts_with(&data) || path.starts_with(&drop)) {
                    writes_outside.insert(format!("{name} {}", path.display()));
                }
            }
            // MemoryDenyWriteExecute=yes refuses writable+executable
            // mappings and making a mapping executable afterwards.
            let exec = rest.contains("PROT_EXEC");
            if (name == "mmap" && exec && rest.contains("PROT_WRITE"))
                || (name.ends_with("mprotect") && exec)
            {
                wx.push(rest.to_string());
            }
            used.insert(name);
        }
    }
    assert!(
        wx.is_empty(),
        "W^X mappings MemoryDenyWriteExecute refuses: {wx:?}"
    );
    // ProtectSystem=strict: in service only the state directory (and what
    // a drop-in adds, like the drop folder) is writable.
    assert!(
        writes_outside.is_empty(),
        "writes outside data_dir and the drop folder: {writes_outside:?}"
    );
    assert!(
        used.contains("fsync") || used.contains("fdatasync"),
        "{used:?}"
    );
    let outside: Vec<_> = used.iter().filter(|s| !allow.contains(*s)).collect();
    let denied: Vec<_> = used.iter().filter(|s| deny.contains(*s)).collect();
    assert!(
        outside.is_empty() && denied.is_empty(),
        "system calls the unit's filter refuses: not allowed {outside:?}, denied {denied:?}"
    );
    eprintln!("{} distinct system calls, all allowed", used.len());
}

/// Absolute paths a traced call (`name(args...`) creates, writes, renames
/// or removes.
fn written_paths(name: &str, call: &str) -> Vec<PathBuf> {
    let writes = match name {
        "open" | "openat" | "openat2" | "creat" => ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
            .iter()
            .any(|f| call.contains(f)),
        "mkdir" | "mkdirat" | "rename" | "renameat" | "renameat2" | "unlink" | "unlinkat"
        | "rmdir" | "link" | "linkat" | "symlink" | "symlinkat" | "truncate" | "chmod"
        | "fchmodat" | "mknod" | "mknodat" => true,
        _ => false,
    };
    if !writes {
        return Vec::new();
    }
    call.split('"')
        .skip(1)
        .step_by(2)
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

// ------------------------------------------------------------ the package

/// Every `section.key` of a TOML table, with its value.
fn flatten(table: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut keys = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) => keys.extend(
                flatten(t)
                    .into_iter()
                    .map(|(sub, v)| (format!("{k}.{sub}"), v)),
            ),
            _ => keys.push((k.clone(), v.clone())),
        }
    }
    keys
}

/// The shipped /etc/pushgate/pushgate.toml lists every key the daemon
/// knows (src/config/defaults.toml), each either set or commented out with
/// exactly the built-in default it claims to show — so a key added on main
/// without a word in the package's config fails here.
#[test]
fn shipped_config_lists_every_key_with_its_default() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let defaults: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("src/config/defaults.toml")).unwrap())
            .unwrap();
    let shipped = std::fs::read_to_string(root.join("packaging/pushgate.toml")).unwrap();
    let set: toml::Table = toml::from_str(&shipped).expect("shipped config is TOML");
    // The commented-out settings ("#key = value") made live.
    let is_setting = |l: &str| {
        l.split_once(" = ").is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
    };
    let uncommented: String = shipped
        .lines()
        .filter_map(|l| match l.strip_prefix('#') {
            Some(rest) if is_setting(rest) => Some(rest),
            Some(_) => None,
            None => Some(l),
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let all: toml::Table = toml::from_str(&uncommented).expect("commented settings are TOML");

    let known: std::collections::BTreeMap<_, _> = flatten(&defaults).into_iter().collect();
    let listed: std::collections::BTreeMap<_, _> = flatten(&all).into_iter().collect();
    let set: BTreeSet<_> = flatten(&set).into_iter().map(|(k, _)| k).collect();
    let missing: Vec<_> = known.keys().filter(|k| !listed.contains_key(*k)).collect();
    let unknown: Vec<_> = listed.keys().filter(|k| !known.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "keys the shipped config does not mention: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "keys the daemon does not know: {unknown:?}"
    );
    for (key, value) in &listed {
        if !set.contains(key) {
            assert_eq!(
                Some(value),
                known.get(key),
                "commented-out {key} is not the default"
            );
        }
    }
    let expected: BTreeSet<String> = ["data_dir", "public_url", "dicom.listen", "http.listen"]
        .map(String::from)
        .into();
    assert_eq!(set, expected, "keys the package sets");
}

struct Debs {
    _dir: tempfile::TempDir,
    first: PathBuf,
    upgrade: PathBuf,
}

/// The package at Cargo.toml's version and a later one (the same contents
/// rebuilt as `<version>+pkgtest1`), built once for all tests.
fn debs() -> &'static Debs {
    static DEBS: OnceLock<Debs> = OnceLock::new();
    DEBS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let build = |version: Option<&str>| {
            let mut cmd = Command::new(BUILD_DEB);
            cmd.args(["--binary", BINARY, "--out"]).arg(dir.path());
            if let Some(v) = version {
                cmd.args(["--version", v]);
            }
            let out = run(&mut cmd);
            assert!(out.status.success(), "build-deb.sh: {}", text(&out));
            assert!(
                stderr(&out).trim().is_empty(),
                "build-deb.sh warns: {}",
                text(&out)
            );
            PathBuf::from(stdout(&out).trim())
        };
        let first = build(None);
        let version = format!("{}+pkgtest1", env!("CARGO_PKG_VERSION"));
        let upgrade = build(Some(&version));
        assert!(first.ends_with(format!("pushgate_{}_amd64.deb", env!("CARGO_PKG_VERSION"))));
        Debs {
            _dir: dir,
            first,
            upgrade,
        }
    })
}

const DEB_TOOLS: &[&str] = &[
    "dpkg",
    "dpkg-deb",
    "dpkg-shlibdeps",
    "dpkg-statoverride",
    "systemd-sysusers",
    "setpriv",
    "strip",
    "deb-systemd-helper",
];

#[test]
fn lintian_finds_no_errors_or_warnings() {
    if !have(&[DEB_TOOLS, &["lintian"]].concat(), false) {
        return;
    }
    let out = run(Command::new("lintian")
        .args(["--pedantic", "--display-info"])
        .arg(&debs().first));
    let report = stdout(&out);
    eprintln!("lintian:\n{report}");
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| !l.starts_with("I: ") && !l.starts_with("N: ") && !l.trim().is_empty())
        .collect();
    assert!(bad.is_empty(), "lintian: {bad:?}\n{}", text(&out));
    assert!(out.status.success(), "{}", text(&out));
}

/// A directory dpkg can install into: an empty database, nothing else.
/// Traversable by the pushgate user, whom postinst runs `pushgate init` as.
struct ScratchRoot(tempfile::TempDir);

impl ScratchRoot {
    fn new() -> ScratchRoot {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.path().join("var/lib/dpkg");
        std::fs::create_dir_all(db.join("updates")).unwrap();
        std::fs::create_dir_all(db.join("info")).unwrap();
        std::fs::write(db.join("status"), "").unwrap();
        ScratchRoot(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel.trim_start_matches('/'))
    }

    fn dpkg(&self, args: &[&str], deb: Option<&Path>) -> Output {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", self.0.path().display()))
            .args(["--force-script-chrootless", "--force-depends"])
            .args(args);
        if let Some(deb) = deb {
            cmd.arg(deb);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "dpkg {args:?}: {}", text(&out));
        out
    }

    fn install(&self, deb: &Path) -> Output {
        self.dpkg(&["-i"], Some(deb))
    }

    /// uid, gid, home and shell of a user in the root's /etc/passwd.
    fn user(&self, name: &str) -> Option<(u32, u32, String, String)> {
        let passwd = std::fs::read_to_string(self.path("etc/passwd")).ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == name).then(|| {
                (
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                    f[5].to_string(),
                    f[6].to_string(),
                )
            })
        })
    }

    fn status(&self) -> String {
        let out = run(Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                self.path("var/lib/dpkg").display()
            ))
            .args(["-W", "-f=${Status} ${Version}", "pushgate"]));
        stdout(&out)
    }
}

/// Mode (permission bits), uid and gid of a path; panics if it is missing.
fn owner_mode(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

const SECRETS: &[&str] = &[
    "var/lib/pushgate/admin.token",
    "var/lib/pushgate/tls/key.pem",
    "var/lib/pushgate/tls/cert.pem",
    "var/lib/pushgate/relay/key.pgp",
];

fn secrets(root: &ScratchRoot) -> Vec<Vec<u8>> {
    SECRETS
        .iter()
        .map(|s| std::fs::read(root.path(s)).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

/// What `pushgate init` (run by postinst) said it did with each secret:
/// "created" or "kept" for the admin token, TLS certificate, OpenPGP key.
fn init_verbs(out: &Output) -> Vec<String> {
    let all = format!("{}{}", stdout(out), stderr(out));
    ["admin token", "TLS certificate", "OpenPGP key"]
        .iter()
        .map(|item| {
            let line = all
                .lines()
                .find(|l| l.contains(item) && (l.starts_with("created") || l.starts_with("kept")))
                .unwrap_or_else(|| panic!("pushgate init said nothing of the {item}:\n{all}"));
            line.split_whitespace().next().unwrap().to_string()
        })
        .collect()
}

const CREATED: [&str; 3] = ["created", "created", "created"];
const KEPT: [&str; 3] = ["kept", "kept", "kept"];

#[test]
fn package_installs_upgrades_and_purges_in_a_scratch_root() {
    if !have(DEB_TOOLS, true) {
        return;
    }
    let debs = debs();
    let root = ScratchRoot::new();

    // First install: user, directories, secrets, service enabled.
    let out = root.install(&debs.first);
    assert!(
        root.status().starts_with("install ok installed"),
        "{}",
        root.status()
    );
    assert_eq!(init_verbs(&out), CREATED, "first install");
    let (uid, gid, home, shell) = root.user("pushgate").expect("pushgate user");
    assert!(uid > 0 && uid < 1000, "a system user, uid {uid}");
    assert_eq!(home, "/var/lib/pushgate");
    assert_eq!(shell, "/usr/sbin/nologin");
    let group = std::fs::read_to_string(root.path("etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with(&format!("pushgate:x:{gid}:"))),
        "{group}"
    );
    let shadow = std::fs::read_to_string(root.path("etc/shadow")).unwrap();
    let password = shadow
        .lines()
        .find_map(|l| l.strip_prefix("pushgate:"))
        .and_then(|r| r.split(':').next())
        .expect("pushgate in shadow");
    assert!(
        password.starts_with('!') || password == "*",
        "no password login: {password}"
    );

    assert_eq!(owner_mode(&root.path("usr/bin/pushgate")), (0o755, 0, 0));
    assert_eq!(
        owner_mode(&root.path("lib/systemd/system/pushgate.service")),
        (0o644, 0, 0)
    );
    assert_eq!(
        owner_mode(&root.path("usr/lib/sysusers.d/pushgate.conf")),
        (0o644, 0, 0)
    );
    assert_eq!(
        std::fs::read_to_string(root.path("lib/systemd/system/pushgate.service")).unwrap(),
        std::fs::read_to_string(UNIT).unwrap(),
        "the package ships systemd/pushgate.service as it is"
    );
    let config = root.path("etc/pushgate/pushgate.toml");
    assert_eq!(
        owner_mode(&config),
        (0o640, 0, gid),
        "config root:pushgate 0640"
    );
    assert_eq!(
        owner_mode(&root.path("var/lib/pushgate")),
        (0o750, uid, gid)
    );
    for secret in ["admin.token", "tls/key.pem", "relay/key.pgp"] {
        let path = root.path(&format!("var/lib/pushgate/{secret}"));
        assert_eq!(owner_mode(&path), (0o600, uid, gid), "{secret}");
    }
    let (cert_mode, cert_uid, _) = owner_mode(&root.path("var/lib/pushgate/tls/cert.pem"));
    assert_eq!(cert_uid, uid);
    assert_eq!(cert_mode & 0o002, 0, "cert not world-writable");
    let wants = root.path("etc/systemd/system/multi-user.target.wants/pushgate.service");
    assert_eq!(
        std::fs::read_link(&wants).expect("service enabled"),
        Path::new("/lib/systemd/system/pushgate.service")
    );
    check_config_parses(&root);
    let originals = secrets(&root);

    // The same package again: nothing replaced.
    let out = root.install(&debs.first);
    assert_eq!(init_verbs(&out), KEPT, "reinstall");
    assert!(secrets(&root) == originals, "reinstall replaced a secret");

    // A local edit, then an upgrade: the edit, its mode and the secrets stay.
    let shipped = std::fs::read_to_string(&config).unwrap();
    let edited = shipped.replace(
        "#org_name = \"Radiologie Voorbeeld\"",
        "org_name = \"Ziekenhuis Test\"",
    );
    assert_ne!(edited, shipped, "the shipped config lists org_name");
    std::fs::write(&config, &edited).unwrap();
    let out = root.install(&debs.upgrade);
    assert!(root.status().ends_with("+pkgtest1"), "{}", root.status());
    assert_eq!(init_verbs(&out), KEPT, "upgrade");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        edited,
        "conffile edit lost"
    );
    assert_eq!(owner_mode(&config), (0o640, 0, gid));
    assert!(secrets(&root) == originals, "upgrade replaced a secret");
    assert_eq!(
        root.user("pushgate").unwrap().0,
        uid,
        "same user after upgrade"
    );

    // Remove: program gone, service disabled, configuration and data stay.
    root.dpkg(&["-r", "pushgate"], None);
    assert!(!root.path("usr/bin/pushgate").exists());
    // Masked, as debhelper does: the enablement is remembered for a
    // reinstall, and nothing can start the unit meanwhile.
    let mask = root.path("etc/systemd/system/pushgate.service");
    assert_eq!(
        std::fs::read_link(&mask).expect("masked after remove"),
        Path::new("/dev/null")
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    assert!(secrets(&root) == originals);

    // Purge: configuration gone; studies, journal and keys stay, and say so.
    let out = root.dpkg(&["--purge", "pushgate"], None);
    assert!(!config.exists() && !root.path("etc/pushgate").exists());
    assert!(
        secrets(&root) == originals,
        "purge touched /var/lib/pushgate"
    );
    assert!(
        std::fs::symlink_metadata(&wants).is_err() && std::fs::symlink_metadata(&mask).is_err(),
        "purge leaves the unit enabled or masked"
    );
    assert!(
        text(&out).contains("/var/lib/pushgate"),
        "purge tells: {}",
        text(&out)
    );
    let overrides =
        std::fs::read_to_string(root.path("var/lib/dpkg/statoverride")).unwrap_or_default();
    assert!(!overrides.contains("pushgate.toml"), "{overrides}");

    // Installing again finds the data and keeps it; a fresh config.
    let out = root.install(&debs.first);
    assert_eq!(init_verbs(&out), KEPT, "install after purge");
    assert!(
        secrets(&root) == originals,
        "reinstall after purge replaced a secret"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), shipped);
    assert_eq!(owner_mode(&config), (0o640, 0, gid));
}

/// The shipped configuration parses: `pushgate config check` where the
/// binary has it; otherwise `pushgate init` in postinst, which read it, is
/// the check.
fn check_config_parses(root: &ScratchRoot) {
    let help = run(Command::new(BINARY).arg("help"));
    if !stdout(&help)
        .lines()
        .any(|l| l.trim_start().starts_with("config "))
    {
        eprintln!("no `pushgate config check` yet: postinst's `pushgate init` read the config");
        return;
    }
    let out = run(Command::new(root.path("usr/bin/pushgate"))
        .args(["config", "check", "--config"])
        .arg(root.path("etc/pushgate/pushgate.toml"))
        .env("PUSHGATE__DATA_DIR", root.path("var/lib/pushgate")));
    assert!(out.status.success(), "shipped config: {}", text(&out));
}
