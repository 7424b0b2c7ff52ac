//! Durable before acknowledged, with real processes: a router and a worker on loopback,
//! eight clients sending whole and streaming requests through the router, and the router
//! and the worker SIGKILLed in turn mid-load, each restarted on the same port. No answer
//! may reach a client whole unless its receipt is on disk on both sides first, so
//! afterwards every whole answer has its receipt in the router's ledger, the two
//! ledgers hold the same receipts exactly as signed (what a kill left on the worker's
//! side only is taken by reconciliation), none is pending on the worker, and `ledger
//! verify` passes on both homes.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use support::processes::{self, Pair, is_whole, receipts, unconfirmed, verify};

const CLIENTS: usize = 8;
/// Kills, alternating router and worker.
const KILLS: usize = 6;
/// Load between two kills.
const BETWEEN_KILLS: Duration = Duration::from_millis(1_500);
/// Time for the router's last reconciliation and confirmation rounds (settle 2 s, then
/// a round every half second).
const SETTLED: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_that_reached_clients_survive_sigkills_on_both_sides() {
    support::install_crypto();
    let (worker_home, router_home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (worker_home, router_home) = (worker_home.path(), router_home.path());
    let pair = Pair::new(worker_home, router_home);
    let mut worker = Some(pair.start_worker());
    let mut router = Some(pair.start_router());

    let stop = Arc::new(AtomicBool::new(false));
    let whole = Arc::new(AtomicU64::new(0));
    let (sent, whole_streams) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let client = processes::client();
    let url = pair.chat_url.clone();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        let (whole, sent, whole_streams) = (whole.clone(), sent.clone(), whole_streams.clone());
        clients.push(tokio::spawn(async move {
            let stream = i % 2 == 1;
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                let answer = client
                    .post(&url)
                    .json(&support::chat_body("synthetic", stream))
                    .send()
                    .await;
                let got = match answer {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.text().await.ok().map(|body| (status, body))
                    }
                    Err(_) => None,
                };
                match got {
                    Some((status, body)) if is_whole(stream, status, &body) => {
                        whole.fetch_add(1, Ordering::Relaxed);
                        if stream {
                            whole_streams.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // A server is down or restarting: try again shortly.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    for kill in 0..KILLS {
        tokio::time::sleep(BETWEEN_KILLS).await;
        if kill % 2 == 0 {
            router.take().expect("router running").sigkill();
            router = Some(pair.start_router());
        } else {
            worker.take().expect("worker running").sigkill();
            worker = Some(pair.start_worker());
        }
    }
    tokio::time::sleep(BETWEEN_KILLS).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    // What the last kills left signed on one side only is settled by reconciliation:
    // the router asks the worker again a few seconds after a cut or its own start.
    tokio::time::sleep(SETTLED).await;
    router.take().expect("router running").sigterm();
    worker.take().expect("worker running").sigterm();

    let whole = whole.load(Ordering::Relaxed);
    let whole_streams = whole_streams.load(Ordering::Relaxed);
    let on_router = receipts(router_home);
    let on_worker = receipts(worker_home);
    eprintln!(
        "sent {}, whole {whole} ({whole_streams} streamed), router ledger {}, worker ledger {}",
        sent.load(Ordering::Relaxed),
        on_router.len(),
        on_worker.len()
    );
    assert!(
        whole > 100 && whole_streams > 20,
        "the load ran through the kills: {whole} whole answers, {whole_streams} streamed"
    );
    assert!(
        on_router.len() as u64 >= whole,
        "every whole answer has its receipt on the router: {whole} answers, {} receipts",
        on_router.len()
    );
    for (nonce, signed) in &on_router {
        assert_eq!(
            on_worker.get(nonce),
            Some(signed),
            "the router's receipt {nonce} is in the worker's ledger as signed"
        );
    }
    let worker_only: Vec<_> = on_worker
        .keys()
        .filter(|n| !on_router.contains_key(*n))
        .collect();
    assert!(
        worker_only.is_empty(),
        "receipts the worker holds and the router does not: {worker_only:?}"
    );
    let pending = unconfirmed(worker_home);
    assert!(
        pending.is_empty(),
        "receipts still pending on the worker: {pending:?}"
    );
    verify(router_home);
    verify(worker_home);
}
