//! Asking peers about jobs and recording the answers: the placement's progress (a done
//! job goes on to `credit`), a job its peer lost.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use super::credit::credit;
use super::place::{placement, summarize};
use super::row::{AttemptOutcome, RouterJob};
use super::{RouterJobError, blocking};
use crate::core::describe;
use crate::core::jobs::{DONE_TTL_MS, JobFailure, JobStatus, JobView, ROUTER_KEEP_MS};
use crate::core::protocol::PublicKey;
use crate::core::protocol::wire::RECEIPT_HEADER;
use crate::core::router::service::RouterService;

/// Longest wait for a peer's answer about one job (a done job carries its result).
pub(super) const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a peer said about one of its jobs.
pub(super) enum Fetched {
    Found {
        view: Box<JobView>,
        receipt: Option<String>,
    },
    /// 404: the peer holds no such job.
    Gone,
    Failed(String),
}

pub(super) async fn fetch(r: &RouterService, peer: &PublicKey, worker_job_id: &str) -> Fetched {
    let Some(record) = r.peer_record(peer) else {
        return Fetched::Failed("the peer is no longer in the peer book".into());
    };
    let client = match r.client_for(&record) {
        Ok(c) => c,
        Err(reason) => return Fetched::Failed(reason),
    };
    let url = format!("{}/v1/jobs/{worker_job_id}", record.base());
    let sent = r
        .signed_request(&client, reqwest::Method::GET, &url, peer, b"")
        .timeout(POLL_TIMEOUT)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Fetched::Failed(describe::transport(&e)),
    };
    let status = response.status();
    if status == StatusCode::NOT_FOUND {
        return Fetched::Gone;
    }
    let receipt = response
        .headers()
        .get(RECEIPT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return Fetched::Failed(describe::transport(&e)),
    };
    if !status.is_success() {
        return Fetched::Failed(format!("HTTP {}: {}", status.as_u16(), summarize(&text)));
    }
    match serde_json::from_str::<JobView>(&text) {
        Ok(view) if view.id == worker_job_id => Fetched::Found {
            view: Box::new(view),
            receipt,
        },
        Ok(view) => Fetched::Failed(format!("answered about job {} instead", view.id)),
        Err(e) => Fetched::Failed(format!("answered something that is not a job: {e}")),
    }
}

pub(super) async fn update<T: Send + 'static>(
    r: &RouterService,
    id: &str,
    change: impl FnOnce(&redb::WriteTransaction, &mut RouterJob) -> Result<T, RouterJobError>
    + Send
    + 'static,
) -> Result<(T, RouterJob), RouterJobError> {
    let (store, id) = (r.jobs.store.clone(), id.to_string());
    blocking(move || store.update(&id, change)).await
}

/// Asks the placement's peer about the job and records the answer. `Ok(None)`: the
/// peer could not be asked (the row is unchanged); otherwise the row as it is now.
pub(super) async fn poll_placement(
    r: &Arc<RouterService>,
    row: &RouterJob,
) -> Result<Option<RouterJob>, RouterJobError> {
    let Some((peer, worker_job_id, index)) = placement(row) else {
        return Ok(Some(row.clone()));
    };
    match fetch(r, &peer, &worker_job_id).await {
        Fetched::Failed(reason) => {
            tracing::debug!(job = %row.id, peer = %peer.short(), %reason, "cannot ask about a job");
            Ok(None)
        }
        Fetched::Gone => {
            let now = r.now_ms();
            let placed_at = row.attempts.get(index).map(|a| a.at_ms).unwrap_or(now);
            // Gone after longer than a worker keeps results: it may have run and expired
            // while nobody collected it. Placing it again could run it twice, so it ends.
            let expired = now.saturating_sub(placed_at) >= DONE_TTL_MS;
            if expired {
                tracing::warn!(job = %row.id, peer = %peer.short(), "the peer no longer has the job; it may have finished and expired uncollected");
            } else {
                tracing::warn!(job = %row.id, peer = %peer.short(), "the peer lost the job; it will be placed again");
            }
            let (_, row) = update(r, &row.id, move |_, row| {
                if row.placement == Some(index) && !row.status.is_terminal() {
                    if let Some(a) = row.attempts.get_mut(index) {
                        a.outcome = AttemptOutcome::Absent;
                        a.detail = Some("the peer no longer had the job".into());
                    }
                    row.placement = None;
                    row.started_at = None;
                    if expired {
                        row.error = Some(JobFailure {
                            kind: "job_expired".into(),
                            message: "the peer no longer has the job: its result expired before the router collected it".into(),
                        });
                        row.finish(JobStatus::Error, now, ROUTER_KEEP_MS);
                    } else {
                        row.status = JobStatus::Queued;
                    }
                }
                Ok(())
            })
            .await?;
            Ok(Some(row))
        }
        Fetched::Found { view, receipt } => match view.status {
            JobStatus::Done => credit(r, row, index, *view, receipt).await.map(Some),
            JobStatus::Queued | JobStatus::Running => {
                let (_, row) = update(r, &row.id, move |_, row| {
                    if row.placement == Some(index) && !row.status.is_terminal() {
                        row.status = view.status;
                        row.started_at = view.started_at.or(row.started_at);
                    }
                    Ok(())
                })
                .await?;
                Ok(Some(row))
            }
            JobStatus::Error | JobStatus::Cancelled => {
                let now = r.now_ms();
                let (_, row) = update(r, &row.id, move |_, row| {
                    if row.placement == Some(index) && !row.status.is_terminal() {
                        row.error = view.error;
                        row.started_at = view.started_at.or(row.started_at);
                        row.completed_at = view.completed_at;
                        row.finish(view.status, now, ROUTER_KEEP_MS);
                    }
                    Ok(())
                })
                .await?;
                Ok(Some(row))
            }
        },
    }
}
