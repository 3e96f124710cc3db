//! Issue #12 items 11 and 12: what pushgate decodes in a default retrieve.
//! A study with 12-bit JPEG Extended instances comes back whole and
//! decoded as dcmdjpeg decodes it; an instance of a coding pushgate has no
//! decoder for (arithmetic-coded JPEG) is left out before the first byte
//! (206 with a Warning, a multipart that closes), and its frames,
//! rendering and thumbnail answer 406 with the reason. An RGB JPEG without
//! JFIF/Adobe markers keeps its colours.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::sharing::{as_holder, bind, path_of, share};
use common::wire::parts;
use common::{Ask, Daemon, sample_files, text};

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const DEFAULT: &str = "multipart/related; type=\"application/dicom\"";

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
}

fn accepting(holder: &str, accept: &str) -> Ask<'static> {
    let mut ask = as_holder(holder);
    ask.headers.push(("Accept", accept.to_string()));
    ask
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The Pixel Data value of a Part 10 file (empty when it has none: the
/// study's SR and presentation state).
fn pixel_bytes(path: &Path) -> Vec<u8> {
    let object = dicom_object::OpenFileOptions::new()
        .open_file(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match object.element(dicom_dictionary_std::tags::PIXEL_DATA) {
        Ok(element) => element.to_bytes().expect("native pixel data").into_owned(),
        Err(_) => Vec::new(),
    }
}

/// curl's exit code and body for one GET, over the protocol given.
fn curl(daemon: &Daemon, protocol: &str, url: &str, holder: &str) -> (i32, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-sk", protocol, "--max-time", "30", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {holder}")])
        .args(["-H", &format!("Accept: {DEFAULT}")])
        .arg(format!("https://{}{url}", daemon.http))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

/// `data` with its first SOF1 marker (12-bit extended DCT, Huffman) made
/// SOF9 (extended DCT, arithmetic coding): a coding with no decoder here.
fn arithmetic_coded(data: &[u8]) -> Vec<u8> {
    let at = data
        .windows(5)
        .position(|w| w == [0xFF, 0xC1, 0x00, 0x0B, 0x0C])
        .expect("a 12-bit SOF1 marker");
    let mut out = data.to_vec();
    out[at + 1] = 0xC9;
    out
}

#[test]
fn undecodable_instances_are_left_out_before_the_first_byte_and_12_bit_jpeg_is_decoded() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let ct: Vec<PathBuf> = sample_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/ct-phantom/"))
        .collect();
    let mut jpeg = Vec::new();
    for (i, file) in ct.iter().enumerate() {
        let out = dir.path().join(format!("ct{i}.dcm"));
        run("/usr/bin/dcmcjpeg", &["+ee", s(file), s(&out)]);
        jpeg.push(out);
    }
    // the first instance goes in arithmetic-coded instead
    let bad = dir.path().join("arithmetic.dcm");
    std::fs::write(&bad, arithmetic_coded(&std::fs::read(&jpeg[0]).unwrap())).unwrap();
    let mut to_send = jpeg[1..].to_vec();
    to_send.push(bad.clone());
    let out = daemon.storescu(&["-xx"], &to_send);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(daemon.instance_count(), ct.len() as u64);

    let study = common::sharing::study_with(&daemon, "CT");
    let grant = share(&daemon, &[&study]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    let study_url = format!("{path}/dicomweb/studies/{study}");

    // the study: all but the arithmetic-coded one, decoded, and said so
    let reply = daemon.https("GET", &study_url, accepting(&holder, DEFAULT));
    assert_eq!(reply.status, 206, "{}", reply.body);
    let warning = reply.header("warning").expect("a Warning");
    assert!(
        warning.contains("1 instance(s) cannot be sent") && warning.contains("arithmetic-coded"),
        "{warning}"
    );
    let got = parts(&reply);
    assert_eq!(got.len(), ct.len() - 1);
    let mut decoded = 0;
    for (head, content) in &got {
        assert!(head.contains(EXPLICIT_LE), "{head}");
        let ours = dir.path().join("ours.dcm");
        std::fs::write(&ours, content).unwrap();
        let sop = common::sop_instance(&ours);
        let original = jpeg[1..]
            .iter()
            .find(|f| common::sop_instance(f) == sop)
            .expect("a part per instance sent");
        let theirs = dir.path().join("theirs.dcm");
        run("/usr/bin/dcmdjpeg", &[s(original), s(&theirs)]);
        decoded += !pixel_bytes(&theirs).is_empty() as usize;
        assert!(
            pixel_bytes(&ours) == pixel_bytes(&theirs),
            "{sop}: 12-bit pixels differ from dcmdjpeg's"
        );
    }
    assert!(decoded >= 15, "{decoded} images compared");
    // curl over HTTP/1.1 and HTTP/2: a complete transfer, the multipart closed
    for protocol in ["--http1.1", "--http2"] {
        let (exit, status, body) = curl(&daemon, protocol, &study_url, &holder);
        assert_eq!((exit, status.as_str()), (0, "206"), "{protocol}");
        assert!(body.ends_with(b"--\r\n"), "{protocol}: no closing boundary");
    }

    // the arithmetic-coded instance alone, its frames, rendering and
    // thumbnail: 406 with the reason
    let bad_sop = common::sop_instance(&bad);
    let series = daemon
        .stored_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains(&bad_sop))
        .unwrap()
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let instance = format!("{study_url}/series/{series}/instances/{bad_sop}");
    for (url, accept) in [
        (instance.clone(), DEFAULT),
        (instance.clone(), "application/dicom"),
        (
            format!("{instance}/frames/1"),
            "multipart/related; type=\"application/octet-stream\"",
        ),
        (format!("{instance}/rendered"), "image/jpeg"),
        (format!("{instance}/thumbnail"), "image/jpeg"),
    ] {
        let reply = daemon.https("GET", &url, accepting(&holder, accept));
        assert_eq!(reply.status, 406, "{url} {accept}: {}", reply.body);
        assert!(
            reply.body.contains("arithmetic-coded"),
            "{url}: {}",
            reply.body
        );
    }
    // … and as stored it is there
    let reply = daemon.https(
        "GET",
        &instance,
        accepting(&holder, &format!("{DEFAULT}; transfer-syntax=*")),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(parts(&reply).len(), 1);
}

/// pydicom's SC_jpeg_no_color_transform.dcm: component IDs 0,1,2, no JFIF
/// or Adobe marker, Photometric Interpretation RGB. Its pixel (0,0) is
/// (244,244,244) for dcmdjpeg and Pillow; read as YCbCr it was
/// (255,121,255).
#[test]
fn an_rgb_jpeg_without_colour_markers_keeps_its_colours() {
    let Some(file) = pydicom_test_file("SC_jpeg_no_color_transform.dcm") else {
        return;
    };
    let daemon = Daemon::start();
    let out = daemon.storescu(&["-xy"], std::slice::from_ref(&file));
    assert!(out.status.success(), "{}", text(&out));
    let stored = daemon.stored_files().pop().expect("stored");
    let sop = common::sop_instance(&file);
    let series = stored.parent().unwrap();
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().to_string();
    let study = name(series.parent().unwrap());
    let grant = share(&daemon, &[&study]);
    let path = path_of(&grant["url"]);
    let holder = bind(&daemon, &path);
    let instance = format!(
        "{path}/dicomweb/studies/{study}/series/{}/instances/{sop}",
        name(series)
    );
    // default retrieve against dcmdjpeg, within one level
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs.dcm");
    run("/usr/bin/dcmdjpeg", &[s(&file), s(&theirs)]);
    let reference = pixel_bytes(&theirs);
    assert_eq!(&reference[..3], &[244, 244, 244]);
    let reply = daemon.https("GET", &instance, accepting(&holder, DEFAULT));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ours = dir.path().join("ours.dcm");
    std::fs::write(&ours, &parts(&reply)[0].1).unwrap();
    let decoded = pixel_bytes(&ours);
    assert_eq!(&decoded[..3], &[244, 244, 244], "pixel (0,0)");
    assert_eq!(decoded.len(), reference.len());
    let worst = decoded
        .iter()
        .zip(&reference)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 1, "up to {worst} levels from dcmdjpeg");
    // the frame, decoded
    let reply = daemon.https(
        "GET",
        &format!("{instance}/frames/1"),
        accepting(
            &holder,
            "multipart/related; type=\"application/octet-stream\"",
        ),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        &parts(&reply)[0].1[..3],
        &[244, 244, 244],
        "frame pixel (0,0)"
    );
    // rendered as PNG (lossless): Pillow reads pixel (0,0)
    let reply = daemon.https(
        "GET",
        &format!("{instance}/rendered"),
        accepting(&holder, "image/png"),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let png = dir.path().join("rendered.png");
    std::fs::write(&png, &reply.raw).unwrap();
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    let out = Command::new(py)
        .args([
            "-c",
            "import sys; from PIL import Image; print(Image.open(sys.argv[1]).convert('RGB').getpixel((0, 0)))",
            s(&png),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "(244, 244, 244)",
        "{}",
        text(&out)
    );
}

fn pydicom_test_file(name: &str) -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.filter_map(Result::ok)
            .map(|d| {
                d.path()
                    .join("site-packages/pydicom/data/test_files")
                    .join(name)
            })
            .find(|p| p.is_file())
    });
    assert!(
        found.is_some(),
        "{name}: pydicom's test files missing (make pyenv)"
    );
    found
}
