//! `GET /v1/models` and `GET /v1/models/{id}`: the models healthy peers serve now, in
//! OpenAI's shape, each with how many peers serve it and what it can do (lobstah's own
//! fields beside OpenAI's, which clients ignore). An id may hold slashes
//! (`Qwen/Qwen2.5-7B`), as vLLM's do.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::selection::PeerState;
use super::service::RouterService;
use crate::core::api_error::ApiError;

/// What a peer that lists a model can do with it (chat is all peers serve today).
const CAPABILITIES: [&str; 1] = ["chat"];

/// Model id → how many reachable, not excluded peers list it.
async fn served(r: &RouterService) -> BTreeMap<String, usize> {
    r.ensure_capacity().await;
    let now = r.now_ms();
    let snapshots = r.peer_snapshots();
    let selector = r.lock_selector();
    let mut peers: BTreeMap<String, usize> = BTreeMap::new();
    for view in snapshots
        .into_iter()
        .filter(|v| v.reachable && selector.state(&v.pubkey, now) != PeerState::Excluded)
    {
        let mut models = view.models;
        models.sort();
        models.dedup();
        for model in models {
            *peers.entry(model).or_default() += 1;
        }
    }
    peers
}

fn model_object(id: &str, peers: usize) -> Value {
    json!({
        "id": id,
        "object": "model",
        "created": 0,
        "owned_by": "lobstah",
        "peers": peers,
        "capabilities": CAPABILITIES,
    })
}

pub(super) async fn list(State(r): State<Arc<RouterService>>) -> impl IntoResponse {
    let data: Vec<Value> = served(&r)
        .await
        .iter()
        .map(|(id, peers)| model_object(id, *peers))
        .collect();
    axum::Json(json!({"object": "list", "data": data}))
}

pub(super) async fn retrieve(
    State(r): State<Arc<RouterService>>,
    Path(id): Path<String>,
) -> Response {
    match served(&r).await.get(&id) {
        Some(peers) => axum::Json(model_object(&id, *peers)).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("no healthy peer serves model {id:?}"),
        )
        .into_response(),
    }
}
