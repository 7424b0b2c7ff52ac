//! Receipts through the node: spent by its router, earned by its worker, self-served
//! when the router uses its own worker (ledgered once, not refused as a replay); each an
//! event with the balance after it. Also resuming events, refused receipts, and
//! exclusions that end on the injected clock.

use std::sync::Arc;

use axum::response::IntoResponse;

use futures_util::StreamExt;
use lobstah::core::clock::{Clock, ManualClock, SystemClock};
use lobstah::core::node::{CoreEvent, EventItem, NodeClient, NodeCommand, NodeDeps, ReceiptRole};
use lobstah::core::protocol::Identity;
use lobstah::testkit::{FakeConfig, FakeOpenAi};

use super::support::scripted_peer::{Script, ScriptedPeer, answer_with_receipt};
use super::support::{chat_body, client};
use super::{EVENT_DEADLINE, add_peer, run, start_node, test_config, wait_for};

fn receipt_of(
    e: &CoreEvent,
) -> Option<(
    lobstah::core::node::ReceiptRow,
    lobstah::core::node::BalanceView,
)> {
    match e {
        CoreEvent::Receipt { receipt, balance } => Some((receipt.clone(), *balance)),
        _ => None,
    }
}

#[tokio::test]
async fn receipts_are_events_with_their_role_and_the_balance_after_them() {
    let fake = FakeOpenAi::start_with(FakeConfig::default().with_models(["fake-model"]))
        .await
        .unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), test_config(), NodeDeps::default()).await;
    let mut config_b = test_config();
    config_b.engine.kind = lobstah::core::config::EngineKind::Openai;
    config_b.engine.url = Some(fake.url().to_string());
    let b = start_node(dir_b.path(), config_b, NodeDeps::default()).await;
    let mut events_a = a.subscribe(None).await.unwrap();
    let mut events_b = b.subscribe(None).await.unwrap();

    assert!(
        run(&a, add_peer(b.pubkey(), &b.worker_url(), Some("bee")))
            .await
            .ok
    );
    let http = client();
    let chat = format!("{}/v1/chat/completions", a.router_url());
    let whole = http
        .post(&chat)
        .json(&chat_body("fake-model", false))
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200, "{}", whole.text().await.unwrap());
    let streamed = http
        .post(&chat)
        .json(&chat_body("fake-model", true))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    assert!(streamed.text().await.unwrap().contains("[DONE]"));

    let mut spent = 0;
    for n in 1..=2 {
        let e = wait_for(&mut events_a, "a spent receipt", |e| {
            receipt_of(e).is_some()
        })
        .await;
        let (row, balance) = receipt_of(&e.event).unwrap();
        assert_eq!(row.role, ReceiptRole::Spent);
        assert_eq!(row.peer, b.pubkey().to_string());
        assert_eq!(row.peer_label.as_deref(), Some("bee"));
        assert_eq!(row.model, "fake-model");
        spent += row.input_tokens + row.output_tokens;
        assert_eq!(
            (balance.spent, balance.earned, balance.receipts),
            (spent, 0, n)
        );
        assert_eq!(balance.net, -(spent as i64));
        assert_eq!(balance.available, 10_000 - spent as i64);
    }
    for n in 1..=2u64 {
        let e = wait_for(&mut events_b, "b earned receipt", |e| {
            receipt_of(e).is_some()
        })
        .await;
        let (row, balance) = receipt_of(&e.event).unwrap();
        assert_eq!(row.role, ReceiptRole::Earned);
        assert_eq!(row.peer, a.pubkey().to_string());
        assert_eq!(balance.receipts, n);
    }
    assert_eq!(b.snapshot().await.unwrap().balance.earned, spent);
    // A's router counter-signs what it ledgered; B's earnings turn from pending to
    // confirmed, and B says so without a new receipt.
    let e = wait_for(
        &mut events_b,
        "b's earnings confirmed",
        |e| matches!(e, CoreEvent::BalanceChanged { balance } if balance.pending_earned == 0),
    )
    .await;
    let CoreEvent::BalanceChanged { balance } = e.event else {
        unreachable!()
    };
    assert_eq!((balance.earned, balance.net), (spent, spent as i64));
    assert_eq!(b.snapshot().await.unwrap().balance, balance);

    // Now A's router uses A's own worker: one receipt, ledgered once, net unchanged.
    assert!(
        run(
            &a,
            NodeCommand::RemovePeer {
                pubkey: b.pubkey().to_string()
            }
        )
        .await
        .ok
    );
    assert!(
        run(&a, add_peer(a.pubkey(), &a.worker_url(), Some("me")))
            .await
            .ok
    );
    let own = http
        .post(&chat)
        .json(&chat_body("synthetic", false))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let e = wait_for(&mut events_a, "a self-served receipt", |e| {
        receipt_of(e).is_some()
    })
    .await;
    let (row, balance) = receipt_of(&e.event).unwrap();
    assert_eq!(row.role, ReceiptRole::SelfServed);
    assert_eq!(balance.net, -(spent as i64));
    assert_eq!(balance.receipts, 3);

    let snapshot = a.snapshot().await.unwrap();
    assert!(snapshot.seq >= e.seq);
    let roles: Vec<ReceiptRole> = snapshot.receipts.iter().map(|r| r.role).collect();
    assert_eq!(
        roles,
        [
            ReceiptRole::SelfServed,
            ReceiptRole::Spent,
            ReceiptRole::Spent
        ]
    );
    assert_eq!(snapshot.net_history.last(), Some(&-(spent as i64)));
    assert_eq!(snapshot.net_history.len(), 3);
    assert!(snapshot.rejections.is_empty(), "{:?}", snapshot.rejections);
    assert_eq!(
        a.ledger().totals().unwrap().receipts,
        3,
        "self-served is ledgered once"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_subscriber_resumes_after_a_seq_and_resyncs_from_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), test_config(), NodeDeps::default()).await;
    let peer = Identity::from_seed([5; 32]).public();
    for _ in 0..3 {
        run(&node, add_peer(peer, "http://127.0.0.1:9", None)).await;
        run(
            &node,
            NodeCommand::RemovePeer {
                pubkey: peer.to_string(),
            },
        )
        .await;
    }
    let last = node.snapshot().await.unwrap().seq;
    assert!(last >= 6, "{last}");
    let resume_at = last - 4;
    let resumed: Vec<u64> = tokio::time::timeout(
        EVENT_DEADLINE,
        node.subscribe(Some(resume_at))
            .await
            .unwrap()
            .take(4)
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|item| match item {
        EventItem::Event(e) => e.seq,
        EventItem::Resync => panic!("no resync expected"),
    })
    .collect();
    assert_eq!(resumed, (resume_at + 1..=last).collect::<Vec<_>>());
    // An id from another run of the node (ahead of ours) cannot be resumed.
    let mut stale = node.subscribe(Some(last + 1000)).await.unwrap();
    let first = tokio::time::timeout(EVENT_DEADLINE, stale.next())
        .await
        .unwrap();
    assert_eq!(first, Some(EventItem::Resync));
    node.shutdown().await;
}

#[tokio::test]
async fn exclusions_and_refused_receipts_are_events_and_end_on_the_node_clock() {
    let clock = ManualClock::new(SystemClock.now_ms());
    let deps = NodeDeps {
        clock: Arc::new(clock.clone()),
        ..NodeDeps::default()
    };
    let mut config = test_config();
    config.router.exclude_after = 1;
    config.router.exclude_for_secs = 30;
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), config, deps).await;
    let bad = Identity::from_seed([6; 32]).public();
    let failing: Script =
        Arc::new(|_, _| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response());
    let peer = ScriptedPeer::start(bad, &["m"], failing).await;
    let mut events = node.subscribe(None).await.unwrap();
    assert!(run(&node, add_peer(bad, &peer.url, Some("flaky"))).await.ok);
    let http = client();
    let chat = format!("{}/v1/chat/completions", node.router_url());
    let r = http
        .post(&chat)
        .json(&chat_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let e = wait_for(&mut events, "PeerExcluded", |e| {
        matches!(e, CoreEvent::PeerExcluded { .. })
    })
    .await;
    let CoreEvent::PeerExcluded {
        pubkey,
        reason,
        until_ms,
    } = e.event
    else {
        unreachable!()
    };
    assert_eq!(pubkey, bad.to_string());
    assert!(reason.contains("500"), "{reason}");
    assert_eq!(until_ms, clock.now_ms() + 30_000);
    let snapshot = node.snapshot().await.unwrap();
    assert_eq!(snapshot.exclusions.len(), 1);
    assert_eq!(snapshot.exclusions[0].label.as_deref(), Some("flaky"));
    assert_eq!(snapshot.exclusions[0].until_ms, until_ms);

    // The cooldown ends when the node's clock says so, not the wall clock.
    clock.advance(30_000);
    wait_for(&mut events, "PeerReadmitted", |e| {
        *e == CoreEvent::PeerReadmitted {
            pubkey: bad.to_string(),
        }
    })
    .await;
    assert!(node.snapshot().await.unwrap().exclusions.is_empty());

    // A peer that answers without a receipt: served, but the receipt is refused.
    peer.set_script(Arc::new(|_, _| answer_with_receipt(None)));
    let r = http
        .post(&chat)
        .json(&chat_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let e = wait_for(&mut events, "ReceiptRejected", |e| {
        matches!(e, CoreEvent::ReceiptRejected { .. })
    })
    .await;
    let CoreEvent::ReceiptRejected { rejection } = e.event else {
        unreachable!()
    };
    assert_eq!(
        (rejection.peer.as_str(), rejection.reason.as_str()),
        (bad.to_string().as_str(), "missing")
    );
    assert_eq!(node.snapshot().await.unwrap().rejections.len(), 1);
    node.shutdown().await;
}
