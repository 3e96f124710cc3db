//! Background workers under the supervisor, as systemd and monitoring see
//! them: a worker made to fail by a real fault (the drop folder replaced by
//! a file, so its watcher cannot resume) is named by /readyz and /metrics,
//! stops the watchdog pings, and the daemon drains and exits non-zero by
//! itself, losing nothing it acknowledged. A healthy idle daemon keeps
//! pinging and stays ready.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, eventually, sample_files};

/// The interval the tests ask for; pings come at half of it.
const WATCHDOG_USEC: &str = "400000";
const PING_EVERY: Duration = Duration::from_millis(200);

/// Every datagram the daemon sends to NOTIFY_SOCKET, with when it arrived,
/// recorded by a thread of its own.
struct Notifications {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    done: Arc<AtomicBool>,
}

impl Notifications {
    fn bind(path: &Path) -> Notifications {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (record, finished) = (seen.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !finished.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let message = String::from_utf8_lossy(&buf[..n]).to_string();
                    record.lock().unwrap().push((Instant::now(), message));
                }
            }
        });
        Notifications { seen, done }
    }

    /// When the first message with the line `line` arrived.
    fn first(&self, line: &str) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|(_, m)| m.lines().any(|l| l == line))
            .map(|(at, _)| *at)
    }

    fn wait_for(&self, line: &str, limit: Duration) -> Instant {
        assert!(
            eventually(limit, || self.first(line).is_some()),
            "no {line:?} within {limit:?}; got {:?}",
            self.messages()
        );
        self.first(line).unwrap()
    }

    /// The WATCHDOG=1 pings that arrived after `since`.
    fn pings_after(&self, since: Instant) -> Vec<Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, m)| *at > since && m.lines().any(|l| l == "WATCHDOG=1"))
            .map(|(at, _)| *at)
            .collect()
    }

    fn messages(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// A daemon with a drop folder, told to ping a watchdog on a socket the
/// test reads.
fn watched_daemon(drop_dir: &Path) -> (Daemon, Notifications) {
    let mut daemon = Daemon::prepare(&format!(
        "[import]\nwatch_dir = \"{}\"\nsettle = \"500ms\"\n",
        drop_dir.display()
    ));
    let socket = daemon.dir.path().join("notify.sock");
    let notes = Notifications::bind(&socket);
    daemon.env = vec![
        ("NOTIFY_SOCKET".into(), socket.display().to_string()),
        ("WATCHDOG_USEC".into(), WATCHDOG_USEC.into()),
    ];
    daemon.watchdog_pid = true;
    daemon.spawn().expect("daemon starts");
    notes.wait_for("READY=1", Duration::from_secs(5));
    (daemon, notes)
}

/// `pushgate_worker_up{worker="<name>"}` as /metrics says it.
fn worker_up(metrics: &str, name: &str) -> Option<f64> {
    let series = format!("pushgate_worker_up{{worker=\"{name}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
}

/// Every worker /metrics names, with its value.
fn workers_up(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("pushgate_worker_up{worker=\"")?;
            let (name, value) = rest.split_once("\"} ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Waits for the process to end by itself; its exit code.
fn exit_code(daemon: &mut Daemon, limit: Duration) -> Option<i32> {
    let child = daemon.child.as_mut().expect("running");
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            daemon.child = None;
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the daemon did not exit by itself within {limit:?}");
}

#[test]
fn a_failed_worker_is_named_stops_the_watchdog_and_ends_the_process() {
    let outside = tempfile::tempdir().unwrap();
    let drop_dir = outside.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    let (mut daemon, notes) = watched_daemon(&drop_dir);
    notes.wait_for("WATCHDOG=1", Duration::from_secs(2));

    // Acknowledged before the fault: must survive it.
    let file = sample_files().remove(0);
    daemon.send_all(std::slice::from_ref(&file));
    assert_eq!(daemon.instance_count(), 1);
    assert_eq!(daemon.get("/readyz").status, 200);
    let before = daemon.get("/metrics").body;
    assert_eq!(worker_up(&before, "dropfolder"), Some(1.0), "{before}");

    // The fault: the folder is gone and a file stands in its place.
    std::fs::remove_dir_all(&drop_dir).unwrap();
    std::fs::write(&drop_dir, b"not a folder").unwrap();

    let mut ready = daemon.get("/readyz");
    assert!(
        eventually(Duration::from_secs(3), || {
            ready = daemon.get("/readyz");
            ready.status == 503
        }),
        "/readyz stayed {}: {}",
        ready.status,
        ready.body
    );
    assert!(
        ready
            .body
            .lines()
            .any(|l| l.starts_with("not ready: worker dropfolder failed: ")
                && l.contains("no longer a directory")),
        "{}",
        ready.body
    );
    let metrics = daemon.get("/metrics").body;
    assert_eq!(worker_up(&metrics, "dropfolder"), Some(0.0), "{metrics}");
    let others = workers_up(&metrics);
    for name in ["dicom", "https", "stability", "retention", "journal_head"] {
        assert!(
            others.iter().any(|(n, v)| n == name && *v == 1.0),
            "{name} not up: {others:?}"
        );
    }
    assert_eq!(
        others.iter().filter(|(_, v)| *v == 0.0).count(),
        1,
        "only the drop folder is down: {others:?}"
    );

    // The service manager hears it: stopping, with the worker named, and
    // no ping after it (one in flight at the moment of failure at most).
    let stopping = notes.wait_for("STOPPING=1", Duration::from_secs(2));
    assert!(
        notes
            .messages()
            .iter()
            .any(|m| m.contains("STATUS=worker dropfolder failed; stopping")),
        "{:?}",
        notes.messages()
    );
    let code = exit_code(&mut daemon, Duration::from_secs(30));
    let exited = Instant::now();
    assert!(
        exited.duration_since(stopping) > PING_EVERY * 2,
        "it drained for a while"
    );
    let late = notes.pings_after(stopping + PING_EVERY / 2);
    assert!(late.is_empty(), "pings after the failure: {}", late.len());
    assert_eq!(code, Some(70), "exits non-zero for systemd to restart it");
    let log = daemon.log();
    assert!(
        log.contains("worker dropfolder failed"),
        "the log names it:\n{log}"
    );

    // Restarted (as systemd would, once the folder is right again): the
    // study is still there and the index was closed cleanly.
    std::fs::remove_file(&drop_dir).unwrap();
    std::fs::create_dir(&drop_dir).unwrap();
    daemon.spawn().expect("daemon restarts");
    assert_eq!(daemon.instance_count(), 1);
    assert!(
        !daemon.log().contains("did not stop cleanly"),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.get("/readyz").status, 200);
    assert_eq!(daemon.stop(), Some(0));
}

#[test]
fn a_healthy_idle_daemon_keeps_pinging_and_stays_ready() {
    let outside = tempfile::tempdir().unwrap();
    let drop_dir = outside.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    let (mut daemon, notes) = watched_daemon(&drop_dir);
    let from = notes.wait_for("WATCHDOG=1", Duration::from_secs(2));
    // Idle: nothing arrives, every worker waits for work.
    std::thread::sleep(Duration::from_secs(3));
    let pings = notes.pings_after(from);
    assert!(pings.len() >= 10, "{} pings in 3 s", pings.len());
    let ready = daemon.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.body);
    let metrics = daemon.get("/metrics").body;
    let up = workers_up(&metrics);
    for name in [
        "dicom",
        "https",
        "stability",
        "grant_expiry",
        "journal_head",
        "capacity",
        "retention",
        "accessions",
        "push_wake",
        "dropfolder",
    ] {
        assert!(
            up.iter().any(|(n, v)| n == name && *v == 1.0),
            "{name} not up: {up:?}"
        );
    }
    assert!(up.iter().all(|(_, v)| *v == 1.0), "{up:?}");
    assert!(notes.first("STOPPING=1").is_none());
    assert_eq!(daemon.stop(), Some(0));
}

/// The drop folder merely gone (an unmounted share) is waited for, not a
/// failure; back, it is watched again and files in it are taken.
#[test]
fn a_drop_folder_that_comes_back_is_watched_again() {
    let outside = tempfile::tempdir().unwrap();
    let drop_dir = outside.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    let (mut daemon, _notes) = watched_daemon(&drop_dir);
    std::fs::remove_dir_all(&drop_dir).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || daemon
            .log()
            .contains("drop folder not there")),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.get("/readyz").status, 200);
    std::fs::create_dir(&drop_dir).unwrap();
    let file = sample_files().remove(0);
    std::fs::copy(&file, drop_dir.join("IM1.dcm")).unwrap();
    assert!(
        eventually(Duration::from_secs(15), || daemon.instance_count() == 1),
        "{}",
        daemon.log()
    );
    assert!(drop_dir.join("done").join("IM1.dcm").exists());
    assert!(daemon.is_running());
    assert_eq!(daemon.get("/readyz").status, 200);
    assert_eq!(daemon.stop(), Some(0));
}

/// Not there when the daemon starts (the share mounted later): the daemon
/// is ready, does not make the folder, and takes files once it is there.
#[test]
fn a_drop_folder_missing_at_start_is_waited_for_not_made() {
    let outside = tempfile::tempdir().unwrap();
    let drop_dir = outside.path().join("drop");
    let (mut daemon, _notes) = watched_daemon(&drop_dir);
    assert!(
        eventually(Duration::from_secs(5), || daemon
            .log()
            .contains("drop folder not there")),
        "{}",
        daemon.log()
    );
    assert!(!drop_dir.exists(), "the daemon made the drop folder");
    assert_eq!(daemon.get("/readyz").status, 200);
    std::fs::create_dir(&drop_dir).unwrap();
    std::fs::copy(sample_files().remove(0), drop_dir.join("IM1.dcm")).unwrap();
    assert!(
        eventually(Duration::from_secs(15), || daemon.instance_count() == 1),
        "{}",
        daemon.log()
    );
    assert!(drop_dir.join("done").join("IM1.dcm").exists());
    assert_eq!(daemon.stop(), Some(0));
}
