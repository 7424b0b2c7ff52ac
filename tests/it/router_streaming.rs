//! Streams pass through the router chunk by chunk as they arrive (nothing waits for the
//! end), and `GET /v1/models` is the union over healthy peers.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use futures_util::StreamExt;
use lobstah::core::clock::SystemClock;
use lobstah::core::protocol::Identity;
use serde_json::Value;
use support::scripted_peer::{Script, ScriptedPeer};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_chunk_reaches_the_client_before_the_worker_finishes() {
    let (tx, rx) = mpsc::unbounded_channel::<Result<String, std::io::Error>>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let script: Script = Arc::new(move |_, _| {
        let rx = rx.lock().unwrap().take().expect("one streaming request");
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (
            StatusCode::OK,
            [("content-type", "text/event-stream")],
            Body::from_stream(body),
        )
            .into_response()
    });
    let peer = ScriptedPeer::start(Identity::from_seed([41; 32]).public(), &["m"], script).await;
    let router = support::start_router(
        Identity::from_seed([42; 32]),
        support::memory_db(),
        &[(peer.pubkey, peer.url.clone())],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let response = support::client()
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&support::chat_body("m", true))
        .send();
    // The worker sends its first event and then nothing until the test says so.
    tx.send(Ok(
        "data: {\"choices\":[{\"delta\":{\"content\":\"first\"}}]}\n\n".into(),
    ))
    .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("headers arrive while the worker is still streaming")
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("the first chunk is forwarded before the stream ends")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    // Only now does the worker finish.
    tx.send(Ok(
        "data: {\"choices\":[{\"delta\":{\"content\":\"second\"}}]}\n\n".into(),
    ))
    .unwrap();
    tx.send(Ok("data: [DONE]\n\n".into())).unwrap();
    drop(tx);
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.contains("second") && rest.ends_with("data: [DONE]\n\n"),
        "{rest}"
    );
    router.stop().await;
}

#[tokio::test]
async fn models_are_the_union_over_healthy_peers() {
    let ok: Script = Arc::new(|_, _| StatusCode::OK.into_response());
    let a = ScriptedPeer::start(
        Identity::from_seed([43; 32]).public(),
        &["alpha", "shared"],
        ok.clone(),
    )
    .await;
    let b = ScriptedPeer::start(
        Identity::from_seed([44; 32]).public(),
        &["beta", "shared"],
        ok,
    )
    .await;
    let dead_pubkey = Identity::from_seed([45; 32]).public();
    let dead_url = lobstah::testkit::unused_local_url().unwrap();
    let router = support::start_router(
        Identity::from_seed([46; 32]),
        support::memory_db(),
        &[
            (a.pubkey, a.url.clone()),
            (b.pubkey, b.url.clone()),
            (dead_pubkey, dead_url),
        ],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let models: Value = support::client()
        .get(format!("{}/v1/models", router.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "beta", "shared"]);
    let peers = router.service.peers_json();
    let dead = peers
        .iter()
        .find(|p| p["pubkey"] == dead_pubkey.to_string())
        .unwrap();
    assert_eq!(dead["state"], "unreachable", "{dead}");
    assert!(
        dead["unreachableReason"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{dead}"
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stalls_before_its_first_byte_is_skipped() {
    // Headers at once, then silence: the router must give up on it and use the other.
    let stall: Script = Arc::new(|_, stream| {
        let never = futures_util::stream::pending::<Result<String, std::io::Error>>();
        let ct = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        (
            StatusCode::OK,
            [("content-type", ct)],
            Body::from_stream(never),
        )
            .into_response()
    });
    let good: Script = Arc::new(|_, stream| {
        if stream {
            support::scripted_peer::stream_with_receipt(None)
        } else {
            support::scripted_peer::answer_with_receipt(None)
        }
    });
    let staller = ScriptedPeer::start(Identity::from_seed([47; 32]).public(), &["m"], stall).await;
    let healthy = ScriptedPeer::start(Identity::from_seed([48; 32]).public(), &["m"], good).await;
    let router = support::start_router(
        Identity::from_seed([49; 32]),
        support::memory_db(),
        &[
            (staller.pubkey, staller.url.clone()),
            (healthy.pubkey, healthy.url.clone()),
        ],
        Arc::new(SystemClock),
        |c| c.first_byte_timeout = Duration::from_millis(300),
    )
    .await;
    let client = support::client();
    for stream in [false, true, false, true] {
        let r = client
            .post(format!("{}/v1/chat/completions", router.url))
            .json(&support::chat_body("m", stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.headers()["x-lobstah-served-by"],
            healthy.pubkey.to_string().as_str()
        );
        assert!(r.text().await.unwrap().contains("there"));
    }
    let peers = router.service.peers_json();
    let stalled = peers
        .iter()
        .find(|p| p["pubkey"] == staller.pubkey.to_string())
        .unwrap();
    assert!(stalled["failed"].as_u64().unwrap() >= 1, "{stalled}");
    router.stop().await;
}
