//! A bounded cache of decompressed Ed25519 public keys.
//!
//! Checking a signature starts by decompressing the signer's 32-byte key into a curve
//! point, which costs about a sixth of the check (a field inversion and a square root).
//! A router verifies every receipt of the same few workers, so it decompresses the same
//! keys over and over; this keeps the result. The cache is keyed by the exact compressed
//! bytes and decompression is a pure function of them, so a cached key is the very key a
//! fresh decompression would give: nothing about what verifies changes.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use ed25519_dalek::VerifyingKey;

/// Keys kept at most. A router knows tens of peers, a tracker maybe thousands; past this
/// the cache starts over rather than grow without bound on keys an attacker picks.
pub(super) const MAX_KEYS: usize = 1024;

/// Decompressed keys by their compressed bytes; bytes that are not a valid key are not
/// kept (they fail at once, every time).
pub(super) struct KeyCache {
    keys: RwLock<HashMap<[u8; 32], VerifyingKey>>,
    capacity: usize,
}

impl KeyCache {
    pub(super) fn new(capacity: usize) -> Self {
        KeyCache {
            keys: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The key for `bytes`, decompressed once; `None` if they are not a curve point.
    pub(super) fn get(&self, bytes: &[u8; 32]) -> Option<VerifyingKey> {
        // A poisoned lock only means another thread panicked mid-insert of a complete
        // value; the map is still consistent.
        if let Some(key) = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(bytes)
        {
            return Some(*key);
        }
        let key = VerifyingKey::from_bytes(bytes).ok()?;
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= self.capacity {
            // Starting over is crude but cheap, and bounded: eviction order does not
            // matter for a cache this rarely full.
            keys.clear();
        }
        keys.insert(*bytes, key);
        Some(key)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The process-wide cache `PublicKey::verify` uses.
pub(super) static KEYS: LazyLock<KeyCache> = LazyLock::new(|| KeyCache::new(MAX_KEYS));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::Identity;

    #[test]
    fn gives_the_key_a_fresh_decompression_gives() {
        let cache = KeyCache::new(4);
        let id = Identity::from_seed([5; 32]);
        let bytes = *id.public().as_bytes();
        let fresh = VerifyingKey::from_bytes(&bytes).unwrap();
        assert_eq!(cache.get(&bytes), Some(fresh));
        assert_eq!(cache.get(&bytes), Some(fresh), "from the cache");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn bytes_that_are_no_key_are_refused_and_not_kept() {
        let cache = KeyCache::new(4);
        // y = 2 is not the y-coordinate of any point on the curve.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(VerifyingKey::from_bytes(&bad).is_err());
        assert_eq!(cache.get(&bad), None);
        assert_eq!(cache.get(&bad), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = KeyCache::new(3);
        for seed in 0..10u8 {
            let id = Identity::from_seed([seed; 32]);
            let bytes = *id.public().as_bytes();
            assert_eq!(
                cache.get(&bytes),
                Some(VerifyingKey::from_bytes(&bytes).unwrap())
            );
            assert!(cache.len() <= 3, "{} keys after {seed}", cache.len());
        }
    }

    /// Through `PublicKey::verify`, which uses the process-wide cache: a right key being
    /// cached must not make a wrong key, a wrong message or a wrong signature pass.
    #[test]
    fn a_cached_key_verifies_only_its_own_signatures() {
        let right = Identity::from_seed([11; 32]);
        let wrong = Identity::from_seed([12; 32]);
        let sig = right.sign(b"receipt");
        right.public().verify(b"receipt", &sig).unwrap();
        right.public().verify(b"receipt", &sig).unwrap();
        assert!(wrong.public().verify(b"receipt", &sig).is_err());
        assert!(right.public().verify(b"receipts", &sig).is_err());
        let other = wrong.sign(b"receipt");
        assert!(right.public().verify(b"receipt", &other).is_err());
        wrong.public().verify(b"receipt", &other).unwrap();
        right.public().verify(b"receipt", &sig).unwrap();
    }
}
