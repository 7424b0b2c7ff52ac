//! What each peer says it can do (`GET /capacity`: models, queue depth, tier), cached for
//! a TTL per peer. A peer that cannot be asked, or that answers with another identity
//! than the one we know it by, is marked unreachable with the reason.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::core::protocol::{PublicKey, Tier};

/// How long a capacity answer is trusted (the existing network's default).
pub const CAPACITY_TTL_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub models: Vec<String>,
    pub queue_depth: u32,
    pub tier: Tier,
    pub concurrency: u32,
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
        .get(format!("{url}/capacity"))
        .timeout(timeout)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return unreachable(describe_reqwest_error(&e)),
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
        },
        fetched_at_ms: now_ms,
    }
}

/// Short, operator-readable reasons for transport failures.
pub fn describe_reqwest_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else if e.is_body() || e.is_decode() {
        format!("broken response body: {e}")
    } else {
        e.to_string()
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

    /// Peers whose last check is older than the TTL (or that were never checked).
    pub fn stale<'a>(
        &self,
        peers: impl Iterator<Item = &'a PublicKey>,
        now_ms: u64,
    ) -> Vec<PublicKey> {
        peers
            .filter(|pk| match self.entries.get(pk) {
                None => true,
                Some(s) => now_ms.saturating_sub(s.checked_at_ms()) >= CAPACITY_TTL_MS,
            })
            .copied()
            .collect()
    }
}
