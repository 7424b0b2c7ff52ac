//! The one failover loop: offer a request to each candidate in turn until one serves it.
//! Chat (`forward`) and jobs (`jobs::place`) differ only in what they send and how they
//! read the answer; walking the candidates, counting failovers, skipping peers that left
//! the book, refusing peers whose URL may not be dialed, holding failures against a
//! peer's health and keeping what each attempt said are done here, once. A peer booked
//! with both a link and a URL whose link attempt fails is tried again at its URL before
//! the next candidate.

use std::future::Future;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::service::RouterService;
use crate::core::api_error::ApiError;
use crate::core::peers::PeerRecord;
use crate::core::protocol::PublicKey;

/// What one peer made of the request.
pub(super) enum Step<T> {
    /// Stop here with this (an answer, or a verdict no other peer would change).
    Done(T),
    /// Counted against the peer's health; the next candidate is tried.
    Failed(String),
    /// Not the peer's fault (full, or it does not serve this kind); the next is tried.
    Skipped(String),
    /// The peer will not serve this requester (credit, limits, its friends list).
    Declined(StatusCode, String),
}

/// Every candidate was tried and none served: what each said.
#[derive(Debug, Default)]
pub(super) struct Exhausted {
    attempts: Vec<Value>,
    first_decline: Option<StatusCode>,
    declines: usize,
}

impl Exhausted {
    fn note(&mut self, peer: PublicKey, url: &str, reason: String) {
        self.attempts
            .push(json!({"peer": peer.to_string(), "url": url, "error": reason}));
    }

    /// When every attempt was a decline: the first one's status (402 out of credit there,
    /// 429 over its limits), which the client should see rather than a gateway error.
    pub(super) fn all_declined(&self) -> Option<(StatusCode, usize)> {
        self.first_decline
            .filter(|_| self.declines == self.attempts.len())
            .map(|status| (status, self.declines))
    }

    /// The error for the client: `status`, `kind` and `message`, with the attempts.
    pub(super) fn into_error(
        self,
        status: StatusCode,
        kind: &'static str,
        message: String,
    ) -> ApiError {
        ApiError::new(status, kind, message).with_extra("attempts", Value::Array(self.attempts))
    }

    pub(super) fn tried(&self) -> usize {
        self.attempts.len()
    }
}

/// Offers the request to each of `candidates` in order through `try_peer`, which gets the
/// peer, its book entry and the HTTP client allowed to dial it.
pub(super) async fn each_candidate<T, F, Fut>(
    r: &Arc<RouterService>,
    candidates: Vec<PublicKey>,
    mut try_peer: F,
) -> Result<T, Exhausted>
where
    F: FnMut(PublicKey, PeerRecord, reqwest::Client) -> Fut,
    Fut: Future<Output = Step<T>>,
{
    let mut exhausted = Exhausted::default();
    for (i, peer) in candidates.into_iter().enumerate() {
        if i > 0 {
            r.metrics.failovers.inc();
        }
        // Removed from the book since the candidates were chosen.
        let Some(record) = r.peer_record(&peer) else {
            continue;
        };
        let url = record.base().to_string();
        let client = match r.client_for(&record) {
            Ok(client) => client,
            Err(reason) => {
                r.record_failure(peer, reason.clone());
                exhausted.note(peer, &url, reason);
                continue;
            }
        };
        let mut step = try_peer(peer, record.clone(), client).await;
        if let Step::Failed(reason) = &step
            && let Some((at_url, client)) = url_fallback(r, &record)
        {
            // The link failed under this request; the peer may well be up at its URL,
            // and the client should not see the difference.
            tracing::info!(peer = %peer.short(), %reason, "link attempt failed; trying the peer at its URL");
            step = try_peer(peer, at_url, client).await;
        }
        match step {
            Step::Done(out) => return Ok(out),
            Step::Failed(reason) => {
                r.record_failure(peer, reason.clone());
                exhausted.note(peer, &url, reason);
            }
            Step::Skipped(reason) => exhausted.note(peer, &url, reason),
            Step::Declined(status, reason) => {
                exhausted.first_decline.get_or_insert(status);
                exhausted.declines += 1;
                exhausted.note(peer, &url, reason);
            }
        }
    }
    Err(exhausted)
}

/// `record` as reached at its URL, with the client for that, when it is a linked peer
/// that has one.
fn url_fallback(r: &RouterService, record: &PeerRecord) -> Option<(PeerRecord, reqwest::Client)> {
    if !record.is_linked() || record.url.is_empty() {
        return None;
    }
    let mut at_url = record.clone();
    at_url.link = None;
    let client = r.client_for(&at_url).ok()?;
    Some((at_url, client))
}
