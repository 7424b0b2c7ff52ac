//! Fixed snapshots for the console's tests, screenshots and render benchmark: a small node
//! with one peer of every kind, a node with one peer streaming, and a large one (any
//! number of peers and receipts), each with traffic figures and requests in flight. Every
//! time is relative to the `now_ms` given, so frames drawn from them are reproducible.

use crate::core::node::{
    AdvertisingStatus, BalanceView, EngineStatus, ExclusionRow, InFlightRow, JobCounts, OwedRow,
    OwedView, PeerHealth, PeerRow, PeerTraffic, QueueStatus, ReceiptRole, ReceiptRow, Snapshot,
    TrafficView,
};

/// A fixed instant for tests: 2023-11-14 22:13:20 UTC.
pub const FIXED_NOW_MS: u64 = 1_700_000_000_000;

/// A deterministic, valid-looking `lob1…` key for index `n`.
pub fn pubkey(n: u64) -> String {
    let mixed = n
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x0123_4567_89ab_cdef);
    format!(
        "lob1{:016x}{:016x}{:016x}{:016x}",
        mixed,
        mixed.rotate_left(17),
        mixed.rotate_left(31),
        mixed.rotate_left(47)
    )
}

fn peer(n: u64, label: Option<&str>, url: &str, health: PeerHealth) -> PeerRow {
    PeerRow {
        pubkey: pubkey(n),
        label: label.map(str::to_string),
        url: url.to_string(),
        transport: None,
        link_addrs: Vec::new(),
        path: Some("http".to_string()),
        rtt_ms: None,
        source: "manual".to_string(),
        models: vec!["llama3.1:8b".to_string()],
        tier: Some("interactive".to_string()),
        health,
        excluded_until_ms: None,
        exclusion_reason: None,
        unreachable_reason: None,
        queue_depth: Some(0),
        latency_ms: Some(120),
        served: 0,
        failed: 0,
        receipts: 0,
        refused_receipts: 0,
        declined: 0,
    }
}

/// One node with a peer in every state (one of them with refused receipts and declines),
/// an exclusion, receipts both ways, credits awaiting confirmation (and who owes them)
/// and a history.
pub fn sample_snapshot(now_ms: u64) -> Snapshot {
    let mut studio = peer(
        1,
        Some("mac-studio"),
        "http://10.0.0.12:17474",
        PeerHealth::Ok,
    );
    studio.models = vec!["llama3.1:8b".into(), "qwen2.5:7b".into()];
    studio.latency_ms = Some(84);
    studio.served = 1_234;
    studio.failed = 2;
    studio.receipts = 1_234;
    // Turned us away once (a rate limit, say): worth a count, not a warning.
    studio.declined = 1;

    let mut gpu = peer(
        2,
        Some("gpu-box"),
        "http://192.168.1.40:17474",
        PeerHealth::Excluded,
    );
    let excluded_until = now_ms + 23_400;
    let reason = "2 consecutive failures: connection refused";
    gpu.excluded_until_ms = Some(excluded_until);
    gpu.exclusion_reason = Some(reason.into());
    gpu.tier = Some("batch".into());
    gpu.queue_depth = None;
    gpu.latency_ms = None;
    gpu.served = 310;
    gpu.failed = 7;
    // A peer that lies and is stingy: some of its receipts were refused (implausible
    // counts, replays) and it often declines our requests.
    gpu.receipts = 303;
    gpu.refused_receipts = 4;
    gpu.declined = 12;

    let mut remote = peer(
        3,
        None,
        "https://worker.example.org",
        PeerHealth::Unreachable,
    );
    remote.unreachable_reason = Some("timed out after 5s".into());
    remote.tier = Some("best-effort".into());
    remote.queue_depth = None;
    remote.latency_ms = None;
    remote.failed = 3;

    let mut laptop = peer(4, Some("laptop"), "http://10.0.0.31:17474", PeerHealth::Ok);
    laptop.queue_depth = Some(2);
    laptop.latency_ms = Some(412);
    laptop.served = 45;
    laptop.receipts = 45;
    // A friend's laptop reached by key, through its home router by hole punching.
    laptop.url = String::new();
    laptop.transport = Some("link".into());
    laptop.path = Some("direct".into());
    laptop.rtt_ms = Some(1.4);

    let mut far = peer(
        5,
        Some("tracker-found-peer-with-a-rather-long-label"),
        "http://203.0.113.9:17474",
        PeerHealth::Unknown,
    );
    far.source = "tracker http://tracker.example:17476".into();
    far.models = vec!["mistral:7b".into(), "phi3:mini".into(), "gemma2:9b".into()];
    far.tier = None;
    far.queue_depth = None;
    far.latency_ms = None;

    let receipts = (0..8u64)
        .map(|i| {
            let earned = i % 3 == 1;
            let (n, label) = if earned {
                (4, "laptop")
            } else {
                (1, "mac-studio")
            };
            ReceiptRow {
                seq: 100 - i,
                completed_at_ms: now_ms - 4_000 - i * 7_000,
                role: if earned {
                    ReceiptRole::Earned
                } else {
                    ReceiptRole::Spent
                },
                peer: pubkey(n),
                peer_label: Some(label.into()),
                model: "llama3.1:8b".into(),
                input_tokens: 120 + i * 31,
                output_tokens: 340 + i * 17,
            }
        })
        .collect();

    Snapshot {
        seq: 100,
        taken_at_ms: now_ms,
        identity: pubkey(0),
        router_url: Some("http://127.0.0.1:17475".into()),
        worker_url: Some("http://127.0.0.1:17474".into()),
        control_url: Some("http://127.0.0.1:17477".into()),
        engine: EngineStatus {
            kind: "ollama".into(),
            url: Some("http://127.0.0.1:11434".into()),
            ok: true,
            models: vec!["llama3.1:8b".into(), "qwen2.5:7b".into()],
            error: None,
        },
        advertising: AdvertisingStatus {
            on: false,
            targets: vec!["http://tracker.example:17476".into()],
            last_heartbeat: None,
        },
        peers: vec![studio, gpu, remote, laptop, far],
        exclusions: vec![ExclusionRow {
            pubkey: pubkey(2),
            label: Some("gpu-box".into()),
            reason: reason.into(),
            until_ms: excluded_until,
        }],
        queue: QueueStatus {
            running: 1,
            waiting: 2,
            concurrency: 4,
            jobs: JobCounts {
                queued: 3,
                running: 1,
                done: 12,
                ..JobCounts::default()
            },
            client_jobs: JobCounts {
                queued: 5,
                done: 40,
                error: 1,
                ..JobCounts::default()
            },
        },
        balance: BalanceView {
            earned: 5_120,
            spent: 3_870,
            // Part of `earned` and `spent`; pending earnings are left out of `net`
            // (5,120 − 320 − 3,870) and so of `available` (the allowance + net).
            pending_earned: 320,
            pending_spent: 150,
            net: 930,
            available: 10_930,
            receipts: 42,
        },
        receipts,
        net_history: (0..60i64)
            .map(|i| (i * 37 % 23) * 40 - 300 + i * 25)
            .collect(),
        rejections: Vec::new(),
        // The requesters behind `pending_earned`: a peer and a stranger.
        owed: OwedView {
            rows: vec![
                OwedRow {
                    pubkey: pubkey(4),
                    label: Some("laptop".into()),
                    tokens: 270,
                    receipts: 2,
                    oldest_completed_at_ms: Some(now_ms - 190_000),
                    trusted: false,
                },
                OwedRow {
                    pubkey: pubkey(7),
                    label: None,
                    tokens: 50,
                    receipts: 1,
                    oldest_completed_at_ms: Some(now_ms - 2 * 3_600_000 - 60_000),
                    trusted: false,
                },
            ],
            cap: Some(50_000),
            partial: false,
            owing: Vec::new(),
        },
        demo: false,
        // mac-studio streams one answer now and the laptop answers whole; both answered
        // in the last minute. gpu-box answered before its exclusion, long ago.
        traffic: TrafficView {
            peers: vec![
                traffic(1, 85.2, Some(84), Some(4_100), 12),
                traffic(4, 4.5, None, Some(1_250), 3),
                traffic(2, 0.0, Some(2_400), Some(31_000), 0),
            ],
            in_flight: vec![
                InFlightRow {
                    model: "llama3.1:8b".into(),
                    peer: pubkey(1),
                    started_at_ms: now_ms - 3_200,
                    stream: true,
                    first_byte_at_ms: Some(now_ms - 3_110),
                    tokens: 212,
                },
                InFlightRow {
                    model: "qwen2.5:7b".into(),
                    peer: pubkey(4),
                    started_at_ms: now_ms - 800,
                    stream: false,
                    first_byte_at_ms: None,
                    tokens: 0,
                },
            ],
            in_flight_total: 2,
            consumed_per_sec: 89.7,
            served_per_sec: 41.3,
        },
        ledger_error: None,
    }
}

fn traffic(
    n: u64,
    tokens_per_sec: f64,
    ttft_ms: Option<u64>,
    answer_ms: Option<u64>,
    answers: u64,
) -> PeerTraffic {
    PeerTraffic {
        pubkey: pubkey(n),
        tokens_per_sec,
        ttft_ms,
        answer_ms,
        answers,
    }
}

/// A node with one peer, streaming: the case the peers panel must not pad with empty
/// rows. Its URL is as long as a loopback one gets, so its port must still show.
pub fn one_peer_snapshot(now_ms: u64) -> Snapshot {
    let mut snap = sample_snapshot(now_ms);
    let mut only = peer(
        1,
        Some("demo-alpha"),
        "http://127.0.0.1:17474",
        PeerHealth::Ok,
    );
    only.models = vec!["synthetic".into()];
    only.served = 57;
    only.receipts = 57;
    snap.peers = vec![only];
    snap.exclusions = Vec::new();
    snap.traffic = TrafficView {
        peers: vec![traffic(1, 118.4, Some(38), Some(1_420), 21)],
        in_flight: vec![InFlightRow {
            model: "synthetic".into(),
            peer: pubkey(1),
            started_at_ms: now_ms - 1_700,
            stream: true,
            first_byte_at_ms: Some(now_ms - 1_662),
            tokens: 96,
        }],
        in_flight_total: 1,
        consumed_per_sec: 118.4,
        served_per_sec: 12.0,
    };
    snap
}

/// A busy node: `peers` peers in mixed states and `receipts` receipts, for the benchmark.
pub fn large_snapshot(now_ms: u64, peers: usize, receipts: usize) -> Snapshot {
    let mut snap = sample_snapshot(now_ms);
    snap.peers = (0..peers as u64)
        .map(|n| {
            let health = match n % 10 {
                0 => PeerHealth::Excluded,
                1 => PeerHealth::Unreachable,
                2 => PeerHealth::Unknown,
                _ => PeerHealth::Ok,
            };
            let label = format!("peer-{n:04}");
            let url = format!(
                "http://10.{}.{}.{}:17474",
                n / 65_536,
                (n / 256) % 256,
                n % 256
            );
            let mut row = peer(n + 10, Some(&label), &url, health);
            if health == PeerHealth::Excluded {
                row.excluded_until_ms = Some(now_ms + 1_000 * (n % 30 + 1));
                row.exclusion_reason = Some("2 consecutive failures".into());
            }
            row.served = n * 7;
            row.failed = n % 5;
            row
        })
        .collect();
    // Every third peer answered in the last minute, a few are busy with our requests now.
    snap.traffic = TrafficView {
        peers: (0..peers as u64)
            .filter(|n| n % 3 == 0)
            .map(|n| {
                let ttft = (n % 2 == 0).then_some(40 + n * 11);
                traffic(
                    n + 10,
                    5.0 + n as f64 * 3.5,
                    ttft,
                    Some(900 + n * 130),
                    n % 7 + 1,
                )
            })
            .collect(),
        in_flight: (0..peers.min(4) as u64)
            .map(|n| InFlightRow {
                model: "llama3.1:8b".into(),
                peer: pubkey(n * 3 + 10),
                started_at_ms: now_ms - 4_000 + n * 900,
                stream: n != 1,
                first_byte_at_ms: (n % 2 == 0).then_some(now_ms - 3_500 + n * 900),
                tokens: if n == 1 { 0 } else { 40 * (4 - n) },
            })
            .collect(),
        in_flight_total: peers.min(4) as u64,
        consumed_per_sec: 512.5,
        served_per_sec: 64.0,
    };
    snap.exclusions = snap
        .peers
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
    snap.receipts = (0..receipts as u64)
        .map(|i| ReceiptRow {
            seq: 10_000 - i,
            completed_at_ms: now_ms - i * 1_500,
            role: if i % 2 == 0 {
                ReceiptRole::Spent
            } else {
                ReceiptRole::Earned
            },
            peer: pubkey(i % 1_000 + 10),
            peer_label: Some(format!("peer-{:04}", i % 1_000)),
            model: "llama3.1:8b".into(),
            input_tokens: 100 + i,
            output_tokens: 300 + i,
        })
        .collect();
    snap.net_history = (0..120i64).map(|i| (i * 53 % 41) * 25 - 500).collect();
    snap
}
