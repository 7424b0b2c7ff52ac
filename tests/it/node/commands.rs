//! Commands: add and remove peers (shown in the snapshot and as events), and the
//! refusals and explanations for bad input or missing trackers.

use lobstah::core::node::{CoreEvent, NodeClient, NodeCommand, NodeDeps, PeerHealth};
use lobstah::core::protocol::Identity;

use super::{add_peer, run, start_node, test_config, wait_for};

#[tokio::test]
async fn peers_added_and_removed_show_in_the_snapshot_and_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), test_config(), NodeDeps::default()).await;
    let mut events = node.subscribe(None).await.unwrap();
    let peer = Identity::from_seed([9; 32]).public();

    let outcome = run(&node, add_peer(peer, "http://127.0.0.1:9/", Some("nine"))).await;
    assert!(outcome.ok, "{outcome:?}");
    assert!(
        outcome.message.contains("added peer"),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.contains("on this machine"),
        "{}",
        outcome.message
    );
    let changed = wait_for(&mut events, "PeersChanged after add", |e| {
        *e == CoreEvent::PeersChanged
    })
    .await;
    let snapshot = node.snapshot().await.unwrap();
    assert!(snapshot.seq >= changed.seq);
    let row = snapshot
        .peers
        .iter()
        .find(|p| p.pubkey == peer.to_string())
        .expect("the peer is listed");
    assert_eq!(row.url, "http://127.0.0.1:9");
    assert_eq!(row.label.as_deref(), Some("nine"));
    assert_eq!(row.source, "manual");
    assert!(
        matches!(row.health, PeerHealth::Unknown | PeerHealth::Unreachable),
        "{row:?}"
    );

    let again = run(&node, add_peer(peer, "http://127.0.0.1:9", Some("nine"))).await;
    assert!(again.ok && again.message.contains("already"), "{again:?}");

    let removed = run(
        &node,
        NodeCommand::RemovePeer {
            pubkey: peer.to_string(),
        },
    )
    .await;
    assert!(removed.ok, "{removed:?}");
    let gone = wait_for(&mut events, "PeersChanged after remove", |e| {
        *e == CoreEvent::PeersChanged
    })
    .await;
    assert!(gone.seq > changed.seq);
    assert!(node.snapshot().await.unwrap().peers.is_empty());
    node.shutdown().await;
}

#[tokio::test]
async fn commands_explain_what_they_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), test_config(), NodeDeps::default()).await;
    let peer = Identity::from_seed([9; 32]).public().to_string();
    let cases: Vec<(NodeCommand, bool, &str)> = vec![
        (
            add_peer("lob1nothex", "http://127.0.0.1:9", None),
            false,
            "public key",
        ),
        (add_peer(&peer, "127.0.0.1:9", None), false, "no scheme"),
        (add_peer(&peer, "ftp://x", None), false, "http or https"),
        (
            add_peer(&peer, "http://192.168.1.20:17474", Some("lan")),
            true,
            "local network",
        ),
        (
            add_peer(&peer, "http://203.0.113.7:17474", Some("far")),
            true,
            "updated peer",
        ),
        (
            NodeCommand::RemovePeer {
                pubkey: Identity::from_seed([8; 32]).public().to_string(),
            },
            false,
            "no peer",
        ),
        (NodeCommand::SyncPeers, false, "nowhere to sync from"),
        (
            NodeCommand::SyncTracker {
                url: "ftp://tracker".into(),
            },
            false,
            "must use http or https",
        ),
        (
            NodeCommand::DiscoverNostr {
                relays: vec!["http://not-a-relay".into()],
            },
            false,
            "bad relay URL \"http://not-a-relay\"",
        ),
        (
            NodeCommand::SetAdvertising { on: false },
            true,
            "already off",
        ),
        (
            NodeCommand::SetAdvertising { on: true },
            true,
            "nothing is published",
        ),
        (NodeCommand::SetAdvertising { on: true }, true, "already on"),
        (
            NodeCommand::SetAdvertising { on: false },
            true,
            "advertising off",
        ),
    ];
    for (command, ok, needle) in cases {
        let outcome = run(&node, command.clone()).await;
        assert_eq!(outcome.ok, ok, "{command:?}: {}", outcome.message);
        assert!(
            outcome.message.contains(needle),
            "{command:?}: {}",
            outcome.message
        );
    }
    node.shutdown().await;
}

#[tokio::test]
async fn advertising_toggles_show_in_the_snapshot_and_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), test_config(), NodeDeps::default()).await;
    assert!(
        !node.snapshot().await.unwrap().advertising.on,
        "off until turned on"
    );
    let mut events = node.subscribe(None).await.unwrap();
    run(&node, NodeCommand::SetAdvertising { on: true }).await;
    wait_for(&mut events, "advertising on", |e| {
        *e == CoreEvent::AdvertisingChanged { on: true }
    })
    .await;
    let snapshot = node.snapshot().await.unwrap();
    assert!(snapshot.advertising.on);
    assert!(snapshot.advertising.targets.is_empty());
    assert_eq!(
        snapshot.advertising.last_heartbeat, None,
        "nothing was published"
    );
    run(&node, NodeCommand::SetAdvertising { on: false }).await;
    wait_for(&mut events, "advertising off", |e| {
        *e == CoreEvent::AdvertisingChanged { on: false }
    })
    .await;
    node.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_moves_is_asked_again_at_its_new_address() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), test_config(), NodeDeps::default()).await;
    let b = start_node(dir_b.path(), test_config(), NodeDeps::default()).await;
    let dead = lobstah::testkit::unused_local_url().unwrap();
    assert!(run(&a, add_peer(b.pubkey(), &dead, None)).await.ok);
    let http = super::support::client();
    let chat = format!("{}/v1/chat/completions", a.router_url());
    let body = super::support::chat_body("synthetic", false);
    let before = http.post(&chat).json(&body).send().await.unwrap();
    assert_eq!(before.status(), 503, "nothing answers at the old address");
    // Moved: what was learned at the old address is forgotten, so the next request asks
    // the new one instead of trusting a cached "unreachable" for 30 s.
    assert!(
        run(&a, add_peer(b.pubkey(), &b.worker_url(), None))
            .await
            .ok
    );
    let after = http.post(&chat).json(&body).send().await.unwrap();
    assert_eq!(after.status(), 200);
    a.shutdown().await;
    b.shutdown().await;
}
