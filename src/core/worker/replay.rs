//! The nonces of signed requests seen lately, so a captured request cannot be sent again
//! while its timestamp is still inside the window. Pure: `now` is passed in.
//!
//! Two generations of nonces, each spanning twice the skew window: a request accepted at
//! `now` has `timestamp ≥ now − skew`, so once `now` is two windows past, its timestamp is
//! refused as stale and its nonce can go. Checking both generations keeps every nonce at
//! least that long. Nonces are kept as the 128-bit numbers their 32 hex digits spell.

use std::collections::HashSet;

/// Nonces remembered at most (both generations); past this, signed requests are refused
/// rather than letting a flood grow memory without end (about 40 MB at the bound).
pub const MAX_REMEMBERED: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("this request's nonce was used before: a replayed request")]
    Replayed,
    #[error("too many signed requests in the last minutes to remember their nonces")]
    Full,
    #[error("the nonce is not 32 hex characters")]
    BadNonce,
}

#[derive(Debug)]
pub struct ReplayCache {
    /// How long one generation spans: twice the skew window.
    span_ms: u64,
    capacity: usize,
    started_ms: Option<u64>,
    current: HashSet<u128>,
    previous: HashSet<u128>,
}

impl ReplayCache {
    pub fn new(skew_ms: u64, capacity: usize) -> Self {
        ReplayCache {
            span_ms: skew_ms.saturating_mul(2).max(1),
            capacity,
            started_ms: None,
            current: HashSet::new(),
            previous: HashSet::new(),
        }
    }

    /// Remembers `nonce`, or says it was seen (or that there is no room).
    pub fn check_and_insert(&mut self, nonce: &str, now_ms: u64) -> Result<(), ReplayError> {
        if nonce.len() != 32 {
            return Err(ReplayError::BadNonce);
        }
        let key = u128::from_str_radix(nonce, 16).map_err(|_| ReplayError::BadNonce)?;
        self.rotate(now_ms);
        if self.current.contains(&key) || self.previous.contains(&key) {
            return Err(ReplayError::Replayed);
        }
        if self.current.len() + self.previous.len() >= self.capacity {
            return Err(ReplayError::Full);
        }
        self.current.insert(key);
        Ok(())
    }

    fn rotate(&mut self, now_ms: u64) {
        let started = *self.started_ms.get_or_insert(now_ms);
        let elapsed = now_ms.saturating_sub(started);
        if elapsed >= self.span_ms.saturating_mul(2) {
            // Quiet for two spans: everything held is past its window.
            self.previous.clear();
            self.current.clear();
            self.started_ms = Some(now_ms);
        } else if elapsed >= self.span_ms {
            self.previous = std::mem::take(&mut self.current);
            self.started_ms = Some(started + self.span_ms);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(n: u32) -> String {
        format!("{n:032x}")
    }

    /// (time, nonce, expected) steps through one cache with a 60 s skew (120 s spans).
    #[test]
    fn remembers_for_at_least_two_windows() {
        let mut cache = ReplayCache::new(60_000, 100);
        let t = 1_000_000;
        let steps: &[(u64, u32, Result<(), ReplayError>)] = &[
            (t, 1, Ok(())),
            (t, 1, Err(ReplayError::Replayed)),
            (t + 119_999, 1, Err(ReplayError::Replayed)),
            (t + 120_000, 2, Ok(())), // rotation: 1 is in the previous generation
            (t + 120_001, 1, Err(ReplayError::Replayed)),
            (t + 239_999, 1, Err(ReplayError::Replayed)),
            (t + 240_000, 3, Ok(())), // rotation: 1 is gone, 2 is previous
            (t + 240_000, 2, Err(ReplayError::Replayed)),
            (t + 240_000, 1, Ok(())), // 1's timestamp would be long stale by now
            (t + 900_000, 3, Ok(())), // quiet for two spans: all forgotten
        ];
        for (i, (now, n, want)) in steps.iter().enumerate() {
            assert_eq!(cache.check_and_insert(&nonce(*n), *now), *want, "step {i}");
        }
    }

    #[test]
    fn bounded_and_picky_about_nonces() {
        let mut cache = ReplayCache::new(60_000, 3);
        for n in 0..3 {
            cache.check_and_insert(&nonce(n), 5).unwrap();
        }
        assert_eq!(cache.check_and_insert(&nonce(9), 5), Err(ReplayError::Full));
        assert_eq!(cache.len(), 3);
        for bad in ["", "abc", &"g".repeat(32), &"a".repeat(33)] {
            assert_eq!(
                cache.check_and_insert(bad, 5),
                Err(ReplayError::BadNonce),
                "{bad}"
            );
        }
    }
}
