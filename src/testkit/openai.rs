//! A fake OpenAI-compatible server: `GET /v1/models` and `POST /v1/chat/completions`,
//! whole JSON answers or SSE streams (`data: {chunk}` events, `data: [DONE]`), honouring
//! `stream_options.include_usage` the way OpenAI does (`"usage": null` on every chunk,
//! then a usage-only chunk with empty `choices`). Built to be cheap: the load benchmark
//! runs hundreds of requests per second against it.

use std::io;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use super::server::{FakeServer, FakeState, json_response, streamed, whole};
use super::{Failure, FakeConfig, Reply, prompt_words};

const CREATED: u64 = 1_735_689_600;
const TOOL_CALL_ID: &str = "call_fake_0";

/// A fake OpenAI-compatible server; derefs to [`FakeServer`] for `url()`, `bodies()`…
pub struct FakeOpenAi(FakeServer);

impl FakeOpenAi {
    /// A fake with the default [`FakeConfig`].
    pub async fn start() -> io::Result<Self> {
        Self::start_with(FakeConfig::default()).await
    }

    /// A fake serving `config`, listening on 127.0.0.1 on a free port.
    pub async fn start_with(config: FakeConfig) -> io::Result<Self> {
        let routes = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(super::embeddings::openai_embeddings));
        Ok(FakeOpenAi(FakeServer::start(config, routes).await?))
    }

    /// Stops the server (see [`FakeServer::stop`]).
    pub async fn stop(self) {
        self.0.stop().await
    }
}

impl Deref for FakeOpenAi {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.0
    }
}

async fn models(State(state): State<Arc<FakeState>>) -> Response {
    let data: Vec<Value> = state
        .config
        .models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

async fn chat(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = state.record("/v1/chat/completions", &headers, &body);
    let config = &state.config;
    if config.failure == Failure::Status500 {
        let error = json!({"error": {"message": "fake engine failure", "type": "server_error"}});
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, &error);
    }
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !config.models.iter().any(|m| m == model) {
        let error = json!({"error": {"message": format!("The model `{model}` does not exist."),
            "type": "invalid_request_error", "code": "model_not_found"}});
        return json_response(StatusCode::NOT_FOUND, &error);
    }
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if config.failure == Failure::Garbage {
        return if stream {
            streamed(
                config,
                "text/event-stream",
                vec![Bytes::from_static(b"data: {not json\n\n")],
            )
        } else {
            streamed(
                config,
                "application/json",
                vec![Bytes::from_static(b"this is not json")],
            )
        };
    }
    let limit = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| request.get(*k).and_then(Value::as_u64))
        .filter(|_| !config.ignore_max_tokens);
    let reply = Reply::plan(config, &request, limit);
    let usage = json!({"prompt_tokens": prompt_words(&request), "completion_tokens": reply.completion_tokens(),
        "total_tokens": prompt_words(&request) + reply.completion_tokens()});
    if !stream {
        let (message, finish) = match &reply {
            Reply::Text { tokens, finish } => (
                json!({"role": "assistant", "content": tokens.concat()}),
                *finish,
            ),
            Reply::ToolCall { name, arguments } => (
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": TOOL_CALL_ID,
                    "type": "function", "function": {"name": name, "arguments": arguments.to_string()}}]}),
                "tool_calls",
            ),
        };
        let mut answer = json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": CREATED,
            "model": model, "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": finish}]});
        if config.report_usage {
            answer["usage"] = usage;
        }
        return whole(config, &answer);
    }
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true)
        && config.report_usage;
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED,
            "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    let finish = match &reply {
        Reply::Text { tokens, finish } => {
            chunks.extend(tokens.iter().map(|t| chunk(json!({ "content": t }), None)));
            *finish
        }
        Reply::ToolCall { name, arguments } => {
            chunks.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": TOOL_CALL_ID, "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                None,
            ));
            chunks.push(chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments.to_string()}}]}), None));
            "tool_calls"
        }
    };
    chunks.push(chunk(json!({}), Some(finish)));
    if include_usage {
        chunks.push(
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED,
            "model": model, "choices": [], "usage": usage}),
        );
    }
    let mut pieces: Vec<Bytes> = chunks
        .iter()
        .map(|c| Bytes::from(format!("data: {c}\n\n")))
        .collect();
    pieces.push(Bytes::from_static(b"data: [DONE]\n\n"));
    streamed(config, "text/event-stream", pieces)
}
