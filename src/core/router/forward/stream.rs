//! A streamed answer on its way from a peer to the client: the router commits to the
//! peer at its first bytes, relays the events as they come (receipt comment taken out,
//! the end held until the receipt is ledgered), and tells the client in-band when the peer
//! stalls or breaks off, since the status line has long gone by then.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Attempt, read_error_body, served_by, summarize};
use crate::core::api_error::ApiError;
use crate::core::describe;
use crate::core::metrics::StreamLabel;
use crate::core::net::relay::{self, Lost, Pulled, SseTail};
use crate::core::protocol::{PublicKey, RequestProof};
use crate::core::router::plausible::{Delivered, StreamMeter};
use crate::core::router::receipt_filter::ReceiptFilter;
use crate::core::router::service::RouterService;

pub(super) async fn forward_stream(
    r: &Arc<RouterService>,
    peer: PublicKey,
    response: reqwest::Response,
    started: Instant,
    in_flight: crate::core::router::service::InFlight,
    prompt_bytes: u64,
    proof: Option<RequestProof>,
) -> Attempt {
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if !is_sse {
        let text = read_error_body(response).await;
        return Attempt::Failed(format!(
            "answered 200 but not with an event stream: {}",
            summarize(&text)
        ));
    }
    let mut upstream = response.bytes_stream();
    // Wait for the first bytes before committing to this peer: until then, failing over
    // is still invisible to the client.
    let first = match tokio::time::timeout(r.config.first_byte_timeout, upstream.next()).await {
        Err(_) => return Attempt::Failed("the stream sent nothing in time".into()),
        Ok(None) => return Attempt::Failed("closed the stream before sending anything".into()),
        Ok(Some(Err(e))) => return Attempt::Failed(describe::transport(&e)),
        Ok(Some(Ok(chunk))) => chunk,
    };
    r.record_success(peer, started.elapsed());
    in_flight.first_byte();
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(32);
    let service = r.clone();
    let idle = r.config.stream_idle_timeout;
    let stall = r.config.limits.client_stall_timeout;
    tokio::spawn(async move {
        let in_flight = in_flight;
        let mut filter = ReceiptFilter::holding_the_end();
        let mut meter = StreamMeter::default();
        let mut tail = SseTail::new();
        let mut pending = Some(first);
        let mut broken = None;
        loop {
            let chunk = match pending.take() {
                Some(c) => c,
                None => match relay::pull(&mut upstream, Some(idle), &tx).await {
                    Pulled::Item(Ok(c)) => c,
                    Pulled::End => break,
                    Pulled::Item(Err(e)) => {
                        broken = Some(describe::transport(&e));
                        break;
                    }
                    // The work is done once its receipt is in: a client that leaves
                    // now still owes it, so the receipt is taken all the same.
                    Pulled::ClientGone if filter.receipt().is_some() => break,
                    Pulled::Idle => {
                        // No receipt is taken for an answer that did not finish.
                        let event = tail.error_event(&stalled(&service, peer, idle));
                        let _ = relay::push(&tx, Ok(event), stall).await;
                        return;
                    }
                    Pulled::ClientGone => {
                        // Dropping the upstream stops the worker too, unless its
                        // receipt is already committed there: ask it later.
                        service.metrics.outcome(Lost::Gone.outcome());
                        service.reconciler.mark(peer, service.now_ms());
                        return;
                    }
                },
            };
            let out = filter.push(&chunk);
            meter.push(&out);
            in_flight.sent(&out);
            if out.is_empty() {
                continue;
            }
            tail.sent(&out);
            if let Err(lost) = relay::push(&tx, Ok(out), stall).await {
                // The client left or stopped reading; dropping the upstream stops the
                // worker too, unless its receipt is already committed there.
                service.metrics.outcome(lost.outcome());
                service.reconciler.mark(peer, service.now_ms());
                return;
            }
        }
        let rest = filter.finish();
        meter.push(&rest);
        if !rest.is_empty() {
            tail.sent(&rest);
            let _ = relay::push(&tx, Ok(rest), stall).await;
        }
        let delivered = Delivered {
            prompt_bytes,
            content_bytes: meter.bytes(),
        };
        match service
            .take_receipt(peer, filter.receipt(), delivered, proof)
            .await
        {
            Ok(()) => {
                in_flight.finish();
                let end = filter.take_end();
                if !end.is_empty() {
                    let _ = relay::push(&tx, Ok(end), stall).await;
                }
            }
            Err(withheld) => {
                let _ = relay::push(&tx, Ok(tail.error_event(&withheld)), stall).await;
                return;
            }
        }
        if let Some(reason) = broken {
            let event = ApiError::new(
                StatusCode::BAD_GATEWAY,
                "peer_stream_broken",
                format!("the serving peer broke off: {reason}"),
            );
            let event = Bytes::from(format!("data: {}\n\n", event.body()));
            let _ = relay::push(&tx, Ok(event), stall).await;
            service.record_failure(peer, format!("stream broke: {reason}"));
            service.metrics.outcome("stream_broken");
        } else {
            service.metrics.outcome("ok");
        }
        service
            .metrics
            .latency
            .get_or_create(&StreamLabel {
                stream: "true".into(),
            })
            .observe(started.elapsed().as_secs_f64());
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut out = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response();
    served_by(&mut out, &peer);
    Attempt::Done(out)
}

/// A peer went silent mid-stream: it is charged with a failure, and the client gets
/// this error as the stream's last event (an incomplete line before it is dropped).
fn stalled(r: &RouterService, peer: PublicKey, idle: Duration) -> ApiError {
    let ms = idle.as_millis();
    r.record_failure(peer, format!("stream stalled for {ms} ms"));
    r.metrics.outcome("stream_stalled");
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "peer_stream_stalled",
        format!("the serving peer sent nothing for {ms} ms in the middle of its answer"),
    )
}
