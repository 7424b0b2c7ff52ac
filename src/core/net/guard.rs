//! The request guard every server runs first: a head over the header limit is answered
//! 431, and the body is read here, whole, within a time bound and a size bound (408 and
//! 413), so no handler waits on a client that trickles. Refusals are in OpenAI's error
//! shape and close the connection, since the rest of the body is never read.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;

use crate::core::api_error::ApiError;

#[derive(Debug, Clone, Copy)]
pub(super) struct Guard {
    pub max_header_bytes: usize,
    /// `None`: bodies are the app's to read.
    pub body_limit: Option<usize>,
    pub body_read_timeout: Duration,
}

/// The size of a request's head as it came on the wire (request line, headers, the
/// blank line), near enough: HTTP/1 framing is counted, letter case cannot differ.
pub fn header_bytes<B>(request: &axum::http::Request<B>) -> usize {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(1, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    // "METHOD target HTTP/1.1\r\n"
    let line = request.method().as_str().len() + 1 + target + 11;
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + fields + 2
}

pub(super) async fn guard(State(g): State<Guard>, request: Request, next: Next) -> Response {
    let head = header_bytes(&request);
    if head > g.max_header_bytes {
        return refuse(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request line and headers take {head} bytes, over the limit of {} bytes",
                g.max_header_bytes
            ),
        ));
    }
    let Some(body_limit) = g.body_limit else {
        return next.run(request).await;
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > body_limit as u64) {
        return refuse(too_large(body_limit));
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(g.body_read_timeout, collect(body, body_limit)).await;
    match read {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(Collect::TooLarge)) => refuse(too_large(body_limit)),
        Ok(Err(Collect::Broken(reason))) => refuse(ApiError::bad_request(format!(
            "cannot read the request body: {reason}"
        ))),
        Err(_) => refuse(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} ms",
                g.body_read_timeout.as_millis()
            ),
        )),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!("request body is larger than the limit of {limit} bytes"),
    )
}

/// The error answer, with `Connection: close`: the unread rest of the request would
/// otherwise be taken for the next one.
fn refuse(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

enum Collect {
    TooLarge,
    Broken(String),
}

async fn collect(body: Body, limit: usize) -> Result<Bytes, Collect> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Collect::Broken(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(Collect::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_size_counts_what_went_on_the_wire() {
        let wire = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: a\r\nx-long: abcdef\r\n\r\n";
        let request = axum::http::Request::post("/v1/chat/completions?x=1")
            .header("host", "a")
            .header("x-long", "abcdef")
            .body(())
            .unwrap();
        assert_eq!(header_bytes(&request), wire.len());
    }
}
