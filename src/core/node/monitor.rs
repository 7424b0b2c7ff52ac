//! Changes nobody announces, turned into events by looking: the worker's queue and the
//! job counts (at most twice a second, only when they changed), the peers' health as the router sees it
//! (capacity polls, latency), the engine's state, and the balance when requesters
//! confirm earnings.

use std::sync::Weak;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::handle::Core;
use super::types::{CoreEvent, EngineStatus, QueueStatus};
use crate::core::router::RouterService;
use crate::core::worker::Worker;

/// Queue changes are coalesced to one event per period.
const QUEUE_PERIOD: Duration = Duration::from_millis(500);
/// Peer rows are compared this often.
const PEERS_EVERY_TICKS: u32 = 2;
/// The engine is asked this often (the worker caches its model list for 10 s anyway).
const ENGINE_PERIOD: Duration = Duration::from_secs(10);

/// Runs until `stop`; holds the core weakly so a dropped node is not kept alive.
pub(super) fn spawn(core: Weak<Core>, stop: CancellationToken) {
    let fast = core.clone();
    let fast_stop = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(QUEUE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n: u32 = 0;
        let mut last_peers = String::new();
        loop {
            tokio::select! {
                _ = fast_stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Some(core) = fast.upgrade() else { break };
            check_queue(&core);
            n = n.wrapping_add(1);
            if n.is_multiple_of(PEERS_EVERY_TICKS) {
                check_peers(&core, &mut last_peers);
            }
        }
    });
    let settled = core.clone();
    let settled_stop = stop.clone();
    tokio::spawn(async move {
        let Some(mut confirmations) = settled
            .upgrade()
            .and_then(|c| c.worker.as_ref().map(|w| w.confirmations()))
        else {
            return;
        };
        loop {
            tokio::select! {
                _ = settled_stop.cancelled() => break,
                changed = confirmations.changed() => if changed.is_err() { break },
            }
            let Some(core) = settled.upgrade() else { break };
            core.owed_stale
                .store(true, std::sync::atomic::Ordering::Release);
            check_balance(&core);
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ENGINE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Some(core) = core.upgrade() else { break };
            check_engine(&core).await;
        }
    });
}

pub(super) fn queue_now(core: &Core) -> QueueStatus {
    queue_status(core.worker.as_deref(), &core.router)
}

/// The worker's queue (empty without one) and the router's client jobs.
pub(super) fn queue_status(worker: Option<&Worker>, router: &RouterService) -> QueueStatus {
    let mut queue = QueueStatus {
        client_jobs: router.jobs().counts(),
        ..QueueStatus::default()
    };
    if let Some(worker) = worker {
        let admission = worker.admission();
        queue.running = admission.running() as u32;
        queue.waiting = admission.waiting() as u32;
        queue.concurrency = admission.concurrency() as u32;
        queue.jobs = worker.job_counts();
    }
    queue
}

fn check_queue(core: &Core) {
    let queue = queue_now(core);
    core.update(|state| {
        if state.queue == queue {
            return ((), Vec::new());
        }
        state.queue = queue;
        ((), vec![CoreEvent::QueueChanged { queue }])
    });
}

fn check_peers(core: &Core, last: &mut String) {
    let now = serde_json::to_string(&core.router.peers_json()).unwrap_or_default();
    if now != *last {
        // The first look only records: the snapshot already shows the starting state.
        if !last.is_empty() {
            core.publish(CoreEvent::PeersChanged);
        }
        *last = now;
    }
}

/// Re-reads the balance after requesters confirmed some of our earnings.
fn check_balance(core: &Core) {
    let balance = match core.ledger.balance(&core.identity.public()) {
        Ok(b) => super::state::balance_view(&b),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the balance");
            return;
        }
    };
    core.update(|state| {
        if state.balance == balance {
            return ((), Vec::new());
        }
        state.balance = balance;
        ((), vec![CoreEvent::BalanceChanged { balance }])
    });
}

pub(super) async fn check_engine(core: &Core) {
    // Without a worker there is no engine: the status set at start stays.
    let Some(worker) = &core.worker else { return };
    let (models, error) = worker.engine_status().await;
    let engine = EngineStatus {
        kind: core.engine_kind.to_string(),
        url: core.engine_url.clone(),
        ok: error.is_none(),
        models,
        error,
    };
    core.update(|state| {
        if state.engine == engine {
            return ((), Vec::new());
        }
        state.engine = engine.clone();
        ((), vec![CoreEvent::EngineChanged { engine }])
    });
}
