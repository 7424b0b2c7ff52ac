//! `lobstah demo`: a small local grid in one process, so a new user sees lobstah work in
//! one command. This node (router + worker, synthetic engine) and three demo workers on
//! loopback ports (each a node with the worker role, in its own directory); gentle traffic both ways (the node spends on the demo workers and a
//! demo friend spends on the node's worker); and one demo worker that is stopped and
//! restarted on a cycle, so the console shows an exclusion and the recovery.
//!
//! Everything here is synthetic and labelled so: the engine is `synthetic`, the peers are
//! named `demo-…`, the snapshot says `demo`, and the data lives in a throwaway directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::core::config::{Config, EngineKind};
use crate::core::keystore;
use crate::core::node::{Node, NodeClient, NodeCommand, NodeDeps, NodeError, NodeHandle, Roles};
use crate::core::paths::Paths;
use crate::core::protocol::wire::{
    CONFIRM_PATH, RECEIPT_COMMENT, RECEIPT_HEADER, REQUESTER_HEADER,
};
use crate::core::protocol::{
    Confirmation, ConfirmedReceipt, Identity, PublicKey, RequestAuth, RequestTarget,
    SignedConfirmation, SignedReceipt,
};

/// Demo workers: label and synthetic pace (tokens per second).
const DEMO_WORKERS: [(&str, f64); 3] = [
    ("demo-alpha", 120.0),
    ("demo-beta", 80.0),
    ("demo-gamma", 60.0),
];
/// The worker the chaos cycle stops and restarts.
const FLAKY: usize = 2;
/// Seconds into each cycle when the flaky worker stops, and when it comes back.
const CHAOS_STOP_AT: u64 = 20;
const CHAOS_BACK_AT: u64 = 40;
const CHAOS_CYCLE: u64 = 70;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("demo: {0}")]
    Setup(String),
}

/// A running demo grid. Dropping it does not stop it: call `stop`.
pub struct Demo {
    pub node: NodeHandle,
    /// The demo workers that keep running (the flaky one belongs to its chaos task).
    steady: Vec<NodeHandle>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    dir: PathBuf,
}

/// A demo worker: a node with the worker role in its own directory, so it is started
/// like any other (and, restarted there on the same port, keeps its identity).
struct DemoWorker {
    node: NodeHandle,
    addr: SocketAddr,
}

async fn start_worker(
    dir: &Path,
    rate: f64,
    at: SocketAddr,
    node: PublicKey,
) -> Result<DemoWorker, DemoError> {
    let mut config = Config::defaults();
    config.worker.port = at.port();
    config.worker.concurrency = 2;
    config.control_port = 0;
    config.engine.kind = EngineKind::Synthetic;
    config.engine.synthetic_rate = rate;
    config.engine.synthetic_models = vec!["synthetic".into()];
    // The demo workers are the node's own machines: no credit limit between them.
    config.access.trusted = vec![node];
    let deps = NodeDeps {
        demo: true,
        roles: Roles::WORKER,
        ..NodeDeps::default()
    };
    let node = Node::start_with(config, Paths::in_dir(dir), deps).await?;
    let addr = node
        .worker_url()
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| DemoError::Setup(format!("the demo worker's address: {e}")))?;
    Ok(DemoWorker { node, addr })
}

impl Demo {
    /// Starts the grid in a fresh directory under the system temp dir.
    pub async fn start() -> Result<Demo, DemoError> {
        let dir = std::env::temp_dir().join(format!("lobstah-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = Config::defaults();
        config.router.port = 0;
        config.worker.port = 0;
        config.control_port = 0;
        config.router.exclude_for_secs = 15;
        config.engine.kind = EngineKind::Synthetic;
        config.engine.synthetic_rate = 100.0;
        config.engine.synthetic_models = vec!["synthetic".into()];
        let deps = NodeDeps {
            demo: true,
            ..NodeDeps::default()
        };
        let node = Node::start_with(config, Paths::in_dir(&dir), deps).await?;
        let stop = CancellationToken::new();
        let mut workers = Vec::new();
        for (label, rate) in DEMO_WORKERS {
            let home = dir.join(label);
            let w = start_worker(
                &home,
                rate,
                SocketAddr::from(([127, 0, 0, 1], 0)),
                node.pubkey(),
            )
            .await?;
            let pubkey = w.node.pubkey();
            let identity = keystore::load_identity(&Paths::in_dir(&home).identity_file())
                .map_err(|e| DemoError::Setup(e.to_string()))?;
            let added = node
                .command(NodeCommand::AddPeer {
                    pubkey: pubkey.to_string(),
                    url: format!("http://{}", w.addr),
                    label: Some(label.to_string()),
                })
                .await
                .map_err(|e| DemoError::Setup(e.to_string()))?;
            if !added.ok {
                return Err(DemoError::Setup(added.message));
            }
            workers.push((identity, home, rate, w));
        }
        // DEMO_WORKERS has three entries, so both indexes exist.
        let friend = Friend {
            identity: workers[0].0.clone(),
            worker: node.pubkey(),
        };
        let flaky = workers.remove(FLAKY);
        let steady = workers.into_iter().map(|(_, _, _, w)| w.node).collect();
        let tasks = vec![
            tokio::spawn(traffic(
                node.router_url(),
                None,
                Duration::from_millis(900),
                stop.clone(),
            )),
            tokio::spawn(traffic(
                node.worker_url(),
                Some(friend),
                Duration::from_millis(2_300),
                stop.clone(),
            )),
            tokio::spawn(chaos(flaky, node.pubkey(), stop.clone())),
        ];
        Ok(Demo {
            node,
            steady,
            stop,
            tasks,
            dir,
        })
    }

    /// Stops the traffic, the demo workers and the node, and removes the demo data.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        for worker in self.steady {
            worker.close().await;
        }
        self.node.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A demo worker's identity asking the node's worker directly, as its router would:
/// signed requests, and a confirmation for every receipt it gets.
struct Friend {
    identity: Identity,
    worker: PublicKey,
}

impl Friend {
    fn sign(&self, request: reqwest::RequestBuilder, body: &[u8]) -> reqwest::RequestBuilder {
        let auth = RequestAuth::sign(
            &self.identity,
            RequestTarget {
                method: "POST",
                path: "/v1/chat/completions",
                body,
                worker: &self.worker,
            },
            crate::core::clock::Clock::now_ms(&crate::core::clock::SystemClock),
        );
        let mut request = request.header(REQUESTER_HEADER, self.identity.public().to_string());
        for (name, value) in auth.header_values() {
            request = request.header(name, value);
        }
        request
    }

    /// Counter-signs `receipt` (base64), so the node's earning turns confirmed.
    async fn confirm(&self, client: &reqwest::Client, base: &str, receipt: &str) {
        let Ok(receipt) = SignedReceipt::from_base64(receipt.trim()) else {
            return;
        };
        let confirmation = Confirmation {
            version: 1,
            requester_pubkey: self.identity.public(),
            worker_pubkey: self.worker,
            confirmed_at: crate::core::clock::Clock::now_ms(&crate::core::clock::SystemClock),
            receipts: vec![ConfirmedReceipt::of(&receipt)],
        };
        if let Ok(signed) = SignedConfirmation::sign(confirmation, &self.identity) {
            let _ = client
                .post(format!("{base}{CONFIRM_PATH}"))
                .json(&signed.to_value())
                .send()
                .await;
        }
    }
}

/// The receipt in an answer: its header, or the comment before a stream's `[DONE]`.
fn receipt_in(header: Option<String>, body: &[u8]) -> Option<String> {
    header.or_else(|| {
        let text = std::str::from_utf8(body).ok()?;
        let start = text.find(RECEIPT_COMMENT)? + RECEIPT_COMMENT.len();
        let end = text[start..].find('\n')? + start;
        Some(text[start..end].to_string())
    })
}

/// Sends a gentle stream of small requests to `base` until `stop`.
async fn traffic(
    base: String,
    requester: Option<Friend>,
    every: Duration,
    stop: CancellationToken,
) {
    let client = reqwest::Client::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        n += 1;
        let body = json!({
            "model": "synthetic",
            "stream": n.is_multiple_of(2),
            "max_tokens": 16 + (n * 7) % 48,
            "messages": [{"role": "user", "content": format!("demo request {n}: summarize the grid")}],
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut request = client
            .post(format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json");
        if let Some(friend) = &requester {
            request = friend.sign(request, &bytes);
        }
        // The demo shows failures in the console; it does not need them here.
        if let Ok(response) = request.body(bytes).send().await {
            let header = response
                .headers()
                .get(RECEIPT_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let answer = response.bytes().await.unwrap_or_default();
            if let (Some(friend), Some(receipt)) = (&requester, receipt_in(header, &answer)) {
                friend.confirm(&client, &base, &receipt).await;
            }
        }
    }
}

/// Stops the flaky worker and brings it back on the same port, over and over.
async fn chaos(
    flaky: (Identity, PathBuf, f64, DemoWorker),
    node: PublicKey,
    stop: CancellationToken,
) {
    let (_, home, rate, current) = flaky;
    let addr = current.addr;
    let mut current = Some(current);
    let mut second: u64 = 0;
    let mut running = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        second = (second + 1) % CHAOS_CYCLE;
        if running && second == CHAOS_STOP_AT {
            tracing::info!("demo: stopping demo-gamma to show failover");
            if let Some(w) = current.take() {
                w.node.close().await;
            }
            running = false;
        } else if !running && second == CHAOS_BACK_AT {
            match start_worker(&home, rate, addr, node).await {
                Ok(w) => {
                    tracing::info!("demo: demo-gamma is back");
                    current = Some(w);
                    running = true;
                }
                Err(e) => tracing::warn!(error = %e, "demo: cannot restart demo-gamma yet"),
            }
        }
    }
    if let Some(w) = current {
        w.node.close().await;
    }
}
