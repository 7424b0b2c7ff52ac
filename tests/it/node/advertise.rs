//! Advertising against a fake tracker: nothing is published until it is turned on; on,
//! a signed announcement goes out and the heartbeat result is kept; off (and shutdown)
//! sends a signed unannounce; syncing books the tracker's verified, fresh peers only.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use lobstah::core::clock::{Clock, SystemClock};
use lobstah::core::node::{CoreEvent, NodeClient, NodeCommand, NodeDeps};
use lobstah::core::protocol::{Announcement, Identity, PublicKey, SignedAnnouncement, Tier};
use serde_json::{Value, json};

use super::support::listener;
use super::{add_peer, run, start_node, test_config, wait_for};

#[derive(Clone, Default)]
struct Tracker {
    received: Arc<Mutex<Vec<(String, Value)>>>,
    peers: Arc<Mutex<Vec<Value>>>,
}

impl Tracker {
    async fn start(self) -> String {
        let app = Router::new()
            .route("/announce", post(announce))
            .route("/unannounce", post(unannounce))
            .route("/peers", get(peers))
            .with_state(self);
        let (l, addr) = listener().await;
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}")
    }

    fn received(&self, path: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

async fn announce(State(t): State<Tracker>, body: axum::Json<Value>) -> axum::Json<Value> {
    t.received
        .lock()
        .unwrap()
        .push(("announce".into(), body.0.clone()));
    axum::Json(
        json!({"ok": true, "pubkey": body.0["announcement"]["pubkey"], "ttlSeconds": 300, "registeredCount": 1}),
    )
}

async fn unannounce(State(t): State<Tracker>, body: axum::Json<Value>) -> axum::Json<Value> {
    t.received
        .lock()
        .unwrap()
        .push(("unannounce".into(), body.0));
    axum::Json(json!({"ok": true}))
}

async fn peers(State(t): State<Tracker>) -> axum::Json<Value> {
    let peers = t.peers.lock().unwrap().clone();
    axum::Json(json!({"version": 1, "count": peers.len(), "peers": peers}))
}

fn announcement(id: &Identity, url: &str, at: u64) -> Value {
    SignedAnnouncement::sign(
        Announcement {
            version: 1,
            pubkey: id.public(),
            url: url.into(),
            label: Some("from-tracker".into()),
            models: vec!["m".into()],
            tier: Tier::Batch,
            ttl_seconds: 300,
            announced_at: at,
            link: None,
        },
        id,
    )
    .unwrap()
    .to_value()
}

#[tokio::test]
async fn advertising_publishes_only_when_on_and_withdraws_when_off() {
    let tracker = Tracker::default();
    let url = tracker.clone().start().await;
    let now = SystemClock.now_ms();
    let good = Identity::from_seed([21; 32]);
    let manual = Identity::from_seed([22; 32]);
    let stale = Identity::from_seed([23; 32]);
    let mut forged = announcement(&Identity::from_seed([24; 32]), "http://127.0.0.1:4", now);
    forged["announcement"]["url"] = json!("http://evil.example");
    *tracker.peers.lock().unwrap() = vec![
        announcement(&good, "http://127.0.0.1:1", now),
        announcement(&manual, "http://127.0.0.1:2", now),
        announcement(&stale, "http://127.0.0.1:3", now - 301_000),
        forged,
    ];
    let mut config = test_config();
    config.trackers = vec![url.clone()];
    // The tracker's peers are on this machine, like the whole test grid.
    config.discovery.url_policy.allow_local = true;
    config.advertise.label = Some("test-node".into());
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), config, NodeDeps::default()).await;
    let mut events = node.subscribe(None).await.unwrap();

    // Syncing and adding peers publish nothing.
    assert!(
        run(
            &node,
            add_peer(manual.public(), "http://127.0.0.1:5", Some("mine"))
        )
        .await
        .ok
    );
    let synced = run(&node, NodeCommand::SyncPeers).await;
    assert!(synced.ok, "{synced:?}");
    for part in ["1 added", "1 bad signature", "1 stale"] {
        assert!(synced.message.contains(part), "{part}: {}", synced.message);
    }
    assert!(
        synced.message.contains("1 kept as added by hand"),
        "{}",
        synced.message
    );
    assert!(
        tracker.received("announce").is_empty(),
        "published while off"
    );
    let peers = node.snapshot().await.unwrap().peers;
    let from_tracker = peers
        .iter()
        .find(|p| p.pubkey == good.public().to_string())
        .expect("synced");
    assert_eq!(from_tracker.source, format!("tracker {url}"));
    let kept = peers
        .iter()
        .find(|p| p.pubkey == manual.public().to_string())
        .unwrap();
    assert_eq!(
        (kept.source.as_str(), kept.url.as_str()),
        ("manual", "http://127.0.0.1:5")
    );
    assert_eq!(peers.len(), 2);

    let on = run(&node, NodeCommand::SetAdvertising { on: true }).await;
    assert!(on.ok, "{on:?}");
    assert!(
        on.message.contains("announced to 1 of 1 trackers"),
        "{}",
        on.message
    );
    assert!(
        on.message.contains("on this machine only"),
        "{}",
        on.message
    );
    wait_for(
        &mut events,
        "a heartbeat",
        |e| matches!(e, CoreEvent::Heartbeat { result } if result.ok),
    )
    .await;
    let sent = tracker.received("announce");
    assert_eq!(sent.len(), 1);
    let signed = SignedAnnouncement::from_value(sent[0].clone()).unwrap();
    signed.verify_signature().unwrap();
    let a = signed.announcement();
    assert_eq!(a.pubkey, node.pubkey());
    assert_eq!(a.url, node.worker_url());
    assert_eq!(a.label.as_deref(), Some("test-node"));
    assert_eq!(a.models, ["synthetic"]);
    let status = node.snapshot().await.unwrap().advertising;
    assert!(status.on);
    assert_eq!(status.targets, std::slice::from_ref(&url));
    assert!(status.last_heartbeat.is_some_and(|h| h.ok));

    let off = run(&node, NodeCommand::SetAdvertising { on: false }).await;
    assert!(off.ok, "{off:?}");
    let withdrawn = tracker.received("unannounce");
    assert_eq!(withdrawn.len(), 1);
    let w = &withdrawn[0];
    let pubkey = PublicKey::parse(w["pubkey"].as_str().unwrap()).unwrap();
    assert_eq!(pubkey, node.pubkey());
    let timestamp = w["timestamp"].as_u64().unwrap();
    let identity: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("identity.json")).unwrap()).unwrap();
    let expected = Identity::from_seed_hex(identity["secretKey"].as_str().unwrap())
        .unwrap()
        .sign(lobstah::core::protocol::unannounce_message(&pubkey, timestamp).as_bytes());
    assert_eq!(w["signature"].as_str(), Some(expected.to_hex().as_str()));

    // On again, then shutdown withdraws too.
    assert!(
        run(&node, NodeCommand::SetAdvertising { on: true })
            .await
            .ok
    );
    node.shutdown().await;
    assert_eq!(tracker.received("announce").len(), 2);
    assert_eq!(tracker.received("unannounce").len(), 2);
}
