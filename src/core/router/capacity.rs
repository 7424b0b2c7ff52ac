//! What each peer says it can do (`GET /capacity`: models, queue depth, tier), cached for
//! a TTL per peer. A peer that cannot be asked, or that answers with another identity
//! than the one we know it by, is marked unreachable with the reason.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::core::protocol::{PublicKey, Tier};

/// How long a capacity answer is trusted (the existing network's default).
pub const CAPACITY_TTL_MS: u64 = 30_000;
/// How soon an unreachable peer is asked again: a worker that restarts should be back in
/// seconds, not after a whole capacity TTL.
pub const UNREACHABLE_RETRY_MS: u64 = 5_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub models: Vec<String>,
    pub queue_depth: u32,
    pub tier: Tier,
    pub concurrency: u32,
    /// Jobs waiting in the peer's job queue (0 for a peer that does not say).
    pub jobs_queued: u32,
    /// Whether it serves `/v1/embeddings` (peers that do not say serve chat only).
    pub embeddings: bool,
}

/// The last thing we learned about a peer.
#[derive(Debug, Clone, PartialEq)]
pub enum CapacityState {
    Known {
        capacity: Capacity,
        fetched_at_ms: u64,
    },
    Unreachable {
        reason: String,
        checked_at_ms: u64,
    },
}

impl CapacityState {
    pub fn checked_at_ms(&self) -> u64 {
        match self {
            CapacityState::Known { fetched_at_ms, .. } => *fetched_at_ms,
            CapacityState::Unreachable { checked_at_ms, .. } => *checked_at_ms,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CapacityWire {
    pubkey: String,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    queue_depth: u32,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    concurrency: u32,
    #[serde(default)]
    jobs: Option<JobsWire>,
    #[serde(default)]
    capabilities: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct JobsWire {
    #[serde(default)]
    queued: u32,
}

/// Asks one peer. Never fails: the answer is a state, reachable or not.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    expected: &PublicKey,
    now_ms: u64,
    timeout: Duration,
) -> CapacityState {
    let unreachable = |reason: String| CapacityState::Unreachable {
        reason,
        checked_at_ms: now_ms,
    };
    let response = match client
        .get(format!(
            "{url}{}",
            crate::core::protocol::wire::CAPACITY_PATH
        ))
        .timeout(timeout)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return unreachable(crate::core::describe::transport(&e)),
    };
    if !response.status().is_success() {
        return unreachable(format!(
            "/capacity answered HTTP {}",
            response.status().as_u16()
        ));
    }
    let wire: CapacityWire = match response.json().await {
        Ok(w) => w,
        Err(e) => {
            return unreachable(format!(
                "/capacity answered something that is not capacity JSON: {e}"
            ));
        }
    };
    match PublicKey::parse(&wire.pubkey) {
        Ok(pk) if pk == *expected => {}
        Ok(pk) => {
            return unreachable(format!(
                "the peer at {url} identifies as {}, not {}",
                pk.short(),
                expected.short()
            ));
        }
        Err(e) => return unreachable(format!("/capacity: {e}")),
    }
    let tier = wire
        .tier
        .as_deref()
        .and_then(|t| t.parse::<Tier>().ok())
        .unwrap_or(Tier::BestEffort);
    CapacityState::Known {
        capacity: Capacity {
            models: wire.models,
            queue_depth: wire.queue_depth,
            tier,
            concurrency: wire.concurrency,
            jobs_queued: wire.jobs.map(|j| j.queued).unwrap_or(0),
            embeddings: wire
                .capabilities
                .iter()
                .any(|c| c == crate::core::protocol::wire::CAPABILITY_EMBEDDINGS),
        },
        fetched_at_ms: now_ms,
    }
}

/// Capacity of every peer, by pubkey.
#[derive(Debug, Default)]
pub struct CapacityTable {
    entries: HashMap<PublicKey, CapacityState>,
}

impl CapacityTable {
    pub fn get(&self, peer: &PublicKey) -> Option<&CapacityState> {
        self.entries.get(peer)
    }

    pub fn set(&mut self, peer: PublicKey, state: CapacityState) {
        self.entries.insert(peer, state);
    }

    pub fn remove(&mut self, peer: &PublicKey) {
        self.entries.remove(peer);
    }

    /// Peers whose last check is older than the TTL, or than the retry interval for
    /// unreachable ones (or that were never checked).
    pub fn stale<'a>(
        &self,
        peers: impl Iterator<Item = &'a PublicKey>,
        now_ms: u64,
    ) -> Vec<PublicKey> {
        peers
            .filter(|pk| match self.entries.get(pk) {
                None => true,
                Some(s @ CapacityState::Unreachable { .. }) => {
                    now_ms.saturating_sub(s.checked_at_ms()) >= UNREACHABLE_RETRY_MS
                }
                Some(s) => now_ms.saturating_sub(s.checked_at_ms()) >= CAPACITY_TTL_MS,
            })
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::Identity;

    #[test]
    fn staleness_table() {
        let (known, down, never) = (
            Identity::from_seed([1; 32]).public(),
            Identity::from_seed([2; 32]).public(),
            Identity::from_seed([3; 32]).public(),
        );
        let mut table = CapacityTable::default();
        let capacity = Capacity {
            models: vec![],
            queue_depth: 0,
            tier: Tier::Interactive,
            concurrency: 1,
            jobs_queued: 0,
            embeddings: false,
        };
        table.set(
            known,
            CapacityState::Known {
                capacity,
                fetched_at_ms: 0,
            },
        );
        table.set(
            down,
            CapacityState::Unreachable {
                reason: "refused".into(),
                checked_at_ms: 0,
            },
        );
        let cases = [
            (0, vec![never]),
            (UNREACHABLE_RETRY_MS - 1, vec![never]),
            (UNREACHABLE_RETRY_MS, vec![down, never]),
            (CAPACITY_TTL_MS - 1, vec![down, never]),
            (CAPACITY_TTL_MS, vec![known, down, never]),
        ];
        for (now, want) in cases {
            assert_eq!(
                table.stale([known, down, never].iter(), now),
                want,
                "now={now}"
            );
        }
    }
}
