//! The control API's HTTP side: `GET /v1/snapshot`, `GET /v1/events` (SSE; ids are
//! event sequence numbers, resumable with `Last-Event-ID` or `?after=`, and a `resync`
//! event when the client must re-read the snapshot), `POST /v1/commands`, and the
//! ledger's reads (see `ledger`). Every request needs `Authorization: Bearer <token>`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::files::tokens_match;
use super::ledger;
use crate::core::api_error::ApiError;
use crate::core::net::{self, AdmitOn, BrowserPolicy, ServerLimits, Standing};
use crate::core::node::{EventItem, NodeClient, NodeCommand, NodeHandle};

/// The SSE event name that tells a client to re-read the snapshot.
pub const RESYNC_EVENT: &str = "resync";
/// A comment this often keeps idle connections (and dead-peer detection) alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Connections at once. Those with the token are a console or two, `status`,
/// `receipts --follow`, scripts; the bound is high because any local program can open
/// connections without the token, and each costs little until it is cut (below).
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection that has not sent a request with the token by then is closed; when all
/// slots are taken, the oldest such connection gives its slot to a newcomer, so programs
/// without the token cannot lock out those with it. Our clients send it at once.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest command is a peer with its URL and label; 64 KiB is far beyond it.
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
struct ControlState {
    node: NodeHandle,
    token: Arc<str>,
}

/// The control API's routes over `node`, guarded by `token`.
pub fn app(node: NodeHandle, token: &str) -> Router {
    let state = ControlState {
        node,
        token: Arc::from(token),
    };
    Router::new()
        .route("/v1/snapshot", get(snapshot))
        .route("/v1/events", get(events))
        .route("/v1/commands", post(command))
        .route(
            ledger::BALANCES_PATH,
            get(|State(s): State<ControlState>| ledger::balances(s.node.ledger().clone())),
        )
        .route(
            ledger::VERIFY_PATH,
            get(|State(s): State<ControlState>| ledger::verify(s.node.ledger().clone())),
        )
        .route(
            ledger::EXPORT_PATH,
            get(|State(s): State<ControlState>| ledger::export(s.node.ledger().clone())),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

/// Serves until `stop`, with the limits every lobstah server has (head size and time,
/// body size and time, a client that stops reading), admitting by token (see
/// `TOKEN_TIMEOUT`). Event streams end when the node's
/// bus closes at shutdown, so the graceful stop does not wait on subscribers forever.
/// The token already keeps pages out (a page cannot read it); `browser` lets a page the
/// operator allowed hold it, and refuses rebinding before the token is even compared.
pub async fn serve(
    listener: TcpListener,
    node: NodeHandle,
    token: &str,
    browser: BrowserPolicy,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let limits = ServerLimits {
        max_connections: MAX_CONNECTIONS,
        // Every client is local, from the same address: only the token tells them apart.
        max_connections_per_address: MAX_CONNECTIONS,
        head_timeout: TOKEN_TIMEOUT,
        admit_on: AdmitOn::Vouched,
        ..ServerLimits::default()
    };
    net::serve(
        listener,
        app(node, token),
        limits,
        Some(BODY_LIMIT),
        browser,
        net::ConnectionStats::default(),
        stop.cancelled_owned(),
    )
    .await
}

async fn authorize(State(s): State<ControlState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if tokens_match(token, &s.token) => {
            if let Some(standing) = request.extensions().get::<Standing>() {
                standing.prove();
            }
            next.run(request).await
        }
        _ => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token: send Authorization: Bearer <the token in the node's control.token>",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

async fn snapshot(State(s): State<ControlState>) -> Response {
    match NodeClient::snapshot(&s.node).await {
        Ok(snapshot) => axum::Json(snapshot).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "node_error",
            e.to_string(),
        )
        .into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<u64>,
}

async fn events(
    State(s): State<ControlState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return ApiError::bad_request(format!("?after= must be a sequence number: {e}"))
                .into_response();
        }
    };
    // The header is what a reconnecting EventSource sends; it wins over the query.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(query.after);
    let stream = match NodeClient::subscribe(&s.node, after).await {
        Ok(stream) => stream,
        Err(e) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "node_error",
                e.to_string(),
            )
            .into_response();
        }
    };
    let events = stream.map(|item| {
        Ok::<_, Infallible>(match item {
            EventItem::Event(event) => Event::default()
                .id(event.seq.to_string())
                .data(serde_json::to_string(&event).unwrap_or_default()),
            EventItem::Resync => Event::default().event(RESYNC_EVENT).data("{}"),
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

async fn command(
    State(s): State<ControlState>,
    body: Result<axum::Json<NodeCommand>, JsonRejection>,
) -> Response {
    let command = match body {
        Ok(axum::Json(c)) => c,
        Err(e) => {
            return ApiError::bad_request(format!("not a node command: {}", e.body_text()))
                .into_response();
        }
    };
    match NodeClient::command(&s.node, command).await {
        Ok(outcome) => axum::Json(outcome).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "node_error",
            e.to_string(),
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint on the lobstah control API",
    )
}
