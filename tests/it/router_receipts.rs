//! Receipts the router must refuse are not ledgered, and the reason is recorded:
//! bad signature, requester not us, stale, future, replayed nonce (also after a router
//! restart), signed by another worker, missing, malformed. Honest ones are ledgered once.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use lobstah::core::clock::ManualClock;
use lobstah::core::protocol::{Identity, PublicKey, Receipt, SignedReceipt, new_nonce};
use lobstah::core::store;
use serde_json::Value;
use support::scripted_peer::{Script, ScriptedPeer, answer_with_receipt, stream_with_receipt};

const NOW: u64 = 1_800_000_000_000;

fn worker() -> Identity {
    Identity::from_seed([1; 32])
}

fn receipt(signer: &Identity, requester: PublicKey, completed_at: u64) -> Receipt {
    Receipt {
        version: 1,
        job_id: uuid::Uuid::new_v4().to_string(),
        nonce: new_nonce(),
        requester_pubkey: requester,
        worker_pubkey: signer.public(),
        model: "m".into(),
        input_tokens: 3,
        output_tokens: 2,
        started_at: completed_at - 100,
        completed_at,
    }
}

fn signed(signer: &Identity, requester: PublicKey, completed_at: u64) -> String {
    SignedReceipt::sign(receipt(signer, requester, completed_at), signer)
        .unwrap()
        .to_base64()
}

/// The receipt a dishonest or broken worker sends for `case`.
fn forge(case: &str, requester: PublicKey) -> Option<String> {
    let w = worker();
    match case {
        "honest" => Some(signed(&w, requester, NOW)),
        "bad-signature" => {
            let mut v = SignedReceipt::sign(receipt(&w, requester, NOW), &w)
                .unwrap()
                .to_value();
            v["receipt"]["outputTokens"] = Value::from(2_000);
            Some(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
        }
        "not-ours" => Some(signed(&w, Identity::from_seed([4; 32]).public(), NOW)),
        "stale" => Some(signed(&w, requester, NOW - 301_000)),
        "future" => Some(signed(&w, requester, NOW + 301_000)),
        "wrong-worker" => Some(signed(&Identity::from_seed([3; 32]), requester, NOW)),
        "malformed" => Some("bm90IGpzb24=".into()),
        "missing" => None,
        other => panic!("unknown case {other}"),
    }
}

fn script_for(case: &'static str) -> Script {
    Arc::new(move |requester, stream| {
        let r = requester.and_then(|req| forge(case, req));
        if stream {
            stream_with_receipt(r)
        } else {
            answer_with_receipt(r)
        }
    })
}

/// A script that sends the very same signed receipt every time (a replay).
fn replaying(receipt_b64: String) -> Script {
    Arc::new(move |_, stream| {
        if stream {
            stream_with_receipt(Some(receipt_b64.clone()))
        } else {
            answer_with_receipt(Some(receipt_b64.clone()))
        }
    })
}

async fn ask(client: &reqwest::Client, router: &str, stream: bool) -> String {
    let r = client
        .post(format!("{router}/v1/chat/completions"))
        .json(&support::chat_body("m", stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the client is still served");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("hi") && text.contains("there"),
        "content reached the client: {text}"
    );
    assert!(
        !text.contains("lobstah-receipt"),
        "the receipt comment is never forwarded: {text}"
    );
    text
}

async fn rejection_count(router: &support::TestRouter, reason: &str) -> usize {
    router.service.flush_ledger().await;
    router
        .service
        .recent_rejections()
        .iter()
        .filter(|r| r.reason == reason)
        .count()
}

#[tokio::test]
async fn forged_receipts_are_refused_and_not_ledgered() {
    let me = Identity::from_seed([2; 32]);
    let clock = ManualClock::new(NOW);
    let peer = ScriptedPeer::start(worker().public(), &["m"], script_for("honest")).await;
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(worker().public(), peer.url.clone())],
        Arc::new(clock.clone()),
        |_| {},
    )
    .await;
    let client = support::client();
    let cases = [
        "bad-signature",
        "not-ours",
        "stale",
        "future",
        "wrong-worker",
        "malformed",
        "missing",
    ];
    for stream in [false, true] {
        for case in cases {
            peer.set_script(script_for(case));
            let before = router.ledger.totals().unwrap();
            let seen = rejection_count(&router, case).await;
            ask(&client, &router.url, stream).await;
            support::eventually(
                &format!("{case} refusal recorded (stream={stream})"),
                Duration::from_secs(5),
                || {
                    router
                        .service
                        .recent_rejections()
                        .iter()
                        .filter(|r| r.reason == case)
                        .count()
                        > seen
                },
            )
            .await;
            router.service.flush_ledger().await;
            assert_eq!(
                router.ledger.totals().unwrap(),
                before,
                "{case} (stream={stream}) changed the ledger"
            );
        }
        // The honest receipt is ledgered, once.
        peer.set_script(script_for("honest"));
        let before = router.ledger.totals().unwrap();
        ask(&client, &router.url, stream).await;
        support::eventually("honest receipt ledgered", Duration::from_secs(5), || {
            router.ledger.totals().unwrap().receipts == before.receipts + 1
        })
        .await;
    }
    let balance = router.ledger.balance(&me.public()).unwrap();
    assert_eq!((balance.spent, balance.receipts), (10, 2));
    // The counter moves when the router hears its append was committed, a moment after
    // the commit itself is visible in the ledger.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let metrics = client
            .get(format!("{}/metrics", router.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("lobstah_router_receipts_accepted_total 2")
            || tokio::time::Instant::now() > deadline
        {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        metrics.contains("lobstah_router_receipts_rejected_total{reason=\"bad-signature\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lobstah_router_receipts_accepted_total 2"),
        "{metrics}"
    );
    router.stop().await;
}

#[tokio::test]
async fn a_replayed_nonce_is_refused_also_after_a_router_restart() {
    let me = Identity::from_seed([2; 32]);
    let clock = ManualClock::new(NOW);
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("router.redb");
    let once = forge("honest", me.public()).unwrap();
    let peer = ScriptedPeer::start(worker().public(), &["m"], replaying(once)).await;
    let client = support::client();

    let router = support::start_router(
        me.clone(),
        store::open(&db_path).unwrap(),
        &[(worker().public(), peer.url.clone())],
        Arc::new(clock.clone()),
        |_| {},
    )
    .await;
    ask(&client, &router.url, false).await;
    support::eventually("first receipt ledgered", Duration::from_secs(5), || {
        router.ledger.totals().unwrap().receipts == 1
    })
    .await;
    ask(&client, &router.url, true).await;
    support::eventually("replay refused", Duration::from_secs(5), || {
        router
            .service
            .recent_rejections()
            .iter()
            .any(|r| r.reason == "replayed-nonce")
    })
    .await;
    router.stop().await;

    // Same database, new process state: the nonce is still known.
    let db = (0..200)
        .find_map(|_| {
            store::open(&db_path).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(10));
                None
            })
        })
        .expect("database reopens once the old router let go of it");
    let router = support::start_router(me.clone(), db, &[], Arc::new(clock.clone()), |_| {}).await;
    ask(&client, &router.url, false).await;
    support::eventually(
        "replay after restart refused",
        Duration::from_secs(5),
        || {
            router
                .service
                .recent_rejections()
                .iter()
                .any(|r| r.reason == "replayed-nonce")
        },
    )
    .await;
    router.service.flush_ledger().await;
    assert_eq!(router.ledger.totals().unwrap().receipts, 1);
    assert_eq!(router.ledger.balance(&me.public()).unwrap().spent, 5);
    router.stop().await;
}
