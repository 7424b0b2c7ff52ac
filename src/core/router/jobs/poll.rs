//! Asking peers about jobs and recording the answers: the placement's progress, the
//! credit of a done job (verified, then ledgered in the transaction that marks it done),
//! and the loose attempts (adopted, withdrawn, or collected when they ran anyway).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use super::place::{place, placement, summarize};
use super::row::{AttemptOutcome, RouterJob};
use super::{RouterJobError, blocking};
use crate::core::jobs::{DONE_TTL_MS, JobFailure, JobStatus, JobView, ROUTER_KEEP_MS, ReceiptNote};
use crate::core::ledger::{
    AcceptRules, AppendOutcome, Ledger, Party, StoredReceipt, Verified, accept,
};
use crate::core::protocol::{PublicKey, RECEIPT_SKEW_MS, SignedReceipt};
use crate::core::router::capacity::describe_reqwest_error;
use crate::core::router::service::RouterService;
use crate::core::worker::{RECEIPT_HEADER, REQUESTER_HEADER};

/// Longest wait for a peer's answer about one job (a done job carries its result).
const POLL_TIMEOUT: Duration = Duration::from_secs(10);
/// A job no peer would take for this long ends as an error.
const PLACE_GIVE_UP_MS: u64 = 60 * 60 * 1000;
/// How long a job stays with a peer whose answer to the offer was lost (it may hold the
/// job) before it is offered elsewhere. A peer that restarts is back well within it; one
/// that is gone longer costs the job this much delay, and if it did take the job and
/// comes back, that copy is collected and paid for too (it ran twice).
pub const UNKNOWN_GRACE_MS: u64 = 30_000;

/// What a peer said about one of its jobs.
pub(super) enum Fetched {
    Found {
        view: JobView,
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
    let sent = client
        .get(format!("{}/v1/jobs/{worker_job_id}", record.url))
        .header(REQUESTER_HEADER, r.pubkey().to_string())
        .timeout(POLL_TIMEOUT)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Fetched::Failed(describe_reqwest_error(&e)),
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
        Err(e) => return Fetched::Failed(describe_reqwest_error(&e)),
    };
    if !status.is_success() {
        return Fetched::Failed(format!("HTTP {}: {}", status.as_u16(), summarize(&text)));
    }
    match serde_json::from_str::<JobView>(&text) {
        Ok(view) if view.id == worker_job_id => Fetched::Found { view, receipt },
        Ok(view) => Fetched::Failed(format!("answered about job {} instead", view.id)),
        Err(e) => Fetched::Failed(format!("answered something that is not a job: {e}")),
    }
}

async fn update<T: Send + 'static>(
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
            JobStatus::Done => credit(r, row, index, view, receipt).await.map(Some),
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

/// Checks a job's receipt: signed by the peer that ran the job, for this very job (its
/// `jobId` is the worker's job id), naming us as requester, and completed no earlier
/// than the router handed the job over (less the clock skew allowed) and not in the
/// future. The ±5-minute window of chat does not apply: a job's result may be
/// collected long after it completed.
pub(super) fn check_job_receipt(
    signed: SignedReceipt,
    me: PublicKey,
    peer: PublicKey,
    worker_job_id: &str,
    offered_at_ms: u64,
    now_ms: u64,
) -> Result<Verified, (&'static str, String)> {
    let r = signed.receipt();
    if r.worker_pubkey != peer {
        let detail = format!("receipt is signed for worker {}", r.worker_pubkey.short());
        return Err(("wrong-worker", detail));
    }
    if r.job_id != worker_job_id {
        let detail = format!("receipt is for job {}, not {worker_job_id}", r.job_id);
        return Err(("wrong-job", detail));
    }
    let earliest = offered_at_ms.saturating_sub(RECEIPT_SKEW_MS);
    if r.started_at < earliest || r.completed_at < earliest {
        let detail = format!(
            "the receipt's work ({}–{} ms) predates the job's submission at {offered_at_ms} ms",
            r.started_at, r.completed_at
        );
        return Err(("stale", detail));
    }
    if r.completed_at > now_ms.saturating_add(RECEIPT_SKEW_MS) {
        let detail = format!("completedAt is {} ms ahead", r.completed_at - now_ms);
        return Err(("future", detail));
    }
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Requester(me),
    };
    accept(signed, &rules).map_err(|rej| (rej.reason.as_str(), rej.detail))
}

fn note(status: &str, signed: Option<&SignedReceipt>, why: Option<(&str, String)>) -> ReceiptNote {
    ReceiptNote {
        status: status.to_string(),
        tokens: signed.map(|s| s.receipt().total_tokens()).unwrap_or(0),
        nonce: signed.map(|s| s.receipt().nonce.clone()),
        reason: why.as_ref().map(|(r, _)| r.to_string()),
        detail: why.map(|(_, d)| d),
    }
}

/// Settles a done job (or a copy that ran elsewhere, `index` not being the placement):
/// verifies its receipt and, in one transaction that re-reads the row, ledgers it and
/// marks it credited. A row already credited changes nothing and appends nothing.
pub(super) async fn credit(
    r: &Arc<RouterService>,
    row: &RouterJob,
    index: usize,
    view: JobView,
    receipt: Option<String>,
) -> Result<RouterJob, RouterJobError> {
    let (me, now, id) = (r.pubkey(), r.now_ms(), row.id.as_str());
    // Attempts are only ever appended, and an accepted one keeps its peer and id.
    let Some(attempt) = row.attempts.get(index).cloned() else {
        return Err(RouterJobError::Corrupt(format!(
            "job {id} has no attempt {index}"
        )));
    };
    let parsed = receipt.map(|b64| SignedReceipt::from_base64(&b64));
    let signed = parsed.as_ref().and_then(|p| p.as_ref().ok()).cloned();
    // Signature checks cost CPU: outside the transaction.
    let checked: Result<Verified, (&'static str, String)> = match parsed {
        None => Err((
            "missing",
            "the peer sent no receipt with the finished job".into(),
        )),
        Some(Err(e)) => Err(("malformed", e.to_string())),
        Some(Ok(s)) => check_job_receipt(
            s,
            me,
            attempt.peer,
            &attempt.worker_job_id,
            attempt.at_ms,
            now,
        ),
    };
    let peer = attempt.peer;
    let (settled, row) = update(r, id, move |tx, row| {
        let is_placement = row.placement == Some(index);
        let already = if is_placement {
            row.credited
        } else {
            row.attempts.get(index).map(|a| a.outcome) != Some(AttemptOutcome::Ran)
        };
        if already {
            return Ok(None);
        }
        let (receipt_note, appended) = match checked {
            Ok(verified) => {
                let signed = verified.signed().clone();
                match Ledger::append_in(tx, std::slice::from_ref(&verified))?.first() {
                    Some(AppendOutcome::Appended { seq }) => (
                        note("credited", Some(&signed), None),
                        Some(StoredReceipt {
                            seq: *seq,
                            receipt: signed,
                        }),
                    ),
                    // Our own worker ran it and ledgered it in this very database.
                    _ if peer == me => (note("own-worker", Some(&signed), None), None),
                    _ => {
                        let why = (
                            "replayed-nonce",
                            "the receipt's nonce is already in the ledger".to_string(),
                        );
                        (note("refused", Some(&signed), Some(why)), None)
                    }
                }
            }
            Err((reason, detail)) => {
                let status = if reason == "missing" {
                    "missing"
                } else {
                    "refused"
                };
                (note(status, signed.as_ref(), Some((reason, detail))), None)
            }
        };
        if is_placement {
            row.result = view.result;
            row.started_at = view.started_at.or(row.started_at);
            row.completed_at = view.completed_at;
            row.receipt = Some(receipt_note.clone());
            row.credited = true;
            row.finish(JobStatus::Done, now, ROUTER_KEEP_MS);
        } else if let Some(a) = row.attempts.get_mut(index) {
            a.outcome = AttemptOutcome::Collected;
            row.extra_receipts.push(receipt_note.clone());
        }
        Ok(Some((receipt_note, appended)))
    })
    .await?;
    if let Some((receipt_note, appended)) = settled {
        match (&receipt_note.reason, appended) {
            (None, Some(appended)) => {
                r.metrics.receipts_accepted.inc();
                r.jobs.appended(&[appended]);
            }
            (None, None) => {
                r.metrics.receipts_accepted.inc();
            }
            (Some(reason), _) => {
                r.reject(
                    peer,
                    reason,
                    receipt_note.detail.clone().unwrap_or_default(),
                );
            }
        }
        if index != row.placement.unwrap_or(usize::MAX) {
            tracing::warn!(job = %id, peer = %peer.short(), "a copy of the job ran at a second peer; its receipt was collected too");
        }
    }
    Ok(row)
}

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
                        credit(r, row, index, view, receipt).await?;
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
    let answer = client
        .delete(format!("{}/v1/jobs/{}", record.url, attempt.worker_job_id))
        .header(REQUESTER_HEADER, r.pubkey().to_string())
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
