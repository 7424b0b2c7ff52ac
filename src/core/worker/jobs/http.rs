//! `POST /v1/jobs`, `GET /v1/jobs/{id}` and `DELETE /v1/jobs/{id}` on the worker. Every
//! call names its requester (`x-lobstah-requester`, as for chat): a job is visible only
//! to the requester that submitted it, and to anyone else it does not exist (404). A job
//! submitted with a signature is reached only with the same key's signature.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::{JobError, JobRecord, Jobs, blocking};
use crate::core::api_error::ApiError;
use crate::core::jobs::{JOB_ID_HEADER, JobStatus, JobSubmission};
use crate::core::links::{LinkPeer, linked};
use crate::core::protocol::PublicKey;
use crate::core::worker::{Caller, RECEIPT_HEADER, Worker, estimate_tokens, wanted_output};

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such job"),
            JobError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            JobError::QueueFull { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", e.to_string())
                    .with_retry_after(1)
            }
            JobError::WrongState(JobStatus::Running) => ApiError::new(
                StatusCode::CONFLICT,
                "job_running",
                "the job is running and can no longer be cancelled",
            ),
            JobError::WrongState(status) => ApiError::new(
                StatusCode::CONFLICT,
                "job_finished",
                format!("the job has already ended ({status})"),
            ),
            JobError::Store(_) | JobError::Corrupt(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                e.to_string(),
            ),
        }
    }
}

fn jobs_of(w: &Worker) -> Result<Arc<Jobs>, ApiError> {
    w.jobs.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "jobs_unavailable",
            "this worker does not take jobs",
        )
    })
}

/// A job id in its canonical form (a lowercase hyphenated UUID), or `None`: anything
/// else cannot name a job, so a lookup need not touch the store.
fn canonical_id(text: &str) -> Option<String> {
    let id = uuid::Uuid::parse_str(text).ok()?.to_string();
    (id == text).then_some(id)
}

fn answer(status: StatusCode, record: &JobRecord) -> Response {
    let mut response = (status, axum::Json(record.view())).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{}", record.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(receipt) = &record.receipt
        && let Ok(value) = HeaderValue::from_str(&receipt.to_base64())
    {
        response.headers_mut().insert(RECEIPT_HEADER, value);
    }
    response
}

fn done<T>(w: &Worker, result: Result<T, ApiError>) -> Result<T, ApiError> {
    if let Err(e) = &result {
        w.metrics.outcome(e.kind);
    }
    result
}

pub(crate) async fn submit_job(
    State(w): State<Arc<Worker>>,
    link: Option<Extension<LinkPeer>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let result = match w.taking_work() {
        Ok(()) => submit(&w, linked(link), &uri, &headers, body).await,
        Err(refused) => Err(refused),
    };
    done(&w, result)
}

/// Who is calling, by the request signature if there is one (see `worker::gate`).
fn caller(
    w: &Worker,
    link: Option<PublicKey>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, ApiError> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    w.gate
        .identify(link, method.as_str(), path, headers, body, w.clock.now_ms())
}

async fn submit(
    w: &Arc<Worker>,
    link: Option<PublicKey>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let jobs = jobs_of(w)?;
    let body = body.map_err(|r| ApiError::from_body_rejection(r, w.body_limit))?;
    let submission =
        JobSubmission::parse(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let caller = caller(w, link, &Method::POST, uri, headers, &body)?;
    // Admitted like a chat request (credit, exposure, limits), but the pass ends here: a
    // queued job holds no slot, and `--max-jobs` bounds the queue.
    // The run reserves again when it starts (`runner::reserve`).
    let wanted = wanted_output(submission.request.requested_output(), w.max_output_tokens);
    drop(w.gate.admit(
        caller,
        estimate_tokens(&body),
        wanted,
        &w.ledger_reader,
        w.clock.now_ms(),
    )?);
    let id = match headers.get(JOB_ID_HEADER) {
        None => uuid::Uuid::new_v4().to_string(),
        Some(value) => value.to_str().ok().and_then(canonical_id).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{JOB_ID_HEADER} must be a UUID in lowercase hyphenated form"
            ))
        })?,
    };
    let (store, now) = (jobs.store.clone(), w.clock.now_ms());
    let anonymous = matches!(caller, Caller::Anonymous(_));
    let requester = caller.requester();
    let (record, created) =
        blocking(move || store.create_for(&id, requester, anonymous, submission, now)).await?;
    if created {
        jobs.queued.notify_one();
        w.metrics.outcome("job_queued");
        Ok(answer(StatusCode::ACCEPTED, &record))
    } else {
        Ok(answer(StatusCode::OK, &record))
    }
}

/// The job `id` if this caller submitted it.
async fn find(w: &Worker, id: &str, caller: Caller) -> Result<JobRecord, ApiError> {
    let jobs = jobs_of(w)?;
    let id = canonical_id(id).ok_or(JobError::NotFound)?;
    let (store, now) = (jobs.store.clone(), w.clock.now_ms());
    match blocking(move || store.get(&id, now)).await? {
        Some(record) if record.belongs_to(&caller.requester(), caller.is_signed()) => Ok(record),
        _ => Err(JobError::NotFound.into()),
    }
}

pub(crate) async fn get_job(
    State(w): State<Arc<Worker>>,
    link: Option<Extension<LinkPeer>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = async {
        let who = caller(&w, linked(link), &Method::GET, &uri, &headers, b"")?;
        find(&w, &id, who).await
    }
    .await;
    done(&w, record).map(|r| answer(StatusCode::OK, &r))
}

pub(crate) async fn cancel_job(
    State(w): State<Arc<Worker>>,
    link: Option<Extension<LinkPeer>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let result = async {
        let who = caller(&w, linked(link), &Method::DELETE, &uri, &headers, b"")?;
        let (requester, signed) = (who.requester(), who.is_signed());
        let jobs = jobs_of(&w)?;
        let id = canonical_id(&id).ok_or(JobError::NotFound)?;
        let (store, now) = (jobs.store.clone(), w.clock.now_ms());
        let record = blocking(move || store.cancel(&id, &requester, signed, now)).await?;
        Ok::<_, ApiError>(answer(StatusCode::OK, &record))
    }
    .await;
    done(&w, result)
}
