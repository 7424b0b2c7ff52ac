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
//! `LOAD_TRANSPORT` (`http`, the default, or `link`: the router reaches the worker by
//! key over a peer link on loopback, through its bridge, instead of over TCP).

// A test states what it expects, and its helpers are `pub` for the files that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lobstah::core::clock::system_clock;
use lobstah::core::engine::OpenAiEngine;
use lobstah::core::ledger::{Ledger, LedgerWriter};
use lobstah::core::links::{Bridge, LinkConfig, LinkEndpoint};
use lobstah::core::peers::{PeerBook, PeerSource};
use lobstah::core::protocol::{Identity, Receipt, SignedReceipt, new_nonce};
use lobstah::core::router::{RouterConfig, RouterService};
use lobstah::core::store;
use lobstah::core::worker::{Worker, WorkerConfig};
use lobstah::testkit::{FakeConfig, FakeOpenAi};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The ledgers' database cache: the node's default unless `LOBSTAH_LEDGER_CACHE_MIB` says.
fn cache_mib() -> u64 {
    std::env::var("LOBSTAH_LEDGER_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(store::DEFAULT_CACHE_MIB)
}

/// Targets from the issue: what the chain must sustain relative to the bare engine.
const TARGET_RATIO_AT_64: f64 = 0.25;
const TARGET_ADDED_P50_AT_1_MS: f64 = 0.5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Direct,
    Chain,
}

/// What one configuration measured.
struct Outcome {
    /// Successful requests started in the measured window.
    measured: u64,
    elapsed: Duration,
    /// Per measured request, microseconds, sorted.
    latencies_us: Vec<u32>,
    errors: u64,
    /// Process CPU time (all threads) spent during the measured window.
    cpu: Option<Duration>,
}

impl Outcome {
    fn rps(&self) -> f64 {
        self.measured as f64 / self.elapsed.as_secs_f64()
    }

    /// Microseconds of CPU per measured request (clients, servers and ledgers together).
    fn cpu_per_request_us(&self) -> f64 {
        match self.cpu {
            Some(cpu) if self.measured > 0 => cpu.as_secs_f64() * 1e6 / self.measured as f64,
            _ => f64::NAN,
        }
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

struct Settings {
    warmup: Duration,
    measure: Duration,
    clients: Vec<usize>,
    targets: Vec<Target>,
    modes: Vec<bool>,
    worker_slots: Option<usize>,
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
        }
    }
}

/// The fake engine, a worker on it and a router knowing that worker, all on loopback.
struct Chain {
    engine_url: String,
    router_url: String,
    router: Arc<RouterService>,
    worker: Arc<Worker>,
    router_ledger: Ledger,
    worker_ledger: Ledger,
    shutdown: CancellationToken,
    _fake: FakeOpenAi,
    _dir: tempfile::TempDir,
}

async fn start_chain(worker_slots: Option<usize>) -> Chain {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = system_clock();
    let shutdown = CancellationToken::new();
    let fake = FakeOpenAi::start_with(FakeConfig::default().without_recording())
        .await
        .expect("fake engine");

    let worker_identity = Identity::generate();
    let router_identity = Identity::generate();
    let over_link = std::env::var("LOAD_TRANSPORT").as_deref() == Ok("link");
    let loopback = LinkConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        ..LinkConfig::default()
    };
    let (worker_link, router_link) = if over_link {
        (
            Some(
                LinkEndpoint::bind(&worker_identity, &loopback)
                    .await
                    .expect("worker link"),
            ),
            Some(
                LinkEndpoint::bind(&router_identity, &loopback)
                    .await
                    .expect("router link"),
            ),
        )
    } else {
        (None, None)
    };
    let worker_pk = worker_identity.public();
    let worker_ledger = Ledger::new(
        store::open_with_cache(&dir.path().join("worker.redb"), cache_mib()).expect("worker db"),
    )
    .expect("worker ledger");
    let (worker_writer, _) = LedgerWriter::spawn(worker_ledger.clone(), None);
    let engine = Arc::new(OpenAiEngine::new(fake.url(), None).expect("engine adapter"));
    let mut config = WorkerConfig::new(worker_identity, engine, clock.clone());
    if let Some(slots) = worker_slots {
        config.concurrency = slots;
    }
    // The bench measures routing, not credit: the router is a friend of the worker.
    config.access.trusted = vec![router_identity.public()];
    // Nor the per-requester hog limits: the one router here is every client's requester.
    config.access.per_requester_concurrency = 0;
    config.access.per_requester_per_minute = 100_000_000;
    config.access.per_requester_burst = 1_000_000;
    let worker = Worker::new(config, &worker_ledger, worker_writer);
    let worker_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind worker");
    let worker_url = format!(
        "http://{}",
        worker_listener.local_addr().expect("worker addr")
    );
    tokio::spawn(worker.clone().serve(worker_listener, shutdown.clone()));
    if let Some(link) = &worker_link {
        tokio::spawn(worker.clone().serve_links(link.clone(), shutdown.clone()));
    }

    let router_db =
        store::open_with_cache(&dir.path().join("router.redb"), cache_mib()).expect("router db");
    let router_ledger = Ledger::new(router_db.clone()).expect("router ledger");
    let book = PeerBook::new(router_db).expect("peer book");
    match &worker_link {
        Some(link) => book.add_linked(
            worker_pk,
            &link.bound_sockets(),
            Some("bench"),
            PeerSource::Manual,
            clock.now_ms(),
        ),
        None => book.add(
            worker_pk,
            &worker_url,
            Some("bench"),
            PeerSource::Manual,
            clock.now_ms(),
        ),
    }
    .expect("add the worker as a peer");
    let (router_writer, _) = LedgerWriter::spawn(router_ledger.clone(), None);
    let router = RouterService::new(
        RouterConfig::new(router_identity, clock),
        router_ledger.clone(),
        router_writer,
        book,
    )
    .expect("router");
    let router_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind router");
    let router_url = format!(
        "http://{}",
        router_listener.local_addr().expect("router addr")
    );
    tokio::spawn(router.clone().serve(router_listener, shutdown.clone()));
    if let Some(link) = router_link {
        let bridge =
            Bridge::new(link, &dir.path().join("links"), Duration::from_secs(5)).expect("bridge");
        router.attach_links(Arc::new(bridge));
    }

    Chain {
        engine_url: fake.url().to_string(),
        router_url,
        router,
        worker,
        router_ledger,
        worker_ledger,
        shutdown,
        _fake: fake,
        _dir: dir,
    }
}

fn body(stream: bool) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "model": "fake-model",
            "stream": stream,
            "messages": [{"role": "user", "content": "say hello"}],
        })
        .to_string(),
    )
}

/// One request, read to the end. True when it succeeded as a client would judge it: a
/// 200 with a JSON body, or a 200 stream that ends with `[DONE]` and carries no receipt.
async fn one(client: &reqwest::Client, url: &str, body: Bytes, stream: bool) -> bool {
    let response = match client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => return false,
    };
    if !response.status().is_success() {
        return false;
    }
    let Ok(bytes) = response.bytes().await else {
        return false;
    };
    if stream {
        bytes.ends_with(b"data: [DONE]\n\n")
            && !bytes.windows(17).any(|w| w == b":lobstah-receipt:")
    } else {
        bytes.first() == Some(&b'{')
    }
}

/// `clients` tasks, each with its own keep-alive connection, send requests back to
/// back for `warmup + measure`; only requests started after the warm-up are measured.
/// `succeeded` counts every success, warm-up included (each one is a receipt).
async fn run(
    url: &str,
    stream: bool,
    clients: usize,
    s: &Settings,
    succeeded: &Arc<AtomicU64>,
) -> Outcome {
    let url = Arc::new(format!("{url}/v1/chat/completions"));
    let body = body(stream);
    // Building a client loads the platform's root certificates (milliseconds each), so
    // it happens before the clock starts.
    let connections: Vec<reqwest::Client> = (0..clients)
        .map(|_| {
            reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client")
        })
        .collect();
    let start = Instant::now();
    let measure_from = start + s.warmup;
    let until = measure_from + s.measure;
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|client| {
            let (url, body, succeeded) = (url.clone(), body.clone(), succeeded.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4096);
                let mut errors = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= until {
                        break;
                    }
                    let ok = one(&client, &url, body.clone(), stream).await;
                    let took = t0.elapsed();
                    if ok {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors += 1;
                    }
                    if t0 >= measure_from && ok {
                        latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = process_cpu();
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("client task");
        latencies_us.extend(l);
        errors += e;
    }
    let elapsed = measure_from.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    latencies_us.sort_unstable();
    Outcome {
        measured: latencies_us.len() as u64,
        elapsed,
        latencies_us,
        errors,
        cpu,
    }
}

/// CPU time this process has used (all threads, user + system), from /proc on Linux.
/// Other engineers' builds share the machine, so throughput swings; CPU time per request
/// is the steadier yardstick when comparing two versions of the code.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// What the cryptography alone costs per request through the chain (one signature by
/// the worker, one verification by the router), for reading the table: no amount of
/// HTTP tuning takes the chain below it.
fn crypto_floor() {
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
    let failed = runtime.block_on(bench(settings));
    if failed {
        std::process::exit(1);
    }
}

/// Runs every configuration, prints the table, verifies the ledgers; true on failure.
async fn bench(s: Settings) -> bool {
    let chain = start_chain(s.worker_slots).await;
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
        if std::env::var("LOAD_TRANSPORT").as_deref() == Ok("link") {
            "a peer link (iroh)"
        } else {
            "HTTP"
        },
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

/// Router receipts == worker receipts == successful requests through the chain, and what
/// the requester spent == what the worker earned, in both ledgers. True on mismatch.
async fn verify_ledgers(chain: &Chain, through_chain: u64) -> bool {
    chain.router.flush_ledger().await;
    chain.worker.flush_ledger().await;
    let router_pk = chain.router.pubkey();
    let worker_pk = chain.worker.pubkey();
    let router_totals = chain.router_ledger.totals().expect("router totals");
    let worker_totals = chain.worker_ledger.totals().expect("worker totals");
    let spent = chain
        .router_ledger
        .balance(&router_pk)
        .expect("router balance")
        .spent;
    let earned = chain
        .worker_ledger
        .balance(&worker_pk)
        .expect("worker balance")
        .earned;
    let earned_in_router = chain
        .router_ledger
        .balance(&worker_pk)
        .expect("balance")
        .earned;
    let spent_in_worker = chain
        .worker_ledger
        .balance(&router_pk)
        .expect("balance")
        .spent;
    let rejections = chain.router.recent_rejections();
    println!(
        "\nledgers: {through_chain} requests through the chain; router {} receipts, worker {} receipts; \
         requester spent {spent} tokens, worker earned {earned}",
        router_totals.receipts, worker_totals.receipts
    );
    let mut problems = Vec::new();
    if router_totals.receipts != through_chain || worker_totals.receipts != through_chain {
        problems.push("receipt counts differ from successful requests".to_string());
    }
    if spent != earned
        || earned_in_router != earned
        || spent_in_worker != spent
        || spent == 0 && through_chain > 0
    {
        problems.push(format!(
            "tokens disagree: router spent {spent} / worker earned {earned_in_router} (router ledger), \
             worker earned {earned} / requester spent {spent_in_worker} (worker ledger)"
        ));
    }
    if !rejections.is_empty() {
        problems.push(format!(
            "the router refused {} receipts: {:?}",
            rejections.len(),
            rejections.first()
        ));
    }
    chain.shutdown.cancel();
    if problems.is_empty() {
        println!("ledgers agree");
        false
    } else {
        for p in &problems {
            eprintln!("LEDGER CHECK FAILED: {p}");
        }
        true
    }
}
