//! What a server's admission rules did, as Prometheus metrics: connections open, the
//! bounds in force, and connections refused or cut by reason. Shared by the accept loop
//! and the serving tasks; registered by the worker and the router with their own.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ServerLimits;
use crate::core::metrics::ReasonLabel;

/// Cloning shares the counters.
#[derive(Debug, Clone, Default)]
pub struct ConnectionStats {
    pub open: Gauge,
    /// `over_address_bound`, `evicted` (gave its slot to a newcomer), `head_timeout`.
    pub refused: Family<ReasonLabel, Counter>,
    pub max_connections: Gauge,
    pub max_connections_per_address: Gauge,
    pub head_timeout_seconds: Gauge,
}

impl ConnectionStats {
    pub fn register(&self, registry: &mut Registry) {
        registry.register("connections_open", "Connections open", self.open.clone());
        registry.register(
            "connections_refused",
            "Connections refused or cut by the admission rules, by reason",
            self.refused.clone(),
        );
        registry.register(
            "connections_max",
            "Bound on connections open at once",
            self.max_connections.clone(),
        );
        registry.register(
            "connections_max_per_address",
            "Bound on connections open at once from one client address",
            self.max_connections_per_address.clone(),
        );
        registry.register(
            "connections_head_timeout_seconds",
            "Time a new connection has to send its first request head",
            self.head_timeout_seconds.clone(),
        );
    }

    pub(super) fn show_limits(&self, limits: &ServerLimits) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.max_connections.set(gauge(limits.max_connections));
        self.max_connections_per_address
            .set(gauge(limits.max_connections_per_address));
        self.head_timeout_seconds
            .set(i64::try_from(limits.head_timeout.as_secs()).unwrap_or(i64::MAX));
    }

    pub(super) fn refuse(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// Connections refused or cut for `reason` so far.
    pub fn refused_for(&self, reason: &str) -> u64 {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .get()
    }
}
