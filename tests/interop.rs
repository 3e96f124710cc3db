//! Interoperability found with real clients (issue #12, items 13 and 14):
//! attributes sent with VR UN are indexed by their dictionary VR while the
//! bytes stay as received; single-part media types (OHIF's `singlepart`)
//! get single-part answers for bulk data and frames; searches without a
//! match answer `application/dicom+json`. Peers: DCMTK's storescu and
//! pdf2dcm, pydicom (to write UN elements), curl, dicomweb-client.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::scu::RawScu;
use common::sharing::{as_holder, bind, path_of, share};
use common::wire::parts;
use common::{Ask, Daemon, dataset_bytes, samples, text};
use serde_json::{Value, json};

/// Links must point at this daemon (dicomweb-client follows BulkDataURIs).
const CONFIG: &str = "public_url = \"https://127.0.0.1:HTTP_PORT\"\n\
[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\n\
[http]\nlisten = \"127.0.0.1:HTTP_PORT\"\n";

const STORED: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    assert!(python.exists(), "`make pyenv` creates {}", python.display());
    python
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// A file of pydicom's test corpus (installed with pydicom in the venv).
fn pydicom_file(name: &str) -> PathBuf {
    let out = Command::new(python())
        .args([
            "-c",
            "import pydicom.data, sys; print(pydicom.data.get_testdata_file(sys.argv[1]))",
        ])
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn holder_accepting(holder: &str, accept: &str) -> Ask<'static> {
    let mut ask = as_holder(holder);
    ask.headers.push(("Accept", accept.to_string()));
    ask
}

/// Shares `study` and binds the link: (link path, holder token).
fn bound(daemon: &Daemon, args: &[&str]) -> (String, String) {
    let grant = share(daemon, args);
    let path = path_of(&grant["url"]);
    let holder = bind(daemon, &path);
    (path, holder)
}

const UN_STUDY: &str = "2.25.300913337151093476110436911806214337001";
const UN_SERIES: &str = "2.25.300913337151093476110436911806214337002";
const UN_SOP: &str = "2.25.300913337151093476110436911806214337003";
/// Study Instance UID of pydicom's rtdose_rle_1frame.dcm (sent as UN).
const RTDOSE_STUDY: &str = "1.2.999.999.99.9.9999.8888";
const RLE: &str = "1.2.840.10008.1.2.5";

/// Issue #12 item 13. Before the fix both C-STOREs got A900 ("not a
/// valid UID"): a UN value was read as a list of bytes.
#[test]
fn attributes_sent_as_un_are_indexed_by_their_dictionary_vr() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("un.dcm");
    let out = Command::new(python())
        .arg(script("un_vr_file.py"))
        .arg(samples().join("ct-phantom/CT000001.dcm"))
        .arg(&generated)
        .args([UN_STUDY, UN_SERIES, UN_SOP])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rtdose = pydicom_file("rtdose_rle_1frame.dcm");

    let daemon = Daemon::start_with(CONFIG);
    let out = daemon.storescu(&["-xe"], std::slice::from_ref(&generated));
    assert!(out.status.success(), "storescu: {}", text(&out));
    // storescu cannot send rtdose: it reads the SOP UIDs from the data
    // set, where they are UN too; the SCU of these tests sends it as is
    let header =
        pushgate::ingest::read_part10_header(&std::fs::File::open(&rtdose).unwrap()).unwrap();
    let contexts: &[(&str, &[&str])] = &[(header.sop_class.as_str(), &[RLE])];
    let mut scu = RawScu::associate(daemon.dicom, contexts).unwrap();
    let stored = scu.store(
        1,
        1,
        &header.sop_class,
        &header.sop_instance,
        &dataset_bytes(&rtdose),
        16_000,
    );
    assert_eq!(
        (stored.status, stored.comment.as_str()),
        (0, ""),
        "C-STORE of rtdose"
    );
    scu.release();
    assert_eq!(daemon.instance_count(), 2, "{}", daemon.studies());

    for (study, file, patient) in [
        (UN_STUDY, &generated, "Müller^Jörg"),
        (RTDOSE_STUDY, &rtdose, "Lastname^Firstname"),
    ] {
        let (path, holder) = bound(&daemon, &[study]);
        let web = format!("{path}/dicomweb");
        // QIDO finds it by the UID that came as UN
        let found = daemon.https(
            "GET",
            &format!("{web}/studies?StudyInstanceUID={study}"),
            as_holder(&holder),
        );
        assert_eq!(found.status, 200, "{}", found.body);
        let found = found.json();
        assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
        assert_eq!(found[0]["0020000D"]["Value"][0], study);
        assert_eq!(found[0]["00100010"]["Value"][0]["Alphabetic"], patient);
        // /metadata shows the values under their dictionary VR
        let meta = daemon.https(
            "GET",
            &format!("{web}/studies/{study}/metadata"),
            as_holder(&holder),
        );
        assert_eq!(meta.status, 200, "{}", meta.body);
        let meta = &meta.json()[0];
        assert_eq!(meta["0020000D"], json!({"vr": "UI", "Value": [study]}));
        assert_eq!(meta["00100010"]["vr"], "PN");
        assert_eq!(meta["00100010"]["Value"][0]["Alphabetic"], patient);
        // as stored: the bytes as received, UN and all
        let back = daemon.https(
            "GET",
            &format!("{web}/studies/{study}"),
            holder_accepting(&holder, STORED),
        );
        assert_eq!(back.status, 200, "{}", back.body);
        let parts = parts(&back);
        assert_eq!(parts.len(), 1);
        let returned = dir.path().join("back.dcm");
        std::fs::write(&returned, &parts[0].1).unwrap();
        let dump = Command::new("dcmdump")
            .arg("-q")
            .arg(&returned)
            .output()
            .unwrap();
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.contains("(0020,000d) UN"), "still UN: {dump}");
        assert!(dump.contains("(0010,0010) UN"), "still UN: {dump}");
        // what our SCU sent is known byte for byte (storescu re-encodes)
        if file == &rtdose {
            assert!(
                dataset_bytes(&returned) == dataset_bytes(file),
                "the data set comes back byte for byte"
            );
        }
    }
    // the generated file's other UN attributes are indexed too
    let (path, holder) = bound(&daemon, &[UN_STUDY]);
    let meta = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies/{UN_STUDY}/metadata"),
        as_holder(&holder),
    );
    let meta = &meta.json()[0];
    assert_eq!(meta["00080020"], json!({"vr": "DA", "Value": ["20240229"]}));
    assert_eq!(meta["00080060"], json!({"vr": "CS", "Value": ["CT"]}));
    assert_eq!(meta["00280010"], json!({"vr": "US", "Value": [256]}));
    assert_eq!(
        meta["00100020"],
        json!({"vr": "LO", "Value": ["UNVR-0001"]})
    );
    let by_id = daemon.https(
        "GET",
        &format!("{path}/dicomweb/studies?PatientID=UNVR-0001&StudyDate=20240229"),
        as_holder(&holder),
    );
    assert_eq!(
        by_id.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        by_id.body
    );
}

/// A PDF of odd length, large enough to be bulk data.
fn pdf_bytes() -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\n".to_vec();
    pdf.extend(std::iter::repeat_n(b'%', 3001));
    pdf.extend_from_slice(b"\ntrailer<<>>\n%%EOF\n");
    assert!(pdf.len() % 2 == 1);
    pdf
}

fn native_pixels(file: &Path) -> Vec<u8> {
    dicom_object::open_file(file)
        .unwrap()
        .element(dicom_dictionary_std::tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap()
        .to_vec()
}

fn uid(file: &Path, tag: dicom_core::Tag) -> String {
    dicom_object::open_file(file)
        .unwrap()
        .element(tag)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_string()
}

fn instance_path(link: &str, file: &Path) -> String {
    use dicom_dictionary_std::tags;
    format!(
        "{link}/dicomweb/studies/{}/series/{}/instances/{}",
        uid(file, tags::STUDY_INSTANCE_UID),
        uid(file, tags::SERIES_INSTANCE_UID),
        uid(file, tags::SOP_INSTANCE_UID)
    )
}

/// Issue #12 item 14. Before the fix: octet-stream got multipart answers,
/// application/pdf a 406, and the empty search of a link whose study had
/// not arrived `application/json`.
#[test]
fn single_part_media_types_get_single_part_answers() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("letter.pdf");
    std::fs::write(&pdf, pdf_bytes()).unwrap();
    let pdf_dcm = dir.path().join("letter.dcm");
    let out = Command::new("/usr/bin/pdf2dcm")
        .args([
            "+pn",
            "Brief^Pdf",
            "+pi",
            "PDF-1",
            "--title",
            "Verwijsbrief",
        ])
        .arg(&pdf)
        .arg(&pdf_dcm)
        .output()
        .unwrap();
    assert!(out.status.success(), "pdf2dcm: {}", text(&out));
    let ct = samples().join("ct-phantom/CT000001.dcm");
    let xa = samples().join("multiframe/XA000001.dcm");
    let us = samples().join("jpeg/US000001.dcm");
    let daemon = Daemon::start_with(CONFIG);
    daemon.send_all(&[ct.clone(), xa.clone(), us.clone(), pdf_dcm.clone()]);

    // the PDF's bulk data as the document itself, single part
    let pdf_study = uid(&pdf_dcm, dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let (link, holder) = bound(&daemon, &[&pdf_study]);
    let meta = daemon.https(
        "GET",
        &format!("{link}/dicomweb/studies/{pdf_study}/metadata"),
        as_holder(&holder),
    );
    let uri = meta.json()[0]["00420011"]["BulkDataURI"]
        .as_str()
        .unwrap_or_else(|| panic!("a BulkDataURI: {}", meta.body))
        .to_string();
    let bulk = &uri[uri.find("/s/").unwrap()..];
    let reply = daemon.https("GET", bulk, holder_accepting(&holder, "application/pdf"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/pdf"));
    assert!(reply.raw == pdf_bytes(), "the PDF without its pad byte");
    // as octet-stream: the value as stored (with the pad byte)
    let reply = daemon.https(
        "GET",
        bulk,
        holder_accepting(&holder, "application/octet-stream"),
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(reply.raw.len(), pdf_bytes().len() + 1);
    // multipart stays the default
    let reply = daemon.https("GET", bulk, as_holder(&holder));
    assert_eq!(parts(&reply).len(), 1);
    // a type it is not: 406 naming what is offered
    let reply = daemon.https("GET", bulk, holder_accepting(&holder, "image/jpeg"));
    assert_eq!(reply.status, 406);
    assert!(reply.body.contains("application/pdf"), "{}", reply.body);

    // dicomweb-client: the PDF bulk data, and empty searches
    let config = json!({
        "dicomweb": format!("https://{}{link}/dicomweb", daemon.http),
        "holder": holder,
        "ca": daemon.data_dir().join("tls/cert.pem"),
        "pdf": pdf,
    });
    let config_path = dir.path().join("single.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let out = Command::new(python())
        .arg(script("single_part_check.py"))
        .arg(&config_path)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("dicomweb-client: {}", text(&out)));
    assert!(out.status.success(), "{report:#}\n{}", text(&out));
    assert_eq!(report["passed"], json!(["pdf_bulkdata", "empty_search"]));

    // native pixel data and frames as bare octet-stream
    let ct_study = uid(&ct, dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let (link, holder) = bound(&daemon, &[&ct_study]);
    let ct_path = instance_path(&link, &ct);
    for resource in ["bulkdata/7FE00010", "frames/1"] {
        let reply = daemon.https(
            "GET",
            &format!("{ct_path}/{resource}"),
            holder_accepting(&holder, "application/octet-stream"),
        );
        assert_eq!(reply.status, 200, "{resource}: {}", reply.body);
        let content_type = reply.header("content-type").unwrap();
        assert!(
            content_type.starts_with("application/octet-stream"),
            "{content_type}"
        );
        assert!(
            reply.raw == native_pixels(&ct),
            "{resource}: the pixels, bare"
        );
        assert_eq!(
            reply.header("content-length"),
            Some(reply.raw.len().to_string().as_str())
        );
    }
    // several frames cannot be one part
    let xa_study = uid(&xa, dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let (link, holder) = bound(&daemon, &[&xa_study]);
    let xa_path = instance_path(&link, &xa);
    let reply = daemon.https(
        "GET",
        &format!("{xa_path}/frames/1,7"),
        holder_accepting(&holder, "application/octet-stream"),
    );
    assert_eq!(reply.status, 406, "{}", reply.body);
    assert!(reply.body.contains("multipart/related"), "{}", reply.body);
    let reply = daemon.https(
        "GET",
        &format!("{xa_path}/frames/7"),
        holder_accepting(&holder, "application/octet-stream"),
    );
    let frames = native_pixels(&xa);
    let size = frames.len() / 20;
    assert!(reply.raw == frames[6 * size..7 * size], "frame 7 alone");

    // a JPEG frame as image/jpeg: the stored bitstream, bare
    let us_study = uid(&us, dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let (link, holder) = bound(&daemon, &[&us_study]);
    let us_path = instance_path(&link, &us);
    let multipart = daemon.https(
        "GET",
        &format!("{us_path}/frames/1"),
        holder_accepting(&holder, "multipart/related; type=\"image/jpeg\""),
    );
    let stored = parts(&multipart).remove(0).1;
    for resource in ["frames/1", "bulkdata/7FE00010"] {
        let reply = daemon.https(
            "GET",
            &format!("{us_path}/{resource}"),
            holder_accepting(&holder, "image/jpeg"),
        );
        assert_eq!(reply.status, 200, "{resource}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50")
        );
        assert!(reply.raw == stored, "{resource}: the bitstream as stored");
    }
}

/// Issue #12 item 14, QIDO: a link whose study has not arrived answers a
/// search like any search without a match: 200, `[]`, DICOM JSON.
#[test]
fn empty_searches_answer_dicom_json() {
    let daemon = Daemon::start_with(CONFIG);
    let (link, holder) = bound(&daemon, &["--accession", "NOT-YET-1", "--patient-id", "P1"]);
    for search in ["studies", "studies?PatientID=x"] {
        let reply = daemon.https(
            "GET",
            &format!("{link}/dicomweb/{search}"),
            as_holder(&holder),
        );
        assert_eq!((reply.status, reply.body.as_str()), (200, "[]"));
        assert_eq!(reply.header("content-type"), Some("application/dicom+json"));
    }
}
