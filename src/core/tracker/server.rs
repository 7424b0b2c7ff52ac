//! The tracker's HTTP face: `POST /announce`, `POST /unannounce`, `GET /peers` and
//! `GET /health`, every request first through the per-address rate limit. Refusals are
//! `{"error":{"type":…,"message":…,"reason":…}}`; `reason` is the word clients act on.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::core::api_error::ApiError;
use crate::core::clock::SharedClock;
use crate::core::net::{self, BrowserPolicy, ServerLimits};
use crate::core::protocol::{PROTOCOL_VERSION, SignedAnnouncement};

use super::TrackerConfig;
use super::rate_limit::{Limited, RateLimiter};
use super::registry::{Change, Refusal, Registry};
use super::unannounce::Unannounce;

/// What the handlers share: the registry and the limiter, each behind a short lock (no
/// lock is held across an await).
pub struct TrackerState {
    registry: Mutex<Registry>,
    limiter: Mutex<RateLimiter>,
    clock: SharedClock,
    max_body_bytes: usize,
}

impl TrackerState {
    pub fn new(config: &TrackerConfig, clock: SharedClock) -> Arc<Self> {
        Arc::new(TrackerState {
            registry: Mutex::new(Registry::new(config.registry_limits())),
            limiter: Mutex::new(RateLimiter::new(config.rate_limit())),
            clock,
            max_body_bytes: config.max_body_bytes,
        })
    }

    // A panic elsewhere cannot leave the registry half-updated (each change is a few
    // map operations), so a poisoned lock is still good to use.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limiter(&self) -> MutexGuard<'_, RateLimiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live entries now.
    pub fn count(&self) -> usize {
        self.registry().count(self.clock.now_ms())
    }
}

/// The routes. Rate limiting needs the client address as `ConnectInfo<SocketAddr>`
/// (which [`serve`] gives every request); without it requests are not limited.
pub fn router(state: Arc<TrackerState>) -> Router {
    Router::new()
        .route("/announce", post(announce))
        .route("/unannounce", post(unannounce))
        .route("/peers", get(peers))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state)
}

/// Serves the tracker on an already-bound listener until `shutdown` completes, then
/// lets in-flight requests finish. `browser` says which web pages may use it (a public
/// tracker's peer list is readable by any program anyway; what is kept out is a page
/// announcing or unannouncing through a visitor's browser).
pub async fn serve(
    listener: TcpListener,
    config: TrackerConfig,
    browser: BrowserPolicy,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(TrackerState::new(&config, clock));
    // The tracker reads its bodies itself, so refusals keep the existing network's
    // shape; the admission rules and the header limits apply all the same, and the
    // browser check's refusals carry a `reason` like the tracker's own.
    net::serve(
        listener,
        app,
        ServerLimits::default(),
        None,
        browser,
        net::ConnectionStats::default(),
        shutdown,
    )
    .await
}

fn tracker_error(
    status: StatusCode,
    kind: &'static str,
    reason: &str,
    message: String,
) -> ApiError {
    ApiError::new(status, kind, message).with_extra("reason", Value::String(reason.into()))
}

fn refused(refusal: Refusal) -> ApiError {
    let (status, kind) = match refusal {
        Refusal::Full(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        _ => (StatusCode::BAD_REQUEST, "rejected"),
    };
    tracker_error(status, kind, refusal.reason(), refusal.to_string())
}

fn body_refused(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        tracker_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "rejected",
            "too-large",
            format!("request body is larger than this tracker's limit of {limit} bytes"),
        )
    } else {
        tracker_error(
            StatusCode::BAD_REQUEST,
            "rejected",
            "malformed",
            format!("cannot read the request body: {rejection}"),
        )
    }
}

async fn rate_limit(
    State(state): State<Arc<TrackerState>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = client {
        tracing::debug!(%ip, method = %request.method(), path = request.uri().path(), "request");
        let verdict = state.limiter().check(ip, state.clock.now_ms());
        if let Err(limited) = verdict {
            tracing::debug!(%ip, path = request.uri().path(), "rate limited: {limited}");
            let reason = match limited {
                Limited::Client { .. } => "rate-limited",
                Limited::Crowded { .. } => "crowded",
            };
            return tracker_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                reason,
                limited.to_string(),
            )
            .with_retry_after(limited.retry_after_secs())
            .into_response();
        }
    }
    next.run(request).await
}

async fn announce(
    State(state): State<Arc<TrackerState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let body = body.map_err(|r| body_refused(r, state.max_body_bytes))?;
    let outcome = SignedAnnouncement::from_json(&body)
        .map_err(Refusal::from)
        .and_then(|signed| {
            let url = signed.announcement().url.clone();
            let now = state.clock.now_ms();
            state.registry().announce(signed, now).map(|a| (a, url))
        });
    match outcome {
        Ok((accepted, url)) => {
            let pubkey = accepted.pubkey;
            match accepted.change {
                Change::Added => tracing::info!(%pubkey, %url, "announce accepted: new peer"),
                Change::Replaced => tracing::debug!(%pubkey, %url, "announce accepted: refreshed"),
                Change::Unchanged => tracing::debug!(%pubkey, "announce accepted: unchanged"),
            }
            Ok(axum::Json(json!({
                "ok": true,
                "pubkey": pubkey.to_string(),
                "ttlSeconds": accepted.ttl_seconds,
                "registeredCount": accepted.registered_count,
            })))
        }
        Err(refusal) => {
            tracing::info!(reason = refusal.reason(), "announce refused: {refusal}");
            Err(refused(refusal))
        }
    }
}

async fn unannounce(
    State(state): State<Arc<TrackerState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let body = body.map_err(|r| body_refused(r, state.max_body_bytes))?;
    let outcome = Unannounce::from_json(&body).and_then(|request| {
        let now = state.clock.now_ms();
        let removed = state.registry().unannounce(&request, now)?;
        Ok((request.pubkey, removed))
    });
    match outcome {
        Ok((pubkey, removed)) => {
            tracing::info!(%pubkey, removed, "unannounce accepted");
            Ok(axum::Json(json!({"ok": true, "removed": removed})))
        }
        Err(refusal) => {
            tracing::info!(reason = refusal.reason(), "unannounce refused: {refusal}");
            Err(refused(refusal))
        }
    }
}

async fn peers(State(state): State<Arc<TrackerState>>) -> axum::Json<Value> {
    let live = state.registry().live(state.clock.now_ms());
    let peers: Vec<Value> = live.iter().map(SignedAnnouncement::to_value).collect();
    axum::Json(json!({"version": PROTOCOL_VERSION, "count": peers.len(), "peers": peers}))
}

async fn health(State(state): State<Arc<TrackerState>>) -> axum::Json<Value> {
    axum::Json(json!({"ok": true, "count": state.count()}))
}

async fn not_found(request: Request) -> ApiError {
    tracker_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "not-found",
        format!(
            "no such endpoint: {} {} (the tracker serves POST /announce, POST /unannounce, GET /peers, GET /health)",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    tracker_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method-not-allowed",
        format!(
            "{} is not served on {} (announce and unannounce are POST, peers and health GET)",
            request.method(),
            request.uri().path()
        ),
    )
}
