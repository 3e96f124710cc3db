use super::*;
use crate::store::SledQueue;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
}

impl Job for Note {
    const KIND: &'static str = "note";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Other {
    n: u32,
}

impl Job for Other {
    const KIND: &'static str = "other";
}

const POLICY: Policy = Policy {
    base: Duration::from_secs(5),
    cap: Duration::from_secs(600),
    give_up_after: Duration::from_secs(3600),
};

fn store() -> Arc<dyn QueueStore> {
    let db = sled::Config::new().temporary(true).open().unwrap();
    SledQueue::open(&db).unwrap()
}

fn note(q: &Queue<Note>, id: &str) -> Entry<Note> {
    let job = Note { text: id.into() };
    Entry::new(
        id.into(),
        "peer".into(),
        State::Pending,
        q.next_seq().unwrap(),
        job,
    )
}

#[test]
fn backoff_doubles_from_the_first_failure_up_to_the_cap_with_jitter() {
    assert_eq!(POLICY.plain_delay(1), Duration::from_secs(5));
    assert_eq!(POLICY.plain_delay(2), Duration::from_secs(10));
    assert_eq!(POLICY.plain_delay(4), Duration::from_secs(40));
    assert_eq!(POLICY.plain_delay(8), Duration::from_secs(600));
    assert_eq!(POLICY.plain_delay(u32::MAX), Duration::from_secs(600));
    // attempt 0 is treated as the first
    assert_eq!(POLICY.plain_delay(0), Duration::from_secs(5));
    for attempts in 1..40 {
        let plain = POLICY.plain_delay(attempts);
        let d = POLICY.delay(attempts);
        assert!(
            d >= plain.mul_f64(0.8 - 1e-9) && d <= plain.mul_f64(1.2 + 1e-9),
            "{attempts}: {d:?}"
        );
    }
}

#[test]
fn due_is_open_and_its_time_has_come() {
    let q: Queue<Note> = Queue::new(store(), POLICY);
    let now = Timestamp::now();
    let mut a = note(&q, "a");
    a.next_attempt = now;
    let mut b = note(&q, "b");
    b.next_attempt = now.saturating_add(Duration::from_secs(30));
    let mut c = note(&q, "c");
    c.next_attempt = now.saturating_add(Duration::from_secs(10));
    let mut d = note(&q, "d");
    d.state = State::Sent;
    let mut w = note(&q, "w");
    w.state = State::Waiting;
    w.next_attempt = now;
    q.put_all(&[a, b, c, d, w]).unwrap();
    let due = q.due(now).unwrap();
    let ids: Vec<_> = due.now.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "w"]);
    assert_eq!(due.next, Some(now.saturating_add(Duration::from_secs(10))));
}

#[test]
fn retry_later_backs_off_then_gives_up_after_the_first_failure() {
    let q: Queue<Note> = Queue::new(store(), POLICY);
    let mut e = note(&q, "a");
    let t0 = Timestamp(1_000_000);
    e.attempts = 1;
    assert!(!e.retry_later("down", t0, &POLICY));
    assert_eq!(e.first_failure, Some(t0));
    let wait = e.next_attempt.0 - t0.0;
    assert!((4000..=6000).contains(&wait), "{wait}");
    e.attempts = 2;
    let later = t0.saturating_add(Duration::from_secs(3599));
    assert!(!e.retry_later("still down", later, &POLICY));
    assert_eq!(e.state, State::Pending);
    let end = t0.saturating_add(Duration::from_secs(3600));
    assert!(e.retry_later("gone", end, &POLICY));
    assert_eq!(e.state, State::Failed);
    assert_eq!(e.last_error, "gone");
}

#[test]
fn settle_skips_an_entry_queued_again_or_closed() {
    let q: Queue<Note> = Queue::new(store(), POLICY);
    let e = note(&q, "a");
    q.put(&e).unwrap();
    let mut again = e.clone();
    again.seq = q.next_seq().unwrap();
    q.put(&again).unwrap();
    assert!(!q.settle("a", e.seq, |e| e.state = State::Sent).unwrap());
    assert!(q.settle("a", again.seq, |e| e.state = State::Sent).unwrap());
    assert_eq!(q.get("a").unwrap().unwrap().state, State::Sent);
    // closed: nothing changes any more
    assert!(
        !q.settle("a", again.seq, |e| e.state = State::Failed)
            .unwrap()
    );
    assert!(!q.settle("missing", 1, |e| e.state = State::Failed).unwrap());
}

#[test]
fn one_listing_of_every_kind_newest_first_bounded() {
    let store = store();
    let notes: Queue<Note> = Queue::new(store.clone(), POLICY);
    let others: Queue<Other> = Queue::new(store.clone(), POLICY);
    let mut old = note(&notes, "old");
    old.created_at = Timestamp(1000);
    old.state = State::Failed;
    old.attempts = 3;
    old.last_error = "refused".into();
    notes.put(&old).unwrap();
    let mut new = Entry::new(
        "n1".into(),
        "pacs".into(),
        State::Pending,
        1,
        Other { n: 7 },
    );
    new.created_at = Timestamp(2000);
    others.put(&new).unwrap();
    // a record no codec reads is skipped, not fatal
    store.put("note/broken", b"{".to_vec()).unwrap();
    let rows = list(store.as_ref(), MAX_LISTED).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].kind.as_str(), rows[0].id.as_str()),
        ("other", "n1")
    );
    assert_eq!(rows[0].target, "pacs");
    assert!(rows[0].next_attempt.is_some());
    assert_eq!(rows[1].kind, "note");
    assert_eq!(rows[1].state, State::Failed);
    assert_eq!(rows[1].attempts, 3);
    assert_eq!(rows[1].last_error, "refused");
    assert_eq!(rows[1].next_attempt, None, "a closed entry is not due");
    assert_eq!(list(store.as_ref(), 1).unwrap().len(), 1);
    // kinds do not see each other's entries
    assert_eq!(notes.entries().unwrap().len(), 1);
    assert_eq!(others.entries().unwrap()[0].job, Other { n: 7 });
}

#[test]
fn the_codec_keeps_the_payload_beside_the_envelope() {
    let q: Queue<Note> = Queue::new(store(), POLICY);
    let e = note(&q, "a");
    let json: serde_json::Value = serde_json::to_value(&e).unwrap();
    assert_eq!(json["text"], "a");
    assert_eq!(json["state"], "pending");
    assert_eq!(json["target"], "peer");
    q.put(&e).unwrap();
    assert_eq!(q.get("a").unwrap().unwrap(), e);
}
