//! The chain under load: a fake OpenAI engine, a worker on it and a router knowing that
//! worker, all in this process on loopback, each with its own file-backed ledger; and
//! the check, at the end, that both ledgers hold what the clients were served.

use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::system_clock;
use lobstah::core::engine::OpenAiEngine;
use lobstah::core::ledger::{Ledger, LedgerWriter};
use lobstah::core::links::{Bridge, LinkConfig, LinkEndpoint};
use lobstah::core::peers::{PeerBook, PeerSource};
use lobstah::core::protocol::Identity;
use lobstah::core::router::{RouterConfig, RouterService};
use lobstah::core::store;
use lobstah::core::worker::{Worker, WorkerConfig};
use lobstah::testkit::{FakeConfig, FakeOpenAi};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How the router reaches the worker.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    Http,
    /// By key over a peer link on loopback, through the router's bridge.
    Link,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Http => "HTTP",
            Transport::Link => "a peer link (iroh)",
        }
    }
}

/// The ledgers' database cache: the node's default unless `LOBSTAH_LEDGER_CACHE_MIB` says.
fn cache_mib() -> u64 {
    std::env::var("LOBSTAH_LEDGER_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(store::DEFAULT_CACHE_MIB)
}

/// The fake engine, a worker on it and a router knowing that worker, all on loopback.
pub struct Chain {
    pub engine_url: String,
    pub router_url: String,
    pub router: Arc<RouterService>,
    pub worker: Arc<Worker>,
    pub router_ledger: Ledger,
    pub worker_ledger: Ledger,
    pub shutdown: CancellationToken,
    pub _fake: FakeOpenAi,
    pub _dir: tempfile::TempDir,
}

pub async fn start_chain(worker_slots: Option<usize>, transport: Transport) -> Chain {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = system_clock();
    let shutdown = CancellationToken::new();
    let fake = FakeOpenAi::start_with(FakeConfig::default().without_recording())
        .await
        .expect("fake engine");

    let worker_identity = Identity::generate();
    let router_identity = Identity::generate();
    let over_link = transport == Transport::Link;
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

/// Router receipts == worker receipts == successful requests through the chain, and what
/// the requester spent == what the worker earned, in both ledgers. True on mismatch.
pub async fn verify_ledgers(chain: &Chain, through_chain: u64) -> bool {
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
