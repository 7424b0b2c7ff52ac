//! The one place settings become component configurations: what `config.toml`, the
//! environment and the flags say, turned into the router's and the worker's own config.
//! Every way of starting lobstah (`--headless`, `tui`, `demo`, `router start`, `worker
//! start`) goes through here, so a setting means the same thing everywhere.

use std::sync::Arc;
use std::time::Duration;

use crate::core::clock::SharedClock;
use crate::core::config::Config;
use crate::core::engine::Engine;
use crate::core::protocol::Identity;
use crate::core::router::RouterConfig;
use crate::core::router::selection::SelectionConfig;
use crate::core::worker::WorkerConfig;

/// Which servers a node runs. A node always keeps its ledger, peer book and control API;
/// a role adds a listener (and, for the worker, an engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub router: bool,
    pub worker: bool,
}

impl Roles {
    /// Router and worker: `lobstah --headless`, `tui`, `demo`.
    pub const BOTH: Roles = Roles {
        router: true,
        worker: true,
    };
    /// `lobstah router start`.
    pub const ROUTER: Roles = Roles {
        router: true,
        worker: false,
    };
    /// `lobstah worker start`.
    pub const WORKER: Roles = Roles {
        router: false,
        worker: true,
    };
}

pub(super) fn router_config(
    config: &Config,
    identity: Identity,
    clock: SharedClock,
) -> RouterConfig {
    let settings = &config.router;
    let mut router = RouterConfig::new(identity, clock);
    router.selection = SelectionConfig {
        failures_to_exclude: settings.exclude_after.max(1),
        exclusion_ms: settings.exclude_for_secs.saturating_mul(1000),
        ..SelectionConfig::default()
    };
    router.first_byte_timeout = Duration::from_secs(settings.first_byte_timeout_secs.max(1));
    router.stream_idle_timeout = Duration::from_secs(settings.stream_idle_timeout_secs.max(1));
    router.limits = settings.connections.apply(router.limits);
    router.url_policy = config.discovery.url_policy;
    router.browser = config.browser.clone();
    router
}

pub(super) fn worker_config(
    config: &Config,
    identity: Identity,
    engine: Arc<dyn Engine>,
    clock: SharedClock,
) -> WorkerConfig {
    let settings = &config.worker;
    let mut worker = WorkerConfig::new(identity, engine, clock);
    worker.tier = settings.tier;
    worker.concurrency = settings.concurrency;
    worker.max_waiting = settings.max_queue;
    worker.max_queued_jobs = settings.max_jobs;
    worker.stream_idle_timeout = Duration::from_secs(settings.stream_idle_timeout_secs.max(1));
    worker.max_output_tokens = settings.max_output_tokens.max(1);
    worker.limits = settings.connections.apply(worker.limits);
    worker.access = config.access.clone();
    worker.browser = config.browser.clone();
    worker
}
