//! Rate limits on redeeming codes: per client address and for everyone
//! together, as token buckets. A 50-bit code cannot be guessed at ten tries
//! a minute per address and a hundred a minute in all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Attempts allowed at once.
    pub burst: f64,
    /// Attempts regained per second.
    pub per_second: f64,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.updated = now;
    }

    /// Time until one attempt is available.
    fn wait(&self, rate: Rate) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / rate.per_second).max(0.0))
    }
}

pub struct Limiter {
    per_address: Rate,
    global: Rate,
    state: Mutex<(HashMap<IpAddr, Bucket>, Bucket)>,
}

impl Limiter {
    pub fn new(per_address: Rate, global: Rate) -> Limiter {
        let now = Instant::now();
        Limiter {
            per_address,
            global,
            state: Mutex::new((HashMap::new(), Bucket::full(global, now))),
        }
    }

    /// Ten a minute per address (five at once); a hundred a minute in all.
    pub fn for_codes() -> Limiter {
        Limiter::new(
            Rate {
                burst: 5.0,
                per_second: 10.0 / 60.0,
            },
            Rate {
                burst: 100.0,
                per_second: 100.0 / 60.0,
            },
        )
    }

    /// Failed admin authentications: ten at once per address, then one
    /// every six seconds. No limit in all: a 256-bit token cannot be
    /// guessed anyway, and a shared budget would let anyone lock the local
    /// `pushgate` command out along with the guesser.
    pub fn for_admin_failures() -> Limiter {
        Limiter::new(
            Rate {
                burst: 10.0,
                per_second: 10.0 / 60.0,
            },
            Rate {
                burst: f64::MAX,
                per_second: 0.0,
            },
        )
    }

    /// Failed console logins per address: ten at once, then one a minute.
    /// No limit in all, so that a guesser cannot lock the department out.
    pub fn for_login_failures() -> Limiter {
        Limiter::new(
            Rate {
                burst: 10.0,
                per_second: 1.0 / 60.0,
            },
            Rate {
                burst: f64::MAX,
                per_second: 0.0,
            },
        )
    }

    /// Takes one attempt for `from`, or says how long to wait.
    pub fn attempt(&self, from: IpAddr) -> Result<(), Duration> {
        self.take(from, true)
    }

    /// Whether `from` has an attempt left, without taking it: for limits
    /// that count only failures (the caller takes one with `attempt` when
    /// it fails).
    pub fn check(&self, from: IpAddr) -> Result<(), Duration> {
        self.take(from, false)
    }

    fn take(&self, from: IpAddr, take: bool) -> Result<(), Duration> {
        let from = client_key(from);
        let now = Instant::now();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (addresses, global) = &mut *guard;
        if addresses.len() > 100_000 {
            // Forget addresses whose bucket has refilled anyway.
            let rate = self.per_address;
            addresses.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
        }
        let mine = addresses
            .entry(from)
            .or_insert_with(|| Bucket::full(self.per_address, now));
        mine.refill(self.per_address, now);
        global.refill(self.global, now);
        if mine.tokens < 1.0 {
            return Err(mine.wait(self.per_address));
        }
        if global.tokens < 1.0 {
            return Err(global.wait(self.global));
        }
        if take {
            mine.tokens -= 1.0;
            global.tokens -= 1.0;
        }
        Ok(())
    }
}

/// Token buckets by name (a staff account), without a shared budget:
/// failures for one account cannot lock out another.
pub struct KeyedLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl KeyedLimiter {
    pub fn new(rate: Rate) -> KeyedLimiter {
        KeyedLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` has an attempt left; with `take`, uses it.
    pub fn take(&self, key: &str, take: bool) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            let rate = self.rate;
            buckets.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
        }
        let bucket = buckets
            .entry(key.to_string())
            .or_insert_with(|| Bucket::full(self.rate, now));
        bucket.refill(self.rate, now);
        if bucket.tokens < 1.0 {
            return Err(bucket.wait(self.rate));
        }
        if take {
            bucket.tokens -= 1.0;
        }
        Ok(())
    }
}

/// The address a client counts as, for every per-address limit: an IPv4
/// client of a dual-stack listener arrives as `::ffff:a.b.c.d` and counts
/// as that IPv4 address (else all of IPv4 would share one /64); other IPv6
/// addresses count by their /64, since one host has all of it to rotate in.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_then_global() {
        let limiter = Limiter::new(
            Rate {
                burst: 3.0,
                per_second: 0.001,
            },
            Rate {
                burst: 5.0,
                per_second: 0.001,
            },
        );
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        assert!((0..3).all(|_| limiter.attempt(a).is_ok()));
        let wait = limiter.attempt(a).unwrap_err();
        assert!(wait > Duration::from_secs(100));
        assert!(limiter.attempt(b).is_ok() && limiter.attempt(b).is_ok());
        // the global budget of five is spent
        assert!(limiter.attempt(c).is_err());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address() {
        let limiter = Limiter::new(
            Rate {
                burst: 2.0,
                per_second: 0.001,
            },
            Rate {
                burst: 100.0,
                per_second: 0.001,
            },
        );
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.attempt(a).is_ok() && limiter.attempt(b).is_ok());
        assert!(limiter.attempt(a).is_err() && limiter.attempt(b).is_err());
        assert!(limiter.attempt(c).is_ok());
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4_each() {
        let limiter = Limiter::new(
            Rate {
                burst: 1.0,
                per_second: 0.001,
            },
            Rate {
                burst: 100.0,
                per_second: 0.001,
            },
        );
        let a: IpAddr = "::ffff:127.0.0.40".parse().unwrap();
        let b: IpAddr = "::ffff:127.0.0.41".parse().unwrap();
        assert!(limiter.attempt(a).is_ok());
        assert!(limiter.attempt(a).is_err());
        // the same client over an IPv4-only listener shares its bucket
        assert!(limiter.attempt("127.0.0.40".parse().unwrap()).is_err());
        assert!(limiter.attempt(b).is_ok());
        assert_eq!(client_key(a), "127.0.0.40".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn checking_takes_nothing() {
        let limiter = Limiter::new(
            Rate {
                burst: 1.0,
                per_second: 0.001,
            },
            Rate {
                burst: 100.0,
                per_second: 0.001,
            },
        );
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.check(a).is_ok() && limiter.check(a).is_ok());
        assert!(limiter.attempt(a).is_ok());
        assert!(limiter.check(a).is_err());
    }

    #[test]
    fn buckets_refill() {
        let limiter = Limiter::new(
            Rate {
                burst: 1.0,
                per_second: 50.0,
            },
            Rate {
                burst: 10.0,
                per_second: 50.0,
            },
        );
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.attempt(a).is_ok());
        assert!(limiter.attempt(a).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.attempt(a).is_ok());
    }
}
