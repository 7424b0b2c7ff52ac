//! Peer selection and health: a pure state machine that decides which peers a request is
//! offered to, in what order, and which peers are excluded after failing.
//!
//! No IO, no clock, no async: the router's shell reports outcomes as [`SelectionEvent`]s
//! carrying the time, acts on the returned [`Effect`]s (logging, dashboard events) and asks
//! [`Selector::candidates`] for the order to try peers in. That keeps exclusion, cooldown
//! and failover order testable without sockets or sleeps.
//!
//! Health per peer follows a circuit breaker: `failures_to_exclude` consecutive failures
//! exclude a peer for `exclusion_ms`; when the cooldown ends it is offered again on
//! probation (half-open), where one failure excludes it again at once and one success
//! restores it fully.

mod health;
mod order;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::core::protocol::{PublicKey, Tier};

pub use health::{Exclusion, ExclusionView, PeerHealthView, PeerState};
pub use order::PeerView;

use health::PeerHealth;

/// Thresholds of the failover policy. The defaults are the existing network's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionConfig {
    /// Consecutive failures that exclude a peer; 0 is treated as 1.
    pub failures_to_exclude: u32,
    /// How long an exclusion lasts.
    pub exclusion_ms: u64,
    /// Share (percent) of the newest sample in the latency moving average.
    pub latency_weight_pct: u8,
    /// Latencies within this percentage of the faster one count as equal.
    pub latency_tolerance_pct: u32,
    /// …or within this many milliseconds, whichever is larger (so 0 ms and 1 ms tie).
    pub latency_tolerance_ms: u64,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        SelectionConfig {
            failures_to_exclude: 2,
            exclusion_ms: 30_000,
            latency_weight_pct: 30,
            latency_tolerance_pct: 20,
            latency_tolerance_ms: 1,
        }
    }
}

/// What the router's shell reports to the selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionEvent {
    /// A request to `peer` completed. `latency_ms` is what the router measured; time to
    /// first byte compares peers fairly across request sizes.
    Succeeded {
        peer: PublicKey,
        latency_ms: u64,
        now_ms: u64,
    },
    /// A request to `peer` failed before anything reached the client.
    Failed {
        peer: PublicKey,
        reason: String,
        now_ms: u64,
    },
    /// `peer` answered but lied (an implausible receipt): excluded at once, whatever
    /// its streak of successes; a peer that bills for work it did not do is worse than
    /// one that is down.
    Distrusted {
        peer: PublicKey,
        reason: String,
        now_ms: u64,
    },
    /// Time passed: end the exclusions that are due.
    Tick { now_ms: u64 },
    /// The peer was removed from the peer book: drop what is known about it.
    Forget { peer: PublicKey },
}

/// What changed, for the shell to log and to publish as core events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The peer is not offered requests until `until_ms`.
    Excluded {
        peer: PublicKey,
        until_ms: u64,
        reason: String,
    },
    /// The cooldown ended; the peer is offered requests again, on probation.
    Readmitted { peer: PublicKey },
    /// A success on probation: the peer is fully healthy again.
    Restored { peer: PublicKey },
    /// The selector no longer tracks the peer.
    Forgotten { peer: PublicKey },
}

/// The selection state machine. One per router.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    config: SelectionConfig,
    peers: HashMap<PublicKey, PeerHealth>,
    /// Advanced on every `candidates` call; picks which of several equal peers leads.
    rotation: u64,
}

impl Selector {
    pub fn new(config: SelectionConfig) -> Self {
        Selector {
            config,
            peers: HashMap::new(),
            rotation: 0,
        }
    }

    pub fn config(&self) -> &SelectionConfig {
        &self.config
    }

    /// Applies one event and returns what changed, in the order it changed.
    pub fn handle(&mut self, event: SelectionEvent) -> Vec<Effect> {
        let mut effects = Vec::new();
        match event {
            SelectionEvent::Succeeded {
                peer,
                latency_ms,
                now_ms,
            } => {
                self.expire(now_ms, &mut effects);
                let weight = self.config.latency_weight_pct;
                let health = self.peers.entry(peer).or_default();
                health.served += 1;
                health.consecutive_failures = 0;
                health.observe_latency(latency_ms, weight);
                if health.half_open {
                    health.half_open = false;
                    effects.push(Effect::Restored { peer });
                }
                // A success while still excluded (a request that began before the
                // exclusion) does not cut the cooldown short: the exclusion is a time box.
            }
            SelectionEvent::Failed {
                peer,
                reason,
                now_ms,
            } => {
                self.expire(now_ms, &mut effects);
                self.fail(peer, reason, now_ms, &mut effects);
            }
            SelectionEvent::Distrusted {
                peer,
                reason,
                now_ms,
            } => {
                self.expire(now_ms, &mut effects);
                let threshold = self.config.failures_to_exclude.max(1);
                let health = self.peers.entry(peer).or_default();
                health.consecutive_failures = health.consecutive_failures.max(threshold - 1);
                self.fail(peer, reason, now_ms, &mut effects);
            }
            SelectionEvent::Tick { now_ms } => self.expire(now_ms, &mut effects),
            SelectionEvent::Forget { peer } => {
                if self.peers.remove(&peer).is_some() {
                    effects.push(Effect::Forgotten { peer });
                }
            }
        }
        effects
    }

    fn fail(&mut self, peer: PublicKey, reason: String, now_ms: u64, effects: &mut Vec<Effect>) {
        let threshold = self.config.failures_to_exclude.max(1);
        let exclusion_ms = self.config.exclusion_ms;
        let health = self.peers.entry(peer).or_default();
        health.failed += 1;
        health.last_error = Some(reason.clone());
        if health.active_exclusion(now_ms).is_some() {
            // Already out (a late failure of a request that began earlier): extending the
            // exclusion would punish the peer twice for one outage.
            return;
        }
        health.consecutive_failures = health.consecutive_failures.saturating_add(1);
        if !health.half_open && health.consecutive_failures < threshold {
            return;
        }
        let until_ms = now_ms.saturating_add(exclusion_ms);
        health.half_open = false;
        health.times_excluded += 1;
        health.exclusion = Some(Exclusion {
            reason: reason.clone(),
            since_ms: now_ms,
            until_ms,
        });
        effects.push(Effect::Excluded {
            peer,
            until_ms,
            reason,
        });
    }

    /// Ends the exclusions that are due; each ending is reported once, as `Readmitted`.
    fn expire(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        let mut readmitted: Vec<PublicKey> = Vec::new();
        for (peer, health) in &mut self.peers {
            if health
                .exclusion
                .as_ref()
                .is_some_and(|e| !e.is_active(now_ms))
            {
                health.exclusion = None;
                health.half_open = true;
                // Whatever made it fail may have changed its speed too: measure afresh.
                health.ewma_latency_ms = None;
                readmitted.push(*peer);
            }
        }
        // HashMap order is arbitrary; sorted effects keep logs and tests deterministic.
        readmitted.sort();
        effects.extend(
            readmitted
                .into_iter()
                .map(|peer| Effect::Readmitted { peer }),
        );
    }

    /// The peers to offer a request for `model` to, best first: reachable peers that serve
    /// the model and are not excluded at `now_ms`, preferred tier first, then by queue
    /// depth, then by latency, rotating among equals from one call to the next.
    pub fn candidates(
        &mut self,
        model: &str,
        prefer: Tier,
        peers: &[PeerView<'_>],
        now_ms: u64,
    ) -> Vec<PublicKey> {
        let out = order::order_candidates(
            model,
            prefer,
            peers,
            &self.peers,
            &self.config,
            now_ms,
            self.rotation,
        );
        self.rotation = self.rotation.wrapping_add(1);
        out
    }

    /// Whether `peer` is offered requests at `now_ms`.
    pub fn state(&self, peer: &PublicKey, now_ms: u64) -> PeerState {
        match self.peers.get(peer) {
            None => PeerState::Unknown,
            Some(h) if h.active_exclusion(now_ms).is_some() => PeerState::Excluded,
            Some(_) => PeerState::Ok,
        }
    }

    /// The exclusions in force at `now_ms`, soonest to end first.
    pub fn exclusions(&self, now_ms: u64) -> Vec<ExclusionView> {
        let mut out: Vec<ExclusionView> = self
            .peers
            .iter()
            .filter_map(|(peer, h)| {
                h.active_exclusion(now_ms).map(|e| ExclusionView {
                    peer: *peer,
                    reason: e.reason.clone(),
                    until_ms: e.until_ms,
                    remaining_ms: e.until_ms - now_ms,
                })
            })
            .collect();
        out.sort_by_key(|e| (e.until_ms, e.peer));
        out
    }

    /// What is known about one peer, or `None` if it has had no outcome yet.
    pub fn health(&self, peer: &PublicKey) -> Option<PeerHealthView> {
        self.peers.get(peer).map(|h| PeerHealthView::new(*peer, h))
    }

    /// Every tracked peer's health, by pubkey, for snapshots.
    pub fn health_all(&self) -> Vec<PeerHealthView> {
        let mut out: Vec<PeerHealthView> = self
            .peers
            .iter()
            .map(|(peer, h)| PeerHealthView::new(*peer, h))
            .collect();
        out.sort_by_key(|v| v.peer);
        out
    }
}
