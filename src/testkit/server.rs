//! The part every fake shares: binding 127.0.0.1:0, recording requests, writing bodies
//! piece by piece (paced, re-cut or cut off), and shutting down.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Failure, FakeConfig};

/// One chat request as a fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The body as JSON (a JSON string holding the raw text if it was not JSON).
    pub body: Value,
}

pub(crate) struct FakeState {
    pub config: FakeConfig,
    log: Mutex<Vec<RecordedRequest>>,
    count: AtomicU64,
}

impl FakeState {
    /// Counts and (if configured) records a chat request; returns its body as JSON.
    pub(crate) fn record(&self, path: &str, headers: &HeaderMap, body: &[u8]) -> Value {
        self.count.fetch_add(1, Ordering::Relaxed);
        let value = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        if self.config.record {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let entry = RecordedRequest {
                path: path.to_string(),
                authorization,
                body: value.clone(),
            };
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry);
        }
        value
    }
}

/// A running fake server. Stops when dropped (in-flight answers finish first) or on
/// [`FakeServer::stop`].
pub struct FakeServer {
    url: String,
    state: Arc<FakeState>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub(crate) async fn start(
        config: FakeConfig,
        routes: Router<Arc<FakeState>>,
    ) -> io::Result<Self> {
        let state = Arc::new(FakeState {
            config,
            log: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        let app = routes.with_state(state.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.cancelled().await });
            if let Err(e) = serve.await {
                tracing::debug!(error = %e, "fake engine server ended");
            }
        });
        Ok(FakeServer {
            url,
            state,
            shutdown,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a path.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The chat requests received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The bodies of the chat requests received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.requests().into_iter().map(|r| r.body).collect()
    }

    /// The body of the latest chat request.
    pub fn last_body(&self) -> Option<Value> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .map(|r| r.body.clone())
    }

    /// Chat requests received, counted even when recording is off.
    pub fn request_count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets in-flight answers finish for up to a second, then aborts.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A JSON answer with the given status.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A 200 answer whose body is written as `pieces` (re-cut to `write_size` when set),
/// with `chunk_delay` between pieces, and cut off half way under `Failure::HangUp`
/// (or left silent there under `Failure::Stall`).
pub(crate) fn streamed(
    config: &FakeConfig,
    content_type: &'static str,
    pieces: Vec<Bytes>,
) -> Response {
    let mut pieces = match config.write_size {
        Some(size) => {
            let all: Vec<u8> = pieces.concat();
            all.chunks(size).map(Bytes::copy_from_slice).collect()
        }
        None => pieces,
    };
    let hang_up = config.failure == Failure::HangUp;
    let stall = config.failure == Failure::Stall;
    if hang_up || stall {
        pieces.truncate((pieces.len() / 2).max(1));
    }
    let delay = config.chunk_delay;
    let items = pieces.into_iter().enumerate().map(Ok::<_, io::Error>);
    let tail = hang_up.then(|| {
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "fake engine hung up",
        ))
    });
    let body = stream::iter(items.chain(tail)).then(move |item| async move {
        let (i, piece) = match item {
            Ok(item) => item,
            Err(e) => {
                // Hyper flushes what it buffered only when the body is pending; without
                // this the peer would not even see the status line before the hang-up.
                tokio::task::yield_now().await;
                return Err(e);
            }
        };
        if i > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, io::Error>(piece)
    });
    let silence = stream::iter(stall.then(stream::pending::<Result<Bytes, io::Error>>)).flatten();
    let body = body.chain(silence);
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(body),
    )
        .into_response()
}

/// A whole (non-streamed) 200 JSON answer, or half of it then a hang-up or silence.
pub(crate) fn whole(config: &FakeConfig, body: &Value) -> Response {
    let bytes = Bytes::from(body.to_string());
    if !matches!(config.failure, Failure::HangUp | Failure::Stall) {
        return json_response(StatusCode::OK, body);
    }
    let half = bytes.slice(..bytes.len() / 2);
    let broken = FakeConfig {
        write_size: None,
        chunk_delay: Duration::ZERO,
        ..config.clone()
    };
    streamed(
        &broken,
        "application/json",
        vec![half, bytes.slice(bytes.len() / 2..)],
    )
}
