//! `kill -9` while DCMTK's storescu is sending: after a restart every
//! instance storescu saw acknowledged is present, byte-identical and
//! indexed, and nothing unacknowledged is half-visible.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Storescp, sop_instance, text};

#[test]
fn kill_9_mid_transfer_loses_nothing_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pushgate-samples"))
        .arg("bench")
        .arg(data.path())
        .args(["--count", "400", "--size", "256"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();

    // What storescu puts on the wire, per instance, as DCMTK's storescp keeps it.
    let reference: HashMap<String, Vec<u8>> = {
        let scp = Storescp::start();
        let out = Command::new(common::STORESCU)
            .args(["-aec", "STORESCP", "127.0.0.1", &scp.port.to_string()])
            .args(&files)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        scp.files()
            .iter()
            .map(|f| (sop_instance(f), common::dataset_bytes(f)))
            .collect()
    };
    assert_eq!(reference.len(), files.len());

    let mut daemon = Daemon::start();
    let mut sender = Command::new(common::STORESCU)
        .args([
            "-v",
            "-aec",
            "PUSHGATE",
            "127.0.0.1",
            &daemon.dicom.port().to_string(),
        ])
        .args(&files)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // storescu -v logs "Sending file: X" then "Received Store Response (Success)".
    let mut acknowledged = Vec::new();
    let mut current = None;
    let started = Instant::now();
    let mut killed = false;
    for line in BufReader::new(sender.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(file) = line.strip_prefix("I: Sending file: ") {
            current = Some(PathBuf::from(file));
        } else if line.contains("Received Store Response (Success)") {
            acknowledged.push(current.take().expect("a file was being sent"));
        }
        if !killed && acknowledged.len() >= 60 {
            daemon.kill9();
            killed = true;
        }
    }
    let _ = sender.wait();
    assert!(
        killed,
        "storescu finished before the kill ({} acknowledged)",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() < files.len(),
        "the kill came too late to mean anything"
    );
    eprintln!(
        "{} acknowledged before kill -9 after {:?}",
        acknowledged.len(),
        started.elapsed()
    );

    daemon.spawn().expect("restarts after kill -9");
    assert!(
        daemon.log().contains("did not stop cleanly"),
        "{}",
        daemon.log()
    );

    // nothing half-written: tmp/ is empty, every stored file is a whole instance
    let tmp: Vec<_> = std::fs::read_dir(daemon.data_dir().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    let stored: HashMap<String, Vec<u8>> = daemon
        .stored_files()
        .iter()
        .map(|f| (sop_instance(f), common::dataset_bytes(f)))
        .collect();
    for (sop, bytes) in &stored {
        assert!(
            reference.get(sop) == Some(bytes),
            "stored instance {sop} is not what was sent"
        );
    }
    // every acknowledged instance is there, byte-identical
    for file in &acknowledged {
        let sop = sop_instance(file);
        assert!(
            stored.get(&sop) == reference.get(&sop),
            "acknowledged {sop} lost or altered"
        );
    }
    // and indexed: the index agrees with the files
    assert!(common::eventually(
        Duration::from_secs(5),
        || daemon.instance_count() as usize == stored.len()
    ));
    assert!(stored.len() >= acknowledged.len());
}

/// The order the promise rests on, seen from outside with strace: the
/// data is synced, renamed into place and its directory synced before the
/// C-STORE-RSP goes out. (kill -9 alone cannot show a missing fsync: the
/// page cache survives it.)
#[test]
fn the_response_follows_fdatasync_rename_and_directory_fsync() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-yy",
            "-e",
            "trace=fdatasync,fsync,rename,renameat,renameat2,write,writev,sendto,sendmsg",
            "-o",
        ])
        .arg(&trace)
        .args(["-p", &daemon.pid().to_string()])
        .stderr(Stdio::null())
        .spawn()
        .expect("strace is installed (make test installs it)");
    std::thread::sleep(Duration::from_millis(1500));
    let sample = common::sample_files()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("ct-phantom/"))
        .unwrap();
    assert!(daemon.storescu(&[], &[sample]).status.success());
    std::thread::sleep(Duration::from_millis(500));
    unsafe {
        libc::kill(strace.id() as i32, libc::SIGINT);
    }
    strace.wait().unwrap();
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let find = |from: usize, pred: &dyn Fn(&str) -> bool| {
        lines
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, l)| pred(l))
            .map(|(i, _)| i)
    };
    let renamed = find(0, &|l| {
        l.contains("rename") && l.contains(".part") && l.contains(".dcm") && l.contains("= 0")
    })
    .unwrap_or_else(|| panic!("no rename into place:\n{}", lines.join("\n")));
    let synced = lines[..renamed]
        .iter()
        .rposition(|l| l.contains("fdatasync(") && l.contains(".part>"))
        .unwrap_or_else(|| {
            panic!(
                "no fdatasync of the temp file before the rename:\n{}",
                lines.join("\n")
            )
        });
    let dir_synced = find(renamed, &|l| {
        l.contains("fsync(") && !l.contains("fdatasync") && !l.contains(".dcm>")
    })
    .unwrap_or_else(|| panic!("no directory fsync after the rename:\n{}", lines.join("\n")));
    let tcp_write = |l: &str| (l.contains("write") || l.contains("send")) && l.contains("TCP");
    assert!(
        lines[synced..dir_synced].iter().all(|l| !tcp_write(l)),
        "something went out on the network before the instance was durable:\n{}",
        lines[synced..=dir_synced].join("\n")
    );
    assert!(
        find(dir_synced, &|l| tcp_write(l)).is_some(),
        "no response after the directory fsync"
    );
}
