//! The router's HTTP surface besides chat: balance, peers, pubkey, metrics, and the
//! routes of `models` and `jobs`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::capacity::CapacityState;
use super::forward::chat_completions;
use super::jobs;
use super::models;
use super::service::RouterService;
use crate::core::api_error::ApiError;
use crate::core::net;
use crate::core::protocol::wire;

/// How long shutdown waits for the job collector's round in progress.
const COLLECTOR_STOP: std::time::Duration = std::time::Duration::from_secs(5);

impl RouterService {
    pub fn app(self: &Arc<Self>) -> Router {
        Router::new()
            .route(wire::CHAT_PATH, post(chat_completions))
            .route(wire::MODELS_PATH, get(models::list))
            .route("/v1/models/{*id}", get(models::retrieve))
            .route(wire::JOBS_PATH, post(jobs::submit_job).get(jobs::list_jobs))
            .route("/v1/jobs/{id}", get(jobs::get_job).delete(jobs::cancel_job))
            .route("/balance", get(balance))
            .route("/peers", get(peers))
            .route(wire::PUBKEY_PATH, get(pubkey))
            .route("/metrics", get(metrics))
            .merge(super::endpoints::routes())
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(self.config.body_limit))
            .with_state(self.clone())
    }

    /// Serves on an already-bound listener until `shutdown`, then lets in-flight
    /// requests finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let maintenance = self.spawn_maintenance(shutdown.clone());
        let confirmer = self.spawn_confirmer(shutdown.clone());
        let collector = self
            .config
            .collect_jobs
            .then(|| jobs::spawn_collector(self.clone(), shutdown.clone()));
        let app = self.app();
        // Streams are forwarded chunk by chunk: `net::serve` turns TCP_NODELAY on, or
        // each small write would wait out the client's delayed ACK.
        let result = net::serve(
            listener,
            app,
            self.config.limits,
            Some(self.config.body_limit),
            self.config.browser.clone(),
            self.metrics.connections.clone(),
            shutdown.cancelled_owned(),
        )
        .await;
        maintenance.abort();
        if let Some(mut collector) = collector {
            // It stops after the round in progress; a credit commits whole or not at all,
            // so cutting a slow round short is safe too.
            if tokio::time::timeout(COLLECTOR_STOP, &mut collector)
                .await
                .is_err()
            {
                collector.abort();
                let _ = collector.await;
            }
        }
        self.flush_ledger().await;
        // It runs a last round once `shutdown` fires, so what we ledgered is confirmed.
        let _ = confirmer.await;
        result
    }

    /// Every peer with what the router knows of it, for `GET /peers` and the console.
    pub fn peers_json(&self) -> Vec<Value> {
        let now = self.now_ms();
        // The list first (a copy, its lock released): holding the capacity table while
        // waiting for the peer list would invert `peer_snapshots`' lock order.
        let peers = self.booked_peers();
        let table = self.capacity.read().unwrap_or_else(|p| p.into_inner());
        let selector = self.lock_selector();
        // Once for all peers: the monitor calls this every second.
        let exclusions = selector.exclusions(now);
        let counters = self.peer_counters();
        peers
            .into_iter()
            .map(|p| {
                let (state, models, tier, queue, unreachable) = match table.get(&p.pubkey) {
                    Some(CapacityState::Known { capacity, .. }) => (
                        "ok",
                        capacity.models.clone(),
                        Some(capacity.tier.as_str()),
                        Some(capacity.queue_depth),
                        None,
                    ),
                    Some(CapacityState::Unreachable { reason, .. }) => {
                        ("unreachable", Vec::new(), None, None, Some(reason.clone()))
                    }
                    None => ("unknown", Vec::new(), None, None, None),
                };
                let exclusion = exclusions.iter().find(|x| x.peer == p.pubkey);
                let health = selector.health(&p.pubkey);
                // An HTTP peer's path is HTTP, and a linked one's while it falls back
                // to its URL; otherwise how its open link goes, or null while none is.
                let (path, rtt_ms) = if self.falls_back(&p) {
                    (Some("http"), None)
                } else if p.is_linked() {
                    match self.link_path(&p.pubkey) {
                        Some(link) => (
                            Some(link.route.as_str()),
                            Some((link.rtt.as_secs_f64() * 10_000.0).round() / 10.0),
                        ),
                        None => (None, None),
                    }
                } else {
                    (Some("http"), None)
                };
                json!({
                    "pubkey": p.pubkey.to_string(),
                    "url": p.url,
                    "transport": if p.is_linked() { "link" } else { "http" },
                    "linkAddrs": p.link,
                    "path": path,
                    "rttMs": rtt_ms,
                    "label": p.label,
                    "source": p.source,
                    "state": if exclusion.is_some() { "excluded" } else { state },
                    "unreachableReason": unreachable,
                    "models": models,
                    "tier": tier,
                    "queueDepth": queue,
                    "excludedUntilMs": exclusion.as_ref().map(|x| x.until_ms),
                    "exclusionReason": exclusion.as_ref().map(|x| x.reason.clone()),
                    "latencyMs": health.as_ref().and_then(|h| h.ewma_latency_ms),
                    "served": health.as_ref().map(|h| h.served).unwrap_or(0),
                    "failed": health.as_ref().map(|h| h.failed).unwrap_or(0),
                    "receipts": counters.get(&p.pubkey).map_or(0, |c| c.receipts),
                    "refusedReceipts": counters.get(&p.pubkey).map_or(0, |c| c.refused_receipts),
                    "declined": counters.get(&p.pubkey).map_or(0, |c| c.declined),
                })
            })
            .collect()
    }
}

async fn balance(State(r): State<Arc<RouterService>>) -> Result<impl IntoResponse, ApiError> {
    let b = r.ledger().balance(&r.pubkey()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger_error",
            e.to_string(),
        )
    })?;
    Ok(axum::Json(json!({
        "pubkey": b.pubkey.to_string(),
        "earned": b.earned,
        "spent": b.spent,
        "net": b.net(),
        "available": b.available(),
        "receipts": b.receipts,
    })))
}

async fn peers(State(r): State<Arc<RouterService>>) -> impl IntoResponse {
    axum::Json(json!({"peers": r.peers_json(), "rejectedReceipts": r.recent_rejections()}))
}

async fn pubkey(State(r): State<Arc<RouterService>>) -> impl IntoResponse {
    axum::Json(json!({"pubkey": r.pubkey().to_string()}))
}

async fn metrics(State(r): State<Arc<RouterService>>) -> impl IntoResponse {
    crate::core::metrics::set_job_gauges(&r.metrics().jobs, r.jobs().counts());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        r.metrics().registry.render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint on this lobstah router",
    )
}
