//! Cancelled requests leave the two ledgers equal: clients that reset their connection
//! while a whole answer is being made (the common agent timeout or Ctrl-C) no longer
//! leave the worker holding receipts the router never took. The router routes each
//! request to its end in a task of its own and ledgers the receipt the work earned.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{SyntheticConfig, SyntheticEngine};
use lobstah::core::protocol::Identity;
use support::processes::ledger_receipts;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Requests whose clients reset their connection before the answer.
const CANCELLED: usize = 24;

/// Sends one whole chat request by hand, waits `after`, and resets the connection.
async fn send_and_reset(router: std::net::SocketAddr, after: Duration) {
    let body = serde_json::to_vec(&support::chat_body("synthetic", false)).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut socket = TcpStream::connect(router).await.expect("connect");
    socket.write_all(head.as_bytes()).await.expect("send head");
    socket.write_all(&body).await.expect("send body");
    tokio::time::sleep(after).await;
    // Linger 0: close with a reset, as a killed client does.
    socket.set_zero_linger().expect("linger 0");
    drop(socket);
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
