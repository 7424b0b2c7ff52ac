//! Cancelled requests leave the two ledgers equal: clients that reset their connection
//! while a whole answer is being made (the common agent timeout or Ctrl-C) no longer
//! leave the worker holding receipts the router never took. The router routes each
//! whole request to its end in a task of its own and ledgers the receipt the work
//! earned; a stream cut mid-way stops the worker, and what the worker committed anyway
//! is taken back by reconciliation. With real processes, resets land anywhere (before
//! the answer, mid-stream, after the last byte) beside jobs cancelled and fetched late.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{SyntheticConfig, SyntheticEngine};
use lobstah::core::protocol::Identity;
use support::jobs::job_body;
use support::processes::{self, Pair, ledger_receipts, receipts, unconfirmed, verify};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Requests whose clients reset their connection before the answer.
const CANCELLED: usize = 24;

/// Sends one whole chat request by hand, waits `after`, and resets the connection.
async fn send_and_reset(router: std::net::SocketAddr, after: Duration) {
    let socket = send(router, false).await;
    tokio::time::sleep(after).await;
    reset(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_requests_reset_by_their_clients_are_ledgered_on_both_sides() {
    let (worker_id, me) = (Identity::from_seed([91; 32]), Identity::from_seed([92; 32]));
    // 64 tokens at 400 a second: each answer takes about 160 ms.
    let engine = Arc::new(SyntheticEngine::new(SyntheticConfig {
        tokens_per_second: 400.0,
        ..SyntheticConfig::default()
    }));
    let router_key = me.public();
    let worker = support::start_worker_with(
        worker_id,
        engine,
        support::memory_db(),
        Arc::new(SystemClock),
        |c| {
            c.access.trusted = vec![router_key];
            c.concurrency = CANCELLED;
        },
    )
    .await;
    let router = support::start_router(
        me,
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let addr: std::net::SocketAddr = router.url.strip_prefix("http://").unwrap().parse().unwrap();

    let resets: Vec<_> = (0..CANCELLED)
        .map(|i| {
            tokio::spawn(send_and_reset(
                addr,
                Duration::from_millis(20 + 3 * i as u64),
            ))
        })
        .collect();
    for r in resets {
        r.await.unwrap();
    }
    support::eventually(
        "the worker ledgers every answer it made",
        Duration::from_secs(20),
        || worker.ledger.totals().unwrap().receipts == CANCELLED as u64,
    )
    .await;
    let on_worker = ledger_receipts(&worker.ledger);
    support::eventually(
        "the router ledgers the same receipts",
        Duration::from_secs(20),
        || ledger_receipts(&router.ledger) == on_worker,
    )
    .await;
    let rejections = router.service.recent_rejections();
    assert!(rejections.is_empty(), "{rejections:?}");
}

/// Requests sent through the real processes, of which about a third are reset.
const REQUESTS: usize = 144;
const CLIENTS: usize = 12;
/// Jobs submitted; every other one is cancelled at once, the rest fetched late.
const JOBS: usize = 12;

/// How a client ends one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Reads the answer to its end, politely.
    Read { stream: bool },
    /// Resets after sending, before the answer (64 tokens take ~80 ms to make).
    ResetBeforeAnswer { stream: bool, after_ms: u64 },
    /// Resets once the stream has begun, `after_ms` later.
    ResetMidStream { after_ms: u64 },
    /// Resets right after the last byte of the answer.
    ResetAfterLastByte { stream: bool },
}

/// A small deterministic generator (splitmix64): a failing run can be replayed from
/// the seed it prints.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }

    fn end(&mut self) -> End {
        let stream = self.roll(2) == 1;
        match self.roll(6) {
            0..=3 => End::Read { stream },
            4 => End::ResetBeforeAnswer {
                stream,
                after_ms: self.roll(60),
            },
            _ if stream => End::ResetMidStream {
                after_ms: self.roll(100),
            },
            _ => End::ResetAfterLastByte {
                stream: self.roll(2) == 1,
            },
        }
    }
}

/// Sends one chat request by hand on a fresh connection.
async fn send(router: std::net::SocketAddr, stream: bool) -> TcpStream {
    let body = serde_json::to_vec(&support::chat_body("synthetic", stream)).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut socket = TcpStream::connect(router).await.expect("connect");
    socket.write_all(head.as_bytes()).await.expect("send head");
    socket.write_all(&body).await.expect("send body");
    socket
}

/// Reads until `needle` has arrived (true) or the connection ends (false).
async fn read_until(socket: &mut TcpStream, needle: &str) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Duration::from_secs(10);
    loop {
        match tokio::time::timeout(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&seen).contains(needle) {
            return true;
        }
    }
}

fn reset(socket: TcpStream) {
    // Linger 0: close with a reset, as a killed client does.
    socket.set_zero_linger().expect("linger 0");
    drop(socket);
}

/// The last thing each kind of answer sends: a stream's `[DONE]`, a whole answer's
/// usage object (the end of its JSON).
fn last_words(stream: bool) -> &'static str {
    if stream { "data: [DONE]" } else { "\"usage\"" }
}

async fn play(router: std::net::SocketAddr, end: End) {
    match end {
        End::Read { stream } => {
            let mut socket = send(router, stream).await;
            assert!(read_until(&mut socket, last_words(stream)).await, "{end:?}");
        }
        End::ResetBeforeAnswer { stream, after_ms } => {
            let socket = send(router, stream).await;
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            reset(socket);
        }
        End::ResetMidStream { after_ms } => {
            let mut socket = send(router, true).await;
            assert!(read_until(&mut socket, "data: ").await, "the stream began");
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            reset(socket);
        }
        End::ResetAfterLastByte { stream } => {
            let mut socket = send(router, stream).await;
            assert!(read_until(&mut socket, last_words(stream)).await, "{end:?}");
            reset(socket);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resets_at_any_point_and_cancelled_jobs_leave_real_ledgers_equal() {
    support::install_crypto();
    let (worker_home, router_home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (worker_home, router_home) = (worker_home.path(), router_home.path());
    // 800 tokens a second: an answer takes ~80 ms, so a reset can land anywhere in it.
    let pair = Pair::with_rate(worker_home, router_home, "800");
    let worker = pair.start_worker();
    let router = pair.start_router();
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut dice = Dice(seed);
    let plan: Vec<End> = (0..REQUESTS).map(|_| dice.end()).collect();
    let resets = plan
        .iter()
        .filter(|e| !matches!(e, End::Read { .. }))
        .count();

    let base = format!("http://{}", pair.router_addr);
    let client = processes::client();
    let mut jobs = Vec::new();
    for i in 0..JOBS {
        let body = job_body("synthetic", &format!("job {i}"));
        let (code, job) = support::jobs::submit(&client, &base, &body, None, None).await;
        assert_eq!(code, 202, "submit: {job}");
        let id = job["id"].as_str().expect("a job id").to_string();
        let cancelled = i % 2 == 0 && {
            let (code, job) = support::jobs::cancel(&client, &base, &id, None).await;
            // Too late is fine: it then runs to its end and is paid for.
            assert!(code == 200 || code == 409, "cancel: {code} {job}");
            code == 200
        };
        jobs.push((id, cancelled));
    }

    let mut tasks = Vec::new();
    for chunk in plan.chunks(REQUESTS / CLIENTS) {
        let (chunk, addr) = (chunk.to_vec(), pair.router_addr);
        tasks.push(tokio::spawn(async move {
            for end in chunk {
                play(addr, end).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    // Fetched late: well after the jobs ended.
    for (id, cancelled) in &jobs {
        let status = if *cancelled { "cancelled" } else { "done" };
        support::jobs::wait_for(&client, &base, id, None, status, Duration::from_secs(30)).await;
    }
    // Time for the router's reconciliation (2 s after a cut) and confirmation rounds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    router.sigterm();
    worker.sigterm();

    let (on_router, on_worker) = (receipts(router_home), receipts(worker_home));
    eprintln!(
        "{REQUESTS} requests, {resets} reset; router {} receipts, worker {}",
        on_router.len(),
        on_worker.len()
    );
    assert!(resets >= REQUESTS / 5, "a good share was reset: {resets}");
    assert!(
        on_router.len() >= REQUESTS - resets,
        "every answer read to its end is ledgered: {} receipts",
        on_router.len()
    );
    let only_worker: Vec<_> = on_worker
        .keys()
        .filter(|n| !on_router.contains_key(*n))
        .collect();
    let only_router: Vec<_> = on_router
        .keys()
        .filter(|n| !on_worker.contains_key(*n))
        .collect();
    assert!(
        only_worker.is_empty(),
        "on the worker only: {only_worker:?}"
    );
    assert!(
        only_router.is_empty(),
        "on the router only: {only_router:?}"
    );
    assert_eq!(on_router, on_worker, "the same tokens and signatures");
    let pending = unconfirmed(worker_home);
    assert!(pending.is_empty(), "pending on the worker: {pending:?}");
    verify(router_home);
    verify(worker_home);
}
