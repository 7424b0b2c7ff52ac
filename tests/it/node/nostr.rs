//! Advertising and discovery over a real in-process Nostr relay: one node publishes when
//! advertising is turned on (and deletes when it is turned off), another books it as a
//! Nostr peer and serves through it, and drops it once it is gone.

use std::time::Duration;

use lobstah::core::discovery::nostr::discover;
use lobstah::core::node::{NodeClient, NodeCommand, NodeDeps};

use super::support::nostr::{IDLE, STEP, mock_relay, now_ms};
use super::{run, start_node, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_publishes_on_nostr_and_another_discovers_serves_and_drops_it() {
    let (_relay, relay_url) = mock_relay().await;

    let mut config = test_config();
    config.advertise.publish_via_nostr = true;
    config.advertise.label = Some("nostr-worker".into());
    config.discovery.nostr_relays = vec![relay_url.clone()];
    let worker_dir = tempfile::tempdir().expect("dir");
    let worker = start_node(worker_dir.path(), config, NodeDeps::default()).await;
    let worker_key = worker.snapshot().await.expect("snapshot").identity;

    // Nothing is published until advertising is turned on.
    let before = discover(std::slice::from_ref(&relay_url), now_ms(), IDLE, STEP)
        .await
        .expect("relay answers");
    assert!(before.fresh.is_empty(), "{before:?}");

    let on = run(&worker, NodeCommand::SetAdvertising { on: true }).await;
    assert!(on.ok, "{on:?}");
    assert!(
        on.message
            .contains("Nostr announcement: accepted by 1 of 1 relays"),
        "{}",
        on.message
    );
    assert!(
        worker_dir.path().join("nostr.key").exists(),
        "the key was made on first use"
    );
    let heartbeat = worker.snapshot().await.expect("snapshot").advertising;
    assert!(heartbeat.on && heartbeat.last_heartbeat.is_some_and(|h| h.ok));
    assert_eq!(
        heartbeat.targets,
        std::slice::from_ref(&relay_url),
        "the console names the relay"
    );

    let mut config = test_config();
    config.discovery.nostr_relays = vec![relay_url.clone()];
    config.discovery.discover_via_nostr = true;
    // The worker node listens on 127.0.0.1, like the whole test.
    config.discovery.url_policy.allow_local = true;
    let router_dir = tempfile::tempdir().expect("dir");
    let router = start_node(router_dir.path(), config, NodeDeps::default()).await;
    let synced = run(&router, NodeCommand::SyncPeers).await;
    assert!(synced.ok, "{synced:?}");
    assert!(synced.message.contains("1 added"), "{}", synced.message);
    let peers = router.snapshot().await.expect("snapshot").peers;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].pubkey, worker_key);
    assert_eq!(peers[0].source, "nostr");
    assert_eq!(peers[0].label.as_deref(), Some("nostr-worker"));

    let http = super::support::client();
    let router_url = router
        .snapshot()
        .await
        .expect("snapshot")
        .router_url
        .expect("the router listens");
    let answer = http
        .post(format!("{router_url}/v1/chat/completions"))
        .json(&super::support::chat_body("synthetic", false))
        .send()
        .await
        .expect("router answers");
    assert_eq!(answer.status(), 200);

    let off = run(&worker, NodeCommand::SetAdvertising { on: false }).await;
    assert!(off.ok, "{off:?}");
    assert!(
        off.message
            .contains("Nostr deletion: accepted by 1 of 1 relays"),
        "{}",
        off.message
    );
    let after = discover(std::slice::from_ref(&relay_url), now_ms(), IDLE, STEP)
        .await
        .expect("relay answers");
    assert!(after.fresh.is_empty(), "deleted: {after:?}");
    let resynced = run(&router, NodeCommand::DiscoverNostr { relays: Vec::new() }).await;
    assert!(
        resynced.message.contains("1 removed"),
        "{}",
        resynced.message
    );
    assert!(router.snapshot().await.expect("snapshot").peers.is_empty());

    tokio::time::timeout(Duration::from_secs(20), async {
        router.shutdown().await;
        worker.shutdown().await;
    })
    .await
    .expect("both nodes stop");
}
