//! The node in-process: its snapshot, events and commands through `NodeClient`, the
//! receipts its router and worker ledger (earned, spent, self-served) as events with the
//! balance after each, what requesters owe until they confirm, resuming a subscription,
//! exclusions on an injected clock, advertising against a fake tracker, and an orderly
//! shutdown. Real listeners on
//! 127.0.0.1 port 0; every wait has a deadline.

use crate::support;

mod advertise;
mod commands;
mod jobs;
mod nostr;
mod owed;
mod receipts;

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use lobstah::core::config::{Config, EngineKind};
use lobstah::core::node::{
    CoreEvent, EventItem, EventStream, Node, NodeClient, NodeCommand, NodeDeps, NodeHandle,
    SequencedEvent,
};
use lobstah::core::paths::Paths;

/// How long any one expected event may take.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(15);

/// Defaults, but every port picked by the OS and the synthetic engine at full speed.
pub fn test_config() -> Config {
    let mut c = Config::defaults();
    c.router.port = 0;
    c.worker.port = 0;
    c.control_port = 0;
    c.engine.kind = EngineKind::Synthetic;
    c.engine.synthetic_rate = 0.0;
    c.shutdown_grace_secs = 5;
    c
}

pub async fn start_node(dir: &Path, config: Config, deps: NodeDeps) -> NodeHandle {
    support::install_crypto();
    Node::start_with(config, Paths::in_dir(dir), deps)
        .await
        .expect("the node starts")
}

/// The next event `pick` accepts, skipping others; panics after the deadline.
pub async fn wait_for(
    events: &mut EventStream,
    what: &str,
    mut pick: impl FnMut(&CoreEvent) -> bool,
) -> SequencedEvent {
    let found = tokio::time::timeout(EVENT_DEADLINE, async {
        while let Some(item) = events.next().await {
            if let EventItem::Event(e) = item
                && pick(&e.event)
            {
                return Some(e);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        Ok(None) => panic!("the event stream ended before: {what}"),
        Err(_) => panic!("timed out waiting for: {what}"),
    }
}

pub async fn run(node: &NodeHandle, command: NodeCommand) -> lobstah::core::node::CommandOutcome {
    node.command(command)
        .await
        .expect("in-process commands do not fail to arrive")
}

pub fn add_peer(pubkey: impl ToString, url: &str, label: Option<&str>) -> NodeCommand {
    NodeCommand::AddPeer {
        pubkey: pubkey.to_string(),
        url: url.to_string(),
        label: label.map(str::to_string),
    }
}

#[tokio::test]
async fn shutdown_tells_subscribers_flushes_and_removes_run_files() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), test_config(), NodeDeps::default()).await;
    assert!(dir.path().join("node.json").exists());
    assert!(dir.path().join("control.token").exists());
    let mut events = node.subscribe(None).await.unwrap();
    let stopper = node.clone();
    let stopping = tokio::spawn(async move { stopper.shutdown().await });
    wait_for(&mut events, "ShuttingDown", |e| {
        *e == CoreEvent::ShuttingDown
    })
    .await;
    // The bus closes after ShuttingDown: the stream ends.
    let rest = tokio::time::timeout(EVENT_DEADLINE, events.collect::<Vec<_>>())
        .await
        .expect("the stream ends");
    assert!(rest.is_empty(), "{rest:?}");
    tokio::time::timeout(EVENT_DEADLINE, stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(node.is_stopped());
    assert!(!dir.path().join("node.json").exists());
    assert!(!dir.path().join("control.token").exists());
    // A second shutdown is a no-op.
    tokio::time::timeout(EVENT_DEADLINE, node.shutdown())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_second_node_on_the_same_directory_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_node(dir.path(), test_config(), NodeDeps::default()).await;
    let err = Node::start_with(
        test_config(),
        Paths::in_dir(dir.path()),
        NodeDeps::default(),
    )
    .await
    .err()
    .expect("a second node on one directory is refused");
    let text = err.to_string();
    assert!(text.contains("already running"), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    let control = first.control_url().unwrap();
    assert!(text.contains(&control), "{text}");
    // The refused start did not replace the running node's token.
    let info = std::fs::read_to_string(dir.path().join("node.json")).unwrap();
    assert!(info.contains(&control));
    first.shutdown().await;
}
