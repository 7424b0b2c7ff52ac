//! The nonces of signed requests seen lately, so a captured request cannot be sent again
//! while its timestamp is still inside the window. Pure: `now` is passed in.
//!
//! Two generations of nonces, each spanning twice the skew window: a request accepted at
//! `now` has `timestamp ≥ now − skew`, so once `now` is two windows past, its timestamp is
//! refused as stale and its nonce can go. Checking both generations keeps every nonce at
//! least that long. Each nonce is kept as a 64-bit fingerprint of the 128 bits its 32 hex
//! digits spell: a replay carries the very same nonce (the signature covers it), so it
//! always matches; two honest nonces share a fingerprint with odds of about one in 2^64
//! over a window's million (and cost a retry on the next peer, nothing more). Half the
//! memory of the full nonce, which a busy worker holds a few minutes of.
//!
//! The cache lives in memory, so a restarted worker has forgotten the nonces of the last
//! window. It therefore refuses requests signed before it started: an honest router
//! signs as it sends, and can only have sent to the running worker. The price is that a
//! router whose clock is behind the worker's is refused for that many seconds after a
//! worker restart (and tries its next peer).

use std::collections::HashSet;

/// Nonces remembered at most (both generations); past this, signed requests are refused
/// rather than letting a flood grow memory without end (about 20 MB at the bound).
pub(super) const MAX_REMEMBERED: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum ReplayError {
    #[error("this request's nonce was used before: a replayed request")]
    Replayed,
    #[error("too many signed requests in the last minutes to remember their nonces")]
    Full,
    #[error("the nonce is not 32 hex characters")]
    BadNonce,
    #[error(
        "the request was signed {early_ms} ms before this worker started, so it may be a replay; check both clocks (NTP)"
    )]
    SignedBeforeStart { early_ms: u64 },
}

#[derive(Debug)]
pub(super) struct ReplayCache {
    /// How long one generation spans: twice the skew window.
    span_ms: u64,
    capacity: usize,
    /// When this cache began to remember: requests signed earlier are refused.
    remembers_from_ms: u64,
    /// When the current generation began.
    started_ms: Option<u64>,
    current: HashSet<u64>,
    previous: HashSet<u64>,
}

impl ReplayCache {
    /// `remembers_from_ms` is when the worker started (0: nonces from any time).
    pub(super) fn new(skew_ms: u64, capacity: usize, remembers_from_ms: u64) -> Self {
        ReplayCache {
            span_ms: skew_ms.saturating_mul(2).max(1),
            capacity,
            remembers_from_ms,
            started_ms: None,
            current: HashSet::new(),
            previous: HashSet::new(),
        }
    }

    /// Remembers the nonce of a request signed at `signed_ms`, or says it was seen, may
    /// have been seen before this cache began, or that there is no room.
    pub(super) fn check_and_insert(
        &mut self,
        nonce: &str,
        signed_ms: u64,
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        if nonce.len() != 32 {
            return Err(ReplayError::BadNonce);
        }
        if signed_ms < self.remembers_from_ms {
            return Err(ReplayError::SignedBeforeStart {
                early_ms: self.remembers_from_ms - signed_ms,
            });
        }
        let full = u128::from_str_radix(nonce, 16).map_err(|_| ReplayError::BadNonce)?;
        // Both halves count, the high one through a bijection, so nonces that differ in
        // either half (a counter's low bits, swapped halves) keep distinct fingerprints.
        let key = (full as u64) ^ ((full >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
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
            // The generation going out lends its table to the one coming in: a steady
            // rate then needs no regrowth (and no second table beside it) each span.
            std::mem::swap(&mut self.previous, &mut self.current);
            self.current.clear();
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
        let t = 1_000_000;
        let mut cache = ReplayCache::new(60_000, 100, t);
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
            let signed = now.saturating_sub(30_000).max(t);
            assert_eq!(
                cache.check_and_insert(&nonce(*n), signed, *now),
                *want,
                "step {i}"
            );
        }
    }

    /// Nonces that differ only in one half, or are each other's halves swapped, are
    /// still told apart; the very same nonce never is.
    #[test]
    fn fingerprints_keep_structured_nonces_apart() {
        let mut cache = ReplayCache::new(60_000, 100, 0);
        let (a, b) = ("0123456789abcdef", "fedcba9876543210");
        let cases: &[(String, Result<(), ReplayError>)] = &[
            (format!("{a}{b}"), Ok(())),
            (format!("{b}{a}"), Ok(())),
            (format!("{a}{a}"), Ok(())),
            (format!("{b}{b}"), Ok(())),
            (format!("{a}{}", "0".repeat(16)), Ok(())),
            (format!("{}{a}", "0".repeat(16)), Ok(())),
            (format!("{a}{b}"), Err(ReplayError::Replayed)),
            (format!("{}{a}", "0".repeat(16)), Err(ReplayError::Replayed)),
        ];
        for (nonce, want) in cases {
            assert_eq!(cache.check_and_insert(nonce, 5, 5), *want, "{nonce}");
        }
    }

    #[test]
    fn bounded_and_picky_about_nonces() {
        let mut cache = ReplayCache::new(60_000, 3, 0);
        for n in 0..3 {
            cache.check_and_insert(&nonce(n), 5, 5).unwrap();
        }
        assert_eq!(
            cache.check_and_insert(&nonce(9), 5, 5),
            Err(ReplayError::Full)
        );
        assert_eq!(cache.len(), 3);
        for bad in ["", "abc", &"g".repeat(32), &"a".repeat(33)] {
            assert_eq!(
                cache.check_and_insert(bad, 5, 5),
                Err(ReplayError::BadNonce),
                "{bad}"
            );
        }
    }

    /// A restarted worker has forgotten the last window's nonces, so it takes no request
    /// signed before it started, however fresh.
    #[test]
    fn refuses_what_was_signed_before_it_started() {
        let started = 1_000_000;
        let mut cache = ReplayCache::new(60_000, 100, started);
        let cases: &[(u64, u32, Result<(), ReplayError>)] = &[
            (
                started - 1,
                1,
                Err(ReplayError::SignedBeforeStart { early_ms: 1 }),
            ),
            (
                started - 59_000,
                2,
                Err(ReplayError::SignedBeforeStart { early_ms: 59_000 }),
            ),
            (started, 3, Ok(())),
            (started + 5, 4, Ok(())),
        ];
        for (signed, n, want) in cases {
            assert_eq!(
                cache.check_and_insert(&nonce(*n), *signed, started + 10),
                *want,
                "signed at {signed}"
            );
        }
        // Refused nonces were not remembered: nothing of them is held.
        assert_eq!(cache.len(), 2);
    }
}
