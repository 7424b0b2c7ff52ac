//! The worker: serves a local engine to peers over HTTP, meters every request, signs a
//! receipt for it, keeps the receipt in its own ledger and hands it to the requester.
//! Async jobs (`/v1/jobs`) live in `jobs`, in the same database as the ledger.

mod admission;
mod chat;
mod confirm;
mod embeddings;
mod gate;
mod jobs;
mod output_meter;
mod replay;
mod reserve;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub use admission::{Admission, QueueFull, Slot};
pub use chat::{RECEIPT_COMMENT, RECEIPT_HEADER, REQUESTER_HEADER};
pub use confirm::{CONFIRM_PATH, MAX_UNSETTLED_PER_ANSWER, UNSETTLED_PATH};
pub use gate::{AccessPolicy, Caller, Gate, Pass, estimate_tokens};
pub use jobs::{DEFAULT_MAX_QUEUED_JOBS, Finish, JobError, JobRecord, JobStore, Jobs};
pub use reserve::{DEFAULT_MAX_OUTPUT_TOKENS, Grant, wanted_output};

use crate::core::api_error::ApiError;
use crate::core::clock::SharedClock;
use crate::core::engine::Engine;
use crate::core::jobs::JobCounts;
use crate::core::ledger::{AcceptRules, Ledger, LedgerWriter, OwnReceipt, Party, Standing};
use crate::core::metrics::WorkerMetrics;
use crate::core::net::{self, BrowserPolicy, ServerLimits};
use crate::core::protocol::{Identity, RequestProof, Tier, wire};

/// How long the engine's model list is trusted before asking again.
const MODELS_TTL_MS: u64 = 10_000;
const ENGINE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct WorkerConfig {
    pub identity: Identity,
    pub engine: Arc<dyn Engine>,
    pub tier: Tier,
    pub concurrency: usize,
    /// Requests allowed to wait for a slot; beyond this the worker answers 503.
    pub max_waiting: usize,
    pub body_limit: usize,
    pub clock: SharedClock,
    /// Jobs allowed to wait; beyond this a submission is answered 503.
    pub max_queued_jobs: usize,
    /// Who is served, and how much.
    pub access: AccessPolicy,
    /// Connections, request heads and bodies, slow clients.
    pub limits: ServerLimits,
    /// Which web pages may use the worker, and by which Host names (on loopback).
    pub browser: BrowserPolicy,
    /// Silence allowed from the engine between two events of a stream, once the first
    /// has come (before it, a model may still be loading); beyond, the stream is cut.
    pub stream_idle_timeout: Duration,
    /// The longest answer the worker gives, in tokens: a request's `max_tokens` above
    /// it is lowered to it, and a request naming none gets it (see `reserve`).
    pub max_output_tokens: u64,
}

/// Default for `WorkerConfig::stream_idle_timeout`: under the router's default (60 s),
/// so the worker's own error event, with its slot freed, reaches the client first.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(45);

impl WorkerConfig {
    pub fn new(identity: Identity, engine: Arc<dyn Engine>, clock: SharedClock) -> Self {
        WorkerConfig {
            identity,
            engine,
            tier: Tier::Interactive,
            concurrency: 4,
            max_waiting: 64,
            body_limit: 4 * 1024 * 1024,
            clock,
            max_queued_jobs: DEFAULT_MAX_QUEUED_JOBS,
            access: AccessPolicy::default(),
            limits: ServerLimits::default(),
            browser: BrowserPolicy::default(),
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ModelCache {
    fetched_at_ms: Option<u64>,
    models: Vec<String>,
    last_error: Option<String>,
}

/// A running worker's shared state.
pub struct Worker {
    identity: Identity,
    engine: Arc<dyn Engine>,
    tier: Tier,
    body_limit: usize,
    limits: ServerLimits,
    browser: BrowserPolicy,
    stream_idle_timeout: Duration,
    max_output_tokens: u64,
    clock: SharedClock,
    admission: Admission,
    gate: Arc<Gate>,
    ledger: LedgerWriter,
    /// The same database the writer appends to, for credit checks and confirmations.
    ledger_reader: Ledger,
    metrics: WorkerMetrics,
    models: Mutex<ModelCache>,
    /// `None` for a worker built without a database for jobs (`Worker::new`).
    jobs: Option<Arc<Jobs>>,
    /// Receipts confirmed by their requesters since start; moves at each confirmation.
    confirmations: tokio::sync::watch::Sender<u64>,
}

impl Worker {
    /// A worker that serves chat only; `/v1/jobs` answers 501.
    pub fn new(config: WorkerConfig, ledger: &Ledger, writer: LedgerWriter) -> Arc<Self> {
        Arc::new(Self::build(config, ledger.clone(), writer, None))
    }

    /// A worker that also takes async jobs, kept in `ledger`'s database. Jobs that were
    /// running when it last stopped are queued again.
    pub fn with_jobs(
        config: WorkerConfig,
        ledger: &Ledger,
        writer: LedgerWriter,
    ) -> Result<Arc<Self>, JobError> {
        let store = JobStore::open(
            ledger.db().clone(),
            config.max_queued_jobs,
            config.clock.now_ms(),
        )?;
        let jobs = Arc::new(Jobs::new(store));
        Ok(Arc::new(Self::build(
            config,
            ledger.clone(),
            writer,
            Some(jobs),
        )))
    }

    fn build(
        config: WorkerConfig,
        ledger_reader: Ledger,
        ledger: LedgerWriter,
        jobs: Option<Arc<Jobs>>,
    ) -> Self {
        Worker {
            admission: Admission::new(config.concurrency, config.max_waiting),
            gate: Gate::new(
                config.access,
                config.identity.public(),
                config.clock.now_ms(),
            ),
            ledger_reader,
            identity: config.identity,
            engine: config.engine,
            tier: config.tier,
            body_limit: config.body_limit,
            limits: config.limits,
            browser: config.browser,
            stream_idle_timeout: config.stream_idle_timeout,
            max_output_tokens: config.max_output_tokens,
            clock: config.clock,
            ledger,
            metrics: WorkerMetrics::new(),
            models: Mutex::new(ModelCache::default()),
            jobs,
            confirmations: tokio::sync::watch::Sender::new(0),
        }
    }

    pub fn app(self: &Arc<Self>) -> Router {
        Router::new()
            .route(wire::CHAT_PATH, post(chat::chat_completions))
            .route(wire::EMBEDDINGS_PATH, post(embeddings::embeddings))
            .route(wire::MODELS_PATH, get(list_models))
            .route(wire::JOBS_PATH, post(jobs::submit_job))
            .route("/v1/jobs/{id}", get(jobs::get_job).delete(jobs::cancel_job))
            .route(CONFIRM_PATH, post(confirm::confirm_receipts))
            .route(UNSETTLED_PATH, get(confirm::unsettled_receipts))
            .route(wire::CAPACITY_PATH, get(capacity))
            .route(wire::PUBKEY_PATH, get(pubkey))
            .route("/metrics", get(metrics))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(self.body_limit))
            .with_state(self.clone())
    }

    /// Serves on an already-bound listener until `shutdown` fires, then lets in-flight
    /// requests finish. Jobs run meanwhile; a job still running at the end is abandoned
    /// and runs again when the worker next opens its database.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let app = self.app();
        let jobs_stop = CancellationToken::new();
        let job_tasks = self.jobs.clone().map(|jobs| {
            [
                jobs::spawn_dispatcher(self.clone(), jobs.clone(), jobs_stop.clone()),
                jobs::spawn_sweeper(self.clone(), jobs, jobs_stop.clone()),
            ]
        });
        let expiry = confirm::spawn_expiry(self.clone(), jobs_stop.clone());
        let result = net::serve(
            listener,
            app,
            self.limits,
            Some(self.body_limit),
            self.browser.clone(),
            self.metrics.connections.clone(),
            shutdown.cancelled_owned(),
        )
        .await;
        jobs_stop.cancel();
        for task in job_tasks.into_iter().flatten() {
            let _ = task.await;
        }
        let _ = expiry.await;
        result
    }

    /// Serves the same API over the peer links `link` accepts, until `shutdown` fires.
    /// Jobs and expiry run from [`Worker::serve`]; this adds a transport beside it.
    pub async fn serve_links(
        self: Arc<Self>,
        link: crate::core::links::LinkEndpoint,
        shutdown: CancellationToken,
    ) {
        crate::core::links::serve_links(
            link,
            self.app(),
            self.limits,
            Some(self.body_limit),
            shutdown.cancelled_owned(),
        )
        .await;
    }

    /// Refuses new work while the ledger cannot be written (a full disk).
    pub fn taking_work(&self) -> Result<(), ApiError> {
        match self.ledger_reader.db().unavailable() {
            Some(cause) => {
                self.metrics.ledger_failures.inc();
                Err(ApiError::not_taking_work(&cause))
            }
            None => Ok(()),
        }
    }

    /// Why the ledger refuses writes now, if it does.
    pub fn ledger_unavailable(&self) -> Option<String> {
        self.ledger_reader.db().unavailable()
    }

    pub fn pubkey(&self) -> crate::core::protocol::PublicKey {
        self.identity.public()
    }

    pub fn queue_depth(&self) -> usize {
        self.admission.depth()
    }

    /// Running and waiting requests, for the node's queue view.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The job queue, when this worker takes jobs.
    pub fn jobs(&self) -> Option<&Arc<Jobs>> {
        self.jobs.as_ref()
    }

    /// How many jobs are in each state (all zero for a worker without jobs).
    pub fn job_counts(&self) -> JobCounts {
        self.jobs.as_ref().map(|j| j.counts()).unwrap_or_default()
    }

    /// Forgets finished jobs past their retention now, rather than at the next sweep.
    pub fn sweep_jobs(&self) -> Result<usize, JobError> {
        match &self.jobs {
            Some(jobs) => jobs.store().sweep(self.clock.now_ms()),
            None => Ok(0),
        }
    }

    /// The engine's models and the last error listing them, if the last probe failed.
    pub async fn engine_status(&self) -> (Vec<String>, Option<String>) {
        let models = self.models().await;
        (models, self.models.lock().await.last_error.clone())
    }

    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    /// Waits until every receipt signed so far is durable in the worker's ledger.
    pub async fn flush_ledger(&self) {
        let _ = self.ledger.flush().await;
    }

    /// The engine's models, from a short-lived cache; the last good list survives a
    /// failed probe so one hiccup does not make the worker look empty.
    pub async fn models(&self) -> Vec<String> {
        let now = self.clock.now_ms();
        let mut cache = self.models.lock().await;
        let fresh = cache
            .fetched_at_ms
            .is_some_and(|at| now.saturating_sub(at) < MODELS_TTL_MS);
        if !fresh {
            match tokio::time::timeout(ENGINE_PROBE_TIMEOUT, self.engine.list_models()).await {
                Ok(Ok(models)) => {
                    cache.models = models;
                    cache.last_error = None;
                }
                Ok(Err(e)) => cache.last_error = Some(e.to_string()),
                Err(_) => cache.last_error = Some("the engine did not answer within 5 s".into()),
            }
            if let Some(e) = &cache.last_error {
                tracing::warn!(engine = self.engine.kind(), error = %e, "cannot list the engine's models");
            }
            cache.fetched_at_ms = Some(now);
        }
        cache.models.clone()
    }

    /// Receipts confirmed since start; changes whenever a confirmation settles some.
    pub fn confirmations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.confirmations.subscribe()
    }

    /// The gatekeeper: who is served and how much.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// Ledgers a receipt this worker signed, as `standing` (pending until the requester
    /// confirms it), with the proof of the signed request it answers, and returns once
    /// it is durable. The caller hands the receipt out only after this: a receipt
    /// someone was shown must survive a crash, and an answer whose receipt cannot be
    /// written must not leave unbilled.
    async fn ledger_receipt(
        &self,
        own: OwnReceipt,
        standing: Standing,
        proof: Option<RequestProof>,
    ) -> Result<(), ApiError> {
        let rules = AcceptRules {
            now_ms: Some(self.clock.now_ms()),
            party: Party::Worker(self.identity.public()),
        };
        let verified = own.accept(&rules).map_err(|e| {
            tracing::error!(error = %e, "a receipt this worker signed does not pass its own checks");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                format!("the receipt this worker signed does not pass its own checks: {e}"),
            )
        })?;
        let committed = match self
            .ledger
            .enqueue(vec![verified.with_standing(standing).answering(proof)])
        {
            Ok(done) => done.await,
            Err(e) => Err(e),
        };
        committed.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "cannot ledger a signed receipt; the answer is withheld");
            self.metrics.ledger_failures.inc();
            ApiError::ledger_unavailable(&e)
        })
    }
}

async fn list_models(State(w): State<Arc<Worker>>) -> impl IntoResponse {
    let data: Vec<_> = w
        .models()
        .await
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "lobstah"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data}))
}

async fn capacity(State(w): State<Arc<Worker>>) -> impl IntoResponse {
    let models = w.models().await;
    let mut body = json!({
        "pubkey": w.identity.public().to_string(),
        "models": models,
        "queueDepth": w.admission.depth(),
        "tier": w.tier.as_str(),
        "concurrency": w.admission.concurrency(),
    });
    let mut capabilities = vec![wire::CAPABILITY_CHAT];
    if w.engine.serves_embeddings() {
        capabilities.push(wire::CAPABILITY_EMBEDDINGS);
    }
    // Added after the fields the existing network reads, which keep their meaning:
    // `queueDepth` counts running jobs (they hold engine slots) but not queued ones.
    if let Some(object) = body.as_object_mut() {
        if let Some(jobs) = &w.jobs {
            object.insert("jobs".into(), json!(jobs.counts()));
        }
        object.insert("capabilities".into(), json!(capabilities));
    }
    axum::Json(body)
}

async fn pubkey(State(w): State<Arc<Worker>>) -> impl IntoResponse {
    axum::Json(json!({"pubkey": w.identity.public().to_string()}))
}

async fn metrics(State(w): State<Arc<Worker>>) -> impl IntoResponse {
    w.metrics.queue_depth.set(w.admission.waiting() as i64);
    w.metrics.in_flight.set(w.admission.running() as i64);
    crate::core::metrics::set_job_gauges(&w.metrics.jobs, w.job_counts());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        w.metrics.registry.render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint on this lobstah worker",
    )
}
