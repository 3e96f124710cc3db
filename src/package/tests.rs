//! The archive against itself (ranges), against Python's zipfile and
//! Info-ZIP unzip.
//!
//! Tests that need an external tool skip with a message when it is missing,
//! unless PUSHGATE_CI is set: then they fail.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::store::Timestamp;

const T: Timestamp = Timestamp(1_710_236_467_000); // 2024-03-12 09:41:07 UTC

/// The tool's path, or None (with a message) when it is missing and this is
/// not CI.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("PUSHGATE_CI").is_none(),
            "{name} is required under PUSHGATE_CI (see DEB_PACKAGES in the Makefile)"
        );
        eprintln!("SKIPPED: {name} is not installed");
    }
    found
}

fn run(program: &Path, args: &[&str], dir: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn whole(archive: &Archive) -> Vec<u8> {
    let mut out = Vec::new();
    let n = archive.write_range(0..archive.len(), &mut out).unwrap();
    assert_eq!(n, archive.len());
    assert_eq!(out.len() as u64, archive.len());
    out
}

fn write_to_file(archive: &Archive, path: &Path) {
    let mut file = fs::File::create(path).unwrap();
    archive.write_range(0..archive.len(), &mut file).unwrap();
}

/// Files and in-memory entries of assorted sizes: empty, tiny, one larger
/// than the copy buffer.
fn mixed_entries(dir: &Path, rng: &mut StdRng) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (i, size) in [0usize, 1, 7, 4096, 700_000, 3].into_iter().enumerate() {
        let data: Vec<u8> = (0..size).map(|_| rng.random()).collect();
        let path = dir.join(format!("f{i}"));
        fs::write(&path, &data).unwrap();
        entries.push(Entry {
            name: format!("files/F{i}"),
            content: Content::File { path: path.clone() },
            size: size as u64,
            crc32: crc32_of_file(&path).unwrap(),
            modified: T,
        });
        entries.push(Entry::bytes(format!("mem/M{i}.bin"), data, T));
    }
    entries.push(Entry::bytes("README.TXT", &b"hello\r\n"[..], Timestamp(0)));
    entries
}

#[test]
fn pieces_of_any_split_concatenate_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    for force in [false, true] {
        let archive = Archive::with_zip64(mixed_entries(dir.path(), &mut rng), force).unwrap();
        let all = whole(&archive);
        let len = archive.len();
        for _ in 0..300 {
            let mut cuts: Vec<u64> = (0..rng.random_range(1..12))
                .map(|_| rng.random_range(0..=len))
                .collect();
            cuts.extend([0, len]);
            cuts.sort_unstable();
            let mut joined = Vec::with_capacity(len as usize);
            for pair in cuts.windows(2) {
                let n = archive.write_range(pair[0]..pair[1], &mut joined).unwrap();
                assert_eq!(n, pair[1] - pair[0]);
            }
            assert!(joined == all, "split at {cuts:?} differs (force {force})");
        }
        #[allow(clippy::reversed_empty_ranges)] // a reversed range is one of the cases
        let cases = [len..len + 1, 0..len + 1, 5..3, u64::MAX - 1..u64::MAX];
        for range in cases {
            let err = archive.write_range(range.clone(), &mut Vec::new());
            assert!(
                matches!(err, Err(PackageError::RangeOutOfBounds { .. })),
                "{range:?}: {err:?}"
            );
        }
        assert_eq!(archive.write_range(len..len, &mut Vec::new()).unwrap(), 0);
    }
}

#[test]
fn the_layout_is_a_function_of_the_entries() {
    let dir = tempfile::tempdir().unwrap();
    let a = Archive::new(mixed_entries(dir.path(), &mut StdRng::seed_from_u64(1))).unwrap();
    let b = Archive::new(mixed_entries(dir.path(), &mut StdRng::seed_from_u64(1))).unwrap();
    assert_eq!(whole(&a), whole(&b));
    assert_eq!(a.fingerprint(), b.fingerprint());
    let c = Archive::new(mixed_entries(dir.path(), &mut StdRng::seed_from_u64(2))).unwrap();
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn a_changed_file_fails_the_write_instead_of_corrupting_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    fs::write(&path, b"0123456789").unwrap();
    let entry = Entry {
        name: "x".into(),
        content: Content::File { path: path.clone() },
        size: 10,
        crc32: crc32_of_file(&path).unwrap(),
        modified: T,
    };
    let archive = Archive::new(vec![entry]).unwrap();
    whole(&archive);

    fs::write(&path, b"01234567890").unwrap();
    let err = archive.write_range(0..archive.len(), &mut Vec::new());
    assert!(
        matches!(
            err,
            Err(PackageError::SizeChanged {
                expected: 10,
                found: 11,
                ..
            })
        ),
        "{err:?}"
    );
    fs::write(&path, b"012").unwrap();
    let err = archive.write_range(0..archive.len(), &mut Vec::new());
    assert!(
        matches!(err, Err(PackageError::SizeChanged { found: 3, .. })),
        "{err:?}"
    );
    fs::write(&path, b"abcdefghij").unwrap();
    let err = archive.write_range(0..archive.len(), &mut Vec::new());
    assert!(
        matches!(err, Err(PackageError::ContentChanged { .. })),
        "{err:?}"
    );
    fs::remove_file(&path).unwrap();
    let err = archive.write_range(0..archive.len(), &mut Vec::new());
    assert!(matches!(err, Err(PackageError::Read { .. })), "{err:?}");
}

/// Python's zipfile checks every CRC (testzip) and extracts; the names and
/// bytes must be the entries'. With `extract` false it only counts them
/// (70 000 files take long to write out).
fn python_accepts(zip: &Path, expect: &BTreeMap<String, Vec<u8>>, extract: bool) {
    let Some(python) = tool("python3") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  bad = z.testzip()\n\
                  assert bad is None, bad\n\
                  if sys.argv[3] == 'extract': z.extractall(sys.argv[2])\n\
                  print(len(z.infolist()))\n";
    let output = run(
        &python,
        &[
            "-c",
            script,
            zip.to_str().unwrap(),
            out.path().to_str().unwrap(),
            if extract { "extract" } else { "count" },
        ],
        None,
    );
    assert!(output.status.success(), "python zipfile: {}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        expect.len().to_string()
    );
    for (name, data) in expect.iter().filter(|_| extract) {
        let extracted = fs::read(out.path().join(name)).unwrap();
        assert!(extracted == *data, "{name} differs after extraction");
    }
}

fn unzip_accepts(zip: &Path) {
    let Some(unzip) = tool("unzip") else {
        return;
    };
    let output = run(&unzip, &["-tqq", zip.to_str().unwrap()], None);
    assert!(output.status.success(), "unzip -t: {}", text(&output));
}

fn contents(entries: &[Entry]) -> BTreeMap<String, Vec<u8>> {
    entries
        .iter()
        .map(|e| {
            let data = match &e.content {
                Content::Bytes(b) => b.to_vec(),
                Content::File { path } => fs::read(path).unwrap(),
            };
            (e.name.clone(), data)
        })
        .collect()
}

#[test]
fn python_and_unzip_accept_small_and_forced_zip64_archives() {
    let dir = tempfile::tempdir().unwrap();
    let entries = mixed_entries(dir.path(), &mut StdRng::seed_from_u64(3));
    let expect = contents(&entries);
    for force in [false, true] {
        let archive = Archive::with_zip64(entries.clone(), force).unwrap();
        let zip = dir.path().join(format!("a{force}.zip"));
        write_to_file(&archive, &zip);
        let bytes = fs::read(&zip).unwrap();
        let has_zip64_end = bytes.windows(4).any(|w| w == b"PK\x06\x06");
        assert_eq!(has_zip64_end, force);
        python_accepts(&zip, &expect, true);
        unzip_accepts(&zip);
    }
}

#[test]
fn more_than_65535_entries_use_zip64_and_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Entry> = (0..70_000u32)
        .map(|i| Entry::bytes(format!("d{}/{i}", i % 7), Bytes::from(i.to_string()), T))
        .collect();
    let expect = contents(&entries);
    let archive = Archive::new(entries).unwrap();
    let zip = dir.path().join("many.zip");
    write_to_file(&archive, &zip);
    let bytes = fs::read(&zip).unwrap();
    // the classic end record says "see ZIP64" for the count
    let end = &bytes[bytes.len() - 22..];
    assert_eq!(&end[..4], b"PK\x05\x06");
    assert_eq!(&end[8..12], &[0xFF, 0xFF, 0xFF, 0xFF]);
    python_accepts(&zip, &expect, false);
    unzip_accepts(&zip);
}

/// A 4.3 GB entry from a sparse file: its sizes and the next entry's offset
/// need ZIP64. Only headers are written (the data stays a hole in a sparse
/// output file), and the small entry after it is read back through its
/// 64-bit offset.
#[test]
fn entries_beyond_4_gib_get_zip64_sizes_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    let size = 0x1_0000_0000 + 12_345u64;
    fs::File::create(&big).unwrap().set_len(size).unwrap();
    let entries = vec![
        Entry {
            name: "big".into(),
            content: Content::File { path: big },
            size,
            crc32: 0, // not read here
            modified: T,
        },
        Entry::bytes("small", &b"after the hole"[..], T),
    ];
    let archive = Archive::new(entries).unwrap();
    let local = 30 + 3 + 20; // header, name, ZIP64 extra with both sizes
    let data_end = local + size;
    let zip = dir.path().join("big.zip");
    let mut file = fs::File::create(&zip).unwrap();
    archive.write_range(0..local, &mut file).unwrap();
    file.seek(SeekFrom::Start(data_end)).unwrap();
    archive
        .write_range(data_end..archive.len(), &mut file)
        .unwrap();
    file.flush().unwrap();
    drop(file);
    assert_eq!(fs::metadata(&zip).unwrap().len(), archive.len());

    let mut header = Vec::new();
    archive.write_range(0..local, &mut header).unwrap();
    assert_eq!(&header[4..6], &45u16.to_le_bytes()); // version needed
    assert_eq!(&header[18..26], &[0xFF; 8]); // sizes in the extra field
    assert_eq!(&header[33..37], &[1, 0, 16, 0]);
    assert_eq!(&header[37..45], &size.to_le_bytes());

    let Some(python) = tool("python3") else {
        return;
    };
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  big, small = z.getinfo('big'), z.getinfo('small')\n\
                  assert big.file_size == int(sys.argv[2]), big.file_size\n\
                  assert small.header_offset > 0xFFFFFFFF, small.header_offset\n\
                  assert z.read('small') == b'after the hole'\n";
    let output = run(
        &python,
        &["-c", script, zip.to_str().unwrap(), &size.to_string()],
        None,
    );
    assert!(output.status.success(), "python zipfile: {}", text(&output));
    if let Some(unzip) = tool("unzip") {
        let output = run(&unzip, &["-p", zip.to_str().unwrap(), "small"], None);
        assert!(output.status.success(), "unzip -p: {}", text(&output));
        assert_eq!(output.stdout, b"after the hole");
    }
}
