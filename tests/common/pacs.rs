#![allow(dead_code)]
//! Real query/retrieve SCPs for the tests, on 127.0.0.1: Orthanc (REST
//! upload, JSON configuration) and DCMTK's dcmqrscp (files indexed with
//! dcmqridx). Each runs in its own temporary directory and is killed when
//! dropped.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Shared by the library's query/retrieve tests (src/dimse/scu/qr.rs
// includes this file) and the integration tests (tests/common): each
// provides `PacsAddress` and `free_port` in the parent module.
use super::{PacsAddress, free_port};

pub const ORTHANC: &str = "/usr/sbin/Orthanc";
pub const DCMQRSCP: &str = "/usr/bin/dcmqrscp";
const DCMQRIDX: &str = "/usr/bin/dcmqridx";

fn wait_listening(port: u16, what: &str, child: &mut Child, log: &Path) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}): {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A C-MOVE destination the PACS knows: (AE title, port on 127.0.0.1).
pub type Destination<'a> = (&'a str, u16);

pub struct Orthanc {
    child: Child,
    pub dicom_port: u16,
    pub http_port: u16,
    pub dir: tempfile::TempDir,
}

impl Orthanc {
    pub const AE: &'static str = "ORTHANC";

    pub fn start(destinations: &[Destination]) -> Orthanc {
        let dir = tempfile::tempdir().unwrap();
        let (dicom_port, http_port) = (free_port(), free_port());
        let modalities: serde_json::Map<String, serde_json::Value> = destinations
            .iter()
            .map(|(ae, port)| {
                (
                    ae.to_lowercase(),
                    serde_json::json!([ae, "127.0.0.1", port]),
                )
            })
            .collect();
        let config = serde_json::json!({
            "Name": "pushgate-test",
            "StorageDirectory": dir.path().join("db"),
            "IndexDirectory": dir.path().join("db"),
            "DicomAet": Self::AE,
            "DicomPort": dicom_port,
            "HttpPort": http_port,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "DicomAlwaysAllowEcho": true,
            "DicomAlwaysAllowStore": true,
            "DicomAlwaysAllowFind": true,
            "DicomAlwaysAllowGet": true,
            "DicomAlwaysAllowMove": true,
            "DicomModalities": modalities,
            "Plugins": [],
            "StorageCompression": false,
            "SaveJobs": false,
            "DicomScpTimeout": 30,
        });
        let config_path = dir.path().join("orthanc.json");
        fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let log = dir.path().join("orthanc.log");
        let mut child = Command::new(ORTHANC)
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("Orthanc (apt-get install orthanc)");
        wait_listening(http_port, "Orthanc (HTTP)", &mut child, &log);
        wait_listening(dicom_port, "Orthanc (DICOM)", &mut child, &log);
        Orthanc {
            child,
            dicom_port,
            http_port,
            dir,
        }
    }

    pub fn address(&self) -> PacsAddress {
        format!("{}@127.0.0.1:{}", Self::AE, self.dicom_port)
            .parse()
            .unwrap()
    }

    /// Stores `files` through the REST API (`POST /instances`).
    pub fn upload(&self, files: &[PathBuf]) {
        for file in files {
            let out = Command::new("curl")
                .args(["-sS", "-f", "-X", "POST", "--data-binary"])
                .arg(format!("@{}", file.display()))
                .arg(format!("http://127.0.0.1:{}/instances", self.http_port))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "upload of {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("orthanc.log")).unwrap_or_default()
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dcmqrscp serving `files` as AE `QRSCP`. It forks a child per
/// association, which exits when the association ends (its
/// `--single-process` mode crashes after the first release in DCMTK 3.6.7).
pub struct DcmQrScp {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl DcmQrScp {
    pub const AE: &'static str = "QRSCP";

    pub fn start(files: &[PathBuf], destinations: &[Destination]) -> DcmQrScp {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        fs::create_dir_all(&db).unwrap();
        let port = free_port();
        let mut hosts = String::new();
        for (i, (ae, port)) in destinations.iter().enumerate() {
            hosts.push_str(&format!("dest{i} = ({ae}, 127.0.0.1, {port})\n"));
        }
        let config = format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\
             HostTable BEGIN\n{hosts}HostTable END\n\
             VendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\n{} {} RW (200, 1024mb) ANY\nAETable END\n",
            Self::AE,
            db.display()
        );
        let config_path = dir.path().join("dcmqrscp.cfg");
        fs::write(&config_path, config).unwrap();
        let status = Command::new(DCMQRIDX)
            .arg(&db)
            .args(files)
            .stdout(Stdio::null())
            .status()
            .expect("DCMTK dcmqridx (apt-get install dcmtk)");
        assert!(status.success(), "dcmqridx failed");
        let log = dir.path().join("dcmqrscp.log");
        let mut child = Command::new(DCMQRSCP)
            .arg("-c")
            .arg(&config_path)
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("DCMTK dcmqrscp (apt-get install dcmtk)");
        wait_listening(port, "dcmqrscp", &mut child, &log);
        DcmQrScp {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn address(&self) -> PacsAddress {
        format!("{}@127.0.0.1:{}", Self::AE, self.port)
            .parse()
            .unwrap()
    }
}

impl Drop for DcmQrScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
