//! The router's routes for the APIs besides OpenAI chat: each handler picks its
//! [`Dialect`](super::dialects::Dialect) and hands the request to the one driver; and
//! the Ollama API's read-only answers (`/api/tags`, `/api/show`, `/api/version`,
//! `/api/ps`), made from what the router knows of its peers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::dialects::{self, anthropic, completions, ollama, responses};
use super::forward;
use super::models::{Served, served};
use super::service::RouterService;
use crate::core::protocol::wire;

/// The Ollama API level lobstah speaks: Ollama front-ends read the version to decide
/// which endpoints they may call (the Messages API, for one, came in 0.14).
const OLLAMA_API_VERSION: &str = "0.14.0";

/// Every client-facing endpoint of the router: method, path, and the API it belongs to.
/// `lobstah doctor` prints it; the README's table says which clients are tested on each.
pub const ROUTER_ENDPOINTS: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/v1/chat/completions",
        "OpenAI chat (whole, stream, tools)",
    ),
    (
        "POST",
        "/v1/completions",
        "OpenAI completions (whole, stream)",
    ),
    (
        "POST",
        "/v1/responses",
        "OpenAI responses, stateless (whole, stream, tools)",
    ),
    ("POST", "/v1/embeddings", "OpenAI embeddings"),
    (
        "GET",
        "/v1/models",
        "OpenAI models (with peers, capabilities)",
    ),
    ("GET", "/v1/models/{id}", "OpenAI model by id"),
    (
        "POST",
        "/v1/messages",
        "Anthropic messages (whole, stream, tool use)",
    ),
    (
        "POST",
        "/api/chat",
        "Ollama chat (whole, NDJSON stream, tools)",
    ),
    (
        "POST",
        "/api/generate",
        "Ollama generate (whole, NDJSON stream)",
    ),
    ("POST", "/api/embed", "Ollama embed"),
    ("POST", "/api/embeddings", "Ollama embeddings (legacy)"),
    ("GET", "/api/tags", "Ollama model list"),
    ("GET", "/api/ps", "Ollama running models"),
    ("POST", "/api/show", "Ollama model details"),
    ("GET", "/api/version", "Ollama version"),
    (
        "POST",
        "/v1/jobs",
        "lobstah async jobs (and GET/DELETE /v1/jobs/{id})",
    ),
];

/// The routes this module serves, to merge into the router's app.
pub(super) fn routes() -> Router<Arc<RouterService>> {
    Router::new()
        .route(wire::EMBEDDINGS_PATH, post(forward::embeddings))
        .route("/v1/completions", post(text_completions))
        .route("/v1/responses", post(create_response))
        .route("/v1/messages", post(messages))
        .route("/api/chat", post(ollama_chat))
        .route("/api/generate", post(ollama_generate))
        .route("/api/embed", post(ollama_embed))
        .route("/api/embeddings", post(ollama_legacy_embeddings))
        .route("/api/tags", get(ollama_tags))
        .route("/api/ps", get(ollama_ps))
        .route("/api/show", post(ollama_show))
        .route("/api/version", get(ollama_version))
}

type Body = Result<Bytes, BytesRejection>;

async fn text_completions(State(r): State<Arc<RouterService>>, body: Body) -> Response {
    let dialect = completions::Completions::new(r.now_ms());
    dialects::serve(&r, dialect, body).await
}

async fn create_response(State(r): State<Arc<RouterService>>, body: Body) -> Response {
    let dialect = responses::Responses::new(r.now_ms());
    dialects::serve(&r, dialect, body).await
}

/// Anthropic's Messages API. `x-api-key` and `anthropic-version` are accepted and
/// ignored: the router is local, and peers are paid in credit, not keys.
async fn messages(State(r): State<Arc<RouterService>>, body: Body) -> Response {
    let dialect = anthropic::Messages::new(r.now_ms());
    dialects::serve(&r, dialect, body).await
}

async fn ollama_chat(State(r): State<Arc<RouterService>>, body: Body) -> Response {
    let dialect = ollama::Chat::new(r.now_ms());
    dialects::serve(&r, dialect, body).await
}

async fn ollama_generate(State(r): State<Arc<RouterService>>, body: Body) -> Response {
    let dialect = ollama::Generate::new(r.now_ms());
    dialects::serve(&r, dialect, body).await
}

async fn ollama_embed(State(r): State<Arc<RouterService>>, body: Body) -> Response {
    let dialect = ollama::Embed::new(r.now_ms());
    dialects::serve(&r, dialect, body).await
}

async fn ollama_legacy_embeddings(State(r): State<Arc<RouterService>>, body: Body) -> Response {
    let dialect = ollama::LegacyEmbeddings::new(r.now_ms());
    dialects::serve(&r, dialect, body).await
}

/// One model as Ollama lists it. Sizes and digests are the serving peers' business and
/// unknown here; lobstah's own fields say who serves it.
fn ollama_model(name: &str, served: &Served) -> Value {
    json!({
        "name": name,
        "model": name,
        "modified_at": "1970-01-01T00:00:00Z",
        "size": 0,
        "digest": "",
        "details": {
            "format": "", "family": "", "families": null,
            "parameter_size": "", "quantization_level": "",
        },
        "peers": served.peers,
        "capabilities": served.capabilities(),
    })
}

async fn ollama_tags(State(r): State<Arc<RouterService>>) -> Response {
    let models: Vec<Value> = served(&r)
        .await
        .iter()
        .map(|(name, served)| ollama_model(name, served))
        .collect();
    axum::Json(json!({"models": models})).into_response()
}

/// Models loaded now: on a grid, every model some healthy peer serves.
async fn ollama_ps(State(r): State<Arc<RouterService>>) -> Response {
    let models: Vec<Value> = served(&r)
        .await
        .iter()
        .map(|(name, served)| {
            let mut model = ollama_model(name, served);
            if let Some(object) = model.as_object_mut() {
                object.insert("expires_at".into(), json!("1970-01-01T00:00:00Z"));
                object.insert("size_vram".into(), json!(0));
            }
            model
        })
        .collect();
    axum::Json(json!({"models": models})).into_response()
}

async fn ollama_show(State(r): State<Arc<RouterService>>, body: Body) -> Response {
    let Some(name) = body
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| {
            v.get("model")
                .or_else(|| v.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    else {
        return ollama_error(StatusCode::BAD_REQUEST, "missing field \"model\"");
    };
    let all = served(&r).await;
    let Some(served) = all.get(&name) else {
        return ollama_error(
            StatusCode::NOT_FOUND,
            &format!("model '{name}' not found: no healthy peer serves it"),
        );
    };
    // Ollama's words for what a model can do.
    let mut capabilities = vec!["completion", "tools"];
    if served.embeddings > 0 {
        capabilities.push("embedding");
    }
    axum::Json(json!({
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": ollama_model(&name, served)["details"],
        "model_info": {},
        "capabilities": capabilities,
        "modified_at": "1970-01-01T00:00:00Z",
        "peers": served.peers,
    }))
    .into_response()
}

async fn ollama_version() -> Response {
    axum::Json(json!({
        "version": OLLAMA_API_VERSION,
        "lobstah": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

fn ollama_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}
