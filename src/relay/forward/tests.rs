use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::*;
use crate::dimse::scu::testing::{StoreScp, dataset_of, free_port};
use crate::ingest::{Events, Ingestor};
use crate::store::{Source, Store};
use tokio::sync::watch;

fn ingest(ingestor: &Ingestor, rel: &str) -> InstanceKey {
    crate::ingest::ingest_sample(
        ingestor,
        rel,
        Source::Relay {
            sender: "test".into(),
        },
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    keys: Vec<InstanceKey>,
}

/// A store holding the MR series (Implicit VR), one CT and the JPEG US.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary(dir.path()).unwrap();
    let ingestor = Ingestor::new(
        store.files.clone(),
        store.index.clone(),
        Events::new(),
        Arc::new(AtomicBool::new(false)),
    );
    let mut keys: Vec<InstanceKey> = (1..=10)
        .map(|i| ingest(&ingestor, &format!("mr-brain/MR{i:06}.dcm")))
        .collect();
    keys.push(ingest(&ingestor, "ct-phantom/CT000001.dcm"));
    keys.push(ingest(&ingestor, "jpeg/US000001.dcm"));
    Fixture {
        _dir: dir,
        store,
        keys,
    }
}

fn status_of(f: &Forwarder) -> Vec<ForwardItem> {
    f.status().unwrap()
}

async fn wait_for(what: &str, f: &Forwarder, done: impl Fn(&[ForwardItem]) -> bool) {
    let started = Instant::now();
    loop {
        let f2 = f.clone();
        let items = tokio::task::spawn_blocking(move || status_of(&f2))
            .await
            .unwrap();
        if done(&items) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_sent(items: &[ForwardItem]) -> bool {
    items
        .iter()
        .all(|i| matches!(i.state, ForwardState::Sent { status: 0, .. }))
}

fn spawn_worker(
    forwarder: &Forwarder,
    pacs: PacsAddress,
    store: &Store,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, mut stopped) = watch::channel(false);
    let mut supervisor = crate::worker::Supervisor::new();
    supervisor.spawn(ForwardWorker::new(
        forwarder.clone(),
        pacs,
        "PUSHGATE".into(),
        store.index.clone(),
        store.files.clone(),
    ));
    let worker = tokio::spawn(async move {
        let _ = stopped.wait_for(|s| *s).await;
        let failed = supervisor.stop(Duration::from_secs(5)).await;
        assert!(failed.is_empty(), "{failed:?}");
    });
    (stop, worker)
}

fn assert_delivered(scp: &StoreScp, store: &Store, keys: &[InstanceKey]) {
    for key in keys {
        let got = scp.received(key.sop.as_str()).expect("received");
        assert!(
            dataset_of(&got).1 == dataset_of(&store.files.path_of(key)).1,
            "{key} differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueued_instances_reach_the_pacs() {
    let fx = fixture();
    let scp_dir = tempfile::tempdir().unwrap();
    let scp = StoreScp::start(scp_dir.path(), &["+xa"]);
    let forwarder = Forwarder::open(&fx.store.queue).unwrap();
    let (stop, worker) = spawn_worker(&forwarder, scp.address(), &fx.store);
    let started = Instant::now();
    forwarder.enqueue(&fx.keys).unwrap();
    wait_for("delivery", &forwarder, all_sent).await;
    eprintln!(
        "{} instances forwarded in {:.3} s",
        fx.keys.len(),
        started.elapsed().as_secs_f64()
    );
    let items = status_of(&forwarder);
    assert_eq!(items.len(), fx.keys.len());
    assert!(
        items
            .iter()
            .all(|i| i.attempts == 1 && i.next_attempt.is_none())
    );
    assert_delivered(&scp, &fx.store, &fx.keys);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacs_down_then_up() {
    let fx = fixture();
    let port = free_port();
    let pacs: PacsAddress = format!("PACS@127.0.0.1:{port}").parse().unwrap();
    let forwarder = Forwarder::open(&fx.store.queue)
        .unwrap()
        .with_backoff(Duration::from_millis(40));
    let (stop, worker) = spawn_worker(&forwarder, pacs, &fx.store);
    forwarder.enqueue(&fx.keys[..3]).unwrap();
    wait_for("attempts to grow", &forwarder, |items| {
        items
            .iter()
            .all(|i| i.state == ForwardState::Pending && i.attempts >= 3)
    })
    .await;
    let items = status_of(&forwarder);
    let error = items[0].last_error.as_deref().unwrap();
    assert!(error.contains("refused"), "{error}");
    assert!(items[0].next_attempt.is_some());

    let scp_dir = tempfile::tempdir().unwrap();
    let scp = StoreScp::start_on(port, scp_dir.path(), &["+xa"]);
    wait_for("delivery once the PACS is up", &forwarder, all_sent).await;
    assert_delivered(&scp, &fx.store, &fx.keys[..3]);
    stop.send(true).unwrap();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_marks_failed() {
    let fx = fixture();
    let pacs: PacsAddress = format!("PACS@127.0.0.1:{}", free_port()).parse().unwrap();
    let forwarder = Forwarder::open(&fx.store.queue)
        .unwrap()
        .with_backoff(Duration::from_millis(20))
        .with_give_up_after(Duration::from_millis(150));
    let (stop, worker) = spawn_worker(&forwarder, pacs, &fx.store);
    forwarder.enqueue(&fx.keys[..1]).unwrap();
    wait_for("giving up", &forwarder, |items| {
        matches!(&items[0].state, ForwardState::Failed { reason, attempts, .. }
            if reason.starts_with("gave up after") && reason.contains("refused") && *attempts >= 2)
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
}

/// The queue survives a restart: pending items are still there, and a
/// new worker delivers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_items_survive_a_restart() {
    let fx = fixture();
    let db_dir = tempfile::tempdir().unwrap();
    let open_db = |p: &Path| sled::Config::new().path(p).open().unwrap();
    {
        let db = open_db(db_dir.path());
        let forwarder = Forwarder::open(&crate::store::SledQueue::open(&db).unwrap()).unwrap();
        forwarder.enqueue(&fx.keys).unwrap();
    }
    let db = open_db(db_dir.path());
    let forwarder = Forwarder::open(&crate::store::SledQueue::open(&db).unwrap()).unwrap();
    let items = status_of(&forwarder);
    assert_eq!(items.iter().map(|i| i.key.clone()).collect::<Vec<_>>(), {
        let mut keys = fx.keys.clone();
        keys.sort();
        keys
    });
    assert!(items.iter().all(|i| i.state == ForwardState::Pending));

    let scp_dir = tempfile::tempdir().unwrap();
    let scp = StoreScp::start(scp_dir.path(), &["+xa"]);
    let (stop, worker) = spawn_worker(&forwarder, scp.address(), &fx.store);
    wait_for("delivery after the restart", &forwarder, all_sent).await;
    assert_delivered(&scp, &fx.store, &fx.keys);
    stop.send(true).unwrap();
    worker.await.unwrap();
}

/// A failure status from the PACS fails the instance at once (no retry),
/// and enqueueing it again makes it pending anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_instances_fail_at_once_and_can_be_requeued() {
    let fx = fixture();
    let scp_dir = tempfile::tempdir().unwrap();
    // a PACS that takes MR images only: the US image is refused
    let cfg = scp_dir.path().join("mr-only.cfg");
    fs::write(
        &cfg,
        "[[TransferSyntaxes]]\n[Any]\nTransferSyntax1 = 1.2.840.10008.1.2.1\n\
         TransferSyntax2 = 1.2.840.10008.1.2\n\n[[PresentationContexts]]\n[Storage]\n\
         PresentationContext1 = 1.2.840.10008.5.1.4.1.1.4\\Any\n\n\
         [[Profiles]]\n[Default]\nPresentationContexts = Storage\n",
    )
    .unwrap();
    let scp = StoreScp::start(
        &scp_dir.path().join("in"),
        &["-xf", cfg.to_str().unwrap(), "Default"],
    );
    let forwarder = Forwarder::open(&fx.store.queue).unwrap();
    let (stop, worker) = spawn_worker(&forwarder, scp.address(), &fx.store);
    let us = fx.keys[11].clone();
    forwarder
        .enqueue(&[fx.keys[0].clone(), us.clone()])
        .unwrap();
    wait_for("settled", &forwarder, |items| {
        items.iter().all(|i| i.state != ForwardState::Pending)
    })
    .await;
    for item in status_of(&forwarder) {
        if item.key == us {
            assert!(
                matches!(&item.state, ForwardState::Failed { reason, attempts: 1, .. } if reason.contains("1.2.840.10008.5.1.4.1.1.6.1")),
                "{item:?}"
            );
        } else {
            assert!(
                matches!(item.state, ForwardState::Sent { status: 0, .. }),
                "{item:?}"
            );
        }
    }
    forwarder.enqueue(std::slice::from_ref(&us)).unwrap();
    let again = status_of(&forwarder)
        .into_iter()
        .find(|i| i.key == us)
        .unwrap();
    assert_eq!((again.state, again.attempts), (ForwardState::Pending, 0));
    stop.send(true).unwrap();
    worker.await.unwrap();
}
