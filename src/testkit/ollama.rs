//! A fake Ollama: `GET /api/tags` and `POST /api/chat` in Ollama's native format, with
//! NDJSON streaming (one JSON object per line, a final `done: true` line with
//! `done_reason`, `prompt_eval_count` and `eval_count`). Like Ollama, it streams unless
//! the request says `"stream": false`.

use std::io;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::server::{FakeServer, FakeState, json_response, streamed, whole};
use super::{Failure, FakeConfig, Reply, prompt_words};

const CREATED_AT: &str = "2025-01-01T00:00:00.000000Z";

/// A fake Ollama server; derefs to [`FakeServer`] for `url()`, `bodies()`…
pub struct FakeOllama(FakeServer);

impl FakeOllama {
    /// A fake with the default [`FakeConfig`].
    pub async fn start() -> io::Result<Self> {
        Self::start_with(FakeConfig::default()).await
    }

    /// A fake serving `config`, listening on 127.0.0.1 on a free port.
    pub async fn start_with(config: FakeConfig) -> io::Result<Self> {
        let routes = Router::new()
            .route("/api/tags", get(tags))
            .route("/api/chat", post(chat))
            .route("/api/embed", post(super::embeddings::ollama_embed));
        Ok(FakeOllama(FakeServer::start(config, routes).await?))
    }

    /// Stops the server (see [`FakeServer::stop`]).
    pub async fn stop(self) {
        self.0.stop().await
    }
}

impl Deref for FakeOllama {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.0
    }
}

async fn tags(State(state): State<Arc<FakeState>>) -> Response {
    let models: Vec<Value> = state
        .config
        .models
        .iter()
        .map(|m| {
            json!({"name": m, "model": m, "modified_at": CREATED_AT, "size": 0, "digest": "fake",
                "details": {"format": "gguf", "family": "fake"}})
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "models": models }))
}

async fn chat(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = state.record("/api/chat", &headers, &body);
    let config = &state.config;
    if config.failure == Failure::Status500 {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "fake engine failure"}),
        );
    }
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !config.models.iter().any(|m| m == model) {
        let error = format!("model \"{model}\" not found, try pulling it first");
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": error }));
    }
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if config.failure == Failure::Garbage {
        let pieces = vec![Bytes::from_static(b"this is not json\n")];
        return streamed(
            config,
            if stream {
                "application/x-ndjson"
            } else {
                "application/json"
            },
            pieces,
        );
    }
    let limit = request
        .pointer("/options/num_predict")
        .and_then(Value::as_u64);
    let reply = Reply::plan(config, &request, limit);
    let done = done_fields(config, &request, &reply);
    if !stream {
        let mut answer = line(model, message(&reply, None));
        merge(&mut answer, done);
        return whole(config, &answer);
    }
    let mut lines: Vec<Value> = match &reply {
        Reply::Text { tokens, .. } => tokens
            .iter()
            .map(|t| line(model, json!({"role": "assistant", "content": t})))
            .collect(),
        Reply::ToolCall { .. } => vec![line(model, message(&reply, Some("")))],
    };
    let mut last = line(model, json!({"role": "assistant", "content": ""}));
    merge(&mut last, done);
    lines.push(last);
    let pieces = lines
        .iter()
        .map(|l| {
            let mut text = l.to_string();
            text.push('\n');
            Bytes::from(text)
        })
        .collect();
    streamed(config, "application/x-ndjson", pieces)
}

fn line(model: &str, message: Value) -> Value {
    json!({"model": model, "created_at": CREATED_AT, "message": message, "done": false})
}

/// The assistant message of a whole answer (`content` = None: the reply's text).
fn message(reply: &Reply, content: Option<&str>) -> Value {
    match reply {
        Reply::Text { tokens, .. } => {
            json!({"role": "assistant", "content": content.map_or_else(|| tokens.concat(), String::from)})
        }
        Reply::ToolCall { name, arguments } => json!({"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": name, "arguments": arguments}}]}),
    }
}

/// The fields of Ollama's final object.
fn done_fields(config: &FakeConfig, request: &Value, reply: &Reply) -> Map<String, Value> {
    let reason = match reply {
        Reply::Text {
            finish: "length", ..
        } => "length",
        _ => "stop",
    };
    let mut done = Map::new();
    done.insert("done".into(), json!(true));
    done.insert("done_reason".into(), json!(reason));
    done.insert("total_duration".into(), json!(1_000_000));
    if config.report_usage {
        done.insert("prompt_eval_count".into(), json!(prompt_words(request)));
        done.insert("eval_count".into(), json!(reply.completion_tokens()));
    }
    done
}

fn merge(target: &mut Value, fields: Map<String, Value>) {
    if let Value::Object(map) = target {
        map.extend(fields);
    }
}
