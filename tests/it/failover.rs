//! Failover with real worker processes: two workers serve the same model, one is killed
//! (SIGKILL) during a run of requests, every request still succeeds, the dead worker is
//! excluded with a reason, and once it is back it is used again after the cooldown.

use crate::support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::{Clock, ManualClock, SystemClock};
use lobstah::core::ledger::Ledger;
use lobstah::core::protocol::{Identity, PublicKey};
use lobstah::core::store;

struct WorkerProcess {
    child: Child,
    url: String,
    pubkey: PublicKey,
}

impl WorkerProcess {
    /// SIGTERM, then wait: the worker finishes and flushes its ledger, and exits 0.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "worker exits 0 on SIGTERM: {exit:?}");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `lobstah worker start` on the synthetic engine and reads its address from the
/// line it prints once listening.
fn spawn_worker(home: &Path, port: u16) -> WorkerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lobstah"))
        .args([
            "--home",
            home.to_str().unwrap(),
            "worker",
            "start",
            "--engine",
            "synthetic",
        ])
        .args([
            "--synthetic-rate",
            "0",
            "--port",
            &port.to_string(),
            "--concurrency",
            "8",
        ])
        .env("LOBSTAH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the lobstah binary");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("worker prints its address");
    // "worker lob1… listening on http://127.0.0.1:PORT (synthetic engine)"
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        words.len() >= 5 && words[0] == "worker",
        "unexpected first line: {line:?}"
    );
    WorkerProcess {
        pubkey: PublicKey::parse(words[1]).unwrap(),
        url: words[4].to_string(),
        child,
    }
}

/// A chat body naming a modest `max_tokens`: a worker reserves a request's whole output
/// allowance against its requester's credit while it runs, so a new requester with many
/// requests in flight must say how long an answer it wants (the worker's cap otherwise).
fn modest_body(model: &str, stream: bool) -> serde_json::Value {
    let mut body = support::chat_body(model, stream);
    body["max_tokens"] = serde_json::json!(64);
    body
}

async fn chat(
    client: &reqwest::Client,
    router: &str,
    stream: bool,
) -> (u16, Option<PublicKey>, String) {
    let r = client
        .post(format!("{router}/v1/chat/completions"))
        .json(&modest_body("synthetic", stream))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let served_by = r
        .headers()
        .get("x-lobstah-served-by")
        .and_then(|v| PublicKey::parse(v.to_str().unwrap()).ok());
    (status, served_by, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_worker_is_excluded_and_readmitted_after_the_cooldown() {
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = spawn_worker(homes.0.path(), 0);
    let b = spawn_worker(homes.1.path(), 0);
    let clock = ManualClock::new(SystemClock.now_ms());
    let me = Identity::from_seed([9; 32]);
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(a.pubkey, a.url.clone()), (b.pubkey, b.url.clone())],
        Arc::new(clock.clone()),
        |_| {},
    )
    .await;
    let client = support::client();

    // A run of concurrent requests; worker A dies a third of the way through.
    let total = 60;
    let mut tasks = Vec::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..total {
        let (client, url, done) = (client.clone(), router.url.clone(), done_tx.clone());
        tasks.push(tokio::spawn(async move {
            let result = chat(&client, &url, false).await;
            let _ = done.send(i);
            result
        }));
        if i >= 3 {
            // Keep four in flight: one finishes before the next starts. (Waiting once per
            // four let up to ~45 pile up, past the worker's 32 per requester, and B then
            // declined with 429 whenever the engine ran slower than the loop.)
            done_rx.recv().await;
        }
        if i == total / 3 {
            a.child.kill().unwrap();
            a.child.wait().unwrap();
        }
    }
    let mut served: HashMap<PublicKey, usize> = HashMap::new();
    for t in tasks {
        let (status, by, body) = t.await.unwrap();
        assert_eq!(status, 200, "every request succeeds: {body}");
        *served.entry(by.unwrap()).or_default() += 1;
    }
    assert!(
        served.get(&a.pubkey).copied().unwrap_or(0) > 0,
        "A served before it died: {served:?}"
    );
    assert!(
        served.get(&b.pubkey).copied().unwrap_or(0) > total / 2,
        "B took over: {served:?}"
    );
    // Streams after the death are all served by B.
    for _ in 0..5 {
        let (status, by, body) = chat(&client, &router.url, true).await;
        assert_eq!((status, by), (200, Some(b.pubkey)), "{body}");
        assert!(
            body.contains("data: [DONE]") && !body.contains("lobstah-receipt"),
            "{body}"
        );
    }
    let peers = router.service.peers_json();
    let dead = peers
        .iter()
        .find(|p| p["pubkey"] == a.pubkey.to_string())
        .unwrap();
    assert_eq!(dead["state"], "excluded", "{dead}");
    assert!(
        !dead["exclusionReason"].as_str().unwrap().is_empty(),
        "{dead}"
    );

    // A comes back on the same port; it stays out until the cooldown ends.
    let port: u16 = a.url.rsplit(':').next().unwrap().parse().unwrap();
    drop(a);
    let a = spawn_worker(homes.0.path(), port);
    router.service.refresh_capacity(true).await;
    for _ in 0..4 {
        let (status, by, _) = chat(&client, &router.url, false).await;
        assert_eq!((status, by), (200, Some(b.pubkey)), "A is still excluded");
    }
    clock.advance(31_000);
    router.service.refresh_capacity(true).await;
    let mut back = 0;
    for _ in 0..8 {
        let (status, by, _) = chat(&client, &router.url, false).await;
        assert_eq!(status, 200);
        if by == Some(a.pubkey) {
            back += 1;
        }
    }
    assert!(back > 0, "A serves again after the cooldown");

    // Every success was ledgered at the router; B's own ledger agrees with its share.
    router.service.flush_ledger().await;
    let router_receipts = router.ledger.newest(10_000).unwrap();
    let spent_at_b: u64 = router_receipts
        .iter()
        .filter(|r| r.receipt.receipt().worker_pubkey == b.pubkey)
        .map(|r| r.receipt.receipt().total_tokens())
        .sum();
    let from = |worker: PublicKey| {
        router_receipts
            .iter()
            .filter(|r| r.receipt.receipt().worker_pubkey == worker)
            .count()
    };
    let served_by_b = served.get(&b.pubkey).copied().unwrap_or(0) + 5 + 4 + (8 - back);
    let served_by_a = served.get(&a.pubkey).copied().unwrap_or(0) + back;
    assert_eq!(from(b.pubkey), served_by_b, "one receipt per answer from B");
    // A may also have signed (and committed) a receipt for a request in flight when it
    // was killed, whose answer never arrived; back on its port, reconciliation brings
    // that receipt to the router. At most the four requests in flight then.
    let from_a = from(a.pubkey);
    assert!(
        (served_by_a..=served_by_a + 4).contains(&from_a),
        "A's receipts: {from_a}, its answers: {served_by_a}"
    );
    let b_pubkey = b.pubkey;
    b.terminate();
    drop(a);
    let b_ledger = (0..200)
        .find_map(|_| {
            store::open(&homes.1.path().join("lobstah.redb"))
                .ok()
                .or_else(|| {
                    std::thread::sleep(Duration::from_millis(10));
                    None
                })
        })
        .map(|db| Ledger::new(db).unwrap())
        .expect("B's ledger opens after it stopped");
    assert_eq!(b_ledger.balance(&b_pubkey).unwrap().earned, spent_at_b);
    assert_eq!(b_ledger.balance(&me.public()).unwrap().spent, spent_at_b);
    router.stop().await;
}
