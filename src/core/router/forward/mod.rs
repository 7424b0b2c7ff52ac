//! `POST /v1/chat/completions` and `POST /v1/embeddings` on the router (and what other
//! APIs are translated into): choose candidates, try them in order, fail over on connect
//! errors, timeouts, 5xx and garbage — but only before the first byte reached the client —
//! then forward the answer and take its receipt. Streams are relayed by `stream`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserializer as _;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::{Value, json};

mod stream;

use super::dialects::Upstream;
use super::failover::{self, Step};
use super::plausible::{self, Delivered};
use super::service::RouterService;
use crate::core::api_error::ApiError;
use crate::core::describe;
use crate::core::engine::{ChatRequest, EmbeddingsRequest};
use crate::core::metrics::StreamLabel;
use crate::core::protocol::wire::{self, RECEIPT_HEADER};
use crate::core::protocol::{PublicKey, RequestProof, Tier};

pub use crate::core::protocol::wire::SERVED_BY_HEADER;

/// How much of a failing peer's body is read to explain the failure.
const ERROR_BODY_LIMIT: usize = 4096;

pub(super) enum Attempt {
    Done(Response),
    /// The peer failed; it counts against its health.
    Failed(String),
    /// The peer is healthy but full; try the next without holding it against it.
    Busy(String),
    /// The peer will not serve us (credit, exposure, its friends list, rate limits or
    /// our signature): another peer may, and this is no fault of the peer's health.
    Declined(StatusCode, String),
}

/// Statuses a worker uses to turn a requester away rather than judge the request.
fn is_decline(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::UNAUTHORIZED
            | StatusCode::PAYMENT_REQUIRED
            | StatusCode::FORBIDDEN
            | StatusCode::TOO_MANY_REQUESTS
    )
}

pub(super) async fn chat_completions(
    State(r): State<Arc<RouterService>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    detached(r, body, Upstream::Chat).await
}

/// `POST /v1/embeddings`: routed like chat, to peers that serve embeddings.
pub(super) async fn embeddings(
    State(r): State<Arc<RouterService>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    detached(r, body, Upstream::Embeddings).await
}

/// A chat request another API was translated into, routed like one from a client.
pub(super) async fn route_chat(r: &Arc<RouterService>, body: Bytes) -> Response {
    detached(r.clone(), Ok(body), Upstream::Chat).await
}

/// An embeddings request another API was translated into.
pub(super) async fn route_embeddings(r: &Arc<RouterService>, body: Bytes) -> Response {
    detached(r.clone(), Ok(body), Upstream::Embeddings).await
}

async fn detached(
    r: Arc<RouterService>,
    body: Result<Bytes, BytesRejection>,
    kind: Upstream,
) -> Response {
    // Routed in a task of its own, so a client that resets its connection does not cut
    // the routing short: a worker that has answered is owed its receipt, and the router
    // takes and ledgers it (within the usual timeouts) whether anyone is left to read
    // the answer or not, so both ledgers keep the same receipts.
    // Bounded: past the listener's connection cap, a routing runs inline again and ends
    // with its client, as it did before.
    let Ok(permit) = r.detached_routings.clone().try_acquire_owned() else {
        return routed(&r, body, kind).await;
    };
    let routing = tokio::spawn(async move {
        let _permit = permit;
        routed(&r, body, kind).await
    });
    routing.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "routing a request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "routing this request failed inside the router",
        )
        .into_response()
    })
}

async fn routed(
    r: &Arc<RouterService>,
    body: Result<Bytes, BytesRejection>,
    kind: Upstream,
) -> Response {
    match route(r, body, kind).await {
        Ok(response) => response,
        Err(e) => {
            r.metrics.outcome(e.kind);
            e.into_response()
        }
    }
}

/// The model and whether to stream, read from a request of `kind`.
fn read_request(body: &[u8], kind: Upstream) -> Result<(String, bool), ApiError> {
    match kind {
        Upstream::Chat => {
            let request = ChatRequest::parse(body)?;
            Ok((request.model, request.stream))
        }
        Upstream::Embeddings => Ok((EmbeddingsRequest::parse(body)?.model, false)),
    }
}

async fn route(
    r: &Arc<RouterService>,
    body: Result<Bytes, BytesRejection>,
    kind: Upstream,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rej| ApiError::from_body_rejection(rej, r.config.body_limit))?;
    r.taking_work()?;
    let (model, stream) = read_request(&body, kind)?;
    r.ensure_capacity().await;
    let now = r.now_ms();
    let candidates = r.candidates_for(&model, kind, Tier::Interactive, now);
    if candidates.is_empty() {
        return Err(no_capable_peer(r, &model, kind, now));
    }
    let path = match kind {
        Upstream::Chat => wire::CHAT_PATH,
        Upstream::Embeddings => wire::EMBEDDINGS_PATH,
    };
    let model_name = model.as_str();
    let served = failover::each_candidate(r, candidates, |peer, record, client| {
        let body = body.clone();
        async move {
            match attempt(
                r,
                &client,
                peer,
                record.base(),
                path,
                model_name,
                body,
                stream,
            )
            .await
            {
                Attempt::Done(response) => Step::Done(response),
                Attempt::Failed(reason) => Step::Failed(reason),
                Attempt::Busy(reason) => Step::Skipped(reason),
                Attempt::Declined(status, reason) => Step::Declined(status, reason),
            }
        }
    })
    .await;
    let exhausted = match served {
        Ok(response) => return Ok(response),
        Err(exhausted) => exhausted,
    };
    if let Some((status, declines)) = exhausted.all_declined() {
        // Nobody failed, everybody said no: the client gets the first verdict's status.
        return Err(exhausted.into_error(
            status,
            "peers_declined",
            format!("every capable peer ({declines}) declined to serve model {model:?}"),
        ));
    }
    let tried = exhausted.tried();
    Err(exhausted.into_error(
        StatusCode::BAD_GATEWAY,
        "all_peers_failed",
        format!("all {tried} capable peers failed for model {model:?}"),
    ))
}

fn no_capable_peer(r: &RouterService, model: &str, kind: Upstream, now: u64) -> ApiError {
    let excluded: Vec<Value> = r
        .lock_selector()
        .exclusions(now)
        .into_iter()
        .map(|x| json!({"peer": x.peer.to_string(), "reason": x.reason, "remainingMs": x.remaining_ms}))
        .collect();
    let peers = r.peer_list().len();
    let message = if peers == 0 {
        "no peers configured: add one with `lobstah peers add <pubkey> <url>`".to_string()
    } else if kind == Upstream::Embeddings {
        format!("no healthy peer serves embeddings with model {model:?} ({peers} peers known)")
    } else {
        format!("no healthy peer serves model {model:?} ({peers} peers known)")
    };
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_capable_peer", message)
        .with_extra("excluded", Value::Array(excluded))
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    r: &Arc<RouterService>,
    client: &reqwest::Client,
    peer: PublicKey,
    url: &str,
    path: &'static str,
    model: &str,
    body: Bytes,
    stream: bool,
) -> Attempt {
    let in_flight = r.track_answer(peer, model, stream);
    let prompt_bytes = body.len() as u64;
    let started = Instant::now();
    let timeout = r.config.first_byte_timeout;
    let (request, proof) = match r.chat_urls.get(url, path) {
        Some(parsed) => {
            let (request, proof) =
                r.signed_request_proved(client, reqwest::Method::POST, parsed, &peer, &body);
            (request, Some(proof))
        }
        None => (client.post(format!("{url}{path}")), None),
    };
    let send = request
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send();
    let response = match tokio::time::timeout(timeout, send).await {
        Err(_) => return Attempt::Failed(format!("no answer within {} s", timeout.as_secs())),
        Ok(Err(e)) => return Attempt::Failed(describe::transport(&e)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_server_error() {
        let text = read_error_body(response).await;
        if status == StatusCode::SERVICE_UNAVAILABLE && text.contains("queue_full") {
            return Attempt::Busy("HTTP 503: queue full".to_string());
        }
        return Attempt::Failed(format!("HTTP {}: {}", status.as_u16(), summarize(&text)));
    }
    if is_decline(status) {
        let text = read_error_body(response).await;
        r.note_declined(peer);
        return Attempt::Declined(
            status,
            format!("HTTP {}: {}", status.as_u16(), summarize(&text)),
        );
    }
    if !status.is_success() {
        // The peer judged the request itself (a 4xx): the client gets the verdict as is.
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = response.bytes().await.unwrap_or_default();
        r.metrics.outcome("peer_client_error");
        let mut out = (status, bytes).into_response();
        if let Some(ct) = content_type {
            out.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        served_by(&mut out, &peer);
        return Attempt::Done(out);
    }
    if stream {
        stream::forward_stream(r, peer, response, started, in_flight, prompt_bytes, proof).await
    } else {
        let whole = forward_whole(r, peer, response, started, timeout, prompt_bytes, proof).await;
        if matches!(whole, Attempt::Done(_)) {
            in_flight.finish();
        }
        whole
    }
}

async fn forward_whole(
    r: &Arc<RouterService>,
    peer: PublicKey,
    response: reqwest::Response,
    started: Instant,
    timeout: Duration,
    prompt_bytes: u64,
    proof: Option<RequestProof>,
) -> Attempt {
    let receipt = response
        .headers()
        .get(RECEIPT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = match tokio::time::timeout(timeout, response.bytes()).await {
        Err(_) => return Attempt::Failed("the answer did not finish in time".into()),
        Ok(Err(e)) => return Attempt::Failed(describe::transport(&e)),
        Ok(Ok(b)) => b,
    };
    if !is_json_object(&bytes) {
        return Attempt::Failed(format!(
            "answered 200 with a body that is not a JSON object: {}",
            summarize(&String::from_utf8_lossy(&bytes[..bytes.len().min(200)]))
        ));
    }
    r.record_success(peer, started.elapsed());
    let delivered = Delivered {
        prompt_bytes,
        content_bytes: plausible::content_bytes(&bytes),
    };
    if let Err(withheld) = r
        .take_receipt(peer, receipt.as_deref(), delivered, proof)
        .await
    {
        return Attempt::Done(withheld.into_response());
    }
    r.metrics
        .latency
        .get_or_create(&StreamLabel {
            stream: "false".into(),
        })
        .observe(started.elapsed().as_secs_f64());
    r.metrics.outcome("ok");
    let mut out = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response();
    served_by(&mut out, &peer);
    Attempt::Done(out)
}

/// Whether `bytes` are one JSON object. Checked without building a `Value`: the answer
/// goes to the client exactly as the worker sent it, so only its shape matters here.
fn is_json_object(bytes: &[u8]) -> bool {
    struct ObjectShape;
    impl<'de> Visitor<'de> for ObjectShape {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(())
        }
    }
    // Ignored strings are not checked for UTF-8 by serde_json; a `Value` parse would be.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(ObjectShape).is_ok() && de.end().is_ok()
}

pub(super) fn served_by(response: &mut Response, peer: &PublicKey) {
    if let Ok(v) = HeaderValue::from_str(&peer.to_string()) {
        response.headers_mut().insert(SERVED_BY_HEADER, v);
    }
}

pub(super) async fn read_error_body(response: reqwest::Response) -> String {
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            out.extend_from_slice(&chunk);
            if out.len() >= ERROR_BODY_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
    out.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&out).into_owned()
}

/// One line, at most 200 characters, of an answer: its error message if it has one.
pub(super) fn summarize(text: &str) -> String {
    let message = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.to_string());
    let one_line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape check agrees with parsing into a `Value` on every kind of input.
    #[test]
    fn object_shape_table() {
        let cases = [
            r#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":null}"#,
            r#"  {"a":{"b":[1,2,{"c":"\u00e9\""}]}}  "#,
            "{}",
            r#"{"a":1,"a":2}"#,
            "[]",
            "\"text\"",
            "12",
            "null",
            "",
            "{",
            r#"{"a":1} {"b":2}"#,
            r#"{"a":1}x"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
        ];
        for case in cases {
            let by_value = matches!(serde_json::from_str::<Value>(case), Ok(Value::Object(_)));
            assert_eq!(is_json_object(case.as_bytes()), by_value, "{case:?}");
        }
        assert!(!is_json_object(b"{\"a\":\"\xff\"}"), "not UTF-8");
        // Deliberate differences: a number beyond an f64 and a lone surrogate escape are
        // valid JSON text (JavaScript reads them as Infinity and a lone UTF-16 unit) and
        // pass, where building a `Value` refused them.
        assert!(is_json_object(br#"{"big":1e400,"i":18446744073709551616}"#));
        assert!(is_json_object(br#"{"a":"\ud800"}"#));
    }
}
