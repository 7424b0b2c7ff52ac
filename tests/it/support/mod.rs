//! Shared harness for the integration tests: routers and workers on real loopback
//! listeners bound to port 0, scripted peers that misbehave on purpose, and helpers to
//! wait for a condition with a hard deadline (never a bare sleep).
#![allow(dead_code)]

pub mod bin;
pub mod headless;
pub mod jobs;
pub mod node_js;
pub mod nostr;
pub mod processes;
pub mod python;
pub mod scripted_peer;
pub mod signed;
pub mod tracker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::SharedClock;
use lobstah::core::engine::Engine;
use lobstah::core::ledger::{Ledger, LedgerWriter};
use lobstah::core::peers::{PeerBook, PeerSource};
use lobstah::core::protocol::{Identity, PublicKey};
use lobstah::core::router::{RouterConfig, RouterService};
use lobstah::core::store::{self, Db};
use lobstah::core::worker::{Worker, WorkerConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("local addr");
    (l, addr)
}

/// Polls `check` until it is true or `deadline` passes (then panics with `what`).
pub async fn eventually<F: FnMut() -> bool>(what: &str, deadline: Duration, mut check: F) {
    let until = tokio::time::Instant::now() + deadline;
    while !check() {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub struct TestRouter {
    pub url: String,
    pub service: Arc<RouterService>,
    pub ledger: Ledger,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestRouter {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A router over `db` knowing `peers`, with `configure` applied to its config.
pub async fn start_router(
    identity: Identity,
    db: Db,
    peers: &[(PublicKey, String)],
    clock: SharedClock,
    configure: impl FnOnce(&mut RouterConfig),
) -> TestRouter {
    install_crypto();
    let ledger = Ledger::new(db.clone()).expect("ledger");
    let book = PeerBook::new(db).expect("peer book");
    for (pk, url) in peers {
        book.add(*pk, url, Some("test"), PeerSource::Manual, clock.now_ms())
            .expect("add peer");
    }
    let (writer, _thread) = LedgerWriter::spawn(ledger.clone(), None);
    let mut config = RouterConfig::new(identity, clock);
    configure(&mut config);
    let service = RouterService::new(config, ledger.clone(), writer, book).expect("router");
    let (l, addr) = listener().await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(service.clone().serve(l, shutdown.clone()));
    TestRouter {
        url: format!("http://{addr}"),
        service,
        ledger,
        shutdown,
        task,
    }
}

pub struct TestWorker {
    pub url: String,
    pub pubkey: PublicKey,
    pub worker: Arc<Worker>,
    pub ledger: Ledger,
    pub shutdown: CancellationToken,
}

pub async fn start_worker(
    identity: Identity,
    engine: Arc<dyn Engine>,
    db: Db,
    clock: SharedClock,
) -> TestWorker {
    start_worker_with(identity, engine, db, clock, |_| {}).await
}

/// A worker (with jobs) over `db`, with `configure` applied to its config.
pub async fn start_worker_with(
    identity: Identity,
    engine: Arc<dyn Engine>,
    db: Db,
    clock: SharedClock,
    configure: impl FnOnce(&mut WorkerConfig),
) -> TestWorker {
    install_crypto();
    let ledger = Ledger::new(db).expect("ledger");
    let (writer, _thread) = LedgerWriter::spawn(ledger.clone(), None);
    let pubkey = identity.public();
    let mut config = WorkerConfig::new(identity, engine, clock);
    configure(&mut config);
    let worker = Worker::with_jobs(config, &ledger, writer).expect("worker");
    let (l, addr) = listener().await;
    let shutdown = CancellationToken::new();
    tokio::spawn(worker.clone().serve(l, shutdown.clone()));
    TestWorker {
        url: format!("http://{addr}"),
        pubkey,
        worker,
        ledger,
        shutdown,
    }
}

/// A worker (seed `seed`, system clock, in-memory ledger) on a fake OpenAI engine
/// configured by `fake`, with `configure` applied; the engine lives as long as the
/// returned handle.
pub async fn worker_on(
    seed: u8,
    fake: lobstah::testkit::FakeConfig,
    configure: impl FnOnce(&mut WorkerConfig),
) -> (TestWorker, lobstah::testkit::FakeOpenAi) {
    let fake = lobstah::testkit::FakeOpenAi::start_with(fake)
        .await
        .expect("fake engine");
    let engine =
        Arc::new(lobstah::core::engine::OpenAiEngine::new(fake.url(), None).expect("engine"));
    let worker = start_worker_with(
        Identity::from_seed([seed; 32]),
        engine,
        memory_db(),
        Arc::new(lobstah::core::clock::SystemClock),
        configure,
    )
    .await;
    (worker, fake)
}

pub fn memory_db() -> Db {
    store::in_memory().expect("in-memory db")
}

pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn chat_body(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "say hello"}],
    })
}
