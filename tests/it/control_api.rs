//! The control API: it wants the bearer token from `control.token` (401 otherwise),
//! binds loopback only, streams events that resume from `Last-Event-ID` (or `?after=`)
//! and says `resync` when it cannot, refuses oversized commands and heads, and
//! `ControlClient` is a `NodeClient` over it.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use lobstah::core::config::{Config, EngineKind};
use lobstah::core::control::{self, ControlClient, ControlError};
use lobstah::core::node::{
    CoreEvent, EventItem, Node, NodeClient, NodeCommand, NodeDeps, NodeHandle,
};
use lobstah::core::paths::Paths;
use lobstah::core::protocol::Identity;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(15);

async fn start(dir: &std::path::Path) -> NodeHandle {
    support::install_crypto();
    let mut c = Config::defaults();
    c.router.port = 0;
    c.worker.port = 0;
    c.control_port = 0;
    c.engine.kind = EngineKind::Synthetic;
    Node::start_with(c, Paths::in_dir(dir), NodeDeps::default())
        .await
        .expect("node")
}

fn token(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("control.token"))
        .unwrap()
        .trim()
        .to_string()
}

/// Makes `n` PeersChanged events (add and remove a peer); returns the last seq.
async fn churn(node: &NodeHandle, n: usize) -> u64 {
    let peer = Identity::from_seed([3; 32]).public().to_string();
    for i in 0..n {
        let command = if i % 2 == 0 {
            NodeCommand::AddPeer {
                pubkey: peer.clone(),
                url: "http://127.0.0.1:9".into(),
                label: None,
            }
        } else {
            NodeCommand::RemovePeer {
                pubkey: peer.clone(),
            }
        };
        assert!(node.command(command).await.unwrap().ok);
    }
    node.snapshot().await.unwrap().seq
}

#[tokio::test]
async fn every_endpoint_wants_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let base = node.control_url().unwrap();
    let good = token(dir.path());
    let http = support::client();
    let endpoints = [
        ("GET", "/v1/snapshot"),
        ("GET", "/v1/events"),
        ("POST", "/v1/commands"),
        ("GET", "/nope"),
    ];
    let bad_auth = [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Basic {good}")),
        Some(format!("Bearer {}x", good)),
    ];
    for (method, path) in endpoints {
        for auth in &bad_auth {
            let mut request = http.request(method.parse().unwrap(), format!("{base}{path}"));
            if let Some(a) = auth {
                request = request.header("authorization", a);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {auth:?}");
            assert_eq!(
                response.headers().get("www-authenticate").unwrap(),
                "Bearer"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["type"], "unauthorized", "{body}");
        }
    }
    let ok = http
        .get(format!("{base}/v1/snapshot"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let snapshot: Value = ok.json().await.unwrap();
    assert_eq!(snapshot["identity"], node.pubkey().to_string());
    let bad_body = http
        .post(format!("{base}/v1/commands"))
        .bearer_auth(&good)
        .json(&serde_json::json!({"command": "launch-missiles"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status(), 400);
    node.shutdown().await;
}

/// The control API is bounded like the router and worker: an oversized command or head
/// gets a JSON 413 / 431, and nothing is done.
#[tokio::test]
async fn oversized_commands_and_heads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let base = node.control_url().unwrap();
    let good = token(dir.path());
    let http = support::client();
    let huge_label = "x".repeat(100 * 1024);
    let command = serde_json::json!({
        "command": "add-peer",
        "pubkey": Identity::from_seed([4; 32]).public().to_string(),
        "url": "http://127.0.0.1:9",
        "label": huge_label,
    });
    let too_big = http
        .post(format!("{base}/v1/commands"))
        .bearer_auth(&good)
        .json(&command)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    let body: Value = too_big.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");

    let big_head = http
        .get(format!("{base}/v1/snapshot"))
        .bearer_auth(&good)
        .header("x-padding", "y".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(big_head.status(), 431);

    let snapshot = node.snapshot().await.unwrap();
    assert!(snapshot.peers.is_empty(), "no peer was added");
    node.shutdown().await;
}

#[tokio::test]
async fn the_control_api_binds_loopback_only() {
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let addr: SocketAddr = addr.parse().unwrap();
        assert!(
            matches!(control::bind(addr).await, Err(ControlError::NotLoopback(_))),
            "{addr}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let url = node.control_url().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let info: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("node.json")).unwrap()).unwrap();
    assert_eq!(info["control_url"], url);
    assert_eq!(info["pid"], std::process::id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("control.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    node.shutdown().await;
}

/// Reads SSE from the control API until `want` items, as (event name, id) pairs.
async fn read_sse(response: reqwest::Response, want: usize) -> Vec<(Option<String>, Option<u64>)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut bytes = response.bytes_stream();
    let (mut name, mut id) = (None, None);
    tokio::time::timeout(DEADLINE, async {
        while out.len() < want {
            let Some(Ok(chunk)) = bytes.next().await else {
                break;
            };
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                let line = line.trim_end();
                if line.is_empty() {
                    if name.is_some() || id.is_some() {
                        out.push((name.take(), id.take()));
                    }
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                }
            }
        }
    })
    .await
    .expect("events in time");
    out
}

#[tokio::test]
async fn the_event_stream_resumes_from_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let last = churn(&node, 6).await;
    let base = node.control_url().unwrap();
    let http = support::client();
    let from = last - 5;
    let by_header = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(token(dir.path()))
        .header("last-event-id", from.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_header.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let ids: Vec<Option<u64>> = read_sse(by_header, 5)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, (from + 1..=last).map(Some).collect::<Vec<_>>());

    let by_query = http
        .get(format!("{base}/v1/events?after={}", last - 2))
        .bearer_auth(token(dir.path()))
        .send()
        .await
        .unwrap();
    let ids: Vec<Option<u64>> = read_sse(by_query, 2)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, [Some(last - 1), Some(last)]);

    let from_the_future = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(token(dir.path()))
        .header("last-event-id", (last + 1000).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        read_sse(from_the_future, 1).await,
        [(Some("resync".to_string()), None)]
    );
    node.shutdown().await;
}

#[tokio::test]
async fn the_control_client_is_a_node_client() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let remote = ControlClient::discover(dir.path()).expect("found through node.json");
    assert_eq!(remote.info().unwrap().pid, std::process::id());
    let snapshot = remote.snapshot().await.unwrap();
    assert_eq!(snapshot.identity, node.pubkey().to_string());
    assert_eq!(snapshot.router_url, Some(node.router_url()));

    let mut events = remote.subscribe(Some(snapshot.seq)).await.unwrap();
    let peer = Identity::from_seed([4; 32]).public().to_string();
    let outcome = remote
        .command(NodeCommand::AddPeer {
            pubkey: peer.clone(),
            url: "http://127.0.0.1:9".into(),
            label: Some("x".into()),
        })
        .await
        .unwrap();
    assert!(outcome.ok, "{outcome:?}");
    let seen = tokio::time::timeout(DEADLINE, async {
        while let Some(item) = events.next().await {
            if let EventItem::Event(e) = item
                && e.event == CoreEvent::PeersChanged
            {
                return e.seq;
            }
        }
        panic!("stream ended");
    })
    .await
    .unwrap();
    assert!(seen > snapshot.seq);
    assert_eq!(remote.snapshot().await.unwrap().peers.len(), 1);

    let mut stale = remote.subscribe(Some(u64::MAX / 2)).await.unwrap();
    assert_eq!(
        tokio::time::timeout(DEADLINE, stale.next()).await.unwrap(),
        Some(EventItem::Resync)
    );

    let wrong = ControlClient::new(&node.control_url().unwrap(), "nope").unwrap();
    let err = wrong.snapshot().await.unwrap_err().to_string();
    assert!(err.contains("token was not accepted"), "{err}");

    // At shutdown the stream gets ShuttingDown and ends.
    let stopper = node.clone();
    let stopping = tokio::spawn(async move { stopper.shutdown().await });
    let rest: Vec<EventItem> = tokio::time::timeout(DEADLINE, events.collect())
        .await
        .unwrap();
    assert!(
        rest.iter()
            .any(|i| matches!(i, EventItem::Event(e) if e.event == CoreEvent::ShuttingDown)),
        "{rest:?}"
    );
    stopping.await.unwrap();
    let gone = ControlClient::discover(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(gone.contains("no lobstah node is running"), "{gone}");
}

#[tokio::test]
async fn attach_uses_a_running_node_or_starts_one() {
    support::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.router.port = 0;
    config.worker.port = 0;
    config.control_port = 0;
    config.engine.kind = EngineKind::Synthetic;
    let paths = Paths::in_dir(dir.path());
    let first = control::attach_or_start(config.clone(), paths.clone(), NodeDeps::default())
        .await
        .unwrap();
    assert!(first.is_local(), "nothing ran: started here");
    let second = control::attach_or_start(config.clone(), paths.clone(), NodeDeps::default())
        .await
        .unwrap();
    assert!(!second.is_local(), "attached to the first");
    let a = first.client().snapshot().await.unwrap();
    let b = second.client().snapshot().await.unwrap();
    assert_eq!(a.identity, b.identity);
    let control::Attached::Local(handle) = first else {
        unreachable!()
    };
    assert!(handle.close().await, "the database is let go of");
    // A node.json left by a node that died is not attached to.
    std::fs::write(
        dir.path().join("node.json"),
        serde_json::json!({"pid": 1, "pubkey": "x", "control_url": lobstah::testkit::unused_local_url().unwrap(),
            "router_url": "", "worker_url": "", "started_at_ms": 0, "data_dir": dir.path()}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("control.token"), "stale").unwrap();
    let third = control::attach_or_start(config, paths, NodeDeps::default())
        .await
        .unwrap();
    assert!(third.is_local());
    let control::Attached::Local(handle) = third else {
        unreachable!()
    };
    handle.close().await;
}

#[tokio::test]
async fn a_linked_peer_is_added_through_the_control_api_and_bad_addresses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let remote = ControlClient::discover(dir.path()).expect("found through node.json");
    let peer = Identity::from_seed([5; 32]).public().to_string();
    let linked = |addrs: &[&str]| NodeCommand::AddLinkedPeer {
        pubkey: peer.clone(),
        url: None,
        label: Some("friend".into()),
        addrs: addrs.iter().map(|a| a.to_string()).collect(),
    };

    let refused = remote.command(linked(&["not-an-address"])).await.unwrap();
    assert!(
        !refused.ok && refused.message.contains("IP:PORT"),
        "{refused:?}"
    );
    assert!(
        remote.snapshot().await.unwrap().peers.is_empty(),
        "nothing added"
    );

    let added = remote.command(linked(&["127.0.0.1:9"])).await.unwrap();
    assert!(added.ok, "{added:?}");
    // This node runs without links.enabled, and says so rather than pretending.
    assert!(added.message.contains("links are off"), "{added:?}");
    let peers: serde_json::Value = reqwest::get(format!("{}/peers", node.router_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(peers["peers"][0]["transport"], "link", "{peers}");
    assert_eq!(peers["peers"][0]["linkAddrs"][0], "127.0.0.1:9", "{peers}");
    let row = &remote.snapshot().await.unwrap().peers[0];
    assert_eq!(
        row.transport.as_deref(),
        Some("link"),
        "the snapshot carries it"
    );
    assert_eq!(row.link_addrs, vec!["127.0.0.1:9".to_string()]);
    node.shutdown().await;
}
