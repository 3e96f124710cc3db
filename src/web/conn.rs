//! What one HTTPS connection may hold: a place among all connections and
//! among its address's, and how long it may sit with no request in flight.
//! Silent clients (no TLS handshake, no first request, an HTTP/2
//! connection that never opens a stream, an HTTP/1.1 keep-alive left
//! open) must not keep places from everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::authz::client_key;

use crate::config::MAX_HTTP_CONNECTIONS as MAX_CONNECTIONS;

/// Limits from `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    pub max_per_address: usize,
}

impl From<&crate::config::HttpConfig> for Limits {
    fn from(http: &crate::config::HttpConfig) -> Limits {
        Limits {
            idle_timeout: http.idle_timeout,
            max_per_address: http.max_connections_per_address,
        }
    }
}

/// The places: all connections, and each address's.
pub struct Places {
    all: Arc<Semaphore>,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    max_per_address: usize,
    refused: AtomicU64,
    warned_at: Mutex<Option<Instant>>,
}

/// One connection's places, given back when it is dropped.
pub struct Place {
    places: Arc<Places>,
    key: IpAddr,
    _all: OwnedSemaphorePermit,
}

impl Places {
    pub fn new(max_per_address: usize) -> Arc<Places> {
        Arc::new(Places {
            all: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            by_address: Mutex::new(HashMap::new()),
            max_per_address,
            refused: AtomicU64::new(0),
            warned_at: Mutex::new(None),
        })
    }

    /// A place for a connection from `peer`, or `None` (the caller closes
    /// it at once). Refusals are logged at most every ten seconds, with
    /// their count, so that a flood of connections cannot flood the log.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Place> {
        let key = client_key(peer);
        let place = self.all.clone().try_acquire_owned().ok().and_then(|all| {
            let mut by_address = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
            let open = by_address.entry(key).or_insert(0);
            (*open < self.max_per_address).then(|| {
                *open += 1;
                Place {
                    places: self.clone(),
                    key,
                    _all: all,
                }
            })
        });
        if place.is_none() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            self.warn_refused(peer);
        }
        place
    }

    fn warn_refused(&self, peer: IpAddr) {
        let mut warned_at = self.warned_at.lock().unwrap_or_else(|p| p.into_inner());
        if warned_at.is_some_and(|at| at.elapsed() < Duration::from_secs(10)) {
            return;
        }
        *warned_at = Some(Instant::now());
        let refused = self.refused.swap(0, Ordering::Relaxed);
        tracing::warn!(
            %peer,
            refused,
            "HTTPS connections refused: {MAX_CONNECTIONS} open in all or {} from one address",
            self.max_per_address
        );
    }

    /// Waits until every connection has ended (for the drain at shutdown).
    pub async fn all_closed(&self) {
        let _ = self.all.acquire_many(MAX_CONNECTIONS as u32).await;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut by_address = self
            .places
            .by_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(open) = by_address.get_mut(&self.key) {
            *open -= 1;
            if *open == 0 {
                by_address.remove(&self.key);
            }
        }
    }
}

/// Whether a connection has requests in flight, and since when it has had
/// none. A request counts from the moment it is handed to us until its
/// answer's body is sent or abandoned, so a long download is never idle.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    quiet_since: Mutex<Instant>,
}

/// One request in flight; ends when dropped.
pub struct Busy(Arc<Activity>);

impl Activity {
    /// Quiet since now: the connection was just accepted.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            quiet_since: Mutex::new(Instant::now()),
        })
    }

    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Since when nothing has been in flight; `None` while something is.
    pub fn quiet_since(&self) -> Option<Instant> {
        let since = *self.quiet_since.lock().unwrap_or_else(|p| p.into_inner());
        (self.in_flight.load(Ordering::SeqCst) == 0).then_some(since)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut since = self.0.quiet_since.lock().unwrap_or_else(|p| p.into_inner());
        *since = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_holds_at_most_its_share() {
        let places = Places::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = places.admit(a).unwrap();
        let _second = places.admit(mapped).unwrap();
        assert!(places.admit(a).is_none(), "the same client, IPv4-mapped");
        let _other = places.admit(b).unwrap();
        drop(first);
        assert!(places.admit(a).is_some());
    }

    #[test]
    fn busy_until_the_last_request_ends() {
        let activity = Activity::new();
        assert!(activity.quiet_since().is_some());
        let one = activity.begin();
        let two = activity.begin();
        drop(one);
        assert!(activity.quiet_since().is_none());
        let before = Instant::now();
        drop(two);
        assert!(activity.quiet_since().unwrap() >= before);
    }
}
