//! What the selector remembers about one peer, and the read-only views of it the dashboard
//! and the node snapshot show.

use serde::Serialize;

use crate::core::protocol::PublicKey;

/// One exclusion: why the peer was taken out of rotation and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exclusion {
    pub reason: String,
    pub since_ms: u64,
    pub until_ms: u64,
}

impl Exclusion {
    /// An exclusion ends at `until_ms` exactly, so `now == until` is already half-open.
    pub fn is_active(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }
}

/// The health counters of one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PeerHealth {
    pub consecutive_failures: u32,
    /// Set while excluded and kept after the cooldown until the next event or tick
    /// notices it ended, so that `Readmitted` is reported exactly once.
    pub exclusion: Option<Exclusion>,
    /// The cooldown ended and the peer has not succeeded since: one failure excludes it again.
    pub half_open: bool,
    pub ewma_latency_ms: Option<u64>,
    pub served: u64,
    pub failed: u64,
    pub times_excluded: u64,
    pub last_error: Option<String>,
}

impl PeerHealth {
    pub(super) fn active_exclusion(&self, now_ms: u64) -> Option<&Exclusion> {
        self.exclusion.as_ref().filter(|e| e.is_active(now_ms))
    }

    /// Folds a new latency sample in; `weight_pct` is the share of the newest sample.
    pub(super) fn observe_latency(&mut self, sample_ms: u64, weight_pct: u8) {
        let weight = u128::from(weight_pct.min(100));
        self.ewma_latency_ms = Some(match self.ewma_latency_ms {
            None => sample_ms,
            Some(old) => {
                // u128 so that absurd samples cannot overflow; +50 rounds to nearest.
                let mixed = u128::from(old) * (100 - weight) + u128::from(sample_ms) * weight + 50;
                u64::try_from(mixed / 100).unwrap_or(u64::MAX)
            }
        });
    }
}

/// Whether a peer is offered requests right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerState {
    /// Offered requests (this includes a peer on probation after a cooldown).
    Ok,
    /// Excluded until its cooldown ends.
    Excluded,
    /// The selector has seen no outcome for this peer yet.
    Unknown,
}

/// A current exclusion as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExclusionView {
    pub peer: PublicKey,
    pub reason: String,
    pub until_ms: u64,
    pub remaining_ms: u64,
}

/// One peer's health as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerHealthView {
    pub peer: PublicKey,
    pub served: u64,
    pub failed: u64,
    pub consecutive_failures: u32,
    pub ewma_latency_ms: Option<u64>,
    /// The latest exclusion, which may have ended already: compare `until_ms` with now,
    /// or ask `Selector::state`.
    pub exclusion: Option<Exclusion>,
    pub half_open: bool,
    pub times_excluded: u64,
    pub last_error: Option<String>,
}

impl PeerHealthView {
    pub(super) fn new(peer: PublicKey, health: &PeerHealth) -> Self {
        PeerHealthView {
            peer,
            served: health.served,
            failed: health.failed,
            consecutive_failures: health.consecutive_failures,
            ewma_latency_ms: health.ewma_latency_ms,
            exclusion: health.exclusion.clone(),
            half_open: health.half_open,
            times_excluded: health.times_excluded,
            last_error: health.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_starts_at_the_first_sample_and_moves_by_the_weight() {
        let mut h = PeerHealth::default();
        h.observe_latency(100, 30);
        assert_eq!(h.ewma_latency_ms, Some(100));
        h.observe_latency(200, 30);
        assert_eq!(h.ewma_latency_ms, Some(130));
        h.observe_latency(u64::MAX, 100);
        assert_eq!(h.ewma_latency_ms, Some(u64::MAX));
        h.observe_latency(u64::MAX, 30);
        assert_eq!(h.ewma_latency_ms, Some(u64::MAX));
    }

    #[test]
    fn an_exclusion_ends_at_until_exactly() {
        let e = Exclusion {
            reason: "timeout".into(),
            since_ms: 0,
            until_ms: 10,
        };
        assert!(e.is_active(9));
        assert!(!e.is_active(10));
    }
}
