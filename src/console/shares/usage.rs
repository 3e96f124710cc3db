//! How much each grant was used: counted from the journal's access
//! events, since nothing else keeps a per-grant counter (authz does not
//! persist accesses, and should not: one sled write per frame served).
//!
//! The first page that asks reads the whole journal; after that only what
//! was appended since (from the segment holding the next record), so a
//! page costs a read of the current segment's tail, not of years of
//! access events. Access events the journal writer could not keep up with
//! were only counted (`dropped`), so a count is a lower bound then.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;

use crate::base::GrantId;
use crate::journal::{self, AccessKind, Event, Outcome, Who};
use crate::store::Timestamp;

/// Accesses kept per grant for its detail page.
const RECENT: usize = 20;

/// One access to a grant, as its detail page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub at: Timestamp,
    pub what: AccessKind,
    pub who: Who,
    pub from: String,
    pub allowed: bool,
    pub bytes: u64,
}

/// What a grant was used for, from the journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Requests allowed.
    pub count: u64,
    /// Requests refused (expired, another holder, out of scope …).
    pub denied: u64,
    /// The last allowed request.
    pub last: Option<Timestamp>,
    /// Bytes served.
    pub bytes: u64,
    /// The latest accesses, newest last.
    pub recent: VecDeque<Seen>,
}

#[derive(Default)]
struct Tally {
    /// The next record to read.
    next_seq: u64,
    by_grant: HashMap<GrantId, Usage>,
}

impl Tally {
    fn add(&mut self, at: Timestamp, event: &Event) {
        let Event::Access(access) = event else {
            return;
        };
        let Some(grant) = &access.grant else {
            return;
        };
        let usage = self.by_grant.entry(grant.clone()).or_default();
        let allowed = access.outcome == Outcome::Allowed;
        if allowed {
            usage.count += 1;
            usage.bytes += access.bytes;
            usage.last = Some(usage.last.map_or(at, |l| l.max(at)));
        } else {
            usage.denied += 1;
        }
        usage.recent.push_back(Seen {
            at,
            what: access.what,
            who: access.who.clone(),
            from: access.from.clone(),
            allowed,
            bytes: access.bytes,
        });
        if usage.recent.len() > RECENT {
            usage.recent.pop_front();
        }
    }
}

/// The tally, kept between pages.
#[derive(Default)]
pub struct UsageCache {
    tally: Mutex<Tally>,
}

impl UsageCache {
    /// Reads what the journal in `dir` gained since the last call, then
    /// gives the usage of each of `grants` (absent: never used). Blocking.
    pub fn of(&self, dir: &Path, grants: &[GrantId]) -> HashMap<GrantId, Usage> {
        let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        if dir.exists() {
            let from = tally.next_seq.max(1);
            match journal::read(dir, from) {
                Ok(records) => {
                    for item in records {
                        match item {
                            Ok((record, _)) => {
                                tally.add(record.at, &record.event);
                                tally.next_seq = record.seq + 1;
                            }
                            // a gap or a broken record: the audit page says
                            // so; the counts go on with what can be read
                            Err(e) => tracing::warn!("counting accesses: {e}"),
                        }
                    }
                }
                Err(e) => tracing::warn!("counting accesses: {e}"),
            }
        }
        grants
            .iter()
            .filter_map(|g| tally.by_grant.get(g).map(|u| (g.clone(), u.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Access;

    fn access(grant: &str, outcome: Outcome, bytes: u64) -> Event {
        Event::Access(Access {
            grant: Some(GrantId(grant.into())),
            study: None,
            what: AccessKind::Wado,
            who: Who::Anonymous,
            from: "192.0.2.7".into(),
            outcome,
            instances: 1,
            bytes,
        })
    }

    #[test]
    fn counts_allowed_and_denied_per_grant_with_the_last_and_the_bytes() {
        let mut tally = Tally::default();
        tally.add(Timestamp(10), &access("a", Outcome::Allowed, 100));
        tally.add(Timestamp(20), &access("a", Outcome::Allowed, 50));
        tally.add(
            Timestamp(30),
            &access("a", Outcome::Denied(crate::journal::DenyReason::Expired), 0),
        );
        tally.add(Timestamp(40), &access("b", Outcome::Allowed, 1));
        tally.add(Timestamp(50), &Event::Dropped { count: 3 });
        let a = &tally.by_grant[&GrantId("a".into())];
        assert_eq!((a.count, a.denied, a.bytes), (2, 1, 150));
        assert_eq!(a.last, Some(Timestamp(20)));
        assert_eq!(a.recent.len(), 3);
        for n in 0..30 {
            tally.add(Timestamp(100 + n), &access("b", Outcome::Allowed, 1));
        }
        let b = &tally.by_grant[&GrantId("b".into())];
        assert_eq!((b.count, b.recent.len()), (31, RECENT));
        assert_eq!(b.recent.back().map(|s| s.at), Some(Timestamp(129)));
    }
}
