//! The router's job endpoints for clients: `POST /v1/jobs` (with an optional
//! `Idempotency-Key`), `GET /v1/jobs` (newest first), `GET /v1/jobs/{id}` (asks the peer
//! when the job is still under way, and credits it once done), `DELETE /v1/jobs/{id}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::place::{place, placement, summarize};
use super::poll::poll_placement;
use super::row::RouterJob;
use super::store::Inserted;
use super::{RouterJobError, blocking};
use crate::core::api_error::ApiError;
use crate::core::jobs::{
    IDEMPOTENCY_HEADER, JobFailure, JobStatus, JobSubmission, MAX_IDEMPOTENCY_KEY_CHARS,
    ROUTER_KEEP_MS,
};
use crate::core::router::service::RouterService;

/// Jobs a listing returns unless asked for fewer, and at most.
const LIST_DEFAULT: usize = 20;
const LIST_MAX: usize = 1_000;

fn answer(status: StatusCode, row: &RouterJob) -> Response {
    let mut response = (status, axum::Json(row.view())).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{}", row.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn counted(r: &RouterService, result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| {
        r.metrics.outcome(e.kind);
        e.into_response()
    })
}

async fn load(r: &RouterService, id: String) -> Result<RouterJob, ApiError> {
    let (store, now) = (r.jobs.store.clone(), r.now_ms());
    blocking(move || store.get(&id, now))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such job"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY_CHARS
                && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_string()))
        }
        _ => Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"
        ))),
    }
}

pub(crate) async fn submit_job(
    State(r): State<Arc<RouterService>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = match r.taking_work() {
        Ok(()) => submit(&r, &headers, body).await,
        Err(refused) => Err(refused),
    };
    counted(&r, result)
}

async fn submit(
    r: &Arc<RouterService>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rej| ApiError::from_body_rejection(rej, r.config.body_limit))?;
    let submission =
        JobSubmission::parse(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let key = idempotency_key(headers)?;
    let request: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = r.now_ms();
    let row = RouterJob {
        id: uuid::Uuid::new_v4().to_string(),
        idempotency_key: key.clone(),
        status: JobStatus::Queued,
        model: submission.request.model.clone(),
        metadata: submission.metadata,
        request: Some(request),
        created_at: now,
        started_at: None,
        completed_at: None,
        expires_at: None,
        placement: None,
        attempts: Vec::new(),
        result: None,
        error: None,
        receipt: None,
        extra_receipts: Vec::new(),
        credited: false,
    };
    // Marked before it is stored, so the collector never sees it without an owner.
    let guard = r.jobs.activate(&row.id);
    let store = r.jobs.store.clone();
    let row = match blocking(move || store.insert(row)).await? {
        Inserted::New(row) => row,
        Inserted::Existing(existing) => return Ok(answer(StatusCode::OK, &existing)),
    };
    let placed = place(r, &row.id, body, &row.model).await;
    drop(guard);
    match placed {
        Ok(row) => Ok(answer(StatusCode::ACCEPTED, &row)),
        Err(refusal) => {
            // No peer took it: the client hears why and the job ends here. Its key is
            // let go, so a retry with the same key starts afresh.
            let failure = JobFailure {
                kind: refusal.kind.to_string(),
                message: refusal.message.clone(),
            };
            let (store, id) = (r.jobs.store.clone(), row.id.clone());
            blocking(move || {
                store.update(&id, move |_, row| {
                    row.error = Some(failure);
                    row.finish(JobStatus::Error, now, ROUTER_KEEP_MS);
                    Ok(())
                })?;
                match key {
                    Some(key) => store.forget_key(&key),
                    None => Ok(()),
                }
            })
            .await?;
            Err(refusal)
        }
    }
}

pub(crate) async fn get_job(
    State(r): State<Arc<RouterService>>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let row = load(&r, id).await?;
        let unreachable = row.placed().is_some_and(|a| r.known_unreachable(&a.peer));
        if row.status.is_terminal() || row.placement.is_none() || unreachable {
            // Nothing to ask, or a peer known to be down: answer from the row at once
            // rather than wait out a timeout; the collector keeps trying.
            return Ok(answer(StatusCode::OK, &row));
        }
        // Under way: ask its peer, so a finished job is settled (and credited) now.
        let fresh = match poll_placement(&r, &row).await {
            Ok(Some(fresh)) => fresh,
            Ok(None) => row,
            Err(RouterJobError::NotFound) => return Err(RouterJobError::NotFound.into()),
            Err(e) => {
                tracing::warn!(job = %row.id, error = %e, "cannot record a job's progress");
                row
            }
        };
        Ok(answer(StatusCode::OK, &fresh))
    }
    .await;
    counted(&r, result)
}

pub(crate) async fn cancel_job(
    State(r): State<Arc<RouterService>>,
    Path(id): Path<String>,
) -> Response {
    let result = cancel(&r, id).await;
    counted(&r, result)
}

async fn cancel(r: &Arc<RouterService>, id: String) -> Result<Response, ApiError> {
    let row = load(r, id).await?;
    match row.status {
        JobStatus::Cancelled => return Ok(answer(StatusCode::OK, &row)),
        JobStatus::Done | JobStatus::Error => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_finished",
                format!("the job has already ended ({})", row.status),
            ));
        }
        JobStatus::Queued | JobStatus::Running => {}
    }
    let now = r.now_ms();
    let Some((peer, worker_job_id, index)) = placement(&row) else {
        if r.jobs.is_active(&row.id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_submitting",
                "the job is being handed to a peer; try again in a moment",
            ));
        }
        // No peer holds it (loose copies are withdrawn by the collector): end it here.
        return end(r, &row.id, None, now).await;
    };
    let record = r
        .peer_record(&peer)
        .ok_or_else(|| unreachable("the peer left the peer book"))?;
    let client = r.client_for(&record).map_err(|e| unreachable(&e))?;
    let url = format!("{}/v1/jobs/{worker_job_id}", record.base());
    let answered = r
        .signed_request(&client, reqwest::Method::DELETE, &url, &peer, b"")
        .timeout(
            r.config
                .capacity_timeout
                .max(std::time::Duration::from_secs(5)),
        )
        .send()
        .await
        .map_err(|e| unreachable(&crate::core::describe::transport(&e)))?;
    let status = answered.status();
    let text = answered.text().await.unwrap_or_default();
    match status.as_u16() {
        // Cancelled there, or it no longer has it: either way it will not run.
        200 | 404 => end(r, &row.id, Some(index), now).await,
        409 => {
            // Running or finished there: record what it is now, then say no.
            let fresh = poll_placement(r, &row).await.ok().flatten().unwrap_or(row);
            let (kind, message) = if fresh.status == JobStatus::Running {
                (
                    "job_running",
                    "the job is running and can no longer be cancelled".to_string(),
                )
            } else {
                (
                    "job_finished",
                    format!("the job has already ended ({})", fresh.status),
                )
            };
            Err(ApiError::new(StatusCode::CONFLICT, kind, message))
        }
        code => Err(unreachable(&format!("HTTP {code}: {}", summarize(&text)))),
    }
}

/// Marks a job cancelled, if it still is under way at placement `index`.
async fn end(
    r: &RouterService,
    id: &str,
    index: Option<usize>,
    now: u64,
) -> Result<Response, ApiError> {
    let (store, id) = (r.jobs.store.clone(), id.to_string());
    let (_, row) = blocking(move || {
        store.update(&id, move |_, row| {
            if !row.status.is_terminal() && row.placement == index {
                row.finish(JobStatus::Cancelled, now, ROUTER_KEEP_MS);
            }
            Ok(())
        })
    })
    .await?;
    if row.status == JobStatus::Cancelled {
        Ok(answer(StatusCode::OK, &row))
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_changed",
            format!("the job changed meanwhile (now {}); try again", row.status),
        ))
    }
}

fn unreachable(reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "peer_unreachable",
        format!("cannot reach the peer holding this job ({reason}); try again later"),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<usize>,
    status: Option<String>,
}

pub(crate) async fn list_jobs(
    State(r): State<Arc<RouterService>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let result = async {
        let status = match query.status.as_deref() {
            None | Some("") | Some("all") => None,
            Some(s) => Some(s.parse::<JobStatus>().map_err(ApiError::bad_request)?),
        };
        let limit = query.limit.unwrap_or(LIST_DEFAULT).clamp(1, LIST_MAX);
        let (store, now) = (r.jobs.store.clone(), r.now_ms());
        let rows = blocking(move || store.list(limit, status, now)).await?;
        let data: Vec<Value> = rows
            .iter()
            .filter_map(|row| serde_json::to_value(row.view()).ok())
            .collect();
        Ok(
            axum::Json(json!({"object": "list", "data": data, "counts": r.jobs.counts()}))
                .into_response(),
        )
    }
    .await;
    counted(&r, result)
}
