//! `POST /v1/chat/completions` on the worker: admit, run on the engine, sign the receipt,
//! answer (receipt in a header, or as an SSE comment before `[DONE]`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::Worker;
use super::gate::{Caller, estimate_tokens};
use super::output_meter::{OutputMeter, length_chunk};
use super::reserve::wanted_output;
use crate::core::api_error::ApiError;
use crate::core::engine::{ChatRequest, StreamEvent, Usage};
use crate::core::ledger::{OwnReceipt, sign_own};
use crate::core::links::{LinkPeer, linked};
use crate::core::metrics::{DirectionLabel, StreamLabel};
use crate::core::net::relay::{self, Lost, Pulled};
use crate::core::protocol::PublicKey;
use crate::core::protocol::{Receipt, RequestProof, new_nonce};

pub use crate::core::protocol::wire::{RECEIPT_COMMENT, RECEIPT_HEADER, REQUESTER_HEADER};

pub(super) async fn chat_completions(
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
    let mut request = ChatRequest::parse(&body)?;
    let now = w.clock.now_ms();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let (caller, proof) = w
        .gate
        .identify_proved(link, "POST", path, &headers, &body, now)?;
    let wanted = wanted_output(request.requested_output(), w.max_output_tokens);
    let pass = w.gate.admit(
        caller,
        estimate_tokens(&body),
        wanted,
        &w.ledger_reader,
        now,
    )?;
    // The engine is held to what was reserved, which may be less than was asked.
    request.output_cap = Some(pass.grant().output);
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
    if !request.stream {
        let model = request.model.clone();
        let answer = w
            .engine
            .chat(request)
            .await
            .map_err(|e| ApiError::from_engine(&e))?;
        drop(slot);
        let usage = pass.bill(answer.usage);
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
        // The receipt in the ledger now stands for the reservation: only now is it let go.
        drop(pass);
        return response;
    }

    let model = request.model.clone();
    let mut events = w
        .engine
        .chat_stream(request)
        .await
        .map_err(|e| ApiError::from_engine(&e))?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(32);
    tokio::spawn(async move {
        let _slot = slot;
        let mut meter = OutputMeter::new(pass.grant());
        let mut proof = proof;
        let mut outcome = "stream_error";
        // No bound before the first event: a model may be loading. The router's
        // first-byte timeout covers that wait, and a router that gives up is noticed.
        let mut idle = None;
        let stall = w.limits.client_stall_timeout;
        loop {
            let event = match relay::pull(&mut events, idle, &tx).await {
                Pulled::Item(event) => event,
                Pulled::End => break,
                Pulled::ClientGone => {
                    // Dropping the engine's stream stops the engine.
                    outcome = Lost::Gone.outcome();
                    break;
                }
                Pulled::Idle => {
                    if outcome != "ok" {
                        // Cut mid-answer: no usage, so no receipt; the client is told.
                        outcome = "engine_stalled";
                        let _ = relay::push(&tx, Ok(engine_stalled(idle)), stall).await;
                    }
                    break;
                }
            };
            idle = Some(w.stream_idle_timeout);
            if meter.overflows(&event) {
                // The engine ignored its limit: end the answer at the allowance here.
                let usage = meter.cut_usage();
                let end = receipt_frame(&w, caller, proof.take(), &model, usage, started_at);
                let frame = match end.await {
                    Ok(receipt) => {
                        outcome = "ok";
                        [length_chunk(&model), receipt].concat().into()
                    }
                    Err(e) => {
                        outcome = e.kind;
                        sse_data(&e.body().to_string())
                    }
                };
                let _ = relay::push(&tx, Ok(frame), stall).await;
                break;
            }
            let frame = match event {
                Ok(StreamEvent::Chunk(chunk)) => sse_data(&chunk.to_string()),
                Ok(StreamEvent::ChunkText(text)) => sse_data(&text),
                Ok(StreamEvent::Usage(usage)) => {
                    let usage = pass.bill(usage);
                    match receipt_frame(&w, caller, proof.take(), &model, usage, started_at).await {
                        Ok(frame) => {
                            outcome = "ok";
                            frame
                        }
                        Err(e) => {
                            outcome = e.kind;
                            sse_data(&e.body().to_string())
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "engine stream failed");
                    let err = ApiError::from_engine(&e);
                    sse_data(&err.body().to_string())
                }
            };
            if let Err(lost) = relay::push(&tx, Ok(frame), stall).await {
                // The client left or stopped reading: stop the engine by dropping its
                // stream, and free the slot.
                outcome = lost.outcome();
                break;
            }
        }
        w.metrics
            .latency
            .get_or_create(&StreamLabel {
                stream: "true".into(),
            })
            .observe(timer.elapsed().as_secs_f64());
        w.metrics.outcome(outcome);
        // Only now: the receipt, if any, is in the ledger.
        drop(pass);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The stream's last frame: the receipt comment and `[DONE]`, built only once the
/// receipt is durable, so a client never holds a receipt a crash could take back.
async fn receipt_frame(
    w: &Worker,
    caller: Caller,
    proof: Option<RequestProof>,
    model: &str,
    usage: Usage,
    started_at: u64,
) -> Result<Bytes, ApiError> {
    let signed = sign(w, caller, model, usage, started_at)?;
    let frame = format!(
        "{RECEIPT_COMMENT}{}\n\ndata: [DONE]\n\n",
        signed.signed().to_base64()
    );
    w.ledger_receipt(signed, caller.standing(), proof).await?;
    Ok(Bytes::from(frame))
}

/// The event that ends a stream the engine stopped feeding.
fn engine_stalled(idle: Option<std::time::Duration>) -> Bytes {
    let ms = idle.map_or(0, |d| d.as_millis());
    let error = ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "engine_stream_stalled",
        format!("the engine sent nothing for {ms} ms in the middle of its answer"),
    );
    sse_data(&error.body().to_string())
}

fn sse_data(json: &str) -> Bytes {
    let mut out = String::with_capacity(json.len() + 8);
    out.push_str("data: ");
    out.push_str(json);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// Signs and ledgers the receipt of a whole answer, then makes the response that carries
/// it in its header: the same for chat and embeddings.
#[allow(clippy::too_many_arguments)]
pub(super) async fn answer_whole(
    w: &Worker,
    caller: Caller,
    proof: Option<RequestProof>,
    model: &str,
    usage: Usage,
    started_at: u64,
    timer: Instant,
    body: &serde_json::Value,
) -> Result<Response, ApiError> {
    let signed = sign(w, caller, model, usage, started_at)?;
    let header_value = HeaderValue::from_str(&signed.signed().to_base64()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            e.to_string(),
        )
    })?;
    w.ledger_receipt(signed, caller.standing(), proof).await?;
    w.metrics
        .latency
        .get_or_create(&StreamLabel {
            stream: "false".into(),
        })
        .observe(timer.elapsed().as_secs_f64());
    w.metrics.outcome("ok");
    let body = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    response.headers_mut().insert(RECEIPT_HEADER, header_value);
    Ok(response)
}

fn sign(
    w: &Worker,
    caller: Caller,
    model: &str,
    usage: Usage,
    started_at: u64,
) -> Result<OwnReceipt, ApiError> {
    let completed_at = w.clock.now_ms().max(started_at);
    let receipt = Receipt {
        version: 1,
        job_id: uuid::Uuid::new_v4().to_string(),
        nonce: new_nonce(),
        requester_pubkey: caller.requester(),
        worker_pubkey: w.identity.public(),
        model: model.to_string(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        started_at,
        completed_at,
    };
    let signed = sign_own(receipt, &w.identity).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            e.to_string(),
        )
    })?;
    w.metrics.receipts_signed.inc();
    if let Caller::Anonymous(_) = caller {
        w.gate.charge_anonymous(
            usage.input_tokens.saturating_add(usage.output_tokens),
            w.clock.now_ms(),
        );
    }
    w.metrics
        .tokens
        .get_or_create(&DirectionLabel {
            direction: "input".into(),
        })
        .inc_by(usage.input_tokens);
    w.metrics
        .tokens
        .get_or_create(&DirectionLabel {
            direction: "output".into(),
        })
        .inc_by(usage.output_tokens);
    Ok(signed)
}
