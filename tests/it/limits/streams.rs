//! Streams that stop moving: a peer that goes silent mid-answer (the router cuts it,
//! the client gets an error event, nothing is ledgered, the peer is charged), an engine
//! that does (the worker does the same and frees the slot), and clients that stop
//! reading (the engine slot, or the peer's stream, is let go).
//!
//! A stall before the first byte, where the router fails over instead, is tested in
//! router_streaming.rs (`a_peer_that_stalls_before_its_first_byte_is_skipped`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use lobstah::core::clock::{Clock, SystemClock};
use lobstah::core::engine::{
    ChatRequest, ChatResponse, ChatStream, Engine, EngineError, OllamaEngine, StreamEvent,
};
use lobstah::core::protocol::{Identity, PublicKey, Receipt, SignedReceipt, new_nonce};
use lobstah::testkit::{Failure, FakeConfig, FakeOllama};
use support::scripted_peer::{Script, ScriptedPeer, stream_with_receipt};

use super::{LIMIT, addr, read_answer, requester, send_raw, within};
use crate::support;

const MS_200: Duration = Duration::from_millis(200);

/// A receipt from `worker` to `requester`, fresh and valid.
fn receipt(worker: &Identity, requester: PublicKey) -> String {
    let now = SystemClock.now_ms();
    let receipt = Receipt {
        version: 1,
        job_id: uuid::Uuid::new_v4().to_string(),
        nonce: new_nonce(),
        requester_pubkey: requester,
        worker_pubkey: worker.public(),
        model: "m".into(),
        input_tokens: 3,
        output_tokens: 2,
        started_at: now - 100,
        completed_at: now,
    };
    SignedReceipt::sign(receipt, worker).unwrap().to_base64()
}

fn sse(
    body: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> axum::response::Response {
    (
        StatusCode::OK,
        [("content-type", "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stalls_mid_stream_is_cut_with_an_error_event_and_no_receipt() {
    let worker = Identity::from_seed([81; 32]);
    let me = Identity::from_seed([82; 32]);
    // A chunk and even a valid receipt, then silence with the connection held open.
    let signed = receipt(&worker, me.public());
    let stall: Script = Arc::new(move |_, _| {
        let start = format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"hi\"}}}}]}}\n\n:lobstah-receipt:{signed}\n\n"
        );
        sse(stream::iter([Ok(Bytes::from(start))]).chain(stream::pending()))
    });
    let peer = ScriptedPeer::start(worker.public(), &["m"], stall).await;
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(peer.pubkey, peer.url.clone())],
        Arc::new(SystemClock),
        |c| c.stream_idle_timeout = MS_200,
    )
    .await;
    let client = support::client();
    let ask = || {
        client
            .post(format!("{}/v1/chat/completions", router.url))
            .json(&support::chat_body("m", true))
            .send()
    };
    let answer = within("the stalled stream's headers", ask()).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let text = within("the stalled stream's end", answer.text())
        .await
        .unwrap();
    assert!(text.starts_with("data: {\"choices\""), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    let event: serde_json::Value = serde_json::from_str(
        last.strip_prefix("data: ")
            .unwrap_or_else(|| panic!("no final event: {text}")),
    )
    .unwrap();
    assert_eq!(event["error"]["type"], "peer_stream_stalled", "{text}");
    assert!(
        !text.contains("lobstah-receipt") && !text.contains("[DONE]"),
        "{text}"
    );

    router.service.flush_ledger().await;
    assert_eq!(router.ledger.totals().unwrap().receipts, 0);
    let peers = router.service.peers_json();
    assert!(peers[0]["failed"].as_u64().unwrap() >= 1, "{peers:?}");

    // The same receipt on a stream that finishes is ledgered: the stall made the
    // difference, not the receipt.
    let signed = receipt(&worker, me.public());
    peer.set_script(Arc::new(move |_, _| {
        stream_with_receipt(Some(signed.clone()))
    }));
    let done = within("a finished stream", ask()).await.unwrap();
    within("its body", done.text()).await.unwrap();
    support::eventually("the finished stream's receipt", LIMIT, || {
        router.ledger.totals().unwrap().receipts == 1
    })
    .await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_stalls_mid_stream_gets_an_error_event_no_receipt_and_its_slot_back() {
    let fake = FakeOllama::start_with(
        FakeConfig::default()
            .with_models(["m"])
            .with_reply("one two three four five six")
            .with_failure(Failure::Stall),
    )
    .await
    .unwrap();
    let engine = Arc::new(OllamaEngine::new(fake.url()).unwrap());
    let w = support::start_worker_with(
        Identity::from_seed([83; 32]),
        engine,
        support::memory_db(),
        Arc::new(SystemClock),
        |c| {
            c.concurrency = 1;
            c.stream_idle_timeout = MS_200;
        },
    )
    .await;
    let answer = support::client()
        .post(format!("{}/v1/chat/completions", w.url))
        .header("x-lobstah-requester", requester())
        .json(&support::chat_body("m", true))
        .send();
    let answer = within("the worker's headers", answer).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let text = within("the stalled stream's end", answer.text())
        .await
        .unwrap();
    assert!(text.contains("one"), "the start reached the client: {text}");
    assert!(
        text.trim_end().ends_with("}}") && text.contains("\"engine_stream_stalled\""),
        "{text}"
    );
    assert!(
        !text.contains("lobstah-receipt") && !text.contains("[DONE]"),
        "{text}"
    );
    support::eventually("the engine slot is free", LIMIT, || {
        w.worker.admission().running() == 0
    })
    .await;
    w.worker.flush_ledger().await;
    assert_eq!(w.ledger.totals().unwrap().receipts, 0);
    w.shutdown.cancel();
}

/// An engine that answers streamed requests only, each with the stream `events` makes.
struct StreamOnly(fn() -> ChatStream);

impl Engine for StreamOnly {
    fn kind(&self) -> &'static str {
        "stream-only-test"
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        async { Ok(vec!["m".to_string()]) }.boxed()
    }

    fn chat(&self, _request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, EngineError>> {
        async { Err(EngineError::Protocol("stream only".into())) }.boxed()
    }

    fn chat_stream(&self, _request: ChatRequest) -> BoxFuture<'_, Result<ChatStream, EngineError>> {
        let events = (self.0)();
        async move { Ok(events) }.boxed()
    }
}

/// Large chunks for as long as anyone takes them.
fn flood() -> ChatStream {
    let chunk = format!(
        "{{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}",
        "x".repeat(64 * 1024)
    );
    stream::repeat_with(move || Ok(StreamEvent::ChunkText(chunk.clone()))).boxed()
}

/// Accepted, and then never a word.
fn silence() -> ChatStream {
    stream::pending().boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_before_the_first_token_frees_the_engine_slot() {
    // No idle bound applies before the first token (a model may be loading), so only
    // noticing the client's departure frees the slot.
    let w = support::start_worker_with(
        Identity::from_seed([87; 32]),
        Arc::new(StreamOnly(silence)),
        support::memory_db(),
        Arc::new(SystemClock),
        |c| c.concurrency = 1,
    )
    .await;
    let mut conn = send_raw(addr(&w.url), &raw_stream_request()).await;
    let head = within("the stream's head", read_answer(&mut conn)).await;
    assert_eq!(head.map(|a| a.status), Some(200));
    assert_eq!(
        w.worker.admission().running(),
        1,
        "the stream holds the slot"
    );
    drop(conn);
    support::eventually("the slot is freed", LIMIT, || {
        w.worker.admission().running() == 0
    })
    .await;
    w.shutdown.cancel();
}

/// A streamed chat request as raw bytes, with the requester header.
fn raw_stream_request() -> Vec<u8> {
    let body = support::chat_body("m", true).to_string();
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         x-lobstah-requester: {}\r\ncontent-length: {}\r\n\r\n{body}",
        requester(),
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_frees_the_engine_slot() {
    let w = support::start_worker_with(
        Identity::from_seed([84; 32]),
        Arc::new(StreamOnly(flood)),
        support::memory_db(),
        Arc::new(SystemClock),
        |c| {
            c.concurrency = 1;
            c.limits.client_stall_timeout = MS_200;
        },
    )
    .await;
    let mut conn = send_raw(addr(&w.url), &raw_stream_request()).await;
    let head = within("the stream's head", read_answer(&mut conn)).await;
    assert_eq!(head.map(|a| a.status), Some(200));
    assert_eq!(
        w.worker.admission().running(),
        1,
        "the stream holds the slot"
    );
    // From here on the client reads nothing, and keeps its connection open.
    support::eventually("the slot is freed", LIMIT, || {
        w.worker.admission().running() == 0
    })
    .await;
    drop(conn);
    w.shutdown.cancel();
}

/// Sets its flag when dropped: tells when a peer's answer stream was let go.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_at_the_router_lets_go_of_the_peer() {
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    let flood: Script = Arc::new(move |_, _| {
        let chunk = Bytes::from(format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "x".repeat(64 * 1024)
        ));
        let guard = DropFlag(flag.clone());
        sse(stream::unfold(guard, move |guard| {
            let chunk = chunk.clone();
            async move { Some((Ok(chunk), guard)) }
        }))
    });
    let peer = ScriptedPeer::start(Identity::from_seed([85; 32]).public(), &["m"], flood).await;
    let router = support::start_router(
        Identity::from_seed([86; 32]),
        support::memory_db(),
        &[(peer.pubkey, peer.url.clone())],
        Arc::new(SystemClock),
        |c| c.limits.client_stall_timeout = MS_200,
    )
    .await;
    let mut conn = send_raw(addr(&router.url), &raw_stream_request()).await;
    let head = within("the stream's head", read_answer(&mut conn)).await;
    assert_eq!(head.map(|a| a.status), Some(200));
    assert!(!released.load(Ordering::SeqCst));
    support::eventually("the peer's stream is let go", LIMIT, || {
        released.load(Ordering::SeqCst)
    })
    .await;
    drop(conn);
    router.stop().await;
}
