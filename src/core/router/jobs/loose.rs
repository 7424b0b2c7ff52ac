//! Attempts whose outcome was never learned, and jobs with no home: a copy a peer holds
//! is adopted when the job has none, withdrawn otherwise, and collected (paid for) if it
//! ran anyway; a job with no home is offered again once no peer may still hold it.

use std::sync::Arc;

use super::credit::credit;
use super::place::place;
use super::poll::{Fetched, POLL_TIMEOUT, fetch, update};
use super::row::{AttemptOutcome, RouterJob};
use super::{RouterJobError, blocking};
use crate::core::jobs::{JobFailure, JobStatus, ROUTER_KEEP_MS};
use crate::core::router::service::RouterService;

/// A job no peer would take for this long ends as an error.
const PLACE_GIVE_UP_MS: u64 = 60 * 60 * 1000;
/// How long a job stays with a peer whose answer to the offer was lost (it may hold the
/// job) before it is offered elsewhere. A peer that restarts is back well within it; one
/// that is gone longer costs the job this much delay, and if it did take the job and
/// comes back, that copy is collected and paid for too (it ran twice).
pub(super) const UNKNOWN_GRACE_MS: u64 = 30_000;

/// Looks into one loose attempt: a job with no home adopts the copy; otherwise the copy
/// is withdrawn, or — when it ran anyway — collected once it is done.
pub(super) async fn settle_loose(
    r: &Arc<RouterService>,
    row: &RouterJob,
    index: usize,
) -> Result<(), RouterJobError> {
    let Some(attempt) = row.attempts.get(index).cloned() else {
        return Ok(());
    };
    let mark = |outcome: AttemptOutcome, detail: &str| {
        let detail = detail.to_string();
        move |_: &redb::WriteTransaction, row: &mut RouterJob| {
            if let Some(a) = row.attempts.get_mut(index) {
                a.outcome = outcome;
                a.detail = Some(detail);
            }
            Ok(())
        }
    };
    if row.unplaced() || attempt.outcome == AttemptOutcome::Ran {
        match fetch(r, &attempt.peer, &attempt.worker_job_id).await {
            Fetched::Failed(_) => {}
            Fetched::Gone => {
                update(r, &row.id, mark(AttemptOutcome::Absent, "not at the peer")).await?;
            }
            Fetched::Found { view, receipt } if attempt.outcome == AttemptOutcome::Ran => {
                match view.status {
                    JobStatus::Done => {
                        credit(r, row, index, *view, receipt).await?;
                    }
                    JobStatus::Error | JobStatus::Cancelled => {
                        let detail = format!("the copy ended {}", view.status);
                        update(r, &row.id, mark(AttemptOutcome::Absent, &detail)).await?;
                    }
                    JobStatus::Queued | JobStatus::Running => {}
                }
            }
            Fetched::Found { view, .. } => {
                // The job had no home and this peer holds a copy: it is the home.
                update(r, &row.id, move |_, row| {
                    if row.unplaced()
                        && let Some(a) = row.attempts.get_mut(index)
                    {
                        a.outcome = AttemptOutcome::Accepted;
                        a.detail = Some("adopted after the submission's answer was lost".into());
                        row.placement = Some(index);
                        row.status = match view.status {
                            JobStatus::Queued => JobStatus::Queued,
                            _ => JobStatus::Running,
                        };
                    }
                    Ok(())
                })
                .await?;
            }
        }
        return Ok(());
    }
    let Some(record) = r.peer_record(&attempt.peer) else {
        return Ok(());
    };
    let Ok(client) = r.client_for(&record) else {
        return Ok(());
    };
    let url = format!("{}/v1/jobs/{}", record.base(), attempt.worker_job_id);
    let answer = r
        .signed_request(&client, reqwest::Method::DELETE, &url, &attempt.peer, b"")
        .timeout(POLL_TIMEOUT)
        .send()
        .await;
    let Ok(answer) = answer else {
        return Ok(());
    };
    let (outcome, detail) = match answer.status().as_u16() {
        200 => (AttemptOutcome::Absent, "withdrawn"),
        404 => (AttemptOutcome::Absent, "not at the peer"),
        409 => (
            AttemptOutcome::Ran,
            "ran at the peer although placed elsewhere",
        ),
        _ => return Ok(()),
    };
    update(r, &row.id, mark(outcome, detail)).await?;
    Ok(())
}

/// Places a job whose submission never finished (the router stopped mid-way, or its
/// peer lost it): first a peer that may already hold a copy is asked, and the copy is
/// adopted; failing that the job is offered afresh. Gives up, as an error, on a job no
/// peer took within an hour.
pub(super) async fn resume(r: &Arc<RouterService>, row: &RouterJob) -> Result<(), RouterJobError> {
    // Held throughout, so a submission and the collector never place the same job.
    let Some(_guard) = r.jobs.activate(&row.id) else {
        return Ok(());
    };
    for index in row.loose(false) {
        settle_loose(r, row, index).await?;
    }
    let (store, id, now) = (r.jobs.store.clone(), row.id.clone(), r.now_ms());
    let Some(row) = blocking(move || store.get(&id, now)).await? else {
        return Ok(());
    };
    if !row.unplaced() {
        return Ok(());
    }
    let waiting_on = row
        .loose(false)
        .into_iter()
        .filter_map(|i| row.attempts.get(i))
        .any(|a| now < a.at_ms.saturating_add(UNKNOWN_GRACE_MS));
    if waiting_on {
        // A peer that may hold the job did not answer yet: give it time to come back
        // before the job is offered elsewhere, where it could run a second time.
        return Ok(());
    }
    if now.saturating_sub(row.created_at) > PLACE_GIVE_UP_MS {
        update(r, &row.id, move |_, row| {
            if row.unplaced() {
                row.error = Some(JobFailure {
                    kind: "no_capable_peer".into(),
                    message: "no peer took the job within an hour".into(),
                });
                row.finish(JobStatus::Error, now, ROUTER_KEEP_MS);
            }
            Ok(())
        })
        .await?;
        return Ok(());
    }
    let Some(body) = row
        .request
        .as_ref()
        .and_then(|b| serde_json::to_vec(b).ok())
    else {
        return Err(RouterJobError::Corrupt(format!(
            "job {} has no request to place",
            row.id
        )));
    };
    match place(r, &row.id, body.into(), &row.model).await {
        Ok(_) => tracing::info!(job = %row.id, "an unplaced job was placed"),
        Err(e) => tracing::debug!(job = %row.id, error = %e.message, "cannot place the job yet"),
    }
    Ok(())
}
