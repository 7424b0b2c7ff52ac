//! Credit that cannot be overdrawn, through real listeners: 32 requests at once, each
//! asking for `max_tokens` u64::MAX, from a signed requester the worker does not trust
//! (through a real router), and from unsigned requesters sharing the anonymous quota
//! (to an engine that ignores `max_tokens`, so the worker's own stream cut is what
//! holds). The tokens served never exceed what the requester could pay for, and its
//! available credit never ends below zero on either side.

use crate::support;

use std::sync::Arc;

use futures_util::future::join_all;
use lobstah::core::clock::{Clock, SystemClock};
use lobstah::core::ledger::ALLOWANCE_TOKENS;
use lobstah::core::protocol::Identity;
use lobstah::core::worker::DEFAULT_MAX_OUTPUT_TOKENS;
use lobstah::testkit::FakeConfig;
use serde_json::{Value, json};
use support::signed::Sent;

const CONCURRENT: usize = 32;

/// A reply far longer than any allowance: one token a word.
fn endless_reply() -> String {
    vec!["tok"; 40_000].join(" ")
}

fn greedy_body(stream: bool) -> Value {
    json!({
        "model": "fake-model",
        "stream": stream,
        "max_tokens": u64::MAX,
        "messages": [{"role": "user", "content": "write forever"}],
    })
}

/// The words of a whole answer's message.
fn words_of(answer: &Value) -> u64 {
    answer["choices"][0]["message"]["content"]
        .as_str()
        .map_or(0, |text| text.split_whitespace().count() as u64)
}

/// Content tokens of a streamed answer, and the last chunk's finish reason.
fn stream_of(text: &str) -> (u64, Option<String>, bool) {
    let mut tokens = 0;
    let mut finish = None;
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        let choice = &chunk["choices"][0];
        if choice["delta"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
        {
            tokens += 1;
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish = Some(reason.to_string());
        }
    }
    (tokens, finish, text.contains(":lobstah-receipt:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_requester_cannot_overdraw_its_credit_with_concurrent_requests() {
    let fake = FakeConfig::default().with_reply(endless_reply());
    let (w, fake) = support::worker_on(81, fake, |_| {}).await;
    let me = Identity::from_seed([82; 32]);
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(w.pubkey, w.url.clone())],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let client = support::client();
    let url = format!("{}/v1/chat/completions", router.url);

    let answers = join_all((0..CONCURRENT).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.post(&url).json(&greedy_body(false)).send().await;
            let response = response.expect("the router answers");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    }))
    .await;

    let served: u64 = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, answer)| words_of(answer))
        .sum();
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers.iter().filter(|(s, _)| *s == 402).count();
    eprintln!("served {served} tokens in {ok} answers, {refused} refused with 402");
    assert!(
        ok >= 2,
        "the credit pays for two full allowances: {answers:?}"
    );
    assert_eq!(ok + refused, CONCURRENT, "{answers:?}");
    for (status, answer) in &answers {
        if *status == 200 {
            assert!(words_of(answer) <= DEFAULT_MAX_OUTPUT_TOKENS, "{answer}");
            assert_eq!(answer["choices"][0]["finish_reason"], "length");
        } else {
            // The router tells its client what its only peer said.
            let said = answer["error"]["attempts"][0]["error"]
                .as_str()
                .unwrap_or("");
            assert!(said.starts_with("HTTP 402"), "{answer}");
        }
    }
    assert!(
        served <= ALLOWANCE_TOKENS as u64,
        "served {served} tokens on {ALLOWANCE_TOKENS} of credit"
    );
    assert_eq!(fake.request_count(), ok as u64, "refused before the engine");

    w.worker.flush_ledger().await;
    let at_worker = w.ledger.balance(&me.public()).unwrap();
    let at_router = router.ledger.balance(&me.public()).unwrap();
    eprintln!(
        "worker: spent {} available {}; router: spent {} available {}",
        at_worker.spent,
        at_worker.available(),
        at_router.spent,
        at_router.available()
    );
    assert!(at_worker.available() >= 0, "{at_worker:?}");
    assert!(at_router.available() >= 0, "{at_router:?}");
    assert_eq!(at_router.spent, at_worker.spent, "both ledgers agree");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_stay_within_the_anonymous_quota_even_when_the_engine_runs_on() {
    let quota = 5_000;
    let fake = FakeConfig::default()
        .with_reply(endless_reply())
        .ignoring_max_tokens();
    let (w, _fake) = support::worker_on(83, fake, |c| {
        c.access.anonymous_tokens_per_hour = quota;
        // Every request races for the quota at once, not two at a time.
        c.access.anonymous_concurrency = CONCURRENT;
    })
    .await;
    let client = support::client();
    let now = SystemClock.now_ms();

    let answers = join_all((0..CONCURRENT).map(|i| {
        let client = client.clone();
        let claimed = Identity::from_seed([100 + i as u8; 32]).public();
        let sent = Sent::post(
            "/v1/chat/completions",
            &greedy_body(true),
            &w.pubkey,
            None,
            &claimed,
            now,
        );
        let url = w.url.clone();
        async move {
            let response = sent.send(&client, &url).await;
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    }))
    .await;

    let mut served = 0;
    for (status, text) in &answers {
        match status {
            200 => {
                let (tokens, finish, receipt) = stream_of(text);
                assert!(tokens <= DEFAULT_MAX_OUTPUT_TOKENS, "{tokens}");
                assert_eq!(finish.as_deref(), Some("length"), "cut with a final chunk");
                assert!(receipt, "a cut stream still ends with its receipt");
                assert!(text.trim_end().ends_with("data: [DONE]"));
                served += tokens;
            }
            429 => assert!(text.contains("anonymous_quota_exhausted"), "{text}"),
            other => panic!("unexpected {other}: {text}"),
        }
    }
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    eprintln!("anonymous: served {served} tokens in {ok} streams on a {quota}-token quota");
    assert!(ok >= 1);
    assert!(served <= quota, "served {served} on a quota of {quota}");
    w.worker.flush_ledger().await;
    let billed = w.ledger.totals().unwrap().tokens;
    assert!(billed <= quota, "billed {billed} on a quota of {quota}");
}

/// Jobs all accepted while the engine is busy (so none holds anything yet) run one at
/// a time afterwards: each pays when it starts, and those the credit no longer covers
/// end as errors, unbilled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_jobs_are_paid_for_when_they_run() {
    let fake = FakeConfig::default()
        .with_reply(endless_reply())
        .with_chunk_delay(std::time::Duration::from_millis(20));
    let (w, _fake) = support::worker_on(85, fake, |c| c.concurrency = 1).await;
    let requester = Identity::from_seed([86; 32]);
    let client = support::client();

    // An unsigned stream takes the only engine slot until its client leaves.
    let blocker = Sent::post(
        "/v1/chat/completions",
        &greedy_body(true),
        &w.pubkey,
        None,
        &Identity::from_seed([87; 32]).public(),
        SystemClock.now_ms(),
    );
    let mut blocking = blocker.send(&client, &w.url).await;
    assert_eq!(blocking.status().as_u16(), 200);
    assert!(blocking.chunk().await.unwrap().is_some(), "the stream runs");

    let jobs = 8;
    for i in 0..jobs {
        let mut body = greedy_body(false);
        body["metadata"] = json!({"n": i.to_string()});
        let sent = Sent::post(
            "/v1/jobs",
            &body,
            &w.pubkey,
            Some(&requester),
            &requester.public(),
            SystemClock.now_ms(),
        );
        // Each submission fits the credit: nothing of this requester's has run yet.
        assert_eq!(sent.send(&client, &w.url).await.status().as_u16(), 202);
    }
    assert_eq!(w.worker.job_counts().queued, jobs);
    drop(blocking);

    let worker = w.worker.clone();
    support::eventually("every job ends", std::time::Duration::from_secs(20), || {
        let counts = worker.job_counts();
        counts.done + counts.error == jobs
    })
    .await;
    w.worker.flush_ledger().await;
    let counts = w.worker.job_counts();
    let balance = w.ledger.balance(&requester.public()).unwrap();
    eprintln!(
        "jobs: {} done, {} refused when they came to run; spent {} of {ALLOWANCE_TOKENS}",
        counts.done, counts.error, balance.spent
    );
    // Two full allowances, then what the rest of the credit buys (a short answer or
    // two, as the engine counted fewer prompt tokens than were reserved), then refusals.
    assert!(counts.done >= 2 && counts.error >= 1, "{counts:?}");
    assert!(balance.spent <= ALLOWANCE_TOKENS as u64, "{balance:?}");
    assert!(balance.available() >= 0, "{balance:?}");
}

/// An engine that ignores its limit, behind a real router: the worker ends the stream
/// at the allowance with a proper final chunk, and the router takes its receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_its_allowance_is_cut_and_its_receipt_accepted() {
    let fake = FakeConfig::default()
        .with_reply(endless_reply())
        .ignoring_max_tokens();
    let (w, fake) = support::worker_on(88, fake, |c| c.max_output_tokens = 50).await;
    let me = Identity::from_seed([89; 32]);
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(w.pubkey, w.url.clone())],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let client = support::client();
    let response = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&greedy_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    let (tokens, finish, receipt_shown) = stream_of(&text);
    assert_eq!(tokens, 50, "exactly the allowance reaches the client");
    assert_eq!(finish.as_deref(), Some("length"));
    assert!(!receipt_shown, "the router keeps the receipt to itself");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let sent = fake.last_body().unwrap();
    assert_eq!(sent["max_tokens"], 50, "the engine was told the allowance");

    let ledger = router.ledger.clone();
    support::eventually(
        "the router ledgers the receipt",
        std::time::Duration::from_secs(10),
        || ledger.totals().unwrap().receipts == 1,
    )
    .await;
    w.worker.flush_ledger().await;
    let (at_router, at_worker) = (
        router.ledger.balance(&me.public()).unwrap(),
        w.ledger.balance(&me.public()).unwrap(),
    );
    assert_eq!(at_router.spent, at_worker.spent);
    assert!(
        at_router.spent <= 50 + 64,
        "prompt estimate plus the allowance: {at_router:?}"
    );
    router.stop().await;
}
