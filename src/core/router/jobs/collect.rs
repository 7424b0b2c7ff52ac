//! The collector: twice a second it goes over the jobs that still need something and
//! settles what it can, so a result is fetched (and credited) as soon as it is done even
//! if the client only asks the next day, when the worker has long forgotten the job.
//!
//! Per peer it asks about placed jobs oldest first and stops at the first one still
//! queued there: a worker runs its queue in order, so the later ones are queued too.
//! That keeps a backlog of thousands of jobs from costing thousands of requests a round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::loose::{resume, settle_loose};
use super::poll::poll_placement;
use super::row::RouterJob;
use super::{RouterJobError, blocking};
use crate::core::jobs::JobStatus;
use crate::core::protocol::PublicKey;
use crate::core::router::service::RouterService;

const ROUND_EVERY: Duration = Duration::from_millis(500);
/// Finished jobs past their retention are swept every this many rounds (30 s).
const SWEEP_EVERY_ROUNDS: u64 = 60;
/// Bounds on the work of one round besides polling, so one round stays short.
const RESUMES_PER_ROUND: usize = 16;
const LOOSE_PER_ROUND: usize = 32;

pub(crate) fn spawn_collector(
    r: Arc<RouterService>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ROUND_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut round: u64 = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = collect_once(&r).await {
                tracing::warn!(error = %e, "job collection round failed");
            }
            round = round.wrapping_add(1);
            if round.is_multiple_of(SWEEP_EVERY_ROUNDS) {
                let (store, now) = (r.jobs.store.clone(), r.now_ms());
                match blocking(move || store.sweep(now)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(evicted = n, "finished client jobs forgotten"),
                    Err(e) => tracing::warn!(error = %e, "cannot sweep client jobs"),
                }
            }
        }
    })
}

/// One round: place what has no home, ask about what is placed, settle loose attempts.
pub(super) async fn collect_once(r: &Arc<RouterService>) -> Result<(), RouterJobError> {
    let store = r.jobs.store.clone();
    let rows = blocking(move || store.open_rows()).await?;
    let mut by_peer: BTreeMap<PublicKey, Vec<RouterJob>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    let mut loose = Vec::new();
    for row in rows {
        // A submission under way owns its job until it answers.
        if r.jobs.is_active(&row.id) {
            continue;
        }
        if row.unplaced() {
            unplaced.push(row);
            continue;
        }
        for index in row.loose(false) {
            loose.push((row.clone(), index));
        }
        if let (Some(a), false) = (row.placed(), row.status.is_terminal()) {
            by_peer.entry(a.peer).or_default().push(row);
        }
    }
    let walks = by_peer
        .into_iter()
        .filter(|(peer, _)| !r.known_unreachable(peer))
        .map(|(_, rows)| walk(r, rows));
    for result in futures_util::future::join_all(walks).await {
        result?;
    }
    for row in unplaced.iter().take(RESUMES_PER_ROUND) {
        resume(r, row).await?;
    }
    for (row, index) in loose.iter().take(LOOSE_PER_ROUND) {
        settle_loose(r, row, *index).await?;
    }
    Ok(())
}

/// Asks one peer about its jobs in the order it was given them, until one is still
/// queued or the peer does not answer.
async fn walk(r: &Arc<RouterService>, mut rows: Vec<RouterJob>) -> Result<(), RouterJobError> {
    // Its queue order, not creation order: a job placed again after its first peer lost
    // it joins the end of this peer's line.
    rows.sort_by_key(|row| row.placed().map(|a| a.at_ms));
    for row in rows {
        match poll_placement(r, &row).await? {
            None => break,
            Some(now) if now.status == JobStatus::Queued => break,
            Some(_) => {}
        }
    }
    Ok(())
}
