//! C-GET into an `Ingestor` on a temporary store, from Orthanc and from
//! dcmqrscp.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use dicom_core::header::Header;
use dicom_object::OpenFileOptions;

use super::*;

/// Every top-level element of `original` (group 0002 aside) is in `got`
/// with the same value; sequences with as many items (a PACS re-encodes
/// them, e.g. with explicit lengths).
fn same_elements(original: &std::path::Path, got: &std::path::Path) {
    let a = OpenFileOptions::new().open_file(original).unwrap();
    let b = OpenFileOptions::new().open_file(got).unwrap();
    let mut n = 0;
    for e in a.iter() {
        let other = b
            .element(e.tag())
            .unwrap_or_else(|_| panic!("{} missing from {}", e.tag(), got.display()));
        match e.value().items() {
            Some(items) => assert_eq!(Some(items.len()), other.value().items().map(|i| i.len())),
            None => assert_eq!(
                e.value().to_bytes().ok(),
                other.value().to_bytes().ok(),
                "{} differs in {}",
                e.tag(),
                original.display()
            ),
        }
        n += 1;
    }
    assert!(n > 10);
}

fn ingestor(dir: &std::path::Path) -> (crate::store::Store, crate::ingest::Ingestor) {
    let store = crate::store::Store::temporary(dir).unwrap();
    let ingestor = crate::ingest::Ingestor::new(
        store.files.clone(),
        store.index.clone(),
        crate::ingest::Events::new(),
        Arc::new(AtomicBool::new(false)),
    );
    (store, ingestor)
}

/// `sample` is in the index, in its own transfer syntax if compressed
/// (the PACS picks one syntax for the uncompressed context and re-encodes
/// between the two), every value unchanged.
fn stored_like(store: &crate::store::Store, sample: &Sample) {
    let key = store
        .index
        .locate(&crate::store::Uid::parse(&sample.sop).unwrap())
        .unwrap()
        .unwrap_or_else(|| panic!("{} not in the index", sample.path.display()));
    let stored = store.files.path_of(&key);
    let (sent, original) = (dataset_of(&stored).0, dataset_of(&sample.path).0);
    let uncompressed = [EXPLICIT_VR_LE, IMPLICIT_VR_LE];
    if uncompressed.contains(&original.as_str()) {
        assert!(uncompressed.contains(&sent.as_str()), "{sent}");
    } else {
        assert_eq!(sent, original, "{}", sample.path.display());
    }
    same_elements(&sample.path, &stored);
}

/// Every sample's study retrieved by C-GET from Orthanc: each instance in
/// the index, stored in the syntax it was uploaded in (JPEG Baseline and
/// RLE included), every value unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_from_orthanc_ingests_every_instance() {
    let orthanc = Orthanc::start(&[]);
    orthanc.upload(&all_samples());
    let dir = tempfile::tempdir().unwrap();
    let (store, ingestor) = ingestor(dir.path());
    let all = samples();
    let studies: BTreeSet<String> = all.iter().map(|s| s.study.clone()).collect();
    let mut total = 0;
    for study in &studies {
        let count = all.iter().filter(|s| &s.study == study).count();
        let mut seen = 0;
        let outcome = get(
            &orthanc.address(),
            OURS,
            &study_uid_query(study),
            &ingestor,
            TIMEOUT,
            &mut |_| seen += 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", orthanc.log()));
        assert_eq!(outcome.final_status, 0x0000, "{outcome:?}");
        assert_eq!(outcome.sub_ops.completed as usize, count, "{outcome:?}");
        assert_eq!(outcome.sub_ops.failed, 0, "{outcome:?}");
        assert!(seen >= 1);
        total += count;
    }
    assert_eq!(total, 31);
    for sample in &all {
        stored_like(&store, sample);
    }
}

/// C-GET from dcmqrscp: the MR study (Implicit VR Little Endian) ingested.
/// dcmqrscp sends each instance on the first context accepted for its
/// class whatever its syntax, and cannot compress: a JPEG image goes
/// nowhere on the uncompressed context (getscu fares the same), so only
/// an uncompressed study is asked for here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_from_dcmqrscp_ingests_an_uncompressed_study() {
    let qr = DcmQrScp::start(&all_samples(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let (store, ingestor) = ingestor(dir.path());
    let study = study_of("mr-brain");
    let mr: Vec<Sample> = samples().into_iter().filter(|s| s.study == study).collect();
    assert_eq!(mr.len(), 10);
    let mut seen = Vec::new();
    let outcome = get(
        &qr.address(),
        OURS,
        &study_uid_query(&study),
        &ingestor,
        TIMEOUT,
        &mut |ops| seen.push(ops),
    )
    .await
    .unwrap();
    assert_eq!(outcome.final_status, 0x0000, "{outcome:?}");
    assert_eq!(outcome.sub_ops.completed, 10, "{outcome:?}");
    // one pending response after each sub-operation
    let completed: Vec<u16> = seen.iter().map(|ops| ops.completed).collect();
    assert_eq!(completed, (1..=10).collect::<Vec<u16>>(), "{seen:?}");
    assert!(seen.iter().all(|ops| ops.remaining + ops.completed == 10));
    for sample in &mr {
        stored_like(&store, sample);
    }
}
