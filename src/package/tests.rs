//! The archive against itself (ranges), against Python's zipfile and
//! Info-ZIP unzip, and the file-set against DCMTK and dicom3tools.
//!
//! Tests that need an external tool skip with a message when it is missing,
//! unless PUSHGATE_CI is set: then they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

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

// ---------------------------------------------------------------- file-set

fn sample_instances() -> Vec<FileSetInstance> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-dicom");
    let mut paths = Vec::new();
    for dir in fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for file in fs::read_dir(&dir).unwrap() {
                paths.push(file.unwrap().path());
            }
        }
    }
    paths.sort();
    assert_eq!(paths.len(), 31, "sample-dicom changed");
    paths
        .into_iter()
        .map(|path| {
            let entry = crate::ingest::describe_file(&path).unwrap();
            FileSetInstance {
                size: entry.record.size,
                crc32: None,
                modified: entry.record.received_at,
                transfer_syntax: entry.record.transfer_syntax.clone(),
                metadata: serde_json::from_slice(&entry.metadata_json).unwrap(),
                path,
            }
        })
        .collect()
}

/// A directory record as dcmdump shows it, with the offsets DCMTK computed
/// while reading.
#[derive(Debug, Default, Clone)]
struct DumpedRecord {
    offset: u64,
    next: u64,
    lower: u64,
    kind: String,
    /// Record-level elements: tag → value as printed.
    keys: BTreeMap<String, String>,
}

impl DumpedRecord {
    fn key(&self, tag: &str) -> String {
        self.keys.get(tag).cloned().unwrap_or_default()
    }

    /// What identifies the record among its kind in a file-set.
    fn identity(&self) -> String {
        let id = match self.kind.as_str() {
            "PATIENT" => self.key("(0010,0020)"),
            "STUDY" => self.key("(0020,000d)"),
            "SERIES" => self.key("(0020,000e)"),
            _ => self.key("(0004,1511)"),
        };
        format!("{} {id}", self.kind)
    }
}

/// Reads a DICOMDIR with dcmdump and returns its records and the root's
/// first-record offset.
fn dump_dicomdir(dcmdump: &Path, dicomdir: &Path) -> (Vec<DumpedRecord>, u64) {
    let output = run(dcmdump, &["-Un", "+U8", dicomdir.to_str().unwrap()], None);
    assert!(output.status.success(), "dcmdump: {}", text(&output));
    let dump = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        !text(&output).contains("W: ") && !text(&output).contains("E: "),
        "dcmdump complains: {}",
        text(&output)
    );
    let mut records: Vec<DumpedRecord> = Vec::new();
    let mut first = 0;
    let value = |line: &str| -> String {
        let rest = line[11..].trim_start();
        let rest = &rest[2..].trim_start();
        match rest.strip_prefix('[') {
            Some(quoted) => quoted.split(']').next().unwrap_or("").to_string(),
            None => rest.split(" # ").next().unwrap_or("").trim().to_string(),
        }
    };
    for line in dump.lines() {
        if line.starts_with("(0004,1200)") {
            first = value(line).parse().unwrap();
        } else if line.starts_with("  (fffe,e000)") {
            records.push(DumpedRecord::default());
        } else if let Some(offset) = line.strip_prefix("  #  offset=$") {
            let offset = offset.split_whitespace().next().unwrap();
            records.last_mut().unwrap().offset = offset.parse().unwrap();
        } else if line.starts_with("    (") && !line.starts_with("    (fffe") {
            let record = records.last_mut().unwrap();
            let tag = line[4..15].to_string();
            let v = value(&line[4..]);
            match tag.as_str() {
                "(0004,1400)" => record.next = v.parse().unwrap(),
                "(0004,1420)" => record.lower = v.parse().unwrap(),
                "(0004,1430)" => record.kind = v.clone(),
                _ => {}
            }
            record.keys.insert(tag, v);
        }
    }
    (records, first)
}

/// Every leaf as patient / study / series / leaf identities, following
/// the offsets from the root; panics on an offset that is no record.
fn walk(records: &[DumpedRecord], first: u64) -> BTreeSet<Vec<String>> {
    let by_offset: BTreeMap<u64, &DumpedRecord> = records.iter().map(|r| (r.offset, r)).collect();
    let mut paths = BTreeSet::new();
    let mut visited = 0;
    fn entity<'a>(
        by_offset: &BTreeMap<u64, &'a DumpedRecord>,
        mut offset: u64,
    ) -> Vec<&'a DumpedRecord> {
        let mut out = Vec::new();
        while offset != 0 {
            let record = by_offset
                .get(&offset)
                .unwrap_or_else(|| panic!("offset {offset} points at no record"));
            out.push(*record);
            offset = record.next;
        }
        out
    }
    for patient in entity(&by_offset, first) {
        assert_eq!(patient.kind, "PATIENT");
        for study in entity(&by_offset, patient.lower) {
            assert_eq!(study.kind, "STUDY");
            for series in entity(&by_offset, study.lower) {
                assert_eq!(series.kind, "SERIES");
                for leaf in entity(&by_offset, series.lower) {
                    assert_eq!(leaf.lower, 0);
                    visited += 1;
                    paths.insert(vec![
                        patient.identity(),
                        study.identity(),
                        series.identity(),
                        leaf.identity(),
                        leaf.key("(0004,1500)"),
                    ]);
                }
                visited += 1;
            }
            visited += 1;
        }
        visited += 1;
    }
    assert_eq!(
        visited,
        records.len(),
        "records not reachable from the root"
    );
    paths
}

/// Warnings dciodvfy gives on any DICOMDIR this module writes, and why
/// they cannot be avoided.
const EXPECTED_DCIODVFY_WARNINGS: &[&str] = &[];

fn dciodvfy_finds_no_errors(dciodvfy: &Path, dicomdir: &Path) {
    let output = run(dciodvfy, &[dicomdir.to_str().unwrap()], None);
    let report = text(&output);
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("Error") || l.starts_with("Warning"))
        .filter(|l| !EXPECTED_DCIODVFY_WARNINGS.iter().any(|w| l.contains(w)))
        .collect();
    assert!(problems.is_empty(), "dciodvfy:\n{report}");
}

#[test]
fn sample_file_set_is_valid_for_dcmtk_and_dicom3tools() {
    let instances = sample_instances();
    let sources: Vec<(PathBuf, String)> = instances
        .iter()
        .map(|i| (i.path.clone(), first_uid(&i.metadata, "00080018")))
        .collect();
    let directory = dicomdir(&instances, "PUSHGATE").unwrap();
    let files: BTreeMap<String, PathBuf> = directory
        .files
        .iter()
        .map(|(i, name)| (name.clone(), instances[*i].path.clone()))
        .collect();
    assert_eq!(files.len(), 31);
    let archive = file_set(instances, "Hello\r\n".into(), "PUSHGATE").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("download.zip");
    write_to_file(&archive, &zip);
    let Some(unzip) = tool("unzip") else {
        return;
    };
    unzip_accepts(&zip);
    let root = dir.path().join("cd");
    let output = run(
        &unzip,
        &["-q", zip.to_str().unwrap(), "-d", root.to_str().unwrap()],
        None,
    );
    assert!(output.status.success(), "unzip: {}", text(&output));
    assert_eq!(fs::read(root.join("DICOMDIR")).unwrap(), directory.bytes);
    assert_eq!(fs::read(root.join("README.TXT")).unwrap(), b"Hello\r\n");
    for (name, source) in &files {
        assert!(
            fs::read(root.join(name)).unwrap() == fs::read(source).unwrap(),
            "{name} differs from {}",
            source.display()
        );
    }

    // DCMTK: every referenced file is a valid file ID and a Part 10 file
    let Some(dcmftest) = tool("dcmftest") else {
        return;
    };
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    let output = run(&dcmftest, &names, Some(&root));
    let report = text(&output);
    assert_eq!(
        report.lines().filter(|l| l.starts_with("yes: ")).count(),
        31,
        "dcmftest:\n{report}"
    );

    let Some(dciodvfy) = tool("dciodvfy") else {
        return;
    };
    dciodvfy_finds_no_errors(&dciodvfy, &root.join("DICOMDIR"));

    // the structure as DCMTK reads it, offsets followed from the root
    let Some(dcmdump) = tool("dcmdump") else {
        return;
    };
    let (ours, first) = dump_dicomdir(&dcmdump, &root.join("DICOMDIR"));
    let our_tree = walk(&ours, first);
    assert_eq!(our_tree.len(), 31);
    for (path, uid) in &sources {
        let name = files
            .iter()
            .find(|(_, p)| *p == path)
            .map(|(n, _)| n.replace('/', "\\"))
            .unwrap();
        assert!(
            our_tree.iter().any(|p| p[3].ends_with(uid) && p[4] == name),
            "{} ({uid}) is not referenced as {name}: {our_tree:#?}",
            path.display()
        );
    }

    // what dcmmkdir builds from the same files
    let Some(dcmmkdir) = tool("dcmmkdir") else {
        return;
    };
    let theirs_root = dir.path().join("dcmtk");
    fs::create_dir(&theirs_root).unwrap();
    let output = run(
        &unzip,
        &[
            "-q",
            zip.to_str().unwrap(),
            "DICOM/*",
            "-d",
            theirs_root.to_str().unwrap(),
        ],
        None,
    );
    assert!(output.status.success(), "unzip: {}", text(&output));
    // --general-purpose with the transfer syntax check off: the profile
    // itself only allows Explicit VR Little Endian (STD-GEN-CD)
    let output = run(
        &dcmmkdir,
        &["--general-purpose", "-Nxc", "+r", "DICOM"],
        Some(&theirs_root),
    );
    assert!(output.status.success(), "dcmmkdir: {}", text(&output));
    let (theirs, first) = dump_dicomdir(&dcmdump, &theirs_root.join("DICOMDIR"));
    let their_tree = walk(&theirs, first);
    assert_eq!(
        our_tree, their_tree,
        "record hierarchy differs from dcmmkdir's"
    );

    // and the keys both write agree
    let theirs_by_identity: BTreeMap<String, &DumpedRecord> =
        theirs.iter().map(|r| (r.identity(), r)).collect();
    for record in &ours {
        let other = theirs_by_identity[&record.identity()];
        for (tag, value) in &record.keys {
            if tag.starts_with("(0004,14") || tag == "(0008,0005)" {
                continue;
            }
            if let Some(their_value) = other.keys.get(tag) {
                assert_eq!(
                    value,
                    their_value,
                    "{} {tag}: ours {value:?}, dcmmkdir's {their_value:?}",
                    record.identity()
                );
            }
        }
        for tag in other.keys.keys() {
            assert!(
                record.keys.contains_key(tag) || EXTRA_DCMMKDIR_KEYS.contains(&tag.as_str()),
                "{}: dcmmkdir writes {tag}, we do not",
                record.identity()
            );
        }
    }
}

/// Keys dcmmkdir writes that we leave out: Image Type, a Type 3 key its
/// general-purpose profile adds (dciodvfy warns that it is not part of the
/// IOD); Specific Character Set, which dcmmkdir copies from the instance
/// even when the record's keys are ASCII, while PS3.3 F.5 asks for it only
/// when a key uses another character set (we write ISO_IR 192 then).
const EXTRA_DCMMKDIR_KEYS: &[&str] = &["(0008,0008)", "(0008,0005)"];

fn first_uid(metadata: &serde_json::Value, tag: &str) -> String {
    metadata[tag]["Value"][0].as_str().unwrap().to_string()
}

#[test]
fn the_file_set_does_not_depend_on_the_order_of_instances() {
    let forward = sample_instances();
    let mut backward = sample_instances();
    backward.reverse();
    let a = dicomdir(&forward, "PUSHGATE").unwrap();
    let b = dicomdir(&backward, "PUSHGATE").unwrap();
    assert_eq!(a.bytes, b.bytes);
    let names = |d: &Directory, instances: &[FileSetInstance]| -> BTreeMap<String, PathBuf> {
        d.files
            .iter()
            .map(|(i, n)| (n.clone(), instances[*i].path.clone()))
            .collect()
    };
    assert_eq!(names(&a, &forward), names(&b, &backward));
    let a = file_set(forward, String::new(), "PUSHGATE").unwrap();
    let b = file_set(backward, String::new(), "PUSHGATE").unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
}

/// Pruning the metadata to what directory records read changes nothing.
#[test]
fn pruned_metadata_gives_the_same_file_set() {
    let whole = sample_instances();
    let mut pruned = sample_instances();
    for instance in &mut pruned {
        crate::package::dicomdir::keep_directory_keys(&mut instance.metadata);
    }
    let before: usize = whole
        .iter()
        .map(|i| i.metadata.as_object().unwrap().len())
        .sum();
    let after: usize = pruned
        .iter()
        .map(|i| i.metadata.as_object().unwrap().len())
        .sum();
    assert!(
        after * 2 < before,
        "pruning kept {after} of {before} elements"
    );
    // parsing only those keys gives the same as pruning afterwards
    for (whole, pruned) in whole.iter().zip(&pruned) {
        let json = serde_json::to_vec(&whole.metadata).unwrap();
        assert_eq!(
            crate::package::directory_metadata(&json).unwrap(),
            pruned.metadata
        );
    }
    assert_eq!(
        dicomdir(&whole, "PUSHGATE").unwrap().bytes,
        dicomdir(&pruned, "PUSHGATE").unwrap().bytes
    );
}

/// Offsets checked without DCMTK: every offset in the file is the first
/// byte of a record's item tag.
#[test]
fn offsets_point_at_item_tags() {
    let directory = dicomdir(&sample_instances(), "PUSHGATE").unwrap();
    let bytes = &directory.bytes;
    assert_eq!(&bytes[128..132], b"DICM");
    let find = |tag: [u8; 4]| {
        bytes
            .windows(4)
            .position(|w| w == tag)
            .unwrap_or_else(|| panic!("{tag:?} not found"))
    };
    let ul = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let first = ul(find([0x04, 0x00, 0x00, 0x12]) + 8);
    let last = ul(find([0x04, 0x00, 0x02, 0x12]) + 8);
    let sequence = find([0x04, 0x00, 0x20, 0x12]);
    assert_eq!(&bytes[sequence + 4..sequence + 8], b"SQ\0\0");
    let sequence_len = ul(sequence + 8);
    assert_eq!(sequence + 12 + sequence_len, bytes.len());
    // the items, by walking their lengths
    let mut items = BTreeSet::new();
    let mut at = sequence + 12;
    while at < bytes.len() {
        assert_eq!(&bytes[at..at + 4], &[0xFE, 0xFF, 0x00, 0xE0]);
        items.insert(at);
        at += 8 + ul(at + 4);
    }
    assert_eq!(at, bytes.len());
    assert!(items.contains(&first) && items.contains(&last));
    for &item in &items {
        // Offset of the Next Directory Record, of the Lower-Level Entity
        assert_eq!(&bytes[item + 8..item + 14], b"\x04\x00\x00\x14UL");
        assert_eq!(&bytes[item + 30..item + 36], b"\x04\x00\x20\x14UL");
        for offset in [ul(item + 16), ul(item + 38)] {
            assert!(offset == 0 || items.contains(&offset), "{offset}");
        }
    }
}

fn synthetic(sop_class: &str, n: u32, extra: serde_json::Value) -> FileSetInstance {
    let mut metadata = json!({
        "00080016": {"vr": "UI", "Value": [sop_class]},
        "00080018": {"vr": "UI", "Value": [format!("2.25.{n}")]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Jansen^Anna"}]},
        "00100020": {"vr": "LO", "Value": ["999912343"]},
        "0020000D": {"vr": "UI", "Value": ["2.25.1"]},
        "0020000E": {"vr": "UI", "Value": [format!("2.25.100{n}")]},
    });
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    FileSetInstance {
        path: PathBuf::from(format!("/nonexistent/{n}")),
        size: 1000,
        crc32: Some(0),
        modified: T,
        transfer_syntax: "1.2.840.10008.1.2.1".into(),
        metadata,
    }
}

/// One instance of each leaf record type, with only what every composite
/// instance has: the record keys must still satisfy dciodvfy (stand-ins
/// for Type 1, empty Type 2).
#[test]
fn every_record_type_satisfies_dciodvfy_from_sparse_metadata() {
    let code = json!({"vr": "SQ", "Value": [{
        "00080100": {"vr": "SH", "Value": ["18748-4"]},
        "00080102": {"vr": "SH", "Value": ["LN"]},
        "00080104": {"vr": "LO", "Value": ["Diagnostic Imaging Report"]},
    }]});
    let cases = [
        ("1.2.840.10008.5.1.4.1.1.2", "IMAGE", json!({})),
        (
            "1.2.840.10008.5.1.4.1.1.88.22",
            "SR DOCUMENT",
            json!({"0040A043": code, "0040A491": {"vr":"CS","Value":["COMPLETE"]},
                   "0040A493": {"vr":"CS","Value":["VERIFIED"]},
                   "0040A073": {"vr":"SQ","Value":[{"0040A030":{"vr":"DT","Value":["20240312113000"]}}]}}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.88.59",
            "KEY OBJECT DOC",
            json!({"0040A043": code}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.11.1",
            "PRESENTATION",
            json!({"00700080": {"vr":"CS","Value":["LABEL"]},
                   "00081115": {"vr":"SQ","Value":[{
                       "0020000E": {"vr":"UI","Value":["2.25.7"]},
                       "00081140": {"vr":"SQ","Value":[{
                           "00081150": {"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.2"]},
                           "00081155": {"vr":"UI","Value":["2.25.8"]}}]}}]}}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.104.1",
            "ENCAP DOC",
            json!({"00420012": {"vr":"LO","Value":["application/pdf"]}}),
        ),
        ("1.2.840.10008.5.1.4.1.1.9.1.1", "WAVEFORM", json!({})),
        (
            "1.2.840.10008.5.1.4.1.1.481.2",
            "RT DOSE",
            json!({"3004000A": {"vr":"CS","Value":["PLAN"]}}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.481.3",
            "RT STRUCTURE SET",
            json!({"30060002": {"vr":"SH","Value":["RS"]}}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.481.5",
            "RT PLAN",
            json!({"300A0002": {"vr":"SH","Value":["PLAN1"]}}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.481.4",
            "RT TREAT RECORD",
            json!({}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.66.1",
            "REGISTRATION",
            json!({"00700080": {"vr":"CS","Value":["REG"]}}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.66.2",
            "FIDUCIAL",
            json!({"00700080": {"vr":"CS","Value":["FID"]}}),
        ),
        ("1.2.840.10008.5.1.4.1.1.66", "RAW DATA", json!({})),
        (
            "1.2.840.10008.5.1.4.1.1.67",
            "VALUE MAP",
            json!({"00700080": {"vr":"CS","Value":["MAP"]}}),
        ),
        (
            "1.2.840.10008.5.1.4.1.1.77.1.5.3",
            "STEREOMETRIC",
            json!({"00700080": {"vr":"CS","Value":["STEREO"]}}),
        ),
    ];
    let instances: Vec<FileSetInstance> = cases
        .iter()
        .enumerate()
        .map(|(n, (class, _, extra))| synthetic(class, n as u32 + 1, extra.clone()))
        .collect();
    let directory = dicomdir(&instances, "").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DICOMDIR");
    fs::write(&path, &directory.bytes).unwrap();
    if let Some(dcmdump) = tool("dcmdump") {
        let (records, first) = dump_dicomdir(&dcmdump, &path);
        let kinds: BTreeSet<String> = walk(&records, first)
            .into_iter()
            .map(|p| p[3].split(" 2.25").next().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = cases.iter().map(|c| c.1.to_string()).collect();
        assert_eq!(kinds, expected);
    }
    if let Some(dciodvfy) = tool("dciodvfy") {
        dciodvfy_finds_no_errors(&dciodvfy, &path);
    }
}

#[test]
fn file_set_ids_are_checked() {
    for bad in ["lower", "SEVENTEEN_CHARS_X", "ÄRZTE", "A-B"] {
        assert!(matches!(
            dicomdir(&[], bad),
            Err(PackageError::InvalidFileSetId(_))
        ));
    }
    let empty = dicomdir(&[], "PUSHGATE").unwrap();
    assert!(empty.files.is_empty());
}
