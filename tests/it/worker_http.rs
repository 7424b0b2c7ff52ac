//! The worker's HTTP surface on a real listener: a bounded queue that answers 503 with
//! Retry-After when full, the requester header, engine failures, and the small endpoints.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{
    ChatRequest, ChatResponse, ChatStream, Engine, EngineError, OpenAiEngine, Usage,
};
use lobstah::core::protocol::{Identity, RequestAuth, RequestTarget, SignedReceipt};
use lobstah::core::worker::{Worker, WorkerConfig};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// An engine that answers only when the test lets it, so queueing is deterministic.
struct GatedEngine {
    gate: Arc<Semaphore>,
}

impl Engine for GatedEngine {
    fn kind(&self) -> &'static str {
        "gated-test"
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        async { Ok(vec!["m".to_string()]) }.boxed()
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, EngineError>> {
        async move {
            let permit = self.gate.acquire().await.map_err(|e| EngineError::Unreachable(e.to_string()))?;
            permit.forget();
            Ok(ChatResponse {
                body: json!({"object": "chat.completion", "model": request.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}),
                usage: Usage {
                    input_tokens: 4,
                    output_tokens: 1,
                    estimated: false,
                },
            })
        }
        .boxed()
    }

    fn chat_stream(&self, _request: ChatRequest) -> BoxFuture<'_, Result<ChatStream, EngineError>> {
        async { Err(EngineError::Protocol("not used".into())) }.boxed()
    }
}

async fn capacity(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(format!("{url}/capacity"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    support::install_crypto();
    let gate = Arc::new(Semaphore::new(0));
    let identity = Identity::from_seed([31; 32]);
    let ledger = lobstah::core::ledger::Ledger::new(support::memory_db()).unwrap();
    let (writer, _t) = lobstah::core::ledger::LedgerWriter::spawn(ledger.clone(), None);
    let mut config = WorkerConfig::new(
        identity.clone(),
        Arc::new(GatedEngine { gate: gate.clone() }),
        Arc::new(SystemClock),
    );
    config.concurrency = 1;
    config.max_waiting = 1;
    let worker = Worker::new(config, &ledger, writer);
    let (listener, addr) = support::listener().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(worker.clone().serve(listener, shutdown.clone()));
    let url = format!("http://{addr}");
    let client = support::client();
    let requester_id = Identity::from_seed([32; 32]);
    let requester = requester_id.public().to_string();
    let worker_pk = identity.public();
    // Signed, as a current router sends them: unsigned requests share a small quota.
    let send = move |client: reqwest::Client, url: String, requester: String| {
        let body = serde_json::to_vec(&support::chat_body("m", false)).unwrap();
        let auth = RequestAuth::sign(
            &requester_id,
            RequestTarget {
                method: "POST",
                path: "/v1/chat/completions",
                body: &body,
                worker: &worker_pk,
            },
            lobstah::core::clock::Clock::now_ms(&SystemClock),
        );
        async move {
            let mut request = client
                .post(format!("{url}/v1/chat/completions"))
                .header("x-lobstah-requester", requester)
                .header("content-type", "application/json");
            for (name, value) in auth.header_values() {
                request = request.header(name, value);
            }
            request.body(body).send().await.unwrap()
        }
    };
    let first = tokio::spawn(send(client.clone(), url.clone(), requester.clone()));
    let second = tokio::spawn(send(client.clone(), url.clone(), requester.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let cap = capacity(&client, &url).await;
        if cap["queueDepth"] == 2 {
            assert_eq!(cap["concurrency"], 1);
            assert_eq!(cap["pubkey"], identity.public().to_string());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue never filled: {cap}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let third = send(client.clone(), url.clone(), requester.clone()).await;
    assert_eq!(third.status().as_u16(), 503);
    assert_eq!(third.headers()["retry-after"], "1");
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"]["type"], "queue_full", "{body}");

    gate.add_permits(2);
    for handle in [first, second] {
        let r = handle.await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let receipt =
            SignedReceipt::from_base64(r.headers()["x-lobstah-receipt"].to_str().unwrap()).unwrap();
        receipt.verify_signature().unwrap();
        assert_eq!(receipt.receipt().total_tokens(), 5);
    }
    worker.flush_ledger().await;
    assert_eq!(ledger.balance(&identity.public()).unwrap().earned, 10);
    let metrics = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lobstah_worker_queue_rejections_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lobstah_worker_requests_total{outcome=\"ok\"} 2"),
        "{metrics}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn requester_header_engine_failures_and_small_endpoints() {
    let down = lobstah::testkit::unused_local_url().unwrap();
    let worker = support::start_worker(
        Identity::from_seed([33; 32]),
        Arc::new(OpenAiEngine::new(&down, None).unwrap()),
        support::memory_db(),
        Arc::new(SystemClock),
    )
    .await;
    let client = support::client();
    let cases = [
        (None, 400, "x-lobstah-requester"),
        (Some("lob1nothex"), 400, "lob1"),
        (
            Some(Identity::from_seed([34; 32]).public().to_string().leak() as &str),
            502,
            "engine",
        ),
    ];
    for (header, status, needle) in cases {
        let mut req = client
            .post(format!("{}/v1/chat/completions", worker.url))
            .json(&support::chat_body("m", false));
        if let Some(h) = header {
            req = req.header("x-lobstah-requester", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{header:?}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    worker.worker.flush_ledger().await;
    assert_eq!(
        worker.ledger.totals().unwrap().receipts,
        0,
        "nothing served, nothing ledgered"
    );
    let pubkey: Value = client
        .get(format!("{}/pubkey", worker.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pubkey["pubkey"], worker.pubkey.to_string());
    let models: Value = client
        .get(format!("{}/v1/models", worker.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(
        models["data"],
        json!([]),
        "an unreachable engine lists nothing"
    );
    let missing = client
        .get(format!("{}/nope", worker.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    worker.shutdown.cancel();
}
