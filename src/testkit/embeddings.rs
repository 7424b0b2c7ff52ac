//! Embeddings for the fake engines, each in its engine's own wire format: Ollama's
//! `POST /api/embed` (floats, `prompt_eval_count`) and OpenAI's `POST /v1/embeddings`
//! (a list, floats or little-endian base64 as `encoding_format` asks, `usage`).
//!
//! The vectors are a simple function of the text (its length in characters, then its
//! first bytes), so a test can tell which text and which fake an answer came from.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use super::server::{FakeState, json_response};

/// The fake's embedding of `text`: four numbers a test can compute too.
pub fn fake_vector(text: &str) -> Vec<f32> {
    let bytes = text.as_bytes();
    let byte = |i: usize| f32::from(bytes.get(i).copied().unwrap_or(0)) / 255.0;
    vec![text.chars().count() as f32, byte(0), byte(1), byte(2)]
}

/// The texts of an `input` (a string or an array of strings).
fn inputs(request: &Value) -> Option<Vec<String>> {
    match request.get("input")? {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// Tokens the fake reports: one per word, as its chat does.
fn tokens(texts: &[String]) -> u64 {
    texts
        .iter()
        .map(|t| t.split_whitespace().count().max(1) as u64)
        .sum()
}

fn known_model<'a>(state: &FakeState, request: &'a Value) -> Option<&'a str> {
    let model = request.get("model").and_then(Value::as_str)?;
    state
        .config
        .models
        .iter()
        .any(|m| m == model)
        .then_some(model)
}

pub(super) async fn ollama_embed(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = state.record("/api/embed", &headers, &body);
    let Some(model) = known_model(&state, &request) else {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "model not found"}));
    };
    let Some(texts) = inputs(&request) else {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error": "invalid input"}));
    };
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| fake_vector(t)).collect();
    json_response(
        StatusCode::OK,
        &json!({"model": model, "embeddings": vectors, "total_duration": 1000,
            "load_duration": 10, "prompt_eval_count": tokens(&texts)}),
    )
}

pub(super) async fn openai_embeddings(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = state.record("/v1/embeddings", &headers, &body);
    let Some(model) = known_model(&state, &request) else {
        let error = json!({"error": {"message": "The model does not exist.",
            "type": "invalid_request_error", "code": "model_not_found"}});
        return json_response(StatusCode::NOT_FOUND, &error);
    };
    let Some(texts) = inputs(&request) else {
        let error = json!({"error": {"message": "invalid input", "type": "invalid_request_error"}});
        return json_response(StatusCode::BAD_REQUEST, &error);
    };
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = fake_vector(text);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let used = tokens(&texts);
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": used, "total_tokens": used}}),
    )
}
