//! HTTP errors in OpenAI's shape, `{"error":{"type":…,"message":…}}`, mapped to status
//! codes in one place for the worker and the router.

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::core::engine::{EngineError, RequestError};

/// An error answer. `extra` fields are merged into the `error` object (e.g. `attempts`).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub extra: Option<Box<serde_json::Map<String, Value>>>,
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            extra: None,
            retry_after_s: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.into(), value);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// The JSON body, also used for SSE error events after a stream has begun.
    pub fn body(&self) -> Value {
        let mut error = serde_json::Map::new();
        error.insert("type".into(), Value::String(self.kind.into()));
        error.insert("message".into(), Value::String(self.message.clone()));
        if let Some(extra) = &self.extra {
            for (k, v) in extra.iter() {
                error.insert(k.clone(), v.clone());
            }
        }
        json!({ "error": error })
    }

    /// Maps a body extractor failure: too large → 413, anything else → 400.
    pub fn from_body_rejection(rejection: BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("request body is larger than the limit of {limit} bytes"),
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {rejection}"))
        }
    }

    /// An engine failure as the worker reports it: the engine's own 4xx passes through,
    /// anything else is a 502 so a router fails over.
    pub fn from_engine(e: &EngineError) -> Self {
        match e {
            EngineError::Status { status, body } if (400..500).contains(status) => ApiError::new(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                if *status == 404 {
                    "model_not_found"
                } else {
                    "invalid_request_error"
                },
                format!("the engine refused the request: {body}"),
            ),
            other => ApiError::new(StatusCode::BAD_GATEWAY, "engine_error", other.to_string()),
        }
    }
}

impl ApiError {
    /// A receipt could not be made durable: the work is not billed and not handed out.
    /// 503, so a router fails over to another peer, and a client retries later.
    pub fn ledger_unavailable(cause: &dyn std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            format!(
                "{}: no answer leaves without its receipt on disk",
                crate::core::describe::ledger_failure(cause)
            ),
        )
        .with_retry_after(5)
    }
}

impl ApiError {
    /// New work is refused while the ledger cannot be written (`cause`, from
    /// `Db::unavailable`): its receipt could not be kept. 503 with a short retry, since
    /// the store reopens by itself once writes succeed again.
    pub fn not_taking_work(cause: &str) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            format!(
                "{}: no new work is taken until receipts can be kept again",
                crate::core::describe::ledger_failure(&cause)
            ),
        )
        .with_retry_after(5)
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<crate::core::engine::EmbeddingsRequestError> for ApiError {
    fn from(e: crate::core::engine::EmbeddingsRequestError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
