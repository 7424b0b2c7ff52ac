//! A peer that speaks the worker wire format but answers whatever a test scripts: a
//! forged receipt, garbage, a 500. It is how the router's refusals are exercised.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lobstah::core::protocol::PublicKey;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// What the scripted peer does with a chat request; gets the requester header.
pub type Script = Arc<dyn Fn(Option<PublicKey>, bool) -> Response + Send + Sync>;

#[derive(Clone)]
struct PeerState {
    pubkey: PublicKey,
    models: Vec<String>,
    script: Arc<Mutex<Script>>,
}

pub struct ScriptedPeer {
    pub url: String,
    pub pubkey: PublicKey,
    script: Arc<Mutex<Script>>,
    pub shutdown: CancellationToken,
}

impl ScriptedPeer {
    pub async fn start(pubkey: PublicKey, models: &[&str], script: Script) -> ScriptedPeer {
        let script = Arc::new(Mutex::new(script));
        let state = PeerState {
            pubkey,
            models: models.iter().map(|m| m.to_string()).collect(),
            script: script.clone(),
        };
        let app = Router::new()
            .route("/capacity", get(capacity))
            .route("/v1/chat/completions", post(chat))
            .with_state(state);
        let (listener, addr) = super::listener().await;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
        });
        ScriptedPeer {
            url: format!("http://{addr}"),
            pubkey,
            script,
            shutdown,
        }
    }

    pub fn set_script(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }
}

async fn capacity(State(s): State<PeerState>) -> impl IntoResponse {
    axum::Json(json!({
        "pubkey": s.pubkey.to_string(),
        "models": s.models,
        "queueDepth": 0,
        "tier": "interactive",
        "concurrency": 4,
    }))
}

async fn chat(State(s): State<PeerState>, headers: HeaderMap, body: Bytes) -> Response {
    let requester = headers
        .get("x-lobstah-requester")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| PublicKey::parse(v).ok());
    let stream = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("stream").and_then(|s| s.as_bool()))
        .unwrap_or(false);
    let script = s.script.lock().unwrap().clone();
    script(requester, stream)
}

/// A well-formed chat.completion body.
pub fn completion_json(text: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    })
}

/// 200 with the completion body and `receipt` (already base64) in the header.
pub fn answer_with_receipt(receipt: Option<String>) -> Response {
    let mut response = (StatusCode::OK, axum::Json(completion_json("hi there"))).into_response();
    if let Some(r) = receipt {
        response
            .headers_mut()
            .insert("x-lobstah-receipt", r.parse().expect("header value"));
    }
    response
}

/// An SSE answer whose receipt comment carries `receipt`.
pub fn stream_with_receipt(receipt: Option<String>) -> Response {
    let mut body = String::new();
    for word in ["hi", " there"] {
        let chunk = json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"content":word},"finish_reason":null}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    if let Some(r) = receipt {
        body.push_str(&format!(":lobstah-receipt:{r}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    (
        StatusCode::OK,
        [("content-type", "text/event-stream")],
        body,
    )
        .into_response()
}
