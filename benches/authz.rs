//! Access decisions and the journal, measured side by side with what they
//! cannot avoid: a decision against one SHA-256 of the token (the least a
//! hashed lookup costs), the journal's group commit against writing each
//! event with its own fdatasync. Run with `make bench` or
//! `cargo bench --bench authz`.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushgate::authz::{Authz, Caller, Credentials, IssueRequest, Link, Shape};
use pushgate::config::GrantsConfig;
use pushgate::journal::{Access, AccessKind, Event, Journal, Outcome, Who};
use pushgate::store::Store;
use sha2::Digest;

const GRANTS: usize = 10_000;
const DECISIONS: usize = 200_000;
const EVENTS: usize = 200_000;
const NAIVE_EVENTS: usize = 2_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn time_each(n: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        f(i);
        times.push(start.elapsed());
    }
    times.sort();
    times
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn access(n: usize) -> Event {
    Event::Access(Access {
        grant: None,
        study: None,
        what: AccessKind::Wado,
        who: Who::Anonymous,
        from: "192.0.2.1".into(),
        outcome: Outcome::Allowed,
        instances: n as u32,
        bytes: 524_288,
    })
}

fn main() {
    let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .expect("bench dir");
    let store = Store::temporary(dir.path()).expect("store");
    let journal = Journal::open(&dir.path().join("journal")).expect("journal");
    let config = GrantsConfig {
        default_ttl: Duration::from_secs(14 * 86400),
        max_ttl: Duration::from_secs(90 * 86400),
    };
    let authz = Arc::new(
        Authz::open(
            store.grants.clone(),
            journal.clone(),
            store.index.clone(),
            &dir.path().join("authz.key"),
            config,
            "https://bench".into(),
        )
        .expect("authz"),
    );
    let from: IpAddr = "192.0.2.1".parse().unwrap();
    let nobody = Credentials::default();

    // 10 000 grants, each bound to a holder token
    let started = Instant::now();
    let mut tokens = Vec::with_capacity(GRANTS);
    for i in 0..GRANTS {
        let issued = authz
            .issue(
                IssueRequest {
                    study_uid: Some(format!("1.2.3.{i}")),
                    accession: None,
                    legal_basis: Some(pushgate::authz::LegalBasis::Referral),
                    shape: Shape::default(),
                    ..IssueRequest::default()
                },
                &pushgate::journal::ActorRecord::admin_token(),
                "127.0.0.1",
            )
            .expect("issue");
        let token = issued.url.rsplit('/').next().unwrap().to_string();
        let bound = authz
            .bind_link(
                &token,
                Caller {
                    credentials: &nobody,
                    from,
                },
            )
            .expect("bind");
        tokens.push((
            token,
            Credentials {
                certificate: None,
                holder_token: bound.holder_token,
            },
        ));
    }
    let issue_rate = 2.0 * GRANTS as f64 / started.elapsed().as_secs_f64();

    // The three paths interleaved, so that none gets a quieter machine.
    let stranger = Credentials {
        certificate: None,
        holder_token: Some("x".repeat(43)),
    };
    let unknown: Vec<String> = (0..GRANTS).map(|i| format!("{i:032}x{i:010}")).collect();
    let (mut allowed, mut other_holder, mut unknown_token) = (Vec::new(), Vec::new(), Vec::new());
    let (mut page_held, mut page_unknown) = (Vec::new(), Vec::new());
    for i in 0..DECISIONS {
        let (token, holder) = &tokens[i % GRANTS];
        let start = Instant::now();
        assert!(
            authz
                .check(
                    token,
                    Caller {
                        credentials: holder,
                        from
                    },
                    AccessKind::Wado
                )
                .is_ok()
        );
        allowed.push(start.elapsed());
        let start = Instant::now();
        assert!(
            authz
                .check(
                    token,
                    Caller {
                        credentials: &stranger,
                        from
                    },
                    AccessKind::Wado
                )
                .is_err()
        );
        other_holder.push(start.elapsed());
        let start = Instant::now();
        assert!(
            authz
                .check(
                    &unknown[i % GRANTS],
                    Caller {
                        credentials: &stranger,
                        from
                    },
                    AccessKind::Wado
                )
                .is_err()
        );
        unknown_token.push(start.elapsed());
        // the share page: the same lookup, returning the grant for display
        let start = Instant::now();
        let held = authz.open_link(
            token,
            Caller {
                credentials: holder,
                from,
            },
        );
        page_held.push(start.elapsed());
        assert!(matches!(held, Ok(Link::Held(_))));
        let start = Instant::now();
        let unknown_page = authz.open_link(
            &unknown[i % GRANTS],
            Caller {
                credentials: &stranger,
                from,
            },
        );
        page_unknown.push(start.elapsed());
        assert!(unknown_page.is_err());
    }
    for times in [
        &mut allowed,
        &mut other_holder,
        &mut unknown_token,
        &mut page_held,
        &mut page_unknown,
    ] {
        times.sort();
    }
    let reference = time_each(DECISIONS, |i| {
        std::hint::black_box(sha2::Sha256::digest(tokens[i % GRANTS].0.as_bytes()));
    });

    // the journal: access events as retrieval writes them (never waiting),
    // then one durable event to know they are all on disk
    let started = Instant::now();
    for n in 0..EVENTS {
        journal.append(access(n));
    }
    journal.append_durable(access(EVENTS)).expect("durable");
    let journal_secs = started.elapsed().as_secs_f64();
    // count what was kept: a full queue drops access events (and journals
    // the count), so the rate is of events on disk, not of calls made
    let (mut kept, mut dropped) = (0u64, 0u64);
    for record in pushgate::journal::read(&dir.path().join("journal"), 1).expect("read") {
        match record.expect("record").0.event {
            Event::Access(_) => kept += 1,
            Event::Dropped { count } => dropped += count,
            _ => {}
        }
    }
    let journal_rate = kept as f64 / journal_secs;
    // the reference: one write and one fdatasync per event, same disk
    let naive_path = dir.path().join("naive.jsonl");
    let mut naive = std::fs::File::create(&naive_path).expect("naive file");
    let started = Instant::now();
    for n in 0..NAIVE_EVENTS {
        let line = serde_json::to_string(&access(n)).unwrap();
        naive.write_all(line.as_bytes()).unwrap();
        naive.write_all(b"\n").unwrap();
        naive.sync_data().unwrap();
    }
    let naive_rate = NAIVE_EVENTS as f64 / started.elapsed().as_secs_f64();
    journal.close();

    println!(
        "authz benchmark: {GRANTS} bound grants, {DECISIONS} decisions per path, {EVENTS} journal events"
    );
    println!("decision (token -> grant -> holder)   median    p99     vs SHA-256 of the token");
    for (name, times) in [
        ("holder, allowed", &allowed),
        ("other holder, denied", &other_holder),
        ("unknown token, denied", &unknown_token),
        ("share page, holder", &page_held),
        ("share page, unknown token", &page_unknown),
        ("reference: SHA-256", &reference),
    ] {
        println!(
            "  {name:<32} {:>6.2} µs {:>6.2} µs   {:>5.1}x",
            us(percentile(times, 0.5)),
            us(percentile(times, 0.99)),
            us(percentile(times, 0.5)) / us(percentile(&reference, 0.5)).max(1e-9)
        );
    }
    println!(
        "  denials vs allowed (median): other holder {:.2}x, unknown token {:.2}x",
        us(percentile(&other_holder, 0.5)) / us(percentile(&allowed, 0.5)),
        us(percentile(&unknown_token, 0.5)) / us(percentile(&allowed, 0.5)),
    );
    println!(
        "journal, access events with group commit: {journal_rate:>9.0} events/s kept (target >= 10000); {dropped} of {EVENTS} dropped by a full queue"
    );
    println!(
        "reference, fdatasync per event:           {naive_rate:>9.0} events/s   ratio {:.0}x",
        journal_rate / naive_rate
    );
    println!("grant changes (issue + bind), each durable: {issue_rate:.0}/s");
    let p99 = us(percentile(&allowed, 0.99));
    println!(
        "target: a decision under 50 µs: {}",
        if p99 < 50.0 { "met (p99)" } else { "NOT met" }
    );
}
