use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use dicom_core::header::Header;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use super::testing::{StoreScp, all_samples, dataset_of, free_port, sample};
use super::*;
use crate::part10::read_part10_header;

const TIMEOUT: Duration = Duration::from_secs(20);

fn outgoing(path: &Path) -> Outgoing {
    let header = read_part10_header(&fs::File::open(path).unwrap()).unwrap();
    Outgoing {
        path: path.to_path_buf(),
        sop_class: header.sop_class,
        sop_instance: header.sop_instance,
        transfer_syntax: header.transfer_syntax,
        dataset_offset: header.dataset_offset,
    }
}

fn open(path: &Path) -> DefaultDicomObject {
    OpenFileOptions::new().open_file(path).unwrap()
}

/// Every element of `a` is in `b` with the same value (group 0002 aside).
fn same_elements(a: &DefaultDicomObject, b: &DefaultDicomObject, skip: &[dicom_core::Tag]) {
    let mut n = 0;
    for e in a.iter() {
        if skip.contains(&e.tag()) {
            continue;
        }
        let other = b
            .element(e.tag())
            .unwrap_or_else(|_| panic!("{} missing", e.tag()));
        assert_eq!(
            e.value().to_bytes().ok(),
            other.value().to_bytes().ok(),
            "{} differs",
            e.tag()
        );
        n += 1;
    }
    assert!(n > 10);
}

/// (a) storescp accepting every syntax: each sample arrives in its own
/// transfer syntax with the data set bytes unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_arrives_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let scp = StoreScp::start(dir.path(), &["+xa"]);
    let items: Vec<Outgoing> = all_samples().iter().map(|p| outgoing(p)).collect();
    assert_eq!(items.len(), 31);
    let started = Instant::now();
    let results = store_all(&scp.address(), "PUSHGATE", &items, TIMEOUT)
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let bytes: u64 = items
        .iter()
        .map(|i| fs::metadata(&i.path).unwrap().len())
        .sum();
    eprintln!("31 instances, {bytes} bytes in {secs:.3} s");
    assert_eq!(results.len(), items.len());
    for (item, result) in items.iter().zip(&results) {
        assert_eq!(result.sop_instance, item.sop_instance);
        assert_eq!(result.outcome, Outcome::Success, "{result:?}");
        assert_eq!(result.status, 0);
        assert_eq!(
            result.sent_as.as_deref(),
            Some(item.transfer_syntax.as_str())
        );
        let got = scp.received(&item.sop_instance).expect("received");
        let (ts, dataset) = dataset_of(&got);
        assert_eq!(ts, item.transfer_syntax);
        assert!(
            dataset == dataset_of(&item.path).1,
            "{} differs",
            item.path.display()
        );
    }
}

/// storescp configured to take Explicit VR Little Endian only.
fn explicit_only_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("explicit-only.cfg");
    let classes = [
        "1.2.840.10008.5.1.4.1.1.4",
        "1.2.840.10008.5.1.4.1.1.6.1",
        "1.2.840.10008.5.1.4.1.1.2",
    ];
    let mut cfg = String::from(
        "[[TransferSyntaxes]]\n[ExplicitLE]\nTransferSyntax1 = 1.2.840.10008.1.2.1\n\n\
         [[PresentationContexts]]\n[Storage]\n",
    );
    for (i, class) in classes.iter().enumerate() {
        cfg.push_str(&format!(
            "PresentationContext{} = {class}\\ExplicitLE\n",
            i + 1
        ));
    }
    cfg.push_str("\n[[Profiles]]\n[Default]\nPresentationContexts = Storage\n");
    fs::write(&path, cfg).unwrap();
    path
}

/// (b) A peer that takes Explicit VR Little Endian only: the Implicit VR
/// MR is re-encoded (same elements), the JPEG and RLE ones are decoded
/// (the RLE one to the very pixels of its uncompressed twin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_only_peer_gets_reencoded_and_decoded_instances() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = explicit_only_config(dir.path());
    let scp = StoreScp::start(
        &dir.path().join("in"),
        &["-xf", cfg.to_str().unwrap(), "Default"],
    );
    let mr = outgoing(&sample("mr-brain/MR000001.dcm"));
    let us = outgoing(&sample("jpeg/US000001.dcm"));
    let rle = outgoing(&sample("rle/CT000001.dcm"));
    let pr = outgoing(&sample("ct-phantom/PR000001.dcm"));
    let items = [mr.clone(), us.clone(), rle.clone(), pr.clone()];
    let results = store_all(&scp.address(), "PUSHGATE", &items, TIMEOUT)
        .await
        .unwrap();
    for r in &results[..3] {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        assert_eq!(r.sent_as.as_deref(), Some(EXPLICIT_VR_LE));
    }
    // the PR's SOP class is not configured: refused without sending
    assert_eq!(results[3].status, NOT_ACCEPTED, "{:?}", results[3]);
    assert_eq!(results[3].sent_as, None);

    let got = scp.received(&mr.sop_instance).unwrap();
    assert_eq!(dataset_of(&got).0, EXPLICIT_VR_LE);
    same_elements(&open(&mr.path), &open(&got), &[]);

    let got = open(&scp.received(&us.sop_instance).unwrap());
    assert_eq!(got.meta().transfer_syntax(), EXPLICIT_VR_LE);
    let pixels = got.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    assert_eq!(pixels.len(), 480 * 640);

    let got = open(&scp.received(&rle.sop_instance).unwrap());
    let twin = open(&sample("ct-phantom/CT000011.dcm"));
    assert_eq!(
        got.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap(),
        twin.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap()
    );
    same_elements(
        &open(&rle.path),
        &got,
        &[tags::PIXEL_DATA, tags::LOSSY_IMAGE_COMPRESSION],
    );
}

/// A peer that takes Implicit VR Little Endian only: an Explicit VR
/// instance is re-encoded to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_only_peer_gets_implicit() {
    let dir = tempfile::tempdir().unwrap();
    let scp = StoreScp::start(dir.path(), &["+xi"]);
    let ct = outgoing(&sample("ct-phantom/CT000003.dcm"));
    let sr = outgoing(&sample("ct-phantom/SR000001.dcm"));
    let results = store_all(
        &scp.address(),
        "PUSHGATE",
        &[ct.clone(), sr.clone()],
        TIMEOUT,
    )
    .await
    .unwrap();
    for (item, r) in [&ct, &sr].iter().zip(&results) {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        assert_eq!(r.sent_as.as_deref(), Some(IMPLICIT_VR_LE));
        let got = scp.received(&item.sop_instance).unwrap();
        assert_eq!(dataset_of(&got).0, IMPLICIT_VR_LE);
        same_elements(&open(&item.path), &open(&got), &[]);
    }
}

/// (c) The wrong called AE title: the rejection, named. storescp takes
/// any called AE title, so the peer is pushgate's own SCP (which also
/// shows the SCU and the SCP agree when the title is right).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_called_ae_is_a_named_rejection() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::temporary(dir.path()).unwrap();
    let ingestor = crate::ingest::Ingestor::new(
        store.files.clone(),
        store.index.clone(),
        crate::ingest::Events::new(),
        Arc::new(AtomicBool::new(false)),
    );
    let config = crate::config::Config::defaults().unwrap().dicom;
    let scp = Arc::new(crate::dimse::Scp::new(&config, ingestor));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, shutdown) = crate::worker::Stop::new();
    let server = tokio::spawn(crate::dimse::serve(
        listener,
        scp,
        shutdown,
        Duration::from_secs(1),
    ));
    let item = outgoing(&sample("ct-phantom/CT000001.dcm"));

    let pacs: PacsAddress = format!("NOT_THE_PACS@127.0.0.1:{port}").parse().unwrap();
    let err = store_all(&pacs, "PUSHGATE", std::slice::from_ref(&item), TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "A-ASSOCIATE-RJ (permanent, service user): called AE title not recognized"
    );

    let pacs: PacsAddress = format!("{}@127.0.0.1:{port}", config.ae_title)
        .parse()
        .unwrap();
    let results = store_all(&pacs, "PEER", std::slice::from_ref(&item), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(results[0].outcome, Outcome::Success, "{:?}", results[0]);
    let key = store
        .index
        .locate(&crate::store::Uid::parse(&item.sop_instance).unwrap());
    let key = key.unwrap().expect("stored by our SCP");
    assert_eq!(
        dataset_of(&store.files.path_of(&key)).1,
        dataset_of(&item.path).1
    );
    stop.send(true).unwrap();
    server.await.unwrap();
}

/// (d) Nothing listening: connection refused, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_connection_refused() {
    let pacs: PacsAddress = format!("PACS@127.0.0.1:{}", free_port()).parse().unwrap();
    let items = [outgoing(&sample("ct-phantom/CT000001.dcm"))];
    let started = Instant::now();
    let err = store_all(&pacs, "PUSHGATE", &items, TIMEOUT)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(&err, ScuError::Connect { source, .. } if source.kind() == io::ErrorKind::ConnectionRefused),
        "{err}"
    );
    assert!(err.to_string().contains("refused"), "{err}");
}

/// More (SOP class, syntax) pairs than one association holds: several
/// associations, results in item order; an unreadable file fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pairs_take_several_associations() {
    let dir = tempfile::tempdir().unwrap();
    let scp = StoreScp::start(&dir.path().join("in"), &["-pm"]);
    let base = outgoing(&sample("ct-phantom/CT000001.dcm"));
    // 70 made-up SOP classes (storescp -pm accepts unknown ones)
    let mut items: Vec<Outgoing> = (0..70)
        .map(|i| Outgoing {
            sop_class: format!("1.2.3.4.{i}"),
            ..base.clone()
        })
        .collect();
    items.push(Outgoing {
        path: dir.path().join("missing.dcm"),
        sop_instance: "1.2.3.999".into(),
        ..base.clone()
    });
    let (results, error) = store_all_partial(&scp.address(), "PUSHGATE", &items, TIMEOUT).await;
    assert!(error.is_none(), "{error:?}");
    let results: Vec<InstanceResult> = results.into_iter().map(Option::unwrap).collect();
    // storescp answers the SOP class mismatch with an error or warning
    // status; what matters is that each got its own response
    assert!(
        results[..70].iter().all(|r| r.sent_as.is_some()),
        "{results:?}"
    );
    assert_eq!(results[70].status, NOT_SENT);
    assert!(
        matches!(&results[70].outcome, Outcome::Failure(r) if r.contains("missing.dcm")),
        "{:?}",
        results[70]
    );
}
