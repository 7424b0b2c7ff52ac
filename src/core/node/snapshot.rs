//! Builds the `Snapshot` front ends draw: the event-kept state (receipts, balance,
//! advertising, engine) read under the lock that numbers events, plus the live views of
//! the router (peers, exclusions, refused receipts, speeds, requests in flight) and the
//! worker (queue, and its tokens per second from the receipts it signed).

use serde_json::Value;

use super::handle::Core;
use super::monitor::queue_now;
use super::types::{
    ExclusionRow, InFlightRow, PeerHealth, PeerRow, PeerTraffic, ReceiptRole, ReceiptRow,
    RejectionRow, SNAPSHOT_IN_FLIGHT, SNAPSHOT_RECEIPTS, Snapshot, TrafficView,
};
use crate::core::router::SPEED_WINDOW_SECS;

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
        let now = self.clock.now_ms();
        let served_per_sec = served_per_sec(
            state.receipts.iter(),
            state.receipts.len() >= SNAPSHOT_RECEIPTS,
            now,
        );
        let traffic = self.traffic(served_per_sec);
        Snapshot {
            seq,
            taken_at_ms: now,
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
            traffic,
            ledger_error: self
                .router
                .ledger_unavailable()
                .map(|cause| crate::core::describe::ledger_failure(&cause)),
        }
    }
}

impl Core {
    /// What the router measured of its peers and holds in flight, beside `served`.
    fn traffic(&self, served_per_sec: f64) -> TrafficView {
        let peers = self
            .router
            .peer_speeds()
            .into_iter()
            .map(|(pubkey, f)| PeerTraffic {
                pubkey: pubkey.to_string(),
                tokens_per_sec: f.tokens_per_sec,
                ttft_ms: f.ttft_ms,
                answer_ms: f.answer_ms,
                answers: f.answers,
            })
            .collect::<Vec<_>>();
        let (rows, total) = self.router.in_flight(SNAPSHOT_IN_FLIGHT);
        TrafficView {
            consumed_per_sec: peers.iter().map(|p| p.tokens_per_sec).sum(),
            peers,
            in_flight: rows
                .into_iter()
                .map(|r| InFlightRow {
                    model: r.model,
                    peer: r.peer.to_string(),
                    started_at_ms: r.started_at_ms,
                    stream: r.stream,
                    first_byte_at_ms: r.first_byte_at_ms,
                    tokens: r.tokens,
                })
                .collect(),
            in_flight_total: total as u64,
            served_per_sec,
        }
    }
}

/// Output tokens per second this node's worker produced over the minute before `now_ms`,
/// from the newest receipts (newest first). When the list is `full` and its oldest is
/// inside the minute, older receipts fell off it: the rate is over the span it covers.
fn served_per_sec<'a>(
    rows: impl Iterator<Item = &'a ReceiptRow> + Clone,
    full: bool,
    now_ms: u64,
) -> f64 {
    let window_ms = SPEED_WINDOW_SECS * 1000;
    let inside =
        |r: &&ReceiptRow| r.completed_at_ms <= now_ms && now_ms - r.completed_at_ms < window_ms;
    let tokens: u64 = rows
        .clone()
        .filter(inside)
        .filter(|r| matches!(r.role, ReceiptRole::Earned | ReceiptRole::SelfServed))
        .map(|r| r.output_tokens)
        .sum();
    let oldest = rows
        .last()
        .filter(inside)
        .map(|r| now_ms - r.completed_at_ms);
    let span_ms = match oldest {
        Some(covered) if full => covered.max(1000),
        _ => window_ms,
    };
    tokens as f64 * 1000.0 / span_ms as f64
}

/// One row of `RouterService::peers_json` as the snapshot's typed row.
fn peer_row(v: &Value) -> Option<PeerRow> {
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let number = |key: &str| v.get(key).and_then(Value::as_u64);
    let texts = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
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
        transport: text("transport"),
        link_addrs: texts("linkAddrs"),
        path: text("path"),
        rtt_ms: v.get("rttMs").and_then(Value::as_f64),
        source,
        models: texts("models"),
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn row(role: ReceiptRole, ago_ms: u64, output_tokens: u64) -> ReceiptRow {
        ReceiptRow {
            seq: 1,
            completed_at_ms: NOW - ago_ms,
            role,
            peer: String::new(),
            peer_label: None,
            model: "m".into(),
            input_tokens: 5,
            output_tokens,
        }
    }

    /// A snapshot from a node without the traffic figures still parses, with none.
    #[test]
    fn older_snapshots_parse_without_traffic() {
        let mut json = serde_json::to_value(Snapshot::default()).unwrap();
        json.as_object_mut().unwrap().remove("traffic");
        let old: Snapshot = serde_json::from_value(json).unwrap();
        assert_eq!(old.traffic, TrafficView::default());
        let partial: TrafficView =
            serde_json::from_str(r#"{"inFlight":[{"model":"m","peer":"p"}]}"#).unwrap();
        assert_eq!(partial.in_flight[0].started_at_ms, 0);
        assert_eq!(partial.consumed_per_sec, 0.0);
    }

    #[test]
    fn served_tokens_per_second_table() {
        use ReceiptRole::{Earned, SelfServed, Spent};
        type Case = (&'static str, Vec<ReceiptRow>, bool, f64);
        let cases: Vec<Case> = vec![
            ("no receipts", vec![], false, 0.0),
            (
                "earned in the minute",
                vec![row(Earned, 1_000, 600)],
                false,
                10.0,
            ),
            (
                "self-served counts",
                vec![row(SelfServed, 1_000, 60)],
                false,
                1.0,
            ),
            ("spent does not", vec![row(Spent, 1_000, 600)], false, 0.0),
            (
                "older than a minute",
                vec![row(Earned, 61_000, 600)],
                false,
                0.0,
            ),
            (
                "mixed",
                vec![
                    row(Earned, 0, 300),
                    row(Spent, 5_000, 999),
                    row(Earned, 70_000, 9),
                ],
                false,
                5.0,
            ),
            // A full list whose oldest is 30 s old: the rate is over those 30 s.
            (
                "full list covers less",
                vec![row(Earned, 0, 300), row(Spent, 30_000, 1)],
                true,
                10.0,
            ),
            (
                "a future receipt is not counted",
                vec![row(Earned, 0, 60)],
                false,
                1.0,
            ),
        ];
        for (name, rows, full, want) in cases {
            let got = served_per_sec(rows.iter(), full, NOW);
            assert!((got - want).abs() < 1e-9, "{name}: {got} != {want}");
        }
        let future = ReceiptRow {
            completed_at_ms: NOW + 5_000,
            ..row(Earned, 0, 600)
        };
        assert_eq!(served_per_sec([future].iter(), false, NOW), 0.0);
    }
}
