//! A token bucket per client (an address at the tracker, a requester at a worker), so one
//! noisy client cannot starve the others or fill the registry with fresh keys. Pure: `now` is passed in.
//!
//! Tokens are counted in sixty-thousandths, so a rate in requests per minute refills
//! exactly `per_minute` units per millisecond and no float rounding creeps in.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};

/// One request's cost, in units.
const COST: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per minute per client; 0 turns limiting off.
    pub per_minute: u32,
    /// Requests a quiet client may make at once.
    pub burst: u32,
    /// Clients tracked at most; beyond it a new client waits for a slot.
    pub max_clients: usize,
}

/// Why a request must wait, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    #[error("too many requests from this address; retry in {retry_after_ms} ms")]
    Client { retry_after_ms: u64 },
    #[error("too many clients at once; retry in {retry_after_ms} ms")]
    Crowded { retry_after_ms: u64 },
}

impl Limited {
    /// Whole seconds for a `Retry-After` header, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let (Limited::Client { retry_after_ms } | Limited::Crowded { retry_after_ms }) = *self;
        retry_after_ms.div_ceil(1000).max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    at_ms: u64,
}

/// Buckets keyed by `K`: client addresses at the tracker, requester keys at a worker.
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    limit: RateLimit,
    buckets: HashMap<K, Bucket>,
    /// When the table was last found full of busy clients, and no slot can free before.
    crowded_until_ms: u64,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: HashMap::new(),
            crowded_until_ms: 0,
        }
    }

    fn capacity(&self) -> u64 {
        u64::from(self.limit.burst.max(1)) * COST
    }

    fn rate(&self) -> u64 {
        u64::from(self.limit.per_minute)
    }

    /// The bucket's units at `now` (a clock that steps back refills nothing).
    fn refilled(&self, b: &Bucket, now_ms: u64) -> u64 {
        let gained = now_ms.saturating_sub(b.at_ms).saturating_mul(self.rate());
        b.units.saturating_add(gained).min(self.capacity())
    }

    /// Milliseconds until a bucket holding `units` has `want`.
    fn wait_ms(&self, units: u64, want: u64) -> u64 {
        want.saturating_sub(units).div_ceil(self.rate())
    }

    /// Takes one token for `key`, or says how long to wait.
    pub fn check_key(&mut self, key: K, now_ms: u64) -> Result<(), Limited> {
        if self.limit.per_minute == 0 {
            return Ok(());
        }
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.limit.max_clients {
            self.make_room(now_ms)?;
        }
        let capacity = self.capacity();
        let units = match self.buckets.get(&key) {
            Some(b) => self.refilled(b, now_ms),
            None => capacity,
        };
        if units < COST {
            let retry_after_ms = self.wait_ms(units, COST);
            self.buckets.insert(
                key,
                Bucket {
                    units,
                    at_ms: now_ms,
                },
            );
            return Err(Limited::Client { retry_after_ms });
        }
        let bucket = Bucket {
            units: units - COST,
            at_ms: now_ms,
        };
        self.buckets.insert(key, bucket);
        Ok(())
    }

    /// Forgets clients whose bucket has refilled (they are indistinguishable from new
    /// ones, so nothing is lost). If every tracked client is still busy, the newcomer
    /// waits: letting the table grow is how an address-rotating flood eats memory.
    fn make_room(&mut self, now_ms: u64) -> Result<(), Limited> {
        if now_ms < self.crowded_until_ms {
            return Err(Limited::Crowded {
                retry_after_ms: self.crowded_until_ms - now_ms,
            });
        }
        let capacity = self.capacity();
        let mut soonest = u64::MAX;
        let before = self.buckets.len();
        let limiter = &*self;
        let keep: Vec<(K, Bucket)> = limiter
            .buckets
            .iter()
            .filter_map(|(ip, b)| {
                let units = limiter.refilled(b, now_ms);
                (units < capacity).then(|| {
                    soonest = soonest.min(limiter.wait_ms(units, capacity));
                    (*ip, *b)
                })
            })
            .collect();
        if keep.len() < before {
            self.buckets = keep.into_iter().collect();
        }
        if self.buckets.len() >= self.limit.max_clients {
            let retry_after_ms = soonest.max(1);
            self.crowded_until_ms = now_ms.saturating_add(retry_after_ms);
            return Err(Limited::Crowded { retry_after_ms });
        }
        Ok(())
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

impl RateLimiter<IpAddr> {
    /// Takes one token for the host behind `ip`, or says how long to wait.
    pub fn check(&mut self, ip: IpAddr, now_ms: u64) -> Result<(), Limited> {
        self.check_key(client_key(ip), now_ms)
    }
}

/// One host, one bucket: IPv4 by address, IPv6 by /64 (what one host is usually given,
/// so walking through its own /64 earns nothing).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn limiter(per_minute: u32, burst: u32, max_clients: usize) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_minute,
            burst,
            max_clients,
        })
    }

    #[test]
    fn burst_then_refill_at_the_rate() {
        // 60/min = one token per second, burst 3.
        let mut l = limiter(60, 3, 10);
        let t = 1_000_000;
        let steps: &[(u64, Result<(), Limited>)] = &[
            (t, Ok(())),
            (t, Ok(())),
            (t, Ok(())),
            (
                t,
                Err(Limited::Client {
                    retry_after_ms: 1000,
                }),
            ),
            (
                t + 400,
                Err(Limited::Client {
                    retry_after_ms: 600,
                }),
            ),
            (t + 1000, Ok(())),
            (
                t + 1000,
                Err(Limited::Client {
                    retry_after_ms: 1000,
                }),
            ),
            // A long quiet spell refills to the burst, never beyond.
            (t + 60_000, Ok(())),
            (t + 60_000, Ok(())),
            (t + 60_000, Ok(())),
            (
                t + 60_000,
                Err(Limited::Client {
                    retry_after_ms: 1000,
                }),
            ),
        ];
        for (i, (now, want)) in steps.iter().enumerate() {
            assert_eq!(l.check(ip(1), *now), *want, "step {i} at {now}");
        }
        // Another address has its own bucket.
        assert_eq!(l.check(ip(2), t + 60_000), Ok(()));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(Limited::Client { retry_after_ms: 1 }.retry_after_secs(), 1);
        assert_eq!(
            Limited::Client {
                retry_after_ms: 1000
            }
            .retry_after_secs(),
            1
        );
        assert_eq!(
            Limited::Crowded {
                retry_after_ms: 1001
            }
            .retry_after_secs(),
            2
        );
        assert_eq!(Limited::Client { retry_after_ms: 0 }.retry_after_secs(), 1);
    }

    #[test]
    fn slow_rates_and_a_clock_that_steps_back() {
        // 1/min: the second request waits a full minute; stepping back refills nothing.
        let mut l = limiter(1, 1, 10);
        assert_eq!(l.check(ip(1), 500_000), Ok(()));
        assert_eq!(
            l.check(ip(1), 400_000),
            Err(Limited::Client {
                retry_after_ms: 60_000
            })
        );
        assert_eq!(l.check(ip(1), 460_000), Ok(()));
    }

    #[test]
    fn zero_rate_turns_limiting_off() {
        let mut l = limiter(0, 0, 0);
        for _ in 0..1000 {
            assert_eq!(l.check(ip(1), 0), Ok(()));
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn the_client_table_is_bounded() {
        let mut l = limiter(60, 2, 2);
        let t = 1_000_000;
        assert_eq!(l.check(ip(1), t), Ok(()));
        assert_eq!(l.check(ip(2), t + 500), Ok(()));
        // Both still refilling: a third address waits for the sooner one to be full.
        assert_eq!(
            l.check(ip(3), t + 500),
            Err(Limited::Crowded {
                retry_after_ms: 500
            })
        );
        assert_eq!(l.tracked(), 2);
        // Before then it is refused without another sweep.
        assert!(matches!(
            l.check(ip(3), t + 999),
            Err(Limited::Crowded { .. })
        ));
        // Once ip(1) has refilled it is forgotten and ip(3) takes its slot.
        assert_eq!(l.check(ip(3), t + 1000), Ok(()));
        assert_eq!(l.tracked(), 2);
        // Known addresses are never crowded out.
        assert_eq!(l.check(ip(2), t + 1000), Ok(()));
    }

    #[test]
    fn ipv6_hosts_share_a_bucket_per_64() {
        let mut l = limiter(60, 1, 10);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(l.check(a, 0), Ok(()));
        assert!(l.check(b, 0).is_err(), "same /64, same bucket");
        assert_eq!(l.check(other, 0), Ok(()));
        assert_eq!(l.check(ip(1), 0), Ok(()));
        assert!(l.check(mapped, 0).is_err(), "v4-mapped is the v4 address");
    }
}
