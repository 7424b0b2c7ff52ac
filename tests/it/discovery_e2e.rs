//! Discovery end to end with real processes: a tracker, two workers that advertise to it
//! (`worker start --announce-to`), and a headless node whose router syncs from it and
//! serves through them. A worker that shuts down withdraws at once, and the next sync
//! takes it out of the router's candidates.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lobstah::core::discovery::nostr::discover;
use lobstah::core::protocol::PublicKey;
use serde_json::Value;
use support::bin::{lobstah, run};
use support::nostr::{IDLE, STEP};
use support::tracker::TrackerProcess;

const DEADLINE: Duration = Duration::from_secs(30);

/// A child that is killed if the test ends early.
struct Process(Child);

impl Process {
    fn terminate_and_wait(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < until, "the process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `worker start` on the synthetic engine, advertising to `tracker` as `label`.
fn spawn_worker(home: &Path, tracker: &str, label: &str) -> (Process, PublicKey) {
    spawn_worker_with(home, &["--announce-to", tracker, "--announce-label", label])
}

/// `worker start` on the synthetic engine with `advertise` flags.
fn spawn_worker_with(home: &Path, advertise: &[&str]) -> (Process, PublicKey) {
    let mut child = lobstah(home)
        .args(["worker", "start", "--engine", "synthetic"])
        .args(["--synthetic-rate", "0", "--port", "0"])
        .args(advertise)
        .env("LOBSTAH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lobstah worker");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the worker prints its address");
    let process = Process(child);
    let pubkey = line
        .split_whitespace()
        .nth(1)
        .and_then(|w| PublicKey::parse(w).ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (process, pubkey)
}

/// A headless node that may book peers on this machine (the whole grid is on loopback).
fn spawn_node(home: &Path, tracker: &str) -> (Process, Value) {
    let child = lobstah(home)
        .args([
            "--headless",
            "--engine",
            "synthetic",
            "--synthetic-rate",
            "0",
        ])
        .args([
            "--router-port",
            "0",
            "--worker-port",
            "0",
            "--control-port",
            "0",
        ])
        .args(["--tracker", tracker, "--allow-local-peers"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lobstah --headless");
    let process = Process(child);
    let until = Instant::now() + DEADLINE;
    let info = loop {
        if let Some(v) = std::fs::read(home.join("node.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            break v;
        }
        assert!(Instant::now() < until, "node.json did not appear");
        std::thread::sleep(Duration::from_millis(20));
    };
    (process, info)
}

async fn tracker_pubkeys(http: &reqwest::Client, tracker: &str) -> Vec<String> {
    let peers: Value = http
        .get(format!("{tracker}/peers"))
        .send()
        .await
        .expect("tracker answers")
        .json()
        .await
        .expect("json");
    peers["peers"]
        .as_array()
        .expect("peers list")
        .iter()
        .filter_map(|p| p["announcement"]["pubkey"].as_str().map(str::to_string))
        .collect()
}

/// Sends `n` chat requests through the router; once the node has ledgered all
/// `total` receipts so far, returns the worker of each of the newest `n`.
async fn serve(
    http: &reqwest::Client,
    router: &str,
    node_home: &Path,
    n: usize,
    total: usize,
) -> Vec<String> {
    for _ in 0..n {
        let response = http
            .post(format!("{router}/v1/chat/completions"))
            .json(&support::chat_body("synthetic", false))
            .send()
            .await
            .expect("router answers");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    let until = Instant::now() + DEADLINE;
    loop {
        let (ok, text) = run(node_home, &["receipts", "--json", "--limit", "100"]);
        assert!(ok, "{text}");
        let rows: Vec<Value> = serde_json::from_str(&text).expect("receipts json");
        if rows.len() >= total {
            return rows
                .iter()
                .filter_map(|r| r["peer"].as_str().map(str::to_string))
                .take(n)
                .collect();
        }
        if Instant::now() > until {
            let (_, status) = run(node_home, &["status", "--json"]);
            panic!(
                "{} of {total} receipts ledgered; status: {status}",
                rows.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_workers_are_synced_served_and_dropped_when_they_leave() {
    let homes: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let tracker = TrackerProcess::spawn(homes[0].path(), &["--port", "0"]);
    let (mut w1, pk1) = spawn_worker(homes[1].path(), &tracker.url, "w1");
    let (_w2, pk2) = spawn_worker(homes[2].path(), &tracker.url, "w2");
    let http = support::client();
    let until = Instant::now() + DEADLINE;
    while tracker_pubkeys(&http, &tracker.url).await.len() < 2 {
        assert!(Instant::now() < until, "both workers announce");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let node_home = homes[3].path();
    let (mut node, info) = spawn_node(node_home, &tracker.url);
    let router = info["router_url"].as_str().expect("router url").to_string();
    let (ok, text) = run(node_home, &["peers", "sync", &tracker.url]);
    assert!(ok, "{text}");
    assert!(text.contains("2 added"), "{text}");
    let (_, listing) = run(node_home, &["peers", "list", "--json"]);
    let peers: Vec<Value> = serde_json::from_str(&listing).expect("peers json");
    assert_eq!(peers.len(), 2, "{listing}");
    assert!(
        peers
            .iter()
            .all(|p| p["source"] == format!("tracker {}", tracker.url)),
        "{listing}"
    );

    let served = serve(&http, &router, node_home, 6, 6).await;
    let known = [pk1.to_string(), pk2.to_string()];
    assert_eq!(served.len(), 6);
    assert!(served.iter().all(|p| known.contains(p)), "{served:?}");

    // w1 leaves: by the time it has exited, the tracker no longer lists it.
    assert_eq!(w1.terminate_and_wait(), Some(0));
    assert_eq!(
        tracker_pubkeys(&http, &tracker.url).await,
        [pk2.to_string()]
    );
    let (ok, text) = run(node_home, &["peers", "sync", &tracker.url]);
    assert!(ok && text.contains("1 removed"), "{text}");
    let (_, listing) = run(node_home, &["peers", "list", "--json"]);
    let peers: Vec<Value> = serde_json::from_str(&listing).expect("peers json");
    assert_eq!(peers.len(), 1, "{listing}");
    assert_eq!(peers[0]["pubkey"], pk2.to_string());

    let served = serve(&http, &router, node_home, 3, 9).await;
    assert_eq!(
        served,
        vec![pk2.to_string(); 3],
        "only w2 is a candidate now"
    );
    assert_eq!(node.terminate_and_wait(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_published_on_nostr_is_discovered_and_dropped_when_it_leaves() {
    let (_relay, relay) = support::nostr::mock_relay().await;
    let worker_home = tempfile::tempdir().expect("dir");
    let (mut worker, pubkey) = spawn_worker_with(
        worker_home.path(),
        &[
            "--publish-via-nostr",
            "--nostr-relay",
            &relay,
            "--announce-label",
            "nw",
        ],
    );
    // The worker prints its address before it has connected to the relay.
    let until = Instant::now() + DEADLINE;
    loop {
        let seen = discover(
            std::slice::from_ref(&relay),
            support::nostr::now_ms(),
            IDLE,
            STEP,
        )
        .await;
        if seen.is_ok_and(|r| r.fresh.len() == 1) {
            break;
        }
        assert!(Instant::now() < until, "the worker publishes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(worker_home.path().join("nostr.key").exists());

    // No node runs here: `peers discover` books straight into the peer book.
    let home = tempfile::tempdir().expect("dir");
    let discover = |home: &Path| {
        lobstah(home)
            .args(["peers", "discover", "--nostr-relay", &relay])
            .env("LOBSTAH_ALLOW_LOCAL_PEERS", "1")
            .output()
            .expect("run lobstah")
    };
    let out = discover(home.path());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && text.contains("1 added"), "{text}");
    let (_, listing) = run(home.path(), &["peers", "list", "--json"]);
    let peers: Vec<Value> = serde_json::from_str(&listing).expect("peers json");
    assert_eq!(peers.len(), 1, "{listing}");
    assert_eq!(peers[0]["pubkey"], pubkey.to_string());
    assert_eq!(peers[0]["source"], "nostr");

    // Without the operator's leave, a loopback URL from a relay is refused.
    let strict = tempfile::tempdir().expect("dir");
    let (ok, text) = run(
        strict.path(),
        &["peers", "discover", "--nostr-relay", &relay],
    );
    assert!(ok && text.contains("1 unsafe URL"), "{text}");

    assert_eq!(worker.terminate_and_wait(), Some(0));
    let out = discover(home.path());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && text.contains("1 removed"), "{text}");
}
