//! The drop folder: a CD tree with DICOMDIR (made by DCMTK's dcmmkdir),
//! files present at start-up, a file written slowly, a file that is not
//! DICOM.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Daemon, eventually, sample_files, text};

fn daemon_watching(dir: &Path) -> Daemon {
    Daemon::start_with(&format!(
        "[import]\nwatch_dir = \"{}\"\nsettle = \"500ms\"\n",
        dir.display()
    ))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
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

/// A CD-like tree: DICOM/IMxxxxxx files and a DICOMDIR, as dcmmkdir makes it.
fn make_cd(root: &Path) -> usize {
    let dicom = root.join("DICOM");
    std::fs::create_dir_all(&dicom).unwrap();
    let samples = sample_files();
    for (i, f) in samples.iter().enumerate() {
        std::fs::copy(f, dicom.join(format!("IM{i:06}"))).unwrap();
    }
    let out = Command::new("/usr/bin/dcmmkdir")
        .current_dir(root)
        .args(["+r", "-Pgp", "+I", "+id", "."])
        .arg("DICOM")
        .output()
        .unwrap();
    assert!(out.status.success(), "dcmmkdir: {}", text(&out));
    assert!(root.join("DICOMDIR").exists());
    samples.len()
}

#[test]
fn a_cd_tree_is_imported_and_moved_to_done() {
    let watch = tempfile::tempdir().unwrap();
    let daemon = daemon_watching(watch.path());
    let staging = tempfile::tempdir().unwrap();
    let count = make_cd(&staging.path().join("CD1"));
    // copy in the way an operator would
    let out = Command::new("cp")
        .arg("-r")
        .arg(staging.path().join("CD1"))
        .arg(watch.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        eventually(Duration::from_secs(30), || daemon.instance_count() as usize
            == count),
        "{} of {count} imported\n{}",
        daemon.instance_count(),
        daemon.log()
    );
    assert!(
        eventually(Duration::from_secs(10), || !watch
            .path()
            .join("CD1")
            .exists()),
        "CD tree left behind"
    );
    let done = files_under(&watch.path().join("done"));
    assert_eq!(
        done.len(),
        count + 1,
        "instances and the DICOMDIR in done/: {done:?}"
    );
    assert!(files_under(&watch.path().join("failed")).is_empty());
    let studies = daemon.studies();
    assert!(
        studies
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["sources"][0] == "drop-folder")
    );
}

#[test]
fn files_present_at_start_are_imported_and_junk_fails_with_a_reason() {
    let watch = tempfile::tempdir().unwrap();
    let sample = &sample_files()[0];
    std::fs::copy(sample, watch.path().join("early.dcm")).unwrap();
    std::fs::write(watch.path().join("notes.txt"), "not an image\n").unwrap();
    let daemon = daemon_watching(watch.path());
    assert!(
        eventually(Duration::from_secs(15), || daemon.instance_count() == 1),
        "{}",
        daemon.log()
    );
    assert!(eventually(Duration::from_secs(10), || watch
        .path()
        .join("failed/notes.txt.reason.txt")
        .exists()));
    let reason = std::fs::read_to_string(watch.path().join("failed/notes.txt.reason.txt")).unwrap();
    assert!(reason.contains("not a DICOM Part 10 file"), "{reason}");
    assert!(watch.path().join("done/early.dcm").exists());
}

/// A writer that stalls for longer than the settle time mid-file (a slow
/// network copy) must not have its half file failed or imported.
#[test]
fn a_file_still_being_written_is_not_taken_half_way() {
    let watch = tempfile::tempdir().unwrap();
    let daemon = daemon_watching(watch.path());
    let sample = std::fs::read(&sample_files()[0]).unwrap();
    let target = watch.path().join("slow.dcm");
    let mut file = std::fs::File::create(&target).unwrap();
    let half = sample.len() / 2;
    for chunk in sample[..half].chunks(1024) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
    }
    // stall for three times the settle time
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(daemon.instance_count(), 0);
    file.write_all(&sample[half..]).unwrap();
    drop(file);
    assert!(
        eventually(Duration::from_secs(15), || daemon.instance_count() == 1),
        "{}",
        daemon.log()
    );
    assert!(
        files_under(&watch.path().join("failed")).is_empty(),
        "taken half-way: {}",
        daemon.log()
    );
    let stored = daemon.stored_files();
    assert_eq!(
        common::dataset_bytes(&stored[0]),
        common::dataset_bytes(&sample_files()[0])
    );
}

/// Our own scans and reads must not wake the watcher: once the work is
/// done the daemon idles (a feedback loop once kept it at 100 % CPU).
#[test]
fn the_watcher_idles_after_importing() {
    let watch = tempfile::tempdir().unwrap();
    let daemon = daemon_watching(watch.path());
    let staging = tempfile::tempdir().unwrap();
    let count = make_cd(&staging.path().join("CD1"));
    let out = Command::new("cp")
        .arg("-r")
        .arg(staging.path().join("CD1"))
        .arg(watch.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(eventually(
        Duration::from_secs(30),
        || daemon.instance_count() as usize == count
    ));
    std::thread::sleep(Duration::from_secs(2));
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", daemon.pid())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime and stime, in clock ticks (fields 14 and 15 of stat)
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu();
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu() - before;
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    assert!(
        used * 10 < ticks * 3,
        "{used} ticks of CPU in 3 s of idling"
    );
}

/// A modification time in the future (clock skew, a CD written in another
/// time zone) must not hold a file back; a file whose meta group lies about
/// its length fails with the reason.
#[test]
fn future_times_do_not_wait_and_lying_meta_groups_fail() {
    let watch = tempfile::tempdir().unwrap();
    let daemon = daemon_watching(watch.path());
    let sample = &sample_files()[0];
    let future = watch.path().join("future.dcm");
    std::fs::copy(sample, &future).unwrap();
    let f = std::fs::File::options().write(true).open(&future).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(86_400))
        .unwrap();
    drop(f);
    let mut lying = std::fs::read(&sample_files()[1]).unwrap();
    lying[140..144].copy_from_slice(&10u32.to_le_bytes());
    std::fs::write(watch.path().join("lying.dcm"), &lying).unwrap();
    assert!(
        eventually(Duration::from_secs(15), || daemon.instance_count() == 1),
        "{}",
        daemon.log()
    );
    assert!(eventually(Duration::from_secs(10), || watch
        .path()
        .join("failed/lying.dcm.reason.txt")
        .exists()));
    let reason = std::fs::read_to_string(watch.path().join("failed/lying.dcm.reason.txt")).unwrap();
    assert!(reason.contains("meta"), "{reason}");
}
