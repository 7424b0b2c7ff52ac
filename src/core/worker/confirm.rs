//! Settling receipts with their requesters, on the worker.
//!
//! `POST /v1/receipts/confirm`: a requester's counter-signature over a batch of receipts
//! turns the worker's pending earnings from them into confirmed ones. The body is one
//! signed confirmation (see `protocol::confirmation`); its own signature is the proof,
//! so the request needs no request signature. Answering is idempotent: a confirmation
//! sent twice (a retry after a lost answer) settles nothing twice.
//!
//! `GET /v1/receipts/unsettled`: a signed request; the answer lists the receipts signed
//! for that requester it has not confirmed, each with the proof of the request it
//! answers. A router that crashed or cut an answer short learns here what it owes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::{Caller, Worker};
use crate::core::api_error::ApiError;
use crate::core::ledger::ConfirmOutcome;
use crate::core::protocol::SignedConfirmation;

pub use crate::core::protocol::wire::{CONFIRM_PATH, MAX_UNSETTLED_PER_ANSWER, UNSETTLED_PATH};

#[derive(Debug, Serialize)]
struct NonceOutcome<'a> {
    nonce: &'a str,
    outcome: ConfirmOutcome,
}

pub(super) async fn confirm_receipts(
    State(w): State<Arc<Worker>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body.map_err(|r| ApiError::from_body_rejection(r, w.body_limit))?;
    let confirmation =
        SignedConfirmation::from_json(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let c = confirmation.confirmation();
    let me = w.identity.public();
    if c.worker_pubkey != me {
        return Err(ApiError::bad_request(format!(
            "this confirmation is for worker {}, this worker is {}",
            c.worker_pubkey.short(),
            me.short()
        )));
    }
    confirmation
        .verify_signature()
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", e.to_string()))?;
    // Receipts this worker signed a moment ago may still sit in the writer's queue; a
    // confirmation must find every receipt that was handed out before it.
    let _ = w.ledger.flush().await;
    let ledger = w.ledger_reader.clone();
    let signed = confirmation.clone();
    let outcomes = tokio::task::spawn_blocking(move || ledger.confirm(&signed, &me))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| internal(e.to_string()))?;
    let mut counts = [0u64; 4];
    for o in &outcomes {
        counts[*o as usize] += 1;
    }
    let confirmed = counts[ConfirmOutcome::Confirmed as usize];
    w.metrics.receipts_confirmed.inc_by(confirmed);
    if confirmed > 0 {
        w.confirmations.send_modify(|n| *n += confirmed);
    }
    let results: Vec<NonceOutcome<'_>> = c
        .receipts
        .iter()
        .zip(&outcomes)
        .map(|(r, o)| NonceOutcome {
            nonce: &r.nonce,
            outcome: *o,
        })
        .collect();
    Ok(Json(json!({
        "confirmed": confirmed,
        "alreadyConfirmed": counts[ConfirmOutcome::AlreadyConfirmed as usize],
        "unknown": counts[ConfirmOutcome::Unknown as usize],
        "mismatch": counts[ConfirmOutcome::Mismatch as usize],
        "results": results,
    })))
}

pub(super) async fn unsettled_receipts(
    State(w): State<Arc<Worker>>,
    link: Option<Extension<crate::core::links::LinkPeer>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = w.gate.identify(
        crate::core::links::linked(link),
        "GET",
        UNSETTLED_PATH,
        &headers,
        b"",
        w.clock.now_ms(),
    )?;
    let Caller::Signed(requester) = caller else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "signature_required",
            "only a signed request may list what its requester has not settled",
        ));
    };
    let _ = w.ledger.flush().await;
    let ledger = w.ledger_reader.clone();
    let listed = tokio::task::spawn_blocking(move || {
        ledger.unsettled_for(&requester, MAX_UNSETTLED_PER_ANSWER + 1)
    })
    .await
    .map_err(|e| internal(e.to_string()))?
    .map_err(|e| internal(e.to_string()))?;
    let more = listed.len() > MAX_UNSETTLED_PER_ANSWER;
    let receipts: Vec<serde_json::Value> = listed
        .into_iter()
        .take(MAX_UNSETTLED_PER_ANSWER)
        .map(|u| json!({"receipt": u.receipt.to_value(), "request": u.request}))
        .collect();
    Ok(Json(json!({"receipts": receipts, "more": more})))
}

fn internal(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
}

/// How often pending receipts past the settle window are expired (see
/// `ledger::expiry`); also once at start.
const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Expires, at start and then every [`EXPIRE_EVERY`] until `stop`, the receipts no
/// requester confirmed in time, so they leave the exposure cap.
pub(super) fn spawn_expiry(
    w: Arc<Worker>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let (ledger, now) = (w.ledger_reader.clone(), w.clock.now_ms());
            match tokio::task::spawn_blocking(move || ledger.expire_pending(now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(count = n, "receipts expired unconfirmed"),
                Ok(Err(e)) => tracing::error!(error = %e, "cannot expire unconfirmed receipts"),
                Err(e) => tracing::error!(error = %e, "the expiry task failed"),
            }
        }
    })
}
