//! Prometheus metrics for the worker and the router, served as text at `GET /metrics`.
//! Each service owns its own registry, so several can live in one process (tests, demo).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::net::ConnectionStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    pub stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

/// Sets a jobs-by-status gauge family from counts.
pub fn set_job_gauges(family: &Family<StatusLabel, Gauge>, counts: crate::core::jobs::JobCounts) {
    for status in crate::core::jobs::JobStatus::ALL {
        family
            .get_or_create(&StatusLabel {
                status: status.as_str().into(),
            })
            .set(i64::from(counts.get(status)));
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s: from a cached local engine to a slow remote prefill.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// A registry with its rendered text form.
pub struct MetricsRegistry(Registry);

impl MetricsRegistry {
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.0);
        out
    }
}

/// The worker's metrics.
#[derive(Clone)]
pub struct WorkerMetrics {
    pub requests: Family<OutcomeLabel, Counter>,
    pub latency: Family<StreamLabel, Histogram>,
    pub queue_depth: Gauge,
    pub in_flight: Gauge,
    pub queue_rejections: Counter,
    pub tokens: Family<DirectionLabel, Counter>,
    pub receipts_signed: Counter,
    pub receipts_confirmed: Counter,
    pub ledger_failures: Counter,
    pub jobs: Family<StatusLabel, Gauge>,
    /// The worker's listener: connections open, bounds, refusals.
    pub connections: ConnectionStats,
    pub registry: Arc<MetricsRegistry>,
}

impl WorkerMetrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("lobstah_worker");
        let requests = Family::<OutcomeLabel, Counter>::default();
        let latency = Family::<StreamLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let queue_depth = Gauge::default();
        let in_flight = Gauge::default();
        let queue_rejections = Counter::default();
        let tokens = Family::<DirectionLabel, Counter>::default();
        let receipts_signed = Counter::default();
        let receipts_confirmed = Counter::default();
        let ledger_failures = Counter::default();
        let jobs = Family::<StatusLabel, Gauge>::default();
        let connections = ConnectionStats::default();
        connections.register(&mut r);
        r.register("requests", "Chat requests by outcome", requests.clone());
        r.register(
            "receipts_confirmed",
            "Receipts the requester counter-signed",
            receipts_confirmed.clone(),
        );
        r.register(
            "ledger_failures",
            "Answers withheld because their receipt could not be written",
            ledger_failures.clone(),
        );
        r.register("jobs", "Async jobs held, by status", jobs.clone());
        r.register(
            "request_duration_seconds",
            "Time from admission to the last byte",
            latency.clone(),
        );
        r.register(
            "queue_depth",
            "Requests waiting for an engine slot",
            queue_depth.clone(),
        );
        r.register(
            "in_flight",
            "Requests running on the engine",
            in_flight.clone(),
        );
        r.register(
            "queue_rejections",
            "Requests refused because the queue was full",
            queue_rejections.clone(),
        );
        r.register("tokens", "Tokens served, by direction", tokens.clone());
        r.register(
            "receipts_signed",
            "Receipts signed and sent",
            receipts_signed.clone(),
        );
        WorkerMetrics {
            requests,
            latency,
            queue_depth,
            in_flight,
            queue_rejections,
            tokens,
            receipts_signed,
            receipts_confirmed,
            ledger_failures,
            jobs,
            connections,
            registry: Arc::new(MetricsRegistry(r)),
        }
    }

    pub fn outcome(&self, outcome: &str) {
        self.requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The router's metrics.
#[derive(Clone)]
pub struct RouterMetrics {
    pub requests: Family<OutcomeLabel, Counter>,
    pub latency: Family<StreamLabel, Histogram>,
    pub peer_failures: Counter,
    pub failovers: Counter,
    pub exclusions: Counter,
    pub excluded_peers: Gauge,
    pub receipts_accepted: Counter,
    pub confirmations_sent: Counter,
    /// Receipts a worker committed for us that we took late (see `router::reconcile`).
    pub receipts_recovered: Counter,
    pub receipts_rejected: Family<ReasonLabel, Counter>,
    pub jobs: Family<StatusLabel, Gauge>,
    /// The router's listener: connections open, bounds, refusals.
    pub connections: ConnectionStats,
    pub registry: Arc<MetricsRegistry>,
}

impl RouterMetrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("lobstah_router");
        let connections = ConnectionStats::default();
        connections.register(&mut r);
        let requests = Family::<OutcomeLabel, Counter>::default();
        let latency = Family::<StreamLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let peer_failures = Counter::default();
        let failovers = Counter::default();
        let exclusions = Counter::default();
        let excluded_peers = Gauge::default();
        let receipts_accepted = Counter::default();
        let confirmations_sent = Counter::default();
        let receipts_recovered = Counter::default();
        r.register(
            "receipts_recovered",
            "Receipts a worker committed for us whose answer we never finished reading, taken late",
            receipts_recovered.clone(),
        );
        r.register(
            "receipts_confirmed",
            "Receipts counter-signed back to the worker and settled there",
            confirmations_sent.clone(),
        );
        let receipts_rejected = Family::<ReasonLabel, Counter>::default();
        let jobs = Family::<StatusLabel, Gauge>::default();
        r.register("requests", "Client requests by outcome", requests.clone());
        r.register("jobs", "Client jobs held, by status", jobs.clone());
        r.register(
            "request_duration_seconds",
            "Time from request to the last byte",
            latency.clone(),
        );
        r.register(
            "peer_failures",
            "Attempts on a peer that failed",
            peer_failures.clone(),
        );
        r.register(
            "failovers",
            "Requests retried on another peer",
            failovers.clone(),
        );
        r.register(
            "exclusions",
            "Times a peer was excluded",
            exclusions.clone(),
        );
        r.register(
            "excluded_peers",
            "Peers excluded right now",
            excluded_peers.clone(),
        );
        r.register(
            "receipts_accepted",
            "Receipts verified and ledgered",
            receipts_accepted.clone(),
        );
        r.register(
            "receipts_rejected",
            "Receipts refused, by reason",
            receipts_rejected.clone(),
        );
        RouterMetrics {
            requests,
            latency,
            peer_failures,
            failovers,
            exclusions,
            excluded_peers,
            receipts_accepted,
            confirmations_sent,
            receipts_recovered,
            receipts_rejected,
            jobs,
            connections,
            registry: Arc::new(MetricsRegistry(r)),
        }
    }

    pub fn outcome(&self, outcome: &str) {
        self.requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn rejected(&self, reason: &str) {
        self.receipts_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }
}

impl Default for RouterMetrics {
    fn default() -> Self {
        Self::new()
    }
}
