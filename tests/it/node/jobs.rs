//! Jobs through a node: to its own worker (ledgered once, by the worker's transaction,
//! and shown as self-served) and to another node's worker (spent here, earned there);
//! each receipt one event, and the job counts in the snapshot's queue.

use futures_util::StreamExt;
use lobstah::core::node::{CoreEvent, EventItem, NodeClient, NodeDeps, ReceiptRole};

use super::support::client;
use super::support::jobs::{job_body, submit, wait_for as wait_for_job};
use super::{EVENT_DEADLINE, add_peer, run, start_node, test_config, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_receipts_are_ledgered_once_and_become_events() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), test_config(), NodeDeps::default()).await;
    let b = start_node(dir_b.path(), test_config(), NodeDeps::default()).await;
    let mut events_a = a.subscribe(None).await.unwrap();
    let mut events_b = b.subscribe(None).await.unwrap();
    let http = client();

    // A's only peer is itself: its worker ledgers the receipt, its router finds it there.
    assert!(
        run(&a, add_peer(a.pubkey(), &a.worker_url(), Some("me")))
            .await
            .ok
    );
    let (status, job) = submit(
        &http,
        &a.router_url(),
        &job_body("synthetic", "self"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let done = wait_for_job(&http, &a.router_url(), id, None, "done", EVENT_DEADLINE).await;
    assert_eq!(done["receipt"]["status"], "own-worker", "{done}");
    let e = wait_for(&mut events_a, "the self-served receipt", |e| {
        matches!(e, CoreEvent::Receipt { .. })
    })
    .await;
    let CoreEvent::Receipt { receipt, balance } = e.event else {
        unreachable!()
    };
    assert_eq!(
        (receipt.role, balance.net, balance.receipts),
        (ReceiptRole::SelfServed, 0, 1)
    );
    assert_eq!(a.ledger().totals().unwrap().receipts, 1);

    // Now through B: spent at A, earned at B, one event each.
    assert!(
        run(
            &a,
            lobstah::core::node::NodeCommand::RemovePeer {
                pubkey: a.pubkey().to_string()
            }
        )
        .await
        .ok
    );
    assert!(
        run(&a, add_peer(b.pubkey(), &b.worker_url(), Some("bee")))
            .await
            .ok
    );
    let (status, job) = submit(
        &http,
        &a.router_url(),
        &job_body("synthetic", "bee"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, job["servedBy"].as_str()),
        (202, Some(b.pubkey().to_string().as_str())),
        "{job}"
    );
    let id = job["id"].as_str().unwrap();
    let done = wait_for_job(&http, &a.router_url(), id, None, "done", EVENT_DEADLINE).await;
    assert_eq!(done["receipt"]["status"], "credited", "{done}");
    let tokens = done["receipt"]["tokens"].as_u64().unwrap();
    for (events, role) in [
        (&mut events_a, ReceiptRole::Spent),
        (&mut events_b, ReceiptRole::Earned),
    ] {
        let e = wait_for(
            events,
            "the job's receipt",
            |e| matches!(e, CoreEvent::Receipt { receipt, .. } if receipt.role == role),
        )
        .await;
        let CoreEvent::Receipt { receipt, .. } = e.event else {
            unreachable!()
        };
        assert_eq!(receipt.input_tokens + receipt.output_tokens, tokens);
    }
    // No second event for either receipt.
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        while let Some(item) = events_a.next().await {
            if let EventItem::Event(e) = item
                && matches!(e.event, CoreEvent::Receipt { .. })
            {
                return true;
            }
        }
        false
    })
    .await;
    assert!(!matches!(quiet, Ok(true)), "a receipt event came twice");
    assert_eq!(a.ledger().totals().unwrap().receipts, 2);

    let snap_a = a.snapshot_now();
    assert_eq!(
        (snap_a.queue.client_jobs.done, snap_a.queue.jobs.done),
        (2, 1)
    );
    let snap_b = b.snapshot_now();
    assert_eq!(
        (snap_b.queue.client_jobs.done, snap_b.queue.jobs.done),
        (0, 1)
    );
    assert!(a.close().await);
    assert!(b.close().await);
}
