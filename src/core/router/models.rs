//! `GET /v1/models` and `GET /v1/models/{id}`: the models healthy peers serve now, in
//! OpenAI's shape, each with how many peers serve it and what it can do (lobstah's own
//! fields beside OpenAI's, which clients ignore). An id may hold slashes
//! (`Qwen/Qwen2.5-7B`), as vLLM's do. The Ollama API's model listing reads the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::selection::PeerState;
use super::service::RouterService;
use crate::core::api_error::ApiError;
use crate::core::protocol::wire::{CAPABILITY_CHAT, CAPABILITY_EMBEDDINGS};

/// Who serves one model now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Served {
    /// Reachable, not excluded peers that list it.
    pub peers: usize,
    /// How many of them also serve embeddings with it.
    pub embeddings: usize,
}

impl Served {
    /// What a client can ask of the model: every peer chats; embeddings when one says.
    pub(super) fn capabilities(&self) -> Vec<&'static str> {
        let mut out = vec![CAPABILITY_CHAT];
        if self.embeddings > 0 {
            out.push(CAPABILITY_EMBEDDINGS);
        }
        out
    }
}

/// Model id → who serves it.
pub(super) async fn served(r: &RouterService) -> BTreeMap<String, Served> {
    r.ensure_capacity().await;
    let now = r.now_ms();
    let snapshots = r.peer_snapshots();
    let selector = r.lock_selector();
    let mut served: BTreeMap<String, Served> = BTreeMap::new();
    for view in snapshots
        .into_iter()
        .filter(|v| v.reachable && selector.state(&v.pubkey, now) != PeerState::Excluded)
    {
        let mut models = view.models;
        models.sort();
        models.dedup();
        for model in models {
            let entry = served.entry(model).or_default();
            entry.peers += 1;
            entry.embeddings += usize::from(view.embeddings);
        }
    }
    served
}

fn model_object(id: &str, served: &Served) -> Value {
    json!({
        "id": id,
        "object": "model",
        "created": 0,
        "owned_by": "lobstah",
        "peers": served.peers,
        "capabilities": served.capabilities(),
    })
}

pub(super) async fn list(State(r): State<Arc<RouterService>>) -> impl IntoResponse {
    let data: Vec<Value> = served(&r)
        .await
        .iter()
        .map(|(id, served)| model_object(id, served))
        .collect();
    axum::Json(json!({"object": "list", "data": data}))
}

pub(super) async fn retrieve(
    State(r): State<Arc<RouterService>>,
    Path(id): Path<String>,
) -> Response {
    match served(&r).await.get(&id) {
        Some(served) => axum::Json(model_object(&id, served)).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("no healthy peer serves model {id:?}"),
        )
        .into_response(),
    }
}
