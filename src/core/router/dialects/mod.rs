//! The APIs besides OpenAI chat that clients point at the router: OpenAI completions and
//! responses, Anthropic messages, and Ollama's own API. Each is a [`Dialect`]: it turns
//! the client's request into the OpenAI request the network carries (chat completions,
//! or embeddings), and turns the answer, whole or streamed, back into its own shape.
//!
//! The translation happens here at the router's edge, so every worker on the network,
//! old ones included, serves every dialect through the one wire protocol, with the same
//! selection, failover, receipts and credit as chat. [`serve`] is the one driver.

pub(crate) mod anthropic;
pub(crate) mod completions;
pub(crate) mod ollama;
pub(crate) mod responses;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::forward;
use super::service::RouterService;
use crate::core::api_error::ApiError;
use crate::core::engine::lines::{LineSplitter, MAX_LINE};

/// Which OpenAI request a dialect's request becomes on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    Chat,
    Embeddings,
}

/// One client API, translated to and from OpenAI's. A value lives for one request, so
/// it may remember what the answer needs (the model asked for, ids, what was sent).
pub(crate) trait Dialect: Send + 'static {
    /// What the translated request is.
    fn upstream(&self) -> Upstream;

    /// The content type of a streamed answer (SSE, or NDJSON for Ollama).
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }

    /// The client's request body → the OpenAI request to route. It must carry `model`
    /// and, for chat, `stream` (with `stream_options.include_usage` when streaming, so
    /// the answer reports tokens). Fields with no OpenAI equivalent are refused with a
    /// 400 rather than dropped silently when they change the answer.
    fn to_upstream(&mut self, request: Value) -> Result<Value, ApiError>;

    /// A whole OpenAI answer (`chat.completion` or embeddings list) → this API's answer.
    fn whole(&mut self, answer: Value) -> Value;

    /// One OpenAI `chat.completion.chunk` → the frames to send (maybe none).
    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>);

    /// The stream ended (`[DONE]`, or the end of the body) → its closing frames.
    fn finish(&mut self, out: &mut Vec<Bytes>);

    /// An OpenAI error object (`{"error":{"type","message",…}}`) arrived mid-stream.
    fn stream_error(&mut self, error: &Value, out: &mut Vec<Bytes>);

    /// An OpenAI error object and its status → this API's error body.
    fn error_body(&self, status: StatusCode, error: &Value) -> Value;
}

/// One Server-Sent Event, with an `event:` line when `name` is given.
pub(crate) fn sse(name: Option<&str>, data: &Value) -> Bytes {
    let data = data.to_string();
    match name {
        Some(name) => Bytes::from(format!("event: {name}\ndata: {data}\n\n")),
        None => Bytes::from(format!("data: {data}\n\n")),
    }
}

/// One NDJSON line.
pub(crate) fn ndjson(value: &Value) -> Bytes {
    let mut line = value.to_string();
    line.push('\n');
    Bytes::from(line)
}

/// The message of an OpenAI error object, or a generic one.
pub(crate) fn error_message(error: &Value) -> String {
    error
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("the request failed")
        .to_string()
}

/// The `type` of an OpenAI error object.
pub(crate) fn error_kind(error: &Value) -> String {
    error
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("api_error")
        .to_string()
}

/// Routes one request of dialect `D` and answers in its shape.
pub(super) async fn serve<D: Dialect>(
    r: &Arc<RouterService>,
    mut dialect: D,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (response, stream) = match translate_request(r, &mut dialect, body) {
        Ok((upstream, stream)) => match dialect.upstream() {
            Upstream::Chat => (forward::route_chat(r, upstream).await, stream),
            Upstream::Embeddings => (forward::route_embeddings(r, upstream).await, false),
        },
        Err(e) => (e.into_response(), false),
    };
    answer(dialect, response, stream, r.config.body_limit).await
}

fn translate_request<D: Dialect>(
    r: &RouterService,
    dialect: &mut D,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Bytes, bool), ApiError> {
    let body = body.map_err(|rej| ApiError::from_body_rejection(rej, r.config.body_limit))?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    if !request.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let upstream = dialect.to_upstream(request)?;
    let stream = upstream.get("stream").and_then(Value::as_bool) == Some(true);
    let bytes = serde_json::to_vec(&upstream)
        .map_err(|e| ApiError::bad_request(format!("the request cannot be encoded: {e}")))?;
    Ok((Bytes::from(bytes), stream))
}

/// Turns the router's OpenAI answer (`response`) into the dialect's.
async fn answer<D: Dialect>(
    mut dialect: D,
    response: Response,
    stream: bool,
    limit: usize,
) -> Response {
    let status = response.status();
    let kept = kept_headers(&response);
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let mut out = if status.is_success() && stream && is_sse {
        translate_stream(dialect, response)
    } else {
        // A whole answer or an error: both are one JSON object, read whole. The router
        // made them (or checked their shape), so the limit only guards a runaway.
        let bytes = axum::body::to_bytes(response.into_body(), limit.max(1 << 20))
            .await
            .unwrap_or_default();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let body = if status.is_success() {
            dialect.whole(value)
        } else {
            dialect.error_body(status, &value)
        };
        (status, axum::Json(body)).into_response()
    };
    for (name, value) in kept {
        out.headers_mut().insert(name, value);
    }
    out
}

/// Headers of the routed answer the client still needs: who served it, when to retry.
fn kept_headers(response: &Response) -> Vec<(header::HeaderName, HeaderValue)> {
    [
        header::HeaderName::from_static(forward::SERVED_BY_HEADER),
        header::RETRY_AFTER,
    ]
    .into_iter()
    .filter_map(|name| {
        let value = response.headers().get(&name)?.clone();
        Some((name, value))
    })
    .collect()
}

fn translate_stream<D: Dialect>(mut dialect: D, response: Response) -> Response {
    let content_type = dialect.stream_content_type();
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(32);
    let mut upstream = response.into_body().into_data_stream();
    tokio::spawn(async move {
        let mut lines = LineSplitter::new(MAX_LINE);
        let mut frames = Vec::new();
        'read: while let Some(Ok(chunk)) = upstream.next().await {
            lines.push(&chunk);
            while let Ok(Some(line)) = lines.next_line() {
                let Some(data) = line.strip_prefix(b"data:") else {
                    continue;
                };
                let data = data.trim_ascii();
                if data == b"[DONE]" {
                    break 'read;
                }
                match serde_json::from_slice::<Value>(data) {
                    Ok(v) if v.get("error").is_some() => dialect.stream_error(&v, &mut frames),
                    Ok(v) => dialect.chunk(&v, &mut frames),
                    Err(_) => continue,
                }
                for frame in frames.drain(..) {
                    if tx.send(Ok(frame)).await.is_err() {
                        // The client left: dropping the upstream tells the router so.
                        return;
                    }
                }
            }
        }
        dialect.finish(&mut frames);
        for frame in frames.drain(..) {
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
