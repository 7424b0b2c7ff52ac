//! The job endpoints on real listeners: cancelling (queued yes, running no), retention
//! and eviction, unknown ids (404) and bad bodies (400) on worker and router.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use lobstah::core::clock::{Clock, ManualClock, SystemClock};
use lobstah::core::engine::{
    ChatRequest, ChatResponse, ChatStream, Engine, EngineError, SyntheticConfig, SyntheticEngine,
    Usage,
};
use lobstah::core::jobs::{DONE_TTL_MS, ERROR_TTL_MS, ROUTER_KEEP_MS};
use lobstah::core::protocol::Identity;
use serde_json::{Value, json};
use support::jobs::{cancel, get, job_body, submit, wait_for};
use tokio::sync::Semaphore;

const WAIT: Duration = Duration::from_secs(10);

/// Answers only when the test lets it, and counts the requests it got.
struct GatedEngine {
    gate: Arc<Semaphore>,
    calls: AtomicUsize,
}

impl Engine for GatedEngine {
    fn kind(&self) -> &'static str {
        "gated-test"
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        async { Ok(vec!["m".to_string()]) }.boxed()
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, EngineError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let permit = self
                .gate
                .acquire()
                .await
                .map_err(|e| EngineError::Unreachable(e.to_string()))?;
            permit.forget();
            Ok(ChatResponse {
                body: json!({"object": "chat.completion", "model": request.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}),
                usage: Usage {
                    input_tokens: 3,
                    output_tokens: 2,
                    estimated: false,
                },
            })
        }
        .boxed()
    }

    fn chat_stream(&self, _: ChatRequest) -> BoxFuture<'_, Result<ChatStream, EngineError>> {
        async { Err(EngineError::Protocol("not used".into())) }.boxed()
    }
}

fn synthetic() -> Arc<SyntheticEngine> {
    Arc::new(SyntheticEngine::new(SyntheticConfig::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_can_be_cancelled_a_running_one_cannot() {
    let engine = Arc::new(GatedEngine {
        gate: Arc::new(Semaphore::new(0)),
        calls: AtomicUsize::new(0),
    });
    let worker = support::start_worker_with(
        Identity::from_seed([71; 32]),
        engine.clone(),
        support::memory_db(),
        Arc::new(SystemClock),
        |c| c.concurrency = 1,
    )
    .await;
    let router = support::start_router(
        Identity::from_seed([72; 32]),
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let client = support::client();
    let (_, a) = submit(&client, &router.url, &job_body("m", "a"), None, None).await;
    let a = a["id"].as_str().unwrap().to_string();
    let w = worker.worker.clone();
    support::eventually("job a runs", WAIT, || w.job_counts().running == 1).await;
    let (status, b) = submit(&client, &router.url, &job_body("m", "b"), None, None).await;
    assert_eq!((status, b["status"].as_str()), (202, Some("queued")), "{b}");
    let b = b["id"].as_str().unwrap().to_string();

    let (status, cancelled) = cancel(&client, &router.url, &b, None).await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    assert_eq!(worker.worker.job_counts().cancelled, 1);
    // A repeated cancel (its first answer lost) is answered the same way.
    let (status, again) = cancel(&client, &router.url, &b, None).await;
    assert_eq!(
        (status, again["status"].as_str()),
        (200, Some("cancelled")),
        "{again}"
    );
    let (status, running) = cancel(&client, &router.url, &a, None).await;
    assert_eq!(
        (status, running["error"]["type"].as_str()),
        (409, Some("job_running")),
        "{running}"
    );

    engine.gate.add_permits(1);
    let done = wait_for(&client, &router.url, &a, None, "done", WAIT).await;
    assert_eq!(done["receipt"]["status"], "credited", "{done}");
    let (status, finished) = cancel(&client, &router.url, &a, None).await;
    assert_eq!(
        (status, finished["error"]["type"].as_str()),
        (409, Some("job_finished")),
        "{finished}"
    );
    let (_, b_now) = get(&client, &router.url, &b, None).await;
    assert_eq!(b_now["status"], "cancelled");
    assert!(
        b_now["result"].is_null() && b_now.get("receipt").is_none(),
        "{b_now}"
    );
    // The cancelled job never reached the engine, and nothing was paid for it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(engine.calls.load(Ordering::SeqCst), 1);
    assert_eq!(router.ledger.totals().unwrap().receipts, 1);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_evicted_after_their_retention() {
    let clock = ManualClock::new(SystemClock.now_ms());
    let worker = support::start_worker(
        Identity::from_seed([73; 32]),
        synthetic(),
        support::memory_db(),
        Arc::new(clock.clone()),
    )
    .await;
    let me = Identity::from_seed([74; 32]);
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        Arc::new(clock.clone()),
        |c| c.collect_jobs = false,
    )
    .await;
    let client = support::client();
    let requester = me.public().to_string();
    let rq = Some(requester.as_str());

    // Straight at the worker: one job that succeeds, one whose model the engine lacks.
    let (status, ok) = submit(&client, &worker.url, &job_body("synthetic", "ok"), rq, None).await;
    assert_eq!(status, 202, "{ok}");
    let (_, bad) = submit(
        &client,
        &worker.url,
        &job_body("no-such-model", "x"),
        rq,
        None,
    )
    .await;
    let (ok, bad) = (ok["id"].as_str().unwrap(), bad["id"].as_str().unwrap());
    wait_for(&client, &worker.url, ok, rq, "done", WAIT).await;
    let failed = wait_for(&client, &worker.url, bad, rq, "error", WAIT).await;
    assert_eq!(failed["error"]["type"], "model_not_found", "{failed}");
    let ended = clock.now_ms();

    clock.set(ended + ERROR_TTL_MS - 1);
    assert_eq!(get(&client, &worker.url, bad, rq).await.0, 200);
    clock.set(ended + ERROR_TTL_MS);
    assert_eq!(
        get(&client, &worker.url, bad, rq).await.0,
        404,
        "an error is kept 30 minutes"
    );
    assert_eq!(
        get(&client, &worker.url, ok, rq).await.0,
        200,
        "a result is kept longer"
    );
    assert_eq!(worker.worker.sweep_jobs().unwrap(), 1);
    assert_eq!(worker.worker.job_counts().error, 0);
    clock.set(ended + DONE_TTL_MS - 1);
    assert_eq!(get(&client, &worker.url, ok, rq).await.0, 200);
    clock.set(ended + DONE_TTL_MS);
    assert_eq!(
        get(&client, &worker.url, ok, rq).await.0,
        404,
        "a result is kept an hour"
    );
    assert_eq!(worker.worker.sweep_jobs().unwrap(), 1);
    assert_eq!(worker.worker.job_counts(), Default::default());

    // Through the router: the router keeps what it collected for a day.
    let (_, job) = submit(
        &client,
        &router.url,
        &job_body("synthetic", "kept"),
        None,
        None,
    )
    .await;
    let id = job["id"].as_str().unwrap();
    wait_for(&client, &router.url, id, None, "done", WAIT).await;
    let collected = clock.now_ms();
    clock.set(collected + DONE_TTL_MS);
    worker.worker.sweep_jobs().unwrap();
    let (status, kept) = get(&client, &router.url, id, None).await;
    assert_eq!(
        (status, kept["status"].as_str()),
        (200, Some("done")),
        "{kept}"
    );
    clock.set(collected + ROUTER_KEEP_MS);
    assert_eq!(get(&client, &router.url, id, None).await.0, 404);
    let store = router.service.jobs().store().clone();
    assert_eq!(store.sweep(clock.now_ms()).unwrap(), 1);
    assert_eq!(router.service.jobs().counts(), Default::default());
    // The receipt outlives the job.
    assert_eq!(router.ledger.totals().unwrap().receipts, 1);
    router.stop().await;
}

/// Asserts an OpenAI-shaped error with this status and type.
fn is_error(got: &(u16, Value), status: u16, kind: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["error"]["type"], kind, "{what}: {}", got.1);
    assert!(got.1["error"]["message"].is_string(), "{what}: {}", got.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_404_and_bad_bodies_400() {
    let worker = support::start_worker(
        Identity::from_seed([75; 32]),
        synthetic(),
        support::memory_db(),
        Arc::new(SystemClock),
    )
    .await;
    let me = Identity::from_seed([76; 32]);
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let client = support::client();
    let requester = me.public().to_string();
    let stranger = Identity::from_seed([77; 32]).public().to_string();
    let unknown = uuid::Uuid::new_v4().to_string();
    for (url, rq) in [(&router.url, None), (&worker.url, Some(requester.as_str()))] {
        for id in [unknown.as_str(), "not-a-job-id"] {
            is_error(
                &get(&client, url, id, rq).await,
                404,
                "not_found",
                "get unknown",
            );
            is_error(
                &cancel(&client, url, id, rq).await,
                404,
                "not_found",
                "cancel unknown",
            );
        }
        let bad_bodies = [
            (json!({"model": "synthetic"}), "messages"),
            (
                json!({"model": "synthetic", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
                "not streamed",
            ),
            (
                json!({"model": "synthetic", "metadata": {"n": 1}, "messages": [{"role": "user", "content": "x"}]}),
                "metadata",
            ),
            (json!([]), "object"),
        ];
        for (body, needle) in bad_bodies {
            let got = submit(&client, url, &body, rq, None).await;
            is_error(&got, 400, "invalid_request_error", needle);
            let message = got.1["error"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{message}");
        }
        let garbage = client
            .post(format!("{url}/v1/jobs"))
            .header("x-lobstah-requester", requester.as_str())
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status().as_u16(), 400);
    }
    // Router only: a bad idempotency key.
    let body = job_body("synthetic", "x");
    let bad_key = client
        .post(format!("{}/v1/jobs", router.url))
        .header("idempotency-key", "has spaces")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status().as_u16(), 400);
    // Worker only: no requester, a job id that is not a UUID, another requester's job.
    is_error(
        &submit(&client, &worker.url, &body, None, None).await,
        400,
        "invalid_request_error",
        "no requester",
    );
    let bad_id = client
        .post(format!("{}/v1/jobs", worker.url))
        .header("x-lobstah-requester", requester.as_str())
        .header("x-lobstah-job-id", "42")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status().as_u16(), 400);
    let (_, mine) = submit(&client, &worker.url, &body, Some(&requester), None).await;
    let mine = mine["id"].as_str().unwrap();
    is_error(
        &get(&client, &worker.url, mine, Some(&stranger)).await,
        404,
        "not_found",
        "not theirs",
    );
    is_error(
        &cancel(&client, &worker.url, mine, Some(&stranger)).await,
        404,
        "not_found",
        "not theirs",
    );
    assert_eq!(
        get(&client, &worker.url, mine, Some(&requester)).await.0,
        200
    );
    // Nothing the router refused reached the worker.
    assert_eq!(
        worker.worker.job_counts().queued
            + worker.worker.job_counts().running
            + worker.worker.job_counts().done,
        1
    );
    router.stop().await;
}
