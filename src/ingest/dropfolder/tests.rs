use super::import::{move_under, prune_empty_dirs};
use super::*;

#[test]
fn only_files_outside_done_and_failed_and_not_partial() {
    let w = Path::new("/in");
    assert!(is_candidate(w, Path::new("/in/CD1/DICOM/IM0001")));
    assert!(is_candidate(w, Path::new("/in/x.dcm")));
    for p in [
        "/in/done/x.dcm",
        "/in/failed/x",
        "/in/.x.dcm",
        "/in/x.dcm.part",
        "/other/x",
        "/in",
    ] {
        assert!(!is_candidate(w, Path::new(p)), "{p}");
    }
}

#[test]
fn moves_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    for round in 0..3 {
        fs::create_dir_all(w.join("CD/DICOM")).unwrap();
        let f = w.join("CD/DICOM/IM1");
        fs::write(&f, format!("{round}")).unwrap();
        move_under(w, &f, Path::new("CD/DICOM/IM1"), DONE).unwrap();
        prune_empty_dirs(w, &f);
    }
    assert_eq!(
        fs::read_to_string(w.join("done/CD/DICOM/IM1")).unwrap(),
        "0"
    );
    assert_eq!(
        fs::read_to_string(w.join("done/CD/DICOM/IM1.2")).unwrap(),
        "2"
    );
    assert!(!w.join("CD").exists());
}

/// A drop folder on a share not mounted must not be made on the disk
/// under the mount point: neither the buckets nor a move make it again.
#[test]
fn a_missing_drop_folder_is_never_made() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("share/drop");
    assert_eq!(
        make_bucket(&w, DONE).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    let elsewhere = dir.path().join("IM1");
    fs::write(&elsewhere, "x").unwrap();
    assert!(move_under(&w, &elsewhere, Path::new("IM1"), FAILED).is_err());
    assert!(!dir.path().join("share").exists());
    fs::create_dir_all(&w).unwrap();
    make_bucket(&w, DONE).unwrap();
    make_bucket(&w, DONE).unwrap();
    assert!(w.join(DONE).is_dir());
    fs::write(w.join(FAILED), "a file").unwrap();
    assert!(make_bucket(&w, FAILED).is_err());
}
