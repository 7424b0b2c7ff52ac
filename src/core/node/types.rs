//! What front ends see of a node: a point-in-time `Snapshot`, a stream of sequenced
//! `CoreEvent`s, and the `NodeCommand`s they may send. All serializable, so the control
//! API carries them unchanged.

use serde::{Deserialize, Serialize};

pub use crate::core::jobs::JobCounts;

/// How many receipts a snapshot carries, newest first.
pub const SNAPSHOT_RECEIPTS: usize = 200;
/// How many points of net-credit history a snapshot carries, oldest first.
pub const NET_HISTORY_POINTS: usize = 120;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The sequence number of the last event reflected here; events after it are news.
    pub seq: u64,
    pub taken_at_ms: u64,
    pub identity: String,
    pub router_url: Option<String>,
    pub worker_url: Option<String>,
    pub control_url: Option<String>,
    pub engine: EngineStatus,
    pub advertising: AdvertisingStatus,
    pub peers: Vec<PeerRow>,
    pub exclusions: Vec<ExclusionRow>,
    pub queue: QueueStatus,
    pub balance: BalanceView,
    /// Newest first.
    pub receipts: Vec<ReceiptRow>,
    /// Net credits (earned − spent) after each of the latest receipts, oldest first.
    pub net_history: Vec<i64>,
    pub rejections: Vec<RejectionRow>,
    /// What requesters owe this node's worker on receipts they have not confirmed.
    #[serde(default)]
    pub owed: OwedView,
    /// True when this node is `lobstah demo`'s synthetic grid.
    pub demo: bool,
    /// This router's traffic: per-peer speed, its requests in flight, token rates.
    #[serde(default)]
    pub traffic: TrafficView,
    /// Set while the ledger cannot be written ("ledger unavailable: disk full"): the
    /// node takes no new work until it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineStatus {
    pub kind: String,
    pub url: Option<String>,
    pub ok: bool,
    pub models: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvertisingStatus {
    pub on: bool,
    /// Trackers (and relays) announcements go to when on.
    pub targets: Vec<String>,
    pub last_heartbeat: Option<HeartbeatResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResult {
    pub at_ms: u64,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerHealth {
    Ok,
    Excluded,
    Unreachable,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerRow {
    pub pubkey: String,
    pub label: Option<String>,
    pub url: String,
    /// `http`, or `link` for a peer reached by key over a peer link (preferred).
    #[serde(default)]
    pub transport: Option<String>,
    /// A linked peer's direct addresses.
    #[serde(default)]
    pub link_addrs: Vec<String>,
    /// How requests reach it now: `http`, or a link's `direct` or `relayed`; None while
    /// a linked peer has no open link.
    #[serde(default)]
    pub path: Option<String>,
    /// The open link's round-trip time, as QUIC measures it.
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    /// `manual`, `tracker <url>` or `nostr`.
    pub source: String,
    pub models: Vec<String>,
    pub tier: Option<String>,
    pub health: PeerHealth,
    pub excluded_until_ms: Option<u64>,
    pub exclusion_reason: Option<String>,
    pub unreachable_reason: Option<String>,
    pub queue_depth: Option<u32>,
    pub latency_ms: Option<u64>,
    pub served: u64,
    pub failed: u64,
    /// Receipts from this peer accepted, and refused (bad, replayed, implausible).
    #[serde(default)]
    pub receipts: u64,
    #[serde(default)]
    pub refused_receipts: u64,
    /// Times the peer turned us away (credit, limits, friends list).
    #[serde(default)]
    pub declined: u64,
}

/// How traffic is going: per peer over the last minute, this router's requests in
/// flight, and the tokens per second this node consumed (its router) and served (its
/// worker). Every field defaults, so snapshots from before it still parse.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficView {
    /// One row per peer that answered this router since it started (any order).
    pub peers: Vec<PeerTraffic>,
    /// This router's requests to peers now, oldest first, at most `SNAPSHOT_IN_FLIGHT`.
    pub in_flight: Vec<InFlightRow>,
    /// How many are in flight in all (`in_flight` may hold fewer).
    pub in_flight_total: u64,
    /// Output tokens per second this router received over the last minute.
    pub consumed_per_sec: f64,
    /// Output tokens per second this node's worker produced over the last minute.
    pub served_per_sec: f64,
}

/// How many in-flight requests a snapshot lists.
pub const SNAPSHOT_IN_FLIGHT: usize = 64;

/// One peer's speed as this router measured it, over the last minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeerTraffic {
    pub pubkey: String,
    /// Output tokens per second (from its accepted receipts) over the last minute.
    pub tokens_per_sec: f64,
    /// Time to first token of its streamed answers: the mean over the last minute, else
    /// the latest one measured.
    pub ttft_ms: Option<u64>,
    /// Whole-answer time (request sent to answer complete), the same way.
    pub answer_ms: Option<u64>,
    /// Answers completed in the last minute.
    pub answers: u64,
}

/// A request this router is forwarding to a peer right now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InFlightRow {
    pub model: String,
    /// The peer's public key.
    pub peer: String,
    pub started_at_ms: u64,
    pub stream: bool,
    /// When the first byte of the answer came, if it has.
    pub first_byte_at_ms: Option<u64>,
    /// Tokens forwarded so far (stream events counted; whole answers show 0 until done).
    pub tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExclusionRow {
    pub pubkey: String,
    pub label: Option<String>,
    pub reason: String,
    pub until_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    pub running: u32,
    pub waiting: u32,
    pub concurrency: u32,
    /// This node's worker's job queue (jobs peers gave it).
    #[serde(default)]
    pub jobs: JobCounts,
    /// The jobs this node's router holds for its clients (wherever they run).
    #[serde(default)]
    pub client_jobs: JobCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceView {
    pub earned: u64,
    pub spent: u64,
    /// The part of `earned` still waiting for the requesters' counter-signatures; `net`
    /// and `available` leave it out until it is confirmed.
    #[serde(default)]
    pub pending_earned: u64,
    /// The part of `spent` on requests not yet confirmed (counted in `net`).
    #[serde(default)]
    pub pending_spent: u64,
    pub net: i64,
    pub available: i64,
    pub receipts: u64,
}

/// Per requester, the unconfirmed tokens the worker's credit gate holds against it; and
/// per worker, what our router has not confirmed to it yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwedView {
    /// Largest first.
    pub rows: Vec<OwedRow>,
    /// The worker refuses a requester (402) once it owes this many; `None`: no cap.
    pub cap: Option<u64>,
    /// Some receipt counts are low: the backlog was too large to read whole.
    #[serde(default)]
    pub partial: bool,
    /// The other way: what this node's router has yet to confirm to workers, largest
    /// first (the worker's cap is not known here, and `trusted` is always false).
    #[serde(default)]
    pub owing: Vec<OwedRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwedRow {
    pub pubkey: String,
    /// When the requester is also one of our peers.
    pub label: Option<String>,
    pub tokens: u64,
    pub receipts: u64,
    /// `completedAt` of its oldest unconfirmed receipt.
    pub oldest_completed_at_ms: Option<u64>,
    /// Exempt from the cap by `access.trusted`.
    #[serde(default)]
    pub trusted: bool,
}

impl OwedRow {
    /// Whether the row is close enough to the cap to warn about: at 80 % of it.
    pub fn near_cap(&self, cap: Option<u64>) -> bool {
        match cap {
            Some(cap) if cap > 0 && !self.trusted => {
                u128::from(self.tokens) * 5 >= u128::from(cap) * 4
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptRole {
    /// We served it.
    Earned,
    /// We asked for it.
    Spent,
    /// Our router used our own worker.
    SelfServed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptRow {
    pub seq: u64,
    pub completed_at_ms: u64,
    pub role: ReceiptRole,
    /// The other side's pubkey.
    pub peer: String,
    pub peer_label: Option<String>,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectionRow {
    pub at_ms: u64,
    pub peer: String,
    pub reason: String,
    pub detail: String,
}

/// Something that changed in the node. Front ends apply it or re-read the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CoreEvent {
    Receipt {
        receipt: ReceiptRow,
        balance: BalanceView,
    },
    ReceiptRejected {
        rejection: RejectionRow,
    },
    PeersChanged,
    PeerExcluded {
        pubkey: String,
        reason: String,
        until_ms: u64,
    },
    PeerReadmitted {
        pubkey: String,
    },
    AdvertisingChanged {
        on: bool,
    },
    Heartbeat {
        result: HeartbeatResult,
    },
    QueueChanged {
        queue: QueueStatus,
    },
    EngineChanged {
        engine: EngineStatus,
    },
    /// The balance moved without a new receipt: requesters confirmed pending earnings.
    BalanceChanged {
        balance: BalanceView,
    },
    /// What requesters owe us changed (served or confirmed receipts).
    OwedChanged {
        owed: OwedView,
    },
    ShuttingDown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequencedEvent {
    pub seq: u64,
    pub at_ms: u64,
    pub event: CoreEvent,
}

/// What a front end may ask of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum NodeCommand {
    AddPeer {
        pubkey: String,
        url: String,
        label: Option<String>,
    },
    /// A peer reached by key over a peer link, at these direct `IP:PORT` addresses (may
    /// be empty with relays), and at `url` too if given.
    AddLinkedPeer {
        pubkey: String,
        url: Option<String>,
        label: Option<String>,
        addrs: Vec<String>,
    },
    RemovePeer {
        pubkey: String,
    },
    SetAdvertising {
        on: bool,
    },
    /// Sync from the configured trackers (and relays).
    SyncPeers,
    /// Sync from one tracker, configured or not.
    SyncTracker {
        url: String,
    },
    /// Read peers from Nostr relays (the configured ones when `relays` is empty).
    DiscoverNostr {
        #[serde(default)]
        relays: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandOutcome {
    pub ok: bool,
    pub message: String,
}
