//! The worker's refusals, each through a real listener with a fake engine that counts
//! what reaches it: an impersonated requester, a replayed request (also across a
//! restart), an unsigned request
//! where signatures are required, an over-limit spender, a requester over the
//! unconfirmed-exposure cap, and a stranger at a friends-only worker. Each asserts the
//! engine did no work and nothing was ledgered, or ledgered to nobody's cost.

use crate::support;

use lobstah::core::clock::{Clock, SystemClock};
use lobstah::core::ledger::{
    ALLOWANCE_TOKENS, AcceptRules, Party, Standing, sign_own, verify_ledger,
};
use lobstah::core::protocol::{Identity, Receipt, new_nonce};
use lobstah::core::worker::{CONFIRM_PATH, WorkerConfig};
use lobstah::testkit::{FakeConfig, FakeOpenAi};
use serde_json::Value;
use support::signed::{Sent, confirmation, error_type, receipt_of};

const CHAT: &str = "/v1/chat/completions";

fn now() -> u64 {
    SystemClock.now_ms()
}

async fn worker_with(
    seed: u8,
    configure: impl FnOnce(&mut WorkerConfig),
) -> (support::TestWorker, FakeOpenAi) {
    support::worker_on(
        seed,
        FakeConfig::default().with_reply("fine thanks"),
        configure,
    )
    .await
}

fn body() -> Value {
    support::chat_body("fake-model", false)
}

/// A chat request to `w`, signed now by `who` in its own name.
fn signed_chat(w: &support::TestWorker, who: &Identity) -> Sent {
    Sent::post(CHAT, &body(), &w.pubkey, Some(who), &who.public(), now())
}

#[tokio::test]
async fn an_impersonator_is_refused_and_an_unsigned_claim_charges_nobody() {
    let (w, fake) = worker_with(40, |_| {}).await;
    let client = support::client();
    let victim = Identity::from_seed([41; 32]);
    let attacker = Identity::from_seed([42; 32]);

    // Signed by the attacker while naming the victim: the signature does not verify.
    let forged = Sent::post(
        CHAT,
        &body(),
        &w.pubkey,
        Some(&attacker),
        &victim.public(),
        now(),
    );
    let (status, kind) = error_type(forged.send(&client, &w.url).await).await;
    assert_eq!((status, kind.as_str()), (401, "invalid_signature"));
    assert_eq!(fake.request_count(), 0, "the engine never saw it");

    // Unsigned, naming the victim: served as anonymous; the receipt names the victim
    // (older routers need that) but the victim is charged nothing.
    let claim = Sent::post(CHAT, &body(), &w.pubkey, None, &victim.public(), now());
    let answer = claim.send(&client, &w.url).await;
    assert_eq!(answer.status().as_u16(), 200);
    let receipt = receipt_of(&answer);
    assert_eq!(receipt.receipt().requester_pubkey, victim.public());
    w.worker.flush_ledger().await;
    let nonce = &receipt.receipt().nonce;
    assert_eq!(w.ledger.standing(nonce).unwrap(), Some(Standing::Anonymous));
    let seen = w.ledger.balance(&victim.public()).unwrap();
    assert!(seen.spent > 0);
    assert_eq!(seen.anonymous_spent, seen.spent);
    assert_eq!(seen.charged_spent(), 0);
    assert_eq!(seen.available(), ALLOWANCE_TOKENS);
    let me = w.ledger.balance(&w.pubkey).unwrap();
    assert_eq!(
        me.pending_earned, me.earned,
        "an anonymous earning is never confirmed"
    );
    assert_eq!(me.net(), 0);

    // A valid request sent twice: the copy is refused and runs nothing.
    let honest = signed_chat(&w, &victim);
    assert_eq!(honest.send(&client, &w.url).await.status().as_u16(), 200);
    let (status, kind) = error_type(honest.send(&client, &w.url).await).await;
    assert_eq!((status, kind.as_str()), (401, "invalid_signature"));
    assert_eq!(fake.request_count(), 2);

    // Signed for another worker: refused here.
    let elsewhere = Identity::from_seed([49; 32]).public();
    let misdirected = Sent::post(
        CHAT,
        &body(),
        &elsewhere,
        Some(&victim),
        &victim.public(),
        now(),
    );
    assert_eq!(
        misdirected.send(&client, &w.url).await.status().as_u16(),
        401
    );
    // Stale: signed two minutes ago.
    let stale = Sent::post(
        CHAT,
        &body(),
        &w.pubkey,
        Some(&victim),
        &victim.public(),
        now() - 120_000,
    );
    assert_eq!(stale.send(&client, &w.url).await.status().as_u16(), 401);
    assert_eq!(fake.request_count(), 2);

    w.worker.flush_ledger().await;
    assert_eq!(w.ledger.totals().unwrap().receipts, 2);
    assert!(verify_ledger(&w.ledger).unwrap().is_ok());
}

#[tokio::test]
async fn unsigned_requests_are_refused_where_signatures_are_required() {
    let (w, fake) = worker_with(43, |c| c.access.require_signed = true).await;
    let client = support::client();
    let someone = Identity::from_seed([44; 32]);
    let unsigned = Sent::post(CHAT, &body(), &w.pubkey, None, &someone.public(), now());
    let (status, kind) = error_type(unsigned.send(&client, &w.url).await).await;
    assert_eq!((status, kind.as_str()), (401, "signature_required"));
    let signed = signed_chat(&w, &someone);
    assert_eq!(signed.send(&client, &w.url).await.status().as_u16(), 200);
    assert_eq!(fake.request_count(), 1);
}

/// The nonce cache is in memory, so a restarted worker could not tell a replay of a
/// request sent just before the restart; it refuses every request signed before it
/// started, and serves a fresh one.
#[tokio::test]
async fn a_request_from_before_a_restart_is_refused_after_it() {
    let client = support::client();
    let requester = Identity::from_seed([46; 32]);
    let captured = {
        let (w, fake) = worker_with(45, |_| {}).await;
        let sent = signed_chat(&w, &requester);
        assert_eq!(sent.send(&client, &w.url).await.status().as_u16(), 200);
        assert_eq!(fake.request_count(), 1);
        sent
    };
    // The same worker, restarted (at least a millisecond later): same key, a fresh
    // process state.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let (restarted, fake) = worker_with(45, |_| {}).await;
    let replayed = captured.send(&client, &restarted.url).await;
    let status = replayed.status().as_u16();
    let body_text = replayed.text().await.unwrap();
    assert_eq!(status, 401, "{body_text}");
    assert!(
        body_text.contains("before this worker started"),
        "{body_text}"
    );
    assert_eq!(fake.request_count(), 0, "the engine never saw the replay");
    restarted.worker.flush_ledger().await;
    assert_eq!(restarted.ledger.totals().unwrap().receipts, 0);

    let fresh = signed_chat(&restarted, &requester);
    assert_eq!(
        fresh.send(&client, &restarted.url).await.status().as_u16(),
        200
    );
    assert_eq!(fake.request_count(), 1);
}

/// A job submitted with a signature is its signer's alone: an unsigned request claiming
/// the signer's key neither sees nor cancels it (404, as for a stranger).
#[tokio::test]
async fn a_signed_job_is_out_of_reach_of_an_unsigned_claim() {
    let (w, _fake) = worker_with(47, |_| {}).await;
    let client = support::client();
    let owner = Identity::from_seed([48; 32]);
    let submitted = Sent::post(
        "/v1/jobs",
        &body(),
        &w.pubkey,
        Some(&owner),
        &owner.public(),
        now(),
    )
    .send(&client, &w.url)
    .await;
    assert_eq!(submitted.status().as_u16(), 202);
    let job: Value = submitted.json().await.unwrap();
    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    let ask = |method: reqwest::Method, signer: Option<&Identity>| {
        Sent::bodiless(method, &path, &w.pubkey, signer, &owner.public(), now())
    };

    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, kind) =
            error_type(ask(method.clone(), None).send(&client, &w.url).await).await;
        assert_eq!(
            (status, kind.as_str()),
            (404, "not_found"),
            "unsigned {method}"
        );
    }
    // The owner, signed, sees it; it was never cancelled by the claims above.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let seen = loop {
        let answer = ask(reqwest::Method::GET, Some(&owner))
            .send(&client, &w.url)
            .await;
        assert_eq!(answer.status().as_u16(), 200);
        let job: Value = answer.json().await.unwrap();
        if job["status"] != "queued" && job["status"] != "running" {
            break job;
        }
        assert!(std::time::Instant::now() < until, "the job did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(seen["status"], "done", "{seen}");
}

/// Ledgers a receipt in which `requester` spent `tokens` at `worker`, as confirmed.
fn seed_spending(w: &support::TestWorker, worker: &Identity, requester: &Identity, tokens: u64) {
    let at = now();
    let receipt = Receipt {
        version: 1,
        job_id: "earlier".into(),
        nonce: new_nonce(),
        requester_pubkey: requester.public(),
        worker_pubkey: worker.public(),
        model: "m".into(),
        input_tokens: tokens,
        output_tokens: 0,
        started_at: at,
        completed_at: at,
    };
    let rules = AcceptRules {
        now_ms: Some(at),
        party: Party::Worker(worker.public()),
    };
    let verified = sign_own(receipt, worker).unwrap().accept(&rules).unwrap();
    w.ledger.append(&[verified]).unwrap();
}

#[tokio::test]
async fn a_requester_out_of_credit_gets_402_before_any_work() {
    let worker_id = Identity::from_seed([45; 32]);
    let spender = Identity::from_seed([46; 32]);
    let friend = Identity::from_seed([47; 32]);
    let friend_pk = friend.public();
    let (w, fake) = worker_with(45, |c| c.access.trusted = vec![friend_pk]).await;
    seed_spending(&w, &worker_id, &spender, ALLOWANCE_TOKENS as u64);
    seed_spending(&w, &worker_id, &friend, ALLOWANCE_TOKENS as u64);
    let client = support::client();
    let before = w.ledger.totals().unwrap();

    let ask = signed_chat(&w, &spender);
    let (status, kind) = error_type(ask.send(&client, &w.url).await).await;
    assert_eq!((status, kind.as_str()), (402, "insufficient_credit"));
    assert_eq!(fake.request_count(), 0, "refused before the engine");
    w.worker.flush_ledger().await;
    assert_eq!(w.ledger.totals().unwrap(), before, "nothing ledgered");

    // A trusted key (the operator's own machine) is served whatever its balance.
    let ask = Sent::post(CHAT, &body(), &w.pubkey, Some(&friend), &friend_pk, now());
    assert_eq!(ask.send(&client, &w.url).await.status().as_u16(), 200);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn unconfirmed_exposure_is_capped_until_the_requester_confirms() {
    let (w, fake) = worker_with(50, |c| c.access.max_unconfirmed_tokens = 1).await;
    let client = support::client();
    let requester = Identity::from_seed([51; 32]);
    let ask = || signed_chat(&w, &requester);

    let first = ask().send(&client, &w.url).await;
    assert_eq!(first.status().as_u16(), 200);
    let receipt = receipt_of(&first);
    w.worker.flush_ledger().await;
    assert_eq!(
        w.ledger.standing(&receipt.receipt().nonce).unwrap(),
        Some(Standing::Pending)
    );
    let owed = w.ledger.balance(&requester.public()).unwrap();
    assert_eq!(owed.pending_spent, receipt.receipt().total_tokens());

    let (status, kind) = error_type(ask().send(&client, &w.url).await).await;
    assert_eq!((status, kind.as_str()), (402, "unconfirmed_exposure"));
    assert_eq!(fake.request_count(), 1, "refused before the engine");

    // A confirmation signed by someone else, or naming another signature, settles nothing.
    let stranger = Identity::from_seed([52; 32]);
    let forged = confirmation(&stranger, w.pubkey, &[&receipt], now());
    let mut body_value = forged.to_value();
    body_value["confirmation"]["requesterPubkey"] = requester.public().to_string().into();
    let sent = client
        .post(format!("{}{CONFIRM_PATH}", w.url))
        .json(&body_value)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 401);
    assert_eq!(
        w.ledger.standing(&receipt.receipt().nonce).unwrap(),
        Some(Standing::Pending)
    );

    let real = confirmation(&requester, w.pubkey, &[&receipt], now());
    let answer: Value = client
        .post(format!("{}{CONFIRM_PATH}", w.url))
        .json(&real.to_value())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["confirmed"], 1, "{answer}");
    assert_eq!(
        w.ledger.standing(&receipt.receipt().nonce).unwrap(),
        Some(Standing::Confirmed)
    );
    assert_eq!(
        w.ledger.confirmation_of(&receipt.receipt().nonce).unwrap(),
        Some(real.clone())
    );
    // Sent again (a retry): nothing settles twice.
    let again: Value = client
        .post(format!("{}{CONFIRM_PATH}", w.url))
        .json(&real.to_value())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            again["confirmed"].as_u64(),
            again["alreadyConfirmed"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let settled = w.ledger.balance(&requester.public()).unwrap();
    assert_eq!(settled.pending_spent, 0);
    assert_eq!(w.ledger.balance(&w.pubkey).unwrap().pending_earned, 0);

    assert_eq!(ask().send(&client, &w.url).await.status().as_u16(), 200);
    assert_eq!(fake.request_count(), 2);
    w.worker.flush_ledger().await;
    assert!(verify_ledger(&w.ledger).unwrap().is_ok());
}

#[tokio::test]
async fn a_friends_only_worker_turns_strangers_away() {
    let friend = Identity::from_seed([54; 32]);
    let friend_pk = friend.public();
    let (w, fake) = worker_with(53, |c| c.access.serve_only = vec![friend_pk]).await;
    let client = support::client();
    let stranger = Identity::from_seed([55; 32]);
    let ask = signed_chat(&w, &stranger);
    let (status, kind) = error_type(ask.send(&client, &w.url).await).await;
    assert_eq!((status, kind.as_str()), (403, "requester_not_allowed"));
    let unsigned = Sent::post(CHAT, &body(), &w.pubkey, None, &friend_pk, now());
    assert_eq!(
        unsigned.send(&client, &w.url).await.status().as_u16(),
        401,
        "a friend proves it is one"
    );
    let ask = Sent::post(CHAT, &body(), &w.pubkey, Some(&friend), &friend_pk, now());
    assert_eq!(ask.send(&client, &w.url).await.status().as_u16(), 200);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn per_requester_concurrency_is_limited() {
    let slow = FakeConfig::default()
        .with_reply("one two three four")
        .with_chunk_delay(std::time::Duration::from_millis(300));
    let (w, fake) = support::worker_on(59, slow, |c| c.access.per_requester_concurrency = 1).await;
    let client = support::client();
    let busy = Identity::from_seed([60; 32]);
    let streaming = support::chat_body("fake-model", true);
    let first = Sent::post(
        CHAT,
        &streaming,
        &w.pubkey,
        Some(&busy),
        &busy.public(),
        now(),
    );
    let open = first.send(&client, &w.url).await;
    assert_eq!(open.status().as_u16(), 200, "the first stream is running");
    let second = signed_chat(&w, &busy);
    let (status, kind) = error_type(second.send(&client, &w.url).await).await;
    assert_eq!((status, kind.as_str()), (429, "too_many_in_flight"));
    let text = open.text().await.unwrap();
    assert!(
        text.contains(":lobstah-receipt:"),
        "the first one finished with a receipt"
    );
    let third = signed_chat(&w, &busy);
    assert_eq!(
        third.send(&client, &w.url).await.status().as_u16(),
        200,
        "its slot came back"
    );
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn per_requester_rate_is_limited() {
    let (w, fake) = worker_with(56, |c| {
        c.access.per_requester_per_minute = 2;
        c.access.per_requester_burst = 2;
    })
    .await;
    let client = support::client();
    let busy = Identity::from_seed([57; 32]);
    let other = Identity::from_seed([58; 32]);
    for _ in 0..2 {
        let ask = signed_chat(&w, &busy);
        assert_eq!(ask.send(&client, &w.url).await.status().as_u16(), 200);
    }
    let ask = signed_chat(&w, &busy);
    let response = ask.send(&client, &w.url).await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, kind) = error_type(response).await;
    assert_eq!((status, kind.as_str()), (429, "rate_limited"));
    // Someone else is not held back by it.
    let ask = signed_chat(&w, &other);
    assert_eq!(ask.send(&client, &w.url).await.status().as_u16(), 200);
    assert_eq!(fake.request_count(), 3);
}
