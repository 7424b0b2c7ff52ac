//! Load benchmark: N concurrent keep-alive clients against the whole chain
//! (router → worker → fake OpenAI engine) and against the fake engine directly, so the
//! chain's cost shows as a ratio. Run with `cargo bench --bench load`.
//!
//! Everything runs in this process on loopback: the fake engine ([`FakeOpenAi`], no
//! pacing), a worker and a router, each with its own file-backed redb ledger in a temp
//! directory and its own group-commit [`LedgerWriter`], so every receipt is signed,
//! verified and made durable on both sides exactly as in production. At the end the
//! ledgers are checked against what the clients saw; a mismatch fails the run.
//!
//! Knobs (environment): `LOAD_SECS` (measured seconds per configuration, default 5),
//! `LOAD_WARMUP_MS` (default 500), `LOAD_CLIENTS` (default `1,8,64`), `LOAD_ONLY`
//! (`direct` or `chain`, for profiling one side), `LOAD_STREAM` (`0` or `1`, one mode
//! only), `LOAD_WORKER_SLOTS` (the worker's engine slots, default as shipped),
//! `LOBSTAH_LEDGER_CACHE_MIB` (both ledgers' database cache, default as shipped),
//! `LOAD_TRANSPORT` (`http`, the default; `link`: the router reaches the worker by key
//! over a peer link on loopback, through its bridge, instead of over TCP; `both`: the
//! two chains side by side, see `transports`), `LOAD_ROUNDS` (rounds per configuration
//! when comparing transports, default 3).

// A test states what it expects, and its helpers are `pub` for the files that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

#[path = "load/chain.rs"]
mod chain;
#[path = "load/measure.rs"]
mod measure;
#[path = "load/transports.rs"]
mod transports;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chain::{Transport, start_chain, verify_ledgers};
use lobstah::core::protocol::{Identity, Receipt, SignedReceipt, new_nonce};
use measure::{Outcome, run};

/// Targets from the issue: what the chain must sustain relative to the bare engine.
const TARGET_RATIO_AT_64: f64 = 0.25;
const TARGET_ADDED_P50_AT_1_MS: f64 = 0.5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Direct,
    Chain,
}

pub struct Settings {
    warmup: Duration,
    measure: Duration,
    clients: Vec<usize>,
    targets: Vec<Target>,
    modes: Vec<bool>,
    worker_slots: Option<usize>,
    /// None: compare both transports.
    transport: Option<Transport>,
    rounds: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        let clients = std::env::var("LOAD_CLIENTS")
            .unwrap_or_else(|_| "1,8,64".into())
            .split(',')
            .map(|c| {
                c.trim()
                    .parse()
                    .expect("LOAD_CLIENTS: comma-separated counts")
            })
            .collect();
        let targets = match std::env::var("LOAD_ONLY").as_deref() {
            Ok("direct") => vec![Target::Direct],
            Ok("chain") => vec![Target::Chain],
            _ => vec![Target::Direct, Target::Chain],
        };
        let modes = match std::env::var("LOAD_STREAM").as_deref() {
            Ok("0") => vec![false],
            Ok("1") => vec![true],
            _ => vec![false, true],
        };
        Settings {
            warmup: Duration::from_millis(env_or("LOAD_WARMUP_MS", 500)),
            measure: Duration::from_secs_f64(env_or("LOAD_SECS", 5.0)),
            clients,
            targets,
            modes,
            worker_slots: std::env::var("LOAD_WORKER_SLOTS")
                .ok()
                .and_then(|v| v.parse().ok()),
            transport: match std::env::var("LOAD_TRANSPORT").as_deref() {
                Ok("link") => Some(Transport::Link),
                Ok("both") => None,
                Ok("http") | Err(_) => Some(Transport::Http),
                Ok(other) => panic!("LOAD_TRANSPORT: http, link or both, not {other:?}"),
            },
            rounds: env_or("LOAD_ROUNDS", 3).max(1),
        }
    }
}

/// What the cryptography alone costs per request through the chain (one signature by
/// the worker, one verification by the router), for reading the table: no amount of
/// HTTP tuning takes the chain below it.
pub fn crypto_floor() {
    let worker = Identity::generate();
    let receipt = Receipt {
        version: 1,
        job_id: "6f1c1c1e-8a43-4d4f-9d0a-1d2e3f405060".into(),
        nonce: new_nonce(),
        requester_pubkey: Identity::generate().public(),
        worker_pubkey: worker.public(),
        model: "fake-model".into(),
        input_tokens: 3,
        output_tokens: 7,
        started_at: 1_800_000_000_000,
        completed_at: 1_800_000_000_001,
    };
    const N: u32 = 300;
    let t = Instant::now();
    let mut signed = None;
    for _ in 0..N {
        signed = Some(SignedReceipt::sign(receipt.clone(), &worker).expect("sign"));
    }
    let sign = t.elapsed() / N;
    let signed = signed.expect("signed");
    let t = Instant::now();
    for _ in 0..N {
        signed.verify_signature().expect("verify");
    }
    let verify = t.elapsed() / N;
    println!(
        "receipt crypto on this machine: sign {:.0} µs, verify {:.0} µs (canonical JSON included)",
        sign.as_secs_f64() * 1e6,
        verify.as_secs_f64() * 1e6
    );
}

fn cell(o: Option<&Outcome>) -> String {
    match o {
        Some(o) => format!(
            "{:>9.0} {:>7.2} {:>7.2} {:>6.0}",
            o.rps(),
            o.percentile_ms(0.5),
            o.percentile_ms(0.99),
            o.cpu_per_request_us()
        ),
        None => format!("{:>9} {:>7} {:>7} {:>6}", "-", "-", "-", "-"),
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let failed = match settings.transport {
        Some(transport) => runtime.block_on(bench(settings, transport)),
        None => runtime.block_on(transports::compare(settings)),
    };
    if failed {
        std::process::exit(1);
    }
}

/// Runs every configuration, prints the table, verifies the ledgers; true on failure.
async fn bench(s: Settings, transport: Transport) -> bool {
    let chain = start_chain(s.worker_slots, transport).await;
    let through_chain = Arc::new(AtomicU64::new(0));
    let direct_ok = Arc::new(AtomicU64::new(0));
    println!(
        "load: {} s measured per configuration after {} ms warm-up; {} cores; worker slots {}; router → worker over {}\n\
         (cpu µs: process CPU time per request, clients and servers included)",
        s.measure.as_secs_f64(),
        s.warmup.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        s.worker_slots
            .map_or("default".to_string(), |n| n.to_string()),
        transport.label(),
    );
    crypto_floor();
    println!(
        "{:<10} {:>7} | {:>9} {:>7} {:>7} {:>6} | {:>9} {:>7} {:>7} {:>6} | {:>6} {:>8} {:>6}",
        "mode",
        "clients",
        "direct/s",
        "p50 ms",
        "p99 ms",
        "cpu µs",
        "chain/s",
        "p50 ms",
        "p99 ms",
        "cpu µs",
        "ratio",
        "+p50 ms",
        "errors"
    );
    let mut results = Vec::new();
    for &stream in &s.modes {
        for &clients in &s.clients {
            let direct = if s.targets.contains(&Target::Direct) {
                Some(run(&chain.engine_url, stream, clients, &s, &direct_ok).await)
            } else {
                None
            };
            let routed = if s.targets.contains(&Target::Chain) {
                Some(run(&chain.router_url, stream, clients, &s, &through_chain).await)
            } else {
                None
            };
            let (ratio, added) = match (&direct, &routed) {
                (Some(d), Some(c)) => (
                    format!("{:>5.0}%", 100.0 * c.rps() / d.rps()),
                    format!("{:>8.2}", c.percentile_ms(0.5) - d.percentile_ms(0.5)),
                ),
                _ => (format!("{:>6}", "-"), format!("{:>8}", "-")),
            };
            let errors =
                direct.as_ref().map_or(0, |o| o.errors) + routed.as_ref().map_or(0, |o| o.errors);
            println!(
                "{:<10} {:>7} | {} | {} | {} {} {:>6}",
                if stream { "stream" } else { "whole" },
                clients,
                cell(direct.as_ref()),
                cell(routed.as_ref()),
                ratio,
                added,
                errors
            );
            results.push((stream, clients, direct, routed));
        }
    }

    println!();
    for (stream, clients, direct, routed) in &results {
        let (Some(d), Some(c)) = (direct, routed) else {
            continue;
        };
        let mode = if *stream { "stream" } else { "whole" };
        if *clients == 64 {
            let ratio = c.rps() / d.rps();
            let verdict = if ratio >= TARGET_RATIO_AT_64 {
                "met"
            } else {
                "MISSED"
            };
            println!(
                "target {mode} @64: chain ≥ {:.0}% of direct: {:.1}% — {verdict}",
                TARGET_RATIO_AT_64 * 100.0,
                ratio * 100.0
            );
        }
        if *clients == 1 {
            let added = c.percentile_ms(0.5) - d.percentile_ms(0.5);
            let verdict = if added <= TARGET_ADDED_P50_AT_1_MS {
                "met"
            } else {
                "MISSED"
            };
            println!(
                "target {mode} @1: chain adds ≤ {TARGET_ADDED_P50_AT_1_MS} ms at p50: {added:.3} ms — {verdict}"
            );
        }
    }

    verify_ledgers(&chain, through_chain.load(Ordering::Relaxed)).await
}
