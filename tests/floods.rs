//! Floods lock nobody out, with real processes. From 127.0.0.2, a flooder keeps 2,000
//! half-open connections (a request head begun, never finished) on the worker and on
//! the router, reopening each as soon as it is closed, for a minute; meanwhile requests
//! from 127.0.0.1 to both are answered within a second, every time. And while 500 such
//! connections sit on the node's control API, `lobstah status` answers within a second.
//!
//! The whole of 127.0.0.0/8 is loopback on Linux, so a second client address needs no
//! set-up; nothing leaves the machine.
//!
//! Its own test binary, the one beside `tests/it`: the flood keeps both cores busy by
//! design, and cargo runs test binaries one after another, so nothing else is measured
//! against its one-second bound while it runs (beside other tests in `it` it once missed
//! it after one second of flood).

// A test states what it expects, and its helpers are `pub` for the modules that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

#[path = "it/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use support::processes::{Pair, client};

const FLOOD_FOR: Duration = Duration::from_secs(60);
const FLOODING_CONNECTIONS: usize = 2_000;
const CONTROL_FLOOD: usize = 500;
const ANSWER_WITHIN: Duration = Duration::from_secs(1);
const PROBE_EVERY: Duration = Duration::from_millis(200);
/// Half a request head: what a slowloris client sends and never finishes.
const HALF_A_HEAD: &[u8] = b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\nx-wait: ";

/// The two floods take the machine's cores; one at a time, each measures its own.
static ONE_FLOOD_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Counts of what the flooders did.
#[derive(Default)]
struct FloodCount {
    opened: AtomicU64,
    closed_on_us: AtomicU64,
}

/// The flooders' own runtime, on a thread of their own, so the probes' latency is the
/// servers', not the flooding tasks' queue in the test's runtime.
fn flood_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the flood")
}

/// Keeps `n` half-open connections from `source` to `target` until `stop`: each one
/// sends half a head, waits to be closed, and is opened again at once.
fn flood(
    on: &tokio::runtime::Runtime,
    (source, target): ([u8; 4], SocketAddr),
    n: usize,
    stop: &CancellationToken,
    count: &Arc<FloodCount>,
) {
    for _ in 0..n {
        let (stop, count) = (stop.clone(), count.clone());
        on.spawn(async move {
            while !stop.is_cancelled() {
                let Some(mut stream) = open_from(source, target).await else {
                    // Out of ports or file descriptors for a moment: try again shortly.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                count.opened.fetch_add(1, Ordering::Relaxed);
                let _ = stream.write_all(HALF_A_HEAD).await;
                let mut sink = [0u8; 512];
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} } => {
                        count.closed_on_us.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
}

async fn open_from(source: [u8; 4], target: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from((source, 0))).ok()?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(target))
        .await
        .ok()?
        .ok()
}

fn raise_open_files() {
    let needed = (2 * FLOODING_CONNECTIONS + 1024) as u64;
    let limit = lobstah::core::net::fd_limit::raise_to(needed).expect("read the open-file limit");
    assert!(
        !limit.short_of(needed),
        "the flood needs {needed} open files; the hard limit is lower"
    );
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_locks_nobody_else_out() {
    support::install_crypto();
    let _alone = ONE_FLOOD_AT_A_TIME.lock().await;
    raise_open_files();
    let (worker_home, router_home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pair = Pair::new(worker_home.path(), router_home.path());
    let _worker = pair.start_worker();
    let _router = pair.start_router();
    let http = client();
    let worker_url = pair.worker_url.clone();
    let worker_addr: SocketAddr = worker_url.trim_start_matches("http://").parse().unwrap();

    let stop = CancellationToken::new();
    let count = Arc::new(FloodCount::default());
    let flooders = flood_runtime();
    for target in [worker_addr, pair.router_addr] {
        flood(
            &flooders,
            ([127, 0, 0, 2], target),
            FLOODING_CONNECTIONS,
            &stop,
            &count,
        );
    }
    // Let the flood reach its size before the first probe.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut held_at_most = 0.0f64;
    while started.elapsed() < FLOOD_FOR {
        let asked = Instant::now();
        let chat = http
            .post(&pair.chat_url)
            .json(&json!({"model": "synthetic", "max_tokens": 8,
                "messages": [{"role": "user", "content": "still there?"}]}))
            .timeout(ANSWER_WITHIN)
            .send()
            .await;
        let chat_status = chat.map(|r| r.status().as_u16());
        let through_router = asked.elapsed();
        let asked = Instant::now();
        let metrics = http
            .get(format!("{worker_url}/metrics"))
            .timeout(ANSWER_WITHIN)
            .send()
            .await;
        let direct = asked.elapsed();
        let metrics = match metrics {
            Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
            other => panic!(
                "the worker did not answer 127.0.0.1 within {ANSWER_WITHIN:?} after {:?} of flood: {other:?}",
                started.elapsed()
            ),
        };
        assert_eq!(
            chat_status.as_ref().ok(),
            Some(&200),
            "the router did not answer 127.0.0.1 within {ANSWER_WITHIN:?} after {:?} of flood: {chat_status:?}",
            started.elapsed()
        );
        held_at_most = held_at_most.max(metric(&metrics, "lobstah_worker_connections_open "));
        latencies.extend([through_router, direct]);
        tokio::time::sleep(PROBE_EVERY).await;
    }
    stop.cancel();
    flooders.shutdown_background();
    latencies.sort();

    let metrics = http
        .get(format!("{worker_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = metric(
        &metrics,
        "lobstah_worker_connections_refused_total{reason=\"over_address_bound\"}",
    );
    let cut = metric(
        &metrics,
        "lobstah_worker_connections_refused_total{reason=\"head_timeout\"}",
    );
    let (opened, closed) = (
        count.opened.load(Ordering::Relaxed),
        count.closed_on_us.load(Ordering::Relaxed),
    );
    println!(
        "{} probes, median {:?}, slowest {:?}; flood opened {opened} connections, {closed} closed on it; \
         worker: {refused} refused over the address bound, {cut} cut at the head deadline, at most {held_at_most} open",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    // The flood was real: it held the worker's share for one address and kept coming.
    assert!(
        held_at_most >= 256.0,
        "the flood never held the worker's share"
    );
    assert!(
        refused > 1_000.0,
        "few flood connections reached the worker"
    );
    assert!(
        cut >= 256.0,
        "half-open connections were not cut at the head deadline"
    );
    assert!(opened > (4 * FLOODING_CONNECTIONS) as u64);
}

/// A headless node on the synthetic engine, killed when dropped.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(home: &Path) -> (Node, SocketAddr) {
    let child = support::bin::lobstah(home)
        .args(["--headless", "--engine", "synthetic"])
        .args(["--router-port", "0", "--worker-port", "0"])
        .env("LOBSTAH_CONTROL_PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lobstah --headless");
    let node = Node(child);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let info = std::fs::read(home.join("node.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(url) = info.as_ref().and_then(|v| v["control_url"].as_str()) {
            let addr = url
                .trim_start_matches("http://")
                .parse()
                .expect("an address");
            return (node, addr);
        }
        assert!(Instant::now() < until, "node.json did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_while_programs_without_the_token_sit_on_the_control_api() {
    let _alone = ONE_FLOOD_AT_A_TIME.lock().await;
    raise_open_files();
    let home = tempfile::tempdir().unwrap();
    let (_node, control) = start_node(home.path());
    let stop = CancellationToken::new();
    let count = Arc::new(FloodCount::default());
    let flooders = flood_runtime();
    flood(
        &flooders,
        ([127, 0, 0, 1], control),
        CONTROL_FLOOD,
        &stop,
        &count,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut runs = 0;
    // Long enough for the flood's connections to be cut and reopened several times.
    while started.elapsed() < Duration::from_secs(10) {
        let home = home.path().to_path_buf();
        let asked = Instant::now();
        let (ok, out) =
            tokio::task::spawn_blocking(move || support::bin::run(&home, &["status", "--json"]))
                .await
                .unwrap();
        let took = asked.elapsed();
        assert!(ok, "status failed during the flood: {out}");
        assert!(out.contains("\"identity\""), "{out}");
        assert!(
            took < ANSWER_WITHIN,
            "status took {took:?} with {CONTROL_FLOOD} connections on the control API"
        );
        slowest = slowest.max(took);
        runs += 1;
        tokio::time::sleep(PROBE_EVERY).await;
    }
    stop.cancel();
    flooders.shutdown_background();
    let closed = count.closed_on_us.load(Ordering::Relaxed);
    println!(
        "{runs} status runs, slowest {slowest:?}; the flood opened {} connections, {closed} were cut",
        count.opened.load(Ordering::Relaxed)
    );
    // The connections without the token were cut, and came back: a real flood.
    assert!(closed >= CONTROL_FLOOD as u64, "the flood was never cut");
}
