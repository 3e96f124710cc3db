//! Client scripts nobody here wrote the peers of: Python under
//! `tests/clients/`, run with the venv `make test` creates (`target/pyenv`),
//! each in its own process group and time limit, printing one JSON report
//! `{"passed": [...], "failed": {...}, ...}` the tests assert on.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest one client script may run before it is killed (with the
/// chromedriver and Chromium it started).
const SCRIPT_LIMIT: Duration = Duration::from_secs(240);

pub fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `make test` (or `make pyenv`) creates it",
        python.display()
    );
    python
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// What a client script said.
pub struct Ran {
    /// None: killed at the time limit.
    pub code: Option<i32>,
    pub report: Value,
    pub stderr: String,
}

impl Ran {
    /// Every check passed, and at least those named ran.
    pub fn assert_passed(&self, expected: &[&str]) {
        let failed = &self.report["failed"];
        assert!(
            self.code == Some(0) && failed.as_object().is_some_and(|f| f.is_empty()),
            "exit {:?}; failed checks:\n{}\n--- stderr (tail) ---\n{}",
            self.code,
            serde_json::to_string_pretty(failed).unwrap(),
            tail(&self.stderr, 4000)
        );
        let passed: Vec<&str> = self.report["passed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for name in expected {
            assert!(
                passed.contains(name),
                "check {name} did not run: {passed:?}"
            );
        }
    }
}

pub fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Runs a client script with `config` (written as JSON into `dir`), in its
/// own process group: past [`SCRIPT_LIMIT`] the whole group (Python,
/// chromedriver, Chromium) is killed.
/// With `PUSHGATE_TEST_SHOTS=DIR`, the screenshots and PDFs a script left
/// in `dir` are copied to DIR, to be looked at by eye after the run.
fn keep_pictures(dir: &Path) {
    let Some(to) = std::env::var_os("PUSHGATE_TEST_SHOTS") else {
        return;
    };
    let to = Path::new(&to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("png" | "pdf")
        ) {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

pub fn run_script(name: &str, arg: &str, config: &Value, dir: &Path) -> Ran {
    let config_path = dir.join(format!("{name}-{arg}.json"));
    std::fs::write(&config_path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let stdout_path = dir.join(format!("{name}-{arg}.out"));
    let stderr_path = dir.join(format!("{name}-{arg}.err"));
    let mut child = Command::new(python())
        .arg(script(name))
        .arg(&config_path)
        .arg(arg)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + SCRIPT_LIMIT;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            // the group is ours: its leader has not been reaped yet
            unsafe {
                libc::killpg(child.id() as i32, libc::SIGKILL);
            }
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    keep_pictures(dir);
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "{name} {arg}: no report (exit {code:?})\nstdout:\n{stdout}\nstderr:\n{}",
                tail(&stderr, 6000)
            )
        });
    Ran {
        code,
        report,
        stderr,
    }
}
