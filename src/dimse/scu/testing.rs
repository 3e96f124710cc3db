//! DCMTK's storescp as the PACS in tests (SCU and forwarding).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::PacsAddress;
use crate::part10::read_part10_header;

pub(crate) const STORESCP: &str = "/usr/bin/storescp";

pub(crate) fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-dicom")
        .join(rel)
}

/// Every committed sample file, sorted.
pub(crate) fn all_samples() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = sample("");
    for dir in fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "dcm") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

/// A loopback port nothing listens on (right now), outside Linux's
/// ephemeral range, where another test's client socket could take it
/// before storescp binds it (tests/common/mod.rs does the same).
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() as u16).wrapping_mul(7919);
    (0..2000)
        .map(|_| {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            20000 + (seed.wrapping_add(n.wrapping_mul(97)) % 12768)
        })
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
}

/// A running storescp (AE `PACS`, bit-preserving) writing into `dir`;
/// killed when dropped.
pub(crate) struct StoreScp {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl StoreScp {
    /// `extra`: e.g. `["+xa"]` to accept every transfer syntax DCMTK knows.
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> StoreScp {
        Self::start_on(free_port(), dir, extra)
    }

    pub(crate) fn start_on(port: u16, dir: &Path, extra: &[&str]) -> StoreScp {
        fs::create_dir_all(dir).unwrap();
        let child = Command::new(STORESCP)
            .args(["-od"])
            .arg(dir)
            .args(["-aet", "PACS", "+B", "-ta", "10", "-ts", "10"])
            .args(extra)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("DCMTK storescp (apt-get install dcmtk)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "storescp did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        StoreScp {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    pub(crate) fn address(&self) -> PacsAddress {
        format!("PACS@127.0.0.1:{}", self.port).parse().unwrap()
    }

    /// The file storescp wrote for `sop`, if any (named `XX.<sop>`).
    pub(crate) fn received(&self, sop: &str) -> Option<PathBuf> {
        let suffix = format!(".{sop}");
        fs::read_dir(&self.dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&suffix))
            })
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Transfer syntax and data set bytes of a Part 10 file.
pub(crate) fn dataset_of(path: &Path) -> (String, Vec<u8>) {
    let header = read_part10_header(&fs::File::open(path).unwrap()).unwrap();
    let bytes = fs::read(path).unwrap();
    (
        header.transfer_syntax,
        bytes[header.dataset_offset as usize..].to_vec(),
    )
}
