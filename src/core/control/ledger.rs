//! The ledger beside a running node: `GET /v1/ledger/balances`, `/v1/ledger/verify` and
//! `/v1/ledger/export` (receipts as JSON lines, streamed). The node holds the database
//! while it runs, so these are how `balance --all`, `ledger verify` and `ledger export`
//! answer then, with the same results as on a stopped node.

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::core::api_error::ApiError;
use crate::core::ledger::{self, Ledger};
use crate::core::store::StoreError;

pub(super) const BALANCES_PATH: &str = "/v1/ledger/balances";
pub(super) const VERIFY_PATH: &str = "/v1/ledger/verify";
pub(super) const EXPORT_PATH: &str = "/v1/ledger/export";
/// Receipts read per transaction while exporting; the stream holds at most a few pages.
const EXPORT_PAGE: usize = 1_000;
const EXPORT_PAGES_BUFFERED: usize = 4;

pub(super) async fn balances(ledger: Ledger) -> Response {
    json_from_blocking(move || ledger.balances()).await
}

pub(super) async fn verify(ledger: Ledger) -> Response {
    json_from_blocking(move || ledger::verify_ledger(&ledger)).await
}

/// Pages are read on a blocking thread and sent as they come, so a large ledger costs a
/// few pages of memory, not its size. A failure mid-way ends the body early, which the
/// client sees as an incomplete transfer rather than a short, clean export.
pub(super) async fn export(ledger: Ledger) -> Response {
    let (pages, received) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(EXPORT_PAGES_BUFFERED);
    tokio::task::spawn_blocking(move || {
        let mut after = 0;
        loop {
            let page = match ledger.since(after, EXPORT_PAGE) {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "ledger export stopped");
                    let _ = pages.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            };
            let Some(last) = page.last() else { return };
            after = last.seq;
            let mut lines = String::new();
            for stored in &page {
                lines.push_str(&stored.receipt.to_json());
                lines.push('\n');
            }
            if pages.blocking_send(Ok(Bytes::from(lines))).is_err() {
                return; // the client went away
            }
        }
    });
    let stream = futures_util::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|page| (page, received))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn json_from_blocking<T, F>(read: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(value)) => axum::Json(value).into_response(),
        Ok(Err(e)) => ledger_error(e.to_string()),
        Err(e) => ledger_error(format!("the ledger read failed: {e}")),
    }
}

fn ledger_error(message: String) -> Response {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ledger_error", message).into_response()
}
