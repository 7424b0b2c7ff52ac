//! Builds the `Snapshot` front ends draw: the event-kept state (receipts, balance,
//! advertising, engine) read under the lock that numbers events, plus the live views of
//! the router (peers, exclusions, refused receipts) and the worker (queue).

use serde_json::Value;

use super::handle::Core;
use super::monitor::queue_now;
use super::types::{ExclusionRow, PeerHealth, PeerRow, RejectionRow, Snapshot};

impl Core {
    pub(super) fn snapshot(&self) -> Snapshot {
        let (seq, state) = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (self.bus.last_seq(), state.clone())
        };
        let peers: Vec<PeerRow> = self
            .router
            .peers_json()
            .iter()
            .filter_map(peer_row)
            .collect();
        let mut exclusions: Vec<ExclusionRow> = peers
            .iter()
            .filter_map(|p| {
                Some(ExclusionRow {
                    pubkey: p.pubkey.clone(),
                    label: p.label.clone(),
                    reason: p.exclusion_reason.clone()?,
                    until_ms: p.excluded_until_ms?,
                })
            })
            .collect();
        exclusions.sort_by_key(|x| x.until_ms);
        let rejections = self
            .router
            .recent_rejections()
            .into_iter()
            .rev()
            .map(|r| RejectionRow {
                at_ms: r.at_ms,
                peer: r.peer.to_string(),
                reason: r.reason,
                detail: r.detail,
            })
            .collect();
        Snapshot {
            seq,
            taken_at_ms: self.clock.now_ms(),
            identity: self.me().to_string(),
            router_url: self.urls.router.clone(),
            worker_url: self.urls.worker.clone(),
            control_url: self.urls.control.clone(),
            engine: state.engine,
            advertising: state.advertising,
            peers,
            exclusions,
            queue: queue_now(self),
            balance: state.balance,
            receipts: state.receipts.into(),
            net_history: state.net_history.into(),
            rejections,
            owed: state.owed,
            demo: self.demo,
            ledger_error: self
                .router
                .ledger_unavailable()
                .map(|cause| crate::core::describe::ledger_failure(&cause)),
        }
    }
}

/// One row of `RouterService::peers_json` as the snapshot's typed row.
fn peer_row(v: &Value) -> Option<PeerRow> {
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let number = |key: &str| v.get(key).and_then(Value::as_u64);
    let health = match v.get("state").and_then(Value::as_str) {
        Some("ok") => PeerHealth::Ok,
        Some("excluded") => PeerHealth::Excluded,
        Some("unreachable") => PeerHealth::Unreachable,
        _ => PeerHealth::Unknown,
    };
    let source = match v.pointer("/source/kind").and_then(Value::as_str) {
        Some("tracker") => format!(
            "tracker {}",
            v.pointer("/source/url")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
        Some(kind) => kind.to_string(),
        None => "manual".to_string(),
    };
    Some(PeerRow {
        pubkey: text("pubkey")?,
        label: text("label"),
        url: text("url")?,
        source,
        models: v
            .get("models")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        tier: text("tier"),
        health,
        excluded_until_ms: number("excludedUntilMs"),
        exclusion_reason: text("exclusionReason"),
        unreachable_reason: text("unreachableReason"),
        queue_depth: number("queueDepth").and_then(|n| u32::try_from(n).ok()),
        latency_ms: number("latencyMs"),
        served: number("served").unwrap_or(0),
        receipts: number("receipts").unwrap_or(0),
        refused_receipts: number("refusedReceipts").unwrap_or(0),
        declined: number("declined").unwrap_or(0),
        failed: number("failed").unwrap_or(0),
    })
}
