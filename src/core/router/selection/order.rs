//! Candidate ordering: which capable peers a request is offered to, best first.
//!
//! Peers of the preferred tier come first, then lower queue depth, then lower latency.
//! Peers that tie are rotated so that load spreads over them instead of piling onto
//! whichever sorts first.

use std::collections::{HashMap, HashSet};

use crate::core::protocol::{PublicKey, Tier};

use super::SelectionConfig;
use super::health::PeerHealth;

/// What the router knows about one peer from its cached `/capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerView<'a> {
    pub pubkey: PublicKey,
    pub models: &'a [String],
    pub queue_depth: u32,
    pub tier: Tier,
    /// False when the last capacity fetch failed; such a peer is not offered requests.
    pub reachable: bool,
}

impl PeerView<'_> {
    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model)
    }
}

/// One eligible peer with the keys it is ordered by.
struct Ranked {
    pubkey: PublicKey,
    /// 0 for the preferred tier, 1 for any other: the others still follow.
    tier_rank: u8,
    queue_depth: u32,
    /// `None` sorts first: a peer with no latency yet is tried, so it gets one.
    latency_ms: Option<u64>,
}

impl Ranked {
    fn strict_key(&self) -> (u8, u32, Option<u64>, PublicKey) {
        (
            self.tier_rank,
            self.queue_depth,
            self.latency_ms,
            self.pubkey,
        )
    }
}

/// Orders the eligible peers. `rotation` picks which of several equal peers goes first;
/// the caller advances it once per call.
pub(super) fn order_candidates(
    model: &str,
    prefer: Tier,
    peers: &[PeerView<'_>],
    health: &HashMap<PublicKey, PeerHealth>,
    config: &SelectionConfig,
    now_ms: u64,
    rotation: u64,
) -> Vec<PublicKey> {
    let mut seen = HashSet::with_capacity(peers.len());
    let mut ranked: Vec<Ranked> = peers
        .iter()
        // The first view of a pubkey wins, so a peer listed twice is offered once.
        .filter(|p| seen.insert(p.pubkey))
        .filter(|p| p.reachable && p.serves(model))
        .filter(|p| {
            health
                .get(&p.pubkey)
                .is_none_or(|h| h.active_exclusion(now_ms).is_none())
        })
        .map(|p| Ranked {
            pubkey: p.pubkey,
            tier_rank: u8::from(p.tier != prefer),
            queue_depth: p.queue_depth,
            // A peer back from an exclusion is measured afresh: its old latency would
            // otherwise keep it behind faster peers forever, and it would never be used
            // again while they are idle.
            latency_ms: health
                .get(&p.pubkey)
                .filter(|h| !h.half_open && h.exclusion.is_none())
                .and_then(|h| h.ewma_latency_ms),
        })
        .collect();
    // A strict total order first; the tolerance is applied afterwards by banding, because
    // "within 20%" is not transitive and would make an inconsistent comparator.
    ranked.sort_by_key(Ranked::strict_key);

    let mut out = Vec::with_capacity(ranked.len());
    let mut start = 0;
    while start < ranked.len() {
        let end = band_end(&ranked, start, config);
        let band = &mut ranked[start..end];
        // Rotate over a fixed base order so each member leads in turn even while their
        // latencies wobble inside the band.
        band.sort_by_key(|r| r.pubkey);
        let shift = usize::try_from(rotation % band.len() as u64).unwrap_or(0);
        band.rotate_left(shift);
        out.extend(band.iter().map(|r| r.pubkey));
        start = end;
    }
    out
}

/// The end (exclusive) of the band of equals that starts at `start`: same tier rank and
/// queue depth, and latency within the tolerance of the band's fastest member.
fn band_end(ranked: &[Ranked], start: usize, config: &SelectionConfig) -> usize {
    let first = &ranked[start];
    let mut end = start + 1;
    while let Some(next) = ranked.get(end) {
        let same_slot = next.tier_rank == first.tier_rank && next.queue_depth == first.queue_depth;
        if !same_slot || !latency_equal(first.latency_ms, next.latency_ms, config) {
            break;
        }
        end += 1;
    }
    end
}

/// Whether `other` (never faster than `anchor`, by the sort) is close enough to count as equal.
fn latency_equal(anchor: Option<u64>, other: Option<u64>, config: &SelectionConfig) -> bool {
    match (anchor, other) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let pct = a.saturating_mul(u64::from(config.latency_tolerance_pct)) / 100;
            let tolerance = pct.max(config.latency_tolerance_ms);
            b <= a.saturating_add(tolerance)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_tolerance_table() {
        let config = SelectionConfig::default();
        let cases = [
            (None, None, true),
            (None, Some(5), false),
            (Some(100), Some(120), true),
            (Some(100), Some(121), false),
            (Some(0), Some(1), true),
            (Some(0), Some(2), false),
            (Some(3), Some(4), true),
            (Some(u64::MAX - 1), Some(u64::MAX), true),
        ];
        for (anchor, other, equal) in cases {
            assert_eq!(
                latency_equal(anchor, other, &config),
                equal,
                "{anchor:?} vs {other:?}"
            );
        }
    }
}
