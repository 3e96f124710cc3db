//! Who gets in before an association exists: each peer address holds at
//! most its share of the listener's connections, and a connection only
//! takes an association slot once its whole A-ASSOCIATE-RQ has arrived, so
//! connections that stay silent cannot shut intake for a modality.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// The address a peer counts as: an IPv4 client of a dual-stack listener
/// arrives as `::ffff:a.b.c.d` and is that IPv4 address. IPv6 addresses
/// count whole, not by /64: modalities of one department often share a
/// /64, and this is a share of concurrent connections, not a guess budget.
pub(super) fn peer_address(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Connections per peer address, pending and associated together.
pub(super) struct Shares {
    per_address: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address until dropped.
pub(super) struct Share {
    shares: Arc<Shares>,
    address: IpAddr,
}

impl Shares {
    pub(super) fn new(per_address: usize) -> Arc<Shares> {
        Arc::new(Shares {
            per_address,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A share for one more connection from `address`, or None if it holds
    /// all of its own. The map has an entry only per address with an open
    /// connection, so it is bounded by the connections themselves.
    pub(super) fn take(self: &Arc<Self>, address: IpAddr) -> Option<Share> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(address).or_insert(0);
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(Share {
            shares: self.clone(),
            address,
        })
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.held.lock().map(|h| h.len()).unwrap_or(0)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.shares.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.address);
            }
        }
    }
}

/// A-ASSOCIATE-RQ type (PS3.8 9.3.2).
const ASSOCIATE_RQ: u8 = 0x01;
/// A request is waited for in the socket up to this size; a larger one (far
/// beyond the ~15 KiB of DCMTK proposing every storage class) is read by
/// the association itself, within the same deadline.
const MAX_BUFFERED_REQUEST: usize = 64 * 1024;
/// How often a partly arrived request is looked at again: the first look
/// normally sees it whole; this bounds the work a dribbling peer causes.
const RECHECK: Duration = Duration::from_millis(20);

/// Waits, without reading it, until the peer's first PDU is in the socket
/// whole: an A-ASSOCIATE-RQ, ready for the association to read at once.
/// Anything that is not a request returns at once (the association then
/// refuses it). An error means the peer closed the connection first.
pub(super) async fn request_arrived(socket: &TcpStream) -> std::io::Result<()> {
    let mut header = [0u8; 6];
    let mut wanted = header.len();
    let mut peeked = Vec::new();
    let mut pause = RECHECK;
    loop {
        // `peek` waits until there is something to read at all, so a silent
        // peer costs nothing until its deadline.
        let n = if peeked.is_empty() {
            socket.peek(&mut header).await?
        } else {
            socket.peek(&mut peeked).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if peeked.is_empty() && n == header.len() {
            if header[0] != ASSOCIATE_RQ {
                return Ok(());
            }
            let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
            wanted = (header.len() + length as usize).min(MAX_BUFFERED_REQUEST);
            peeked = vec![0u8; wanted];
            continue;
        }
        if n >= wanted {
            return Ok(());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Refusals are logged at most this often a minute; the rest are counted
/// (and told with the next line), so refused peers cannot flood the log.
const REFUSALS_LOGGED_PER_MINUTE: u32 = 30;

/// A fixed-window budget of log lines.
pub(super) struct LogBudget {
    window: Mutex<(Instant, u32, u64)>,
}

impl LogBudget {
    pub(super) fn new() -> LogBudget {
        LogBudget {
            window: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Some(number of lines left out since the last one) if this line may be
    /// logged; None if it is only counted.
    pub(super) fn take(&self) -> Option<u64> {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> Option<u64> {
        let mut guard = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let (started, logged, unlogged) = &mut *guard;
        if now.saturating_duration_since(*started) >= Duration::from_secs(60) {
            *started = now;
            *logged = 0;
        }
        if *logged >= REFUSALS_LOGGED_PER_MINUTE {
            *unlogged += 1;
            return None;
        }
        *logged += 1;
        Some(std::mem::take(unlogged))
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
