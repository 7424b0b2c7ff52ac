//! The router's side of honest credits: receipts whose token counts the delivered text
//! cannot hold are refused, counted against the peer and never confirmed; a worker that
//! declines (402) is not a failing worker; and after mixed traffic through a real worker
//! the two ledgers agree receipt by receipt once the router's confirmations land.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::{Clock, ManualClock, SystemClock};
use lobstah::core::engine::OpenAiEngine;
use lobstah::core::ledger::{ALLOWANCE_TOKENS, Standing, verify_ledger};
use lobstah::core::protocol::{Identity, PublicKey, Receipt, SignedReceipt, new_nonce};
use lobstah::testkit::{FakeConfig, FakeOpenAi};
use serde_json::Value;
use support::scripted_peer::{Script, ScriptedPeer, answer_with_receipt, stream_with_receipt};

const NOW: u64 = 1_800_000_000_000;

/// A scripted worker signing honest-looking receipts with `input`/`output` counts for
/// an answer whose text is "hi there" (8 bytes).
fn claiming(worker: Identity, input: u64, output: u64) -> Script {
    Arc::new(move |requester, stream| {
        let receipt = requester.map(|req| {
            let r = Receipt {
                version: 1,
                job_id: uuid::Uuid::new_v4().to_string(),
                nonce: new_nonce(),
                requester_pubkey: req,
                worker_pubkey: worker.public(),
                model: "m".into(),
                input_tokens: input,
                output_tokens: output,
                started_at: NOW - 10,
                completed_at: NOW,
            };
            SignedReceipt::sign(r, &worker).unwrap().to_base64()
        });
        if stream {
            stream_with_receipt(receipt)
        } else {
            answer_with_receipt(receipt)
        }
    })
}

/// Sends one chat request to the router and reads the answer through; its status.
/// A chat body naming a modest `max_tokens`: a worker reserves a request's whole output
/// allowance against its requester's credit while it runs, so a new requester with many
/// requests in flight must say how long an answer it wants (the worker's cap otherwise).
fn modest_body(model: &str, stream: bool) -> serde_json::Value {
    let mut body = support::chat_body(model, stream);
    body["max_tokens"] = serde_json::json!(64);
    body
}

async fn ask(client: &reqwest::Client, router: &str, model: &str, stream: bool) -> u16 {
    let r = client
        .post(format!("{router}/v1/chat/completions"))
        .json(&modest_body(model, stream))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let _ = r.text().await;
    status
}

#[tokio::test]
async fn implausible_receipts_are_refused_counted_and_never_confirmed() {
    let worker = Identity::from_seed([61; 32]);
    let peer = ScriptedPeer::start(worker.public(), &["m"], claiming(worker.clone(), 3, 2)).await;
    let clock = Arc::new(ManualClock::new(NOW));
    let router = support::start_router(
        Identity::from_seed([62; 32]),
        support::memory_db(),
        &[(worker.public(), peer.url.clone())],
        clock.clone(),
        |_| {},
    )
    .await;
    let client = support::client();

    // Honest counts are accepted: the check tells the two apart.
    assert_eq!(ask(&client, &router.url, "m", false).await, 200);
    router.service.flush_ledger().await;
    assert_eq!(router.ledger.totals().unwrap().receipts, 1);

    // "hi there" is 8 bytes: 8 + 32 output tokens is the most it can hold.
    for (input, output, stream) in [(3, 41, false), (3, 500, true), (1_000_000, 2, false)] {
        peer.set_script(claiming(worker.clone(), input, output));
        assert_eq!(
            ask(&client, &router.url, "m", stream).await,
            200,
            "the client is served"
        );
        // A stream's receipt is judged just after its last byte went out.
        support::eventually("the peer excluded", Duration::from_secs(5), || {
            router.service.peers_json()[0]["state"] == "excluded"
        })
        .await;
        let row = router.service.peers_json().into_iter().next().unwrap();
        assert!(
            row["exclusionReason"]
                .as_str()
                .unwrap()
                .contains("implausible"),
            "{row}"
        );
        assert_eq!(
            ask(&client, &router.url, "m", false).await,
            503,
            "and it sits out"
        );
        clock.advance(30_001);
    }
    router.service.flush_ledger().await;
    assert_eq!(
        router.ledger.totals().unwrap().receipts,
        1,
        "none of them ledgered"
    );
    let implausible = router
        .service
        .recent_rejections()
        .into_iter()
        .filter(|r| r.reason == "implausible")
        .count();
    assert_eq!(implausible, 3);
    let counters = router.service.peer_counters()[&worker.public()];
    assert_eq!((counters.receipts, counters.refused_receipts), (1, 3));
    let row = router.service.peers_json().into_iter().next().unwrap();
    assert_eq!(row["refusedReceipts"], 3);

    // Only the honest receipt is queued for confirmation (the scripted peer takes no
    // confirmations, so it is dropped as unsupported rather than retried).
    let round = router.service.confirm_now().await.unwrap();
    assert_eq!((round.settled, round.disputed, round.waiting), (0, 0, 0));
}

#[tokio::test]
async fn a_declining_worker_is_skipped_without_counting_against_it() {
    let clock = Arc::new(SystemClock);
    let fake = FakeOpenAi::start_with(FakeConfig::default().with_reply("fine"))
        .await
        .unwrap();
    let engine = || Arc::new(OpenAiEngine::new(fake.url(), None).unwrap());
    let router_id = Identity::from_seed([63; 32]);
    // The first worker will not extend us credit: it has seen us spend everything.
    let stingy = support::start_worker_with(
        Identity::from_seed([64; 32]),
        engine(),
        support::memory_db(),
        clock.clone(),
        |c| c.access.max_unconfirmed_tokens = 0,
    )
    .await;
    seed_spent(&stingy, &Identity::from_seed([64; 32]), router_id.public());
    let router = support::start_router(
        router_id.clone(),
        support::memory_db(),
        &[(stingy.pubkey, stingy.url.clone())],
        clock.clone(),
        |_| {},
    )
    .await;
    let client = support::client();
    let r = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&support::chat_body("fake-model", false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        402,
        "the only peer's verdict reaches the client"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "peers_declined", "{body}");
    assert_eq!(fake.request_count(), 0);
    router.service.flush_ledger().await;
    assert_eq!(router.ledger.totals().unwrap().receipts, 0);
    let row = router.service.peers_json().into_iter().next().unwrap();
    assert_eq!(
        (row["declined"].as_u64(), row["failed"].as_u64()),
        (Some(1), Some(0)),
        "{row}"
    );
    assert_ne!(row["state"], "excluded");

    // A second worker that extends credit serves the same request.
    let generous = support::start_worker(
        Identity::from_seed([65; 32]),
        engine(),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    router
        .service
        .book()
        .add(
            generous.pubkey,
            &generous.url,
            Some("generous"),
            lobstah::core::peers::PeerSource::Manual,
            clock.now_ms(),
        )
        .unwrap();
    router.service.reload_peers().unwrap();
    router.service.refresh_capacity(true).await;
    let r = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&support::chat_body("fake-model", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["x-lobstah-served-by"],
        generous.pubkey.to_string().as_str()
    );
}

/// Ledgers, at `w`, a confirmed receipt in which `requester` spent its whole allowance.
fn seed_spent(w: &support::TestWorker, worker: &Identity, requester: PublicKey) {
    use lobstah::core::ledger::{AcceptRules, Party, sign_own};
    let at = SystemClock.now_ms();
    let receipt = Receipt {
        version: 1,
        job_id: "earlier".into(),
        nonce: new_nonce(),
        requester_pubkey: requester,
        worker_pubkey: worker.public(),
        model: "m".into(),
        input_tokens: ALLOWANCE_TOKENS as u64,
        output_tokens: 0,
        started_at: at,
        completed_at: at,
    };
    let rules = AcceptRules {
        now_ms: Some(at),
        party: Party::Worker(worker.public()),
    };
    w.ledger
        .append(&[sign_own(receipt, worker).unwrap().accept(&rules).unwrap()])
        .unwrap();
}

/// nonce → (tokens, receipt signature) of the receipts in which `requester` asked
/// `worker`, from `ledger`, keeping only those `keep` accepts.
fn receipts_between(
    ledger: &lobstah::core::ledger::Ledger,
    requester: PublicKey,
    worker: PublicKey,
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<String, (u64, String)> {
    ledger
        .since(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|s| s.receipt)
        .filter(|r| {
            r.receipt().requester_pubkey == requester && r.receipt().worker_pubkey == worker
        })
        .filter(|r| keep(&r.receipt().nonce))
        .map(|r| {
            (
                r.receipt().nonce.clone(),
                (r.receipt().total_tokens(), r.signature().to_hex()),
            )
        })
        .collect()
}

/// A worker on a fake OpenAI engine answering `reply` (identity seed `seed`) and a
/// router (seed `seed + 1`) whose confirmation rounds run only when a test asks.
async fn confirming_pair(
    clock: lobstah::core::clock::SharedClock,
    reply: &str,
    seed: u8,
) -> (
    FakeOpenAi,
    support::TestWorker,
    Identity,
    support::TestRouter,
) {
    let fake = FakeOpenAi::start_with(FakeConfig::default().with_reply(reply))
        .await
        .unwrap();
    let worker = support::start_worker(
        Identity::from_seed([seed; 32]),
        Arc::new(OpenAiEngine::new(fake.url(), None).unwrap()),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    let router_id = Identity::from_seed([seed + 1; 32]);
    let router = support::start_router(
        router_id.clone(),
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        clock.clone(),
        |c| c.confirm_every = Duration::from_secs(3_600),
    )
    .await;
    (fake, worker, router_id, router)
}

#[tokio::test]
async fn after_mixed_traffic_both_ledgers_agree_receipt_by_receipt() {
    let clock = Arc::new(SystemClock);
    let (_fake, worker, router_id, router) =
        confirming_pair(clock.clone(), "the quick brown fox", 66).await;
    let client = support::client();

    // Whole and streamed chat, jobs, and requests that earn nothing (unknown model).
    let mut asks = Vec::new();
    for i in 0..24 {
        let (model, stream) = match i % 4 {
            0 | 1 => ("fake-model", false),
            2 => ("fake-model", true),
            _ => ("no-such-model", false),
        };
        let (client, url) = (client.clone(), router.url.clone());
        asks.push(tokio::spawn(async move {
            ask(&client, &url, model, stream).await
        }));
    }
    let mut served = 0;
    for ask in asks {
        if ask.await.unwrap() == 200 {
            served += 1;
        }
    }
    assert_eq!(served, 18);
    let mut jobs = Vec::new();
    for i in 0..4 {
        let body = support::jobs::job_body("fake-model", &format!("job {i}"));
        let (status, job) = support::jobs::submit(&client, &router.url, &body, None, None).await;
        assert!(status == 202 || status == 200, "{status} {job}");
        jobs.push(job["id"].as_str().unwrap().to_string());
    }
    for id in &jobs {
        support::jobs::wait_for(
            &client,
            &router.url,
            id,
            None,
            "done",
            Duration::from_secs(20),
        )
        .await;
    }

    // A stream's receipt is taken just after its last byte reached the client.
    support::eventually("all 22 receipts ledgered", Duration::from_secs(10), || {
        router.ledger.totals().unwrap().receipts == 22
    })
    .await;
    worker.worker.flush_ledger().await;
    let (me, them) = (router_id.public(), worker.pubkey);
    let pending = receipts_between(&worker.ledger, me, them, |n| {
        worker.ledger.standing(n).unwrap() == Some(Standing::Pending)
    });
    assert_eq!(pending.len(), 22, "unconfirmed until the router confirms");
    // Both sides see the same debt: what the router has yet to confirm is what the
    // worker holds against it.
    let tokens: u64 = pending.values().map(|(t, _)| t).sum();
    let owing = router.service.owing().unwrap();
    let owing: Vec<_> = owing
        .iter()
        .map(|o| (o.worker, o.tokens, o.receipts))
        .collect();
    assert_eq!(owing, [(them, tokens, 22)]);
    let owed = worker.ledger.owed().unwrap().rows;
    let owed: Vec<_> = owed
        .iter()
        .map(|o| (o.requester, o.tokens, o.receipts))
        .collect();
    assert_eq!(owed, [(me, tokens, 22)]);

    let round = router.service.confirm_now().await.unwrap();
    assert_eq!((round.settled, round.disputed, round.waiting), (22, 0, 0));

    let spent = receipts_between(&router.ledger, me, them, |_| true);
    let confirmed = receipts_between(&worker.ledger, me, them, |n| {
        worker.ledger.standing(n).unwrap() == Some(Standing::Confirmed)
    });
    assert_eq!(spent.len(), 22);
    assert_eq!(
        spent, confirmed,
        "the same receipts, the same tokens, the same signatures"
    );
    for nonce in confirmed.keys() {
        let c = worker
            .ledger
            .confirmation_of(nonce)
            .unwrap()
            .expect("stored beside it");
        c.verify_signature().unwrap();
        assert_eq!(c.confirmation().requester_pubkey, me);
    }
    let at_router = router.ledger.balance(&me).unwrap();
    let at_worker = worker.ledger.balance(&them).unwrap();
    assert_eq!(at_worker.pending_earned, 0);
    assert_eq!(at_router.spent, at_worker.confirmed_earned());
    assert_eq!(worker.ledger.balance(&me).unwrap().pending_spent, 0);
    // A second round finds nothing left to send.
    let again = router.service.confirm_now().await.unwrap();
    assert_eq!((again.settled, again.waiting), (0, 0));
    assert_eq!(router.service.owing().unwrap(), []);
    assert_eq!(worker.ledger.owed().unwrap().rows, []);
    assert!(verify_ledger(&router.ledger).unwrap().is_ok());
    assert!(verify_ledger(&worker.ledger).unwrap().is_ok());
}

/// The settle window, applied the same way on both sides: a receipt the router could not
/// confirm for a day (its worker was gone) is given up on and marked expired in the
/// router's ledger, and the worker expires it too, so neither side counts it and the
/// worker's exposure cap no longer holds it against the requester.
#[tokio::test]
async fn a_receipt_nobody_could_confirm_for_a_day_expires_on_both_sides() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (_fake, worker, router_id, router) =
        confirming_pair(clock.clone(), "gone tomorrow", 68).await;
    let client = support::client();
    // The router's round at start (reconcile, then confirm) must be over before the
    // request, or it would confirm the receipt this test needs unconfirmed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ask(&client, &router.url, "fake-model", false).await, 200);
    worker.worker.flush_ledger().await;
    let (me, them) = (router_id.public(), worker.pubkey);
    let served = receipts_between(&router.ledger, me, them, |_| true);
    assert_eq!(served.len(), 1);
    let nonce = served.keys().next().unwrap().clone();
    assert_eq!(
        worker.ledger.standing(&nonce).unwrap(),
        Some(Standing::Pending)
    );
    let tokens = served[&nonce].0;
    assert_eq!(worker.ledger.balance(&me).unwrap().pending_spent, tokens);

    // The worker goes away; a day passes with every confirmation failing.
    worker.shutdown.cancel();
    let round = router.service.confirm_now().await.unwrap();
    assert_eq!((round.settled, round.waiting), (0, 1), "kept for later");
    clock.advance(lobstah::core::ledger::SETTLE_WINDOW_MS + 1);
    let round = router.service.confirm_now().await.unwrap();
    assert_eq!((round.settled, round.waiting), (0, 0), "given up");
    assert_eq!(
        router.ledger.standing(&nonce).unwrap(),
        Some(Standing::Expired)
    );
    assert_eq!(router.ledger.balance(&me).unwrap().charged_spent(), 0);

    // Within the clock skew receipts allow, the worker still holds it; then not.
    assert_eq!(worker.ledger.expire_pending(clock.now_ms()).unwrap(), 0);
    clock.advance(lobstah::core::protocol::RECEIPT_SKEW_MS);
    assert_eq!(worker.ledger.expire_pending(clock.now_ms()).unwrap(), 1);
    assert_eq!(
        worker.ledger.standing(&nonce).unwrap(),
        Some(Standing::Expired)
    );
    let owed = worker.ledger.balance(&me).unwrap();
    assert_eq!((owed.pending_spent, owed.charged_spent()), (0, 0));
    assert_eq!(worker.ledger.balance(&them).unwrap().confirmed_earned(), 0);
    assert_eq!(
        receipts_between(&worker.ledger, me, them, |_| true),
        served,
        "the same receipt stays in both logs"
    );
    assert!(verify_ledger(&router.ledger).unwrap().is_ok());
    assert!(verify_ledger(&worker.ledger).unwrap().is_ok());
}
