//! Handing a job to a peer: candidates that serve the model, batch-tier peers first, each
//! offered the job in turn until one takes it — failing over like chat on connection
//! errors, timeouts, 5xx and garbage, and skipping a full or job-less peer without
//! holding it against it. Every offer is written down before it is sent, with the job id
//! the router proposes, so a retry after a timeout or a crash finds the same job at that
//! peer instead of making a second one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{StatusCode, header};

use super::row::{Attempt, AttemptOutcome, RouterJob};
use super::{RouterJobError, blocking};
use crate::core::api_error::ApiError;
use crate::core::describe;
use crate::core::jobs::{JOB_ID_HEADER, JobStatus, JobView};
use crate::core::protocol::PublicKey;
use crate::core::router::failover::{self, Step};
use crate::core::router::service::RouterService;

/// Longest wait for a peer to accept a job: taking one is a single commit, so a peer
/// that needs longer is in trouble.
const OFFER_TIMEOUT: Duration = Duration::from_secs(30);

/// What one peer made of the offer.
enum Offer {
    Taken(Box<JobView>),
    /// It holds no copy. `penalize`: count it against the peer's health.
    Refused {
        reason: String,
        penalize: bool,
    },
    /// It may hold a copy: the request went out and no usable answer came back.
    Unknown(String),
    /// It judged the request itself (400, 413, 422): no other peer would think better.
    Verdict(ApiError),
}

impl From<RouterJobError> for ApiError {
    fn from(e: RouterJobError) -> Self {
        match e {
            RouterJobError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such job")
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                other.to_string(),
            ),
        }
    }
}

/// Places job `id` (its body is `body`) with the first candidate that takes it. On
/// success the returned row has its placement — or, when an offer went unanswered, no
/// placement yet but that attempt to settle first. On failure the client gets the
/// reason (503 no capable peer, 502 all failed with each attempt, or a peer's 4xx).
pub(super) async fn place(
    r: &Arc<RouterService>,
    id: &str,
    body: Bytes,
    model: &str,
) -> Result<RouterJob, ApiError> {
    r.ensure_capacity().await;
    let now = r.now_ms();
    let candidates = r.job_candidates(model, now);
    if candidates.is_empty() {
        let peers = r.peer_list().len();
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_capable_peer",
            format!("no healthy peer serves model {model:?} ({peers} peers known)"),
        ));
    }
    let placed = failover::each_candidate(r, candidates, |peer, record, client| {
        let body = body.clone();
        async move {
            match offer_to(r, id, peer, record.base(), &client, body).await {
                Ok(step) => step,
                Err(e) => Step::Done(Err(e.into())),
            }
        }
    })
    .await;
    match placed {
        Ok(placed) => placed,
        Err(exhausted) => {
            let tried = exhausted.tried();
            Err(exhausted.into_error(
                StatusCode::BAD_GATEWAY,
                "all_peers_failed",
                format!("all {tried} capable peers failed to take the job for model {model:?}"),
            ))
        }
    }
}

/// Offers job `id` to one peer, writing the attempt down before it is sent and its
/// outcome after. `Done` when the job has a home (or may have one: see `Unknown`) or the
/// peer judged the request; otherwise the next candidate is tried.
async fn offer_to(
    r: &Arc<RouterService>,
    id: &str,
    peer: PublicKey,
    url: &str,
    client: &reqwest::Client,
    body: Bytes,
) -> Result<Step<Result<RouterJob, ApiError>>, RouterJobError> {
    let store = r.jobs.store.clone();
    let proposed = uuid::Uuid::new_v4().to_string();
    let attempt = Attempt {
        peer,
        worker_job_id: proposed.clone(),
        at_ms: r.now_ms(),
        outcome: AttemptOutcome::Pending,
        detail: None,
    };
    let (index, _) = {
        let (store, id) = (store.clone(), id.to_string());
        blocking(move || {
            store.update(&id, move |_, row| {
                row.attempts.push(attempt);
                Ok(row.attempts.len() - 1)
            })
        })
        .await?
    };
    let started = Instant::now();
    let _in_flight = r.track(peer);
    let offer = offer(r, client, &peer, url, &proposed, body).await;
    let (outcome, detail) = match &offer {
        Offer::Taken(_) => (AttemptOutcome::Accepted, None),
        Offer::Refused { reason, .. } => (AttemptOutcome::Refused, Some(reason.clone())),
        Offer::Unknown(reason) => (AttemptOutcome::Unknown, Some(reason.clone())),
        Offer::Verdict(e) => (AttemptOutcome::Refused, Some(e.message.clone())),
    };
    let taken = match &offer {
        Offer::Taken(view) => Some((**view).clone()),
        _ => None,
    };
    let (_, row) = {
        let id = id.to_string();
        blocking(move || {
            store.update(&id, move |_, row| {
                let Some(a) = row.attempts.get_mut(index) else {
                    return Err(RouterJobError::Corrupt("an attempt vanished".into()));
                };
                a.outcome = outcome;
                a.detail = detail;
                if let Some(view) = taken {
                    a.worker_job_id = view.id;
                    if row.placement.is_some() {
                        // Cannot happen while submissions are serialized per job;
                        // if it did, this copy is withdrawn like any loose one.
                        a.outcome = AttemptOutcome::Unknown;
                        a.detail = Some("taken, but the job already had a home".into());
                        return Ok(());
                    }
                    row.placement = Some(index);
                    // A finished answer (a retried offer of a job that ran meanwhile)
                    // is settled by the next poll, which credits it.
                    row.status = match view.status {
                        JobStatus::Queued => JobStatus::Queued,
                        _ => JobStatus::Running,
                    };
                    row.started_at = view.started_at;
                }
                Ok(())
            })
        })
        .await?
    };
    Ok(match offer {
        Offer::Taken(_) => {
            r.record_success(peer, started.elapsed());
            r.metrics.outcome("job_placed");
            Step::Done(Ok(row))
        }
        Offer::Verdict(e) => Step::Done(Err(e)),
        Offer::Refused {
            reason,
            penalize: true,
        } => Step::Failed(reason),
        Offer::Refused { reason, .. } => Step::Skipped(reason),
        Offer::Unknown(reason) => {
            r.record_failure(peer, reason.clone());
            // The peer may hold the job: offering it elsewhere now could run it
            // twice. The router keeps it (the client gets its id) and the collector
            // asks this peer again; see `UNKNOWN_GRACE_MS`.
            tracing::warn!(job = %id, peer = %peer.short(), %reason, "no answer to a job offer; asking that peer again before offering it elsewhere");
            Step::Done(Ok(row))
        }
    })
}

async fn offer(
    r: &RouterService,
    client: &reqwest::Client,
    peer: &PublicKey,
    url: &str,
    proposed: &str,
    body: Bytes,
) -> Offer {
    let timeout = OFFER_TIMEOUT.min(r.config.first_byte_timeout);
    let sent = r
        .signed_request(
            client,
            reqwest::Method::POST,
            &format!("{url}/v1/jobs"),
            peer,
            &body,
        )
        .header(JOB_ID_HEADER, proposed)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(timeout)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        // Nothing reached the peer: it cannot hold a copy.
        Err(e) if e.is_connect() => {
            return Offer::Refused {
                reason: describe::transport(&e),
                penalize: true,
            };
        }
        Err(e) => return Offer::Unknown(describe::transport(&e)),
    };
    let status = response.status();
    let text = match response.text().await {
        Ok(text) => text,
        Err(e) if status.is_success() => return Offer::Unknown(describe::transport(&e)),
        Err(_) => String::new(),
    };
    if status.is_success() {
        return match serde_json::from_str::<JobView>(&text) {
            Ok(view) if !view.id.is_empty() => Offer::Taken(Box::new(view)),
            _ => Offer::Unknown(format!(
                "answered {} with something that is not a job: {}",
                status.as_u16(),
                summarize(&text)
            )),
        };
    }
    let said = summarize(&text);
    match status.as_u16() {
        400 | 413 | 422 => Offer::Verdict(ApiError::new(
            status,
            "invalid_request_error",
            format!("the peer refused the job: {said}"),
        )),
        503 if text.contains("queue_full") => Offer::Refused {
            reason: "HTTP 503: job queue full".into(),
            penalize: false,
        },
        404 | 405 | 501 => Offer::Refused {
            reason: format!("HTTP {}: the peer does not take jobs", status.as_u16()),
            penalize: false,
        },
        code => Offer::Refused {
            reason: format!("HTTP {code}: {said}"),
            penalize: status.is_server_error(),
        },
    }
}

pub(super) use crate::core::router::forward::summarize;

/// The peer and worker job id of a placed job, for polling.
pub(super) fn placement(row: &RouterJob) -> Option<(PublicKey, String, usize)> {
    let index = row.placement?;
    let a = row.attempts.get(index)?;
    Some((a.peer, a.worker_job_id.clone(), index))
}
