//! Bad input at the router gets a clear, OpenAI-shaped error with the right status, and
//! nothing is ledgered: malformed JSON, missing model, unknown model, a body over the
//! limit, no peers, and peers that answer garbage or 500.

use crate::support;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use lobstah::core::clock::SystemClock;
use lobstah::core::protocol::Identity;
use serde_json::Value;
use support::scripted_peer::{Script, ScriptedPeer};

async fn post(client: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let json: Value = r.json().await.expect("errors are JSON");
    (status, json)
}

fn error_of(v: &Value) -> (&str, &str) {
    (
        v["error"]["type"].as_str().expect("error.type"),
        v["error"]["message"].as_str().expect("error.message"),
    )
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let me = Identity::from_seed([2; 32]);
    let garbage: Script =
        Arc::new(|_, _| (StatusCode::OK, "<html>surprise</html>").into_response());
    let peer = ScriptedPeer::start(Identity::from_seed([1; 32]).public(), &["m"], garbage).await;
    let router = support::start_router(
        me,
        support::memory_db(),
        &[(peer.pubkey, peer.url.clone())],
        Arc::new(SystemClock),
        |c| c.body_limit = 2048,
    )
    .await;
    let client = support::client();
    let big = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4096)
    );
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (
            "malformed JSON",
            "{\"model\":".into(),
            400,
            "invalid_request_error",
            "not valid JSON",
        ),
        (
            "not an object",
            "[1,2]".into(),
            400,
            "invalid_request_error",
            "JSON object",
        ),
        (
            "missing model",
            r#"{"messages":[{"role":"user","content":"x"}]}"#.into(),
            400,
            "invalid_request_error",
            "\"model\"",
        ),
        (
            "missing messages",
            r#"{"model":"m"}"#.into(),
            400,
            "invalid_request_error",
            "\"messages\"",
        ),
        (
            "bad stream flag",
            r#"{"model":"m","messages":[{}],"stream":1}"#.into(),
            400,
            "invalid_request_error",
            "stream",
        ),
        (
            "unknown model",
            r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#.into(),
            503,
            "no_capable_peer",
            "\"nope\"",
        ),
        ("over the limit", big, 413, "request_too_large", "2048"),
        (
            "garbage answer",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.into(),
            502,
            "all_peers_failed",
            "all 1 capable peers failed",
        ),
    ];
    for (name, body, status, kind, needle) in cases {
        let (got_status, json) = post(&client, &router.url, body).await;
        let (got_kind, message) = error_of(&json);
        assert_eq!((got_status, got_kind), (status, kind), "{name}: {json}");
        assert!(
            message.contains(needle),
            "{name}: {message:?} should mention {needle:?}"
        );
    }
    // The garbage answer is explained per attempt.
    let (_, json) = post(
        &client,
        &router.url,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    let attempts = json["error"]["attempts"]
        .as_array()
        .expect("attempts listed");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{json}"
    );

    // A peer answering 500 is a failure too; streaming requests get the same treatment.
    peer.set_script(Arc::new(|_, _| {
        (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
    }));
    router.service.reload_peers().unwrap();
    let (status, json) = post(
        &client,
        &router.url,
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    // Two failures have excluded the peer by now, so it is either all-failed or excluded.
    assert!(
        (status == 502 && json["error"]["type"] == "all_peers_failed")
            || (status == 503 && json["error"]["type"] == "no_capable_peer"),
        "{status} {json}"
    );
    router.service.flush_ledger().await;
    assert_eq!(
        router.ledger.totals().unwrap().receipts,
        0,
        "nothing ledgered"
    );
    router.stop().await;
}

#[tokio::test]
async fn a_router_without_peers_says_how_to_add_one() {
    let router = support::start_router(
        Identity::from_seed([2; 32]),
        support::memory_db(),
        &[],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let (status, json) = post(
        &support::client(),
        &router.url,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(status, 503);
    assert!(error_of(&json).1.contains("lobstah peers add"), "{json}");
    router.stop().await;
}
