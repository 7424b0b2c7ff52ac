//! `POST /v1/embeddings` on the worker: admitted, billed and receipted like a whole chat
//! answer, with no output tokens. Served only when the engine has embeddings (the
//! capacity probe says so); the receipt travels in the same header as chat's.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::Worker;
use super::chat::answer_whole;
use super::gate::estimate_tokens;
use crate::core::api_error::ApiError;
use crate::core::engine::EmbeddingsRequest;
use crate::core::links::{LinkPeer, linked};
use crate::core::protocol::PublicKey;

pub(super) async fn embeddings(
    State(w): State<Arc<Worker>>,
    link: Option<Extension<LinkPeer>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let link = linked(link);
    match handle(w.clone(), link, uri, headers, body).await {
        Ok(response) => response,
        Err(e) => {
            w.metrics.outcome(e.kind);
            e.into_response()
        }
    }
}

async fn handle(
    w: Arc<Worker>,
    link: Option<PublicKey>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| ApiError::from_body_rejection(r, w.body_limit))?;
    w.taking_work()?;
    if !w.engine.serves_embeddings() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "this worker's {} engine serves no embeddings",
                w.engine.kind()
            ),
        ));
    }
    let request = EmbeddingsRequest::parse(&body)?;
    let now = w.clock.now_ms();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let (caller, proof) = w
        .gate
        .identify_proved(link, "POST", path, &headers, &body, now)?;
    // Embeddings produce no output tokens: only the input is reserved and billed.
    let pass = w
        .gate
        .admit(caller, estimate_tokens(&body), 0, &w.ledger_reader, now)?;
    let slot = w.admission.admit().await.map_err(|full| {
        w.metrics.queue_rejections.inc();
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            full.to_string(),
        )
        .with_retry_after(1)
    })?;
    let started_at = w.clock.now_ms();
    let timer = Instant::now();
    let model = request.model.clone();
    let answer = w
        .engine
        .embed(request)
        .await
        .map_err(|e| ApiError::from_engine(&e))?;
    drop(slot);
    let mut usage = pass.bill(answer.usage);
    usage.output_tokens = 0;
    let response = answer_whole(
        &w,
        caller,
        proof,
        &model,
        usage,
        started_at,
        timer,
        &answer.body,
    )
    .await;
    // Let go of the reservation only once the receipt stands for it.
    drop(pass);
    response
}
