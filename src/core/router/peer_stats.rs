//! Per-peer receipt counters the operator sees in the snapshot and the console, beside
//! the selection's own served/failed counts: receipts accepted, receipts refused (bad,
//! replayed or implausible), and times the peer declined us (credit, limits, friends).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::service::RouterService;
use crate::core::protocol::PublicKey;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerCounters {
    pub receipts: u64,
    pub refused_receipts: u64,
    pub declined: u64,
}

impl RouterService {
    pub(super) fn count(&self, peer: PublicKey, bump: impl FnOnce(&mut PeerCounters)) {
        let mut map = self.peer_counters.lock().unwrap_or_else(|p| p.into_inner());
        bump(map.entry(peer).or_default());
    }

    /// The counters of every peer seen since start (peers removed since included).
    pub fn peer_counters(&self) -> HashMap<PublicKey, PeerCounters> {
        self.peer_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn note_declined(&self, peer: PublicKey) {
        self.count(peer, |c| c.declined += 1);
    }
}
