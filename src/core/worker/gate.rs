//! Who the worker serves, and how much: the requester's identity is taken only from a
//! valid request signature; unsigned requests (the existing network's routers) are
//! anonymous and share a small quota; signed ones are held to the requester's credit in
//! this worker's ledger, to a cap on earnings it has not confirmed, and to per-requester
//! concurrency and rate limits. Every refusal happens before the engine sees the request.
//! How much a request may cost, and how it is reserved, is in `metering`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{HeaderMap, StatusCode};

mod metering;

pub use metering::Pass;

use super::REQUESTER_HEADER;
use super::replay::{MAX_REMEMBERED, ReplayCache, ReplayError};
use super::reserve::Flights;
use crate::core::api_error::ApiError;
use crate::core::ledger::Standing;
use crate::core::protocol::{
    LinkRequestTag, NONCE_HEADER, PublicKey, REQUEST_SKEW_MS, REQUEST_TAG_HEADER, RequestAuth,
    RequestProof, RequestTarget, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use crate::core::tracker::{RateLimit, RateLimiter};

/// One hour, the anonymous quota's window.
const ANONYMOUS_WINDOW_MS: u64 = 3_600_000;

/// The worker's rules for who is served and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Refuse unsigned requests outright.
    pub require_signed: bool,
    /// When not empty, serve only these requesters (friends); everyone else gets 403.
    pub serve_only: Vec<PublicKey>,
    /// Served without the credit and unconfirmed-exposure checks.
    pub trusted: Vec<PublicKey>,
    /// Tokens a requester may owe on receipts it has not counter-signed before it is
    /// refused; 0 turns the cap off.
    pub max_unconfirmed_tokens: u64,
    /// Requests one requester may have running or waiting at once; 0: no limit.
    pub per_requester_concurrency: usize,
    /// Requests per minute one requester may start (bursts of `per_requester_burst`).
    pub per_requester_per_minute: u32,
    pub per_requester_burst: u32,
    /// Tokens all unsigned requests together may use per hour; 0 refuses them.
    pub anonymous_tokens_per_hour: u64,
    /// Unsigned requests served at once, all requesters together.
    pub anonymous_concurrency: usize,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            require_signed: false,
            serve_only: Vec::new(),
            trusted: Vec::new(),
            max_unconfirmed_tokens: 50_000,
            per_requester_concurrency: 32,
            per_requester_per_minute: 6_000,
            per_requester_burst: 200,
            anonymous_tokens_per_hour: 5_000,
            anonymous_concurrency: 2,
        }
    }
}

/// Who is asking, as far as the worker can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Proved by a valid request signature.
    Signed(PublicKey),
    /// Unsigned: the requester header is a claim. Receipts still name it (so an older
    /// router accepts them) but it is never charged.
    Anonymous(PublicKey),
}

impl Caller {
    /// The key the receipt names.
    pub fn requester(&self) -> PublicKey {
        match self {
            Caller::Signed(k) | Caller::Anonymous(k) => *k,
        }
    }

    /// Whether a valid signature proved the requester.
    pub fn is_signed(&self) -> bool {
        matches!(self, Caller::Signed(_))
    }

    /// How the receipt for this caller is first ledgered.
    pub fn standing(&self) -> Standing {
        match self {
            Caller::Signed(_) => Standing::Pending,
            Caller::Anonymous(_) => Standing::Anonymous,
        }
    }
}

/// The worker's gatekeeper; shared by chat and jobs.
pub struct Gate {
    policy: AccessPolicy,
    me: PublicKey,
    serve_only: HashSet<PublicKey>,
    trusted: HashSet<PublicKey>,
    replay: Mutex<ReplayCache>,
    /// Requests in flight and the tokens they hold, per requester; `None` is the
    /// anonymous pool. Credit checks happen under this lock, so requests arriving
    /// together are granted one after the other, each seeing the others' reservations.
    in_flight: Mutex<Flights<Option<PublicKey>>>,
    rates: Mutex<RateLimiter<Option<PublicKey>>>,
    /// (window start, tokens used) for unsigned requests.
    anonymous_used: Mutex<(u64, u64)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn refuse(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, kind, message)
}

impl Gate {
    /// `started_ms`: when the worker started; it refuses requests signed before then,
    /// whose nonces it cannot have remembered (see `replay`).
    pub fn new(policy: AccessPolicy, me: PublicKey, started_ms: u64) -> Arc<Self> {
        Arc::new(Gate {
            serve_only: policy.serve_only.iter().copied().collect(),
            trusted: policy.trusted.iter().copied().collect(),
            rates: Mutex::new(RateLimiter::new(RateLimit {
                per_minute: policy.per_requester_per_minute,
                burst: policy.per_requester_burst,
                max_clients: 10_000,
            })),
            replay: Mutex::new(ReplayCache::new(
                REQUEST_SKEW_MS,
                MAX_REMEMBERED,
                started_ms,
            )),
            in_flight: Mutex::new(Flights::default()),
            anonymous_used: Mutex::new((0, 0)),
            policy,
            me,
        })
    }

    pub fn policy(&self) -> &AccessPolicy {
        &self.policy
    }

    /// Who sent this request: a signed requester, or an anonymous claim. A signature that
    /// is present but wrong, stale or replayed is refused (401), never downgraded.
    pub fn identify(
        &self,
        link: Option<PublicKey>,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Caller, ApiError> {
        self.identify_proved(link, method, path, headers, body, now_ms)
            .map(|(caller, _)| caller)
    }

    /// [`Gate::identify`], with the proof of a signed request kept for its receipt, so
    /// the requester can recognise the request when the receipt is offered back to it.
    ///
    /// `link` is the key a peer link authenticated (the request came over iroh). That key
    /// is the requester: a request signature, if one comes too, must be by the same key,
    /// and no header can name anyone else.
    pub fn identify_proved(
        &self,
        link: Option<PublicKey>,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(Caller, Option<RequestProof>), ApiError> {
        let Some(linked) = link else {
            return self.identify_by_headers(method, path, headers, body, now_ms);
        };
        if let Some(claimed) = header(headers, REQUESTER_HEADER) {
            let named = PublicKey::parse(claimed.trim()).ok();
            if named != Some(linked) {
                return Err(link_mismatch(linked));
            }
        }
        let signed = [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER]
            .iter()
            .any(|h| headers.contains_key(*h));
        if !signed {
            // The router's tag, kept with the receipt so that router can recognise the
            // request if it has to take the receipt late; only it can check the tag.
            let proof = match header(headers, REQUEST_TAG_HEADER) {
                None => None,
                Some(text) => {
                    let tag = LinkRequestTag::parse(text)
                        .map_err(|e| ApiError::bad_request(format!("{REQUEST_TAG_HEADER}: {e}")))?;
                    let target = RequestTarget {
                        method,
                        path,
                        body,
                        worker: &self.me,
                    };
                    Some(RequestProof::of_tag(&tag, linked, target))
                }
            };
            return Ok((Caller::Signed(linked), proof));
        }
        let (caller, proof) = self.identify_by_headers(method, path, headers, body, now_ms)?;
        if caller != Caller::Signed(linked) {
            return Err(link_mismatch(linked));
        }
        Ok((caller, proof))
    }

    fn identify_by_headers(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(Caller, Option<RequestProof>), ApiError> {
        let claimed = header(headers, REQUESTER_HEADER).ok_or_else(|| {
            ApiError::bad_request(format!(
                "missing the {REQUESTER_HEADER} header: a lobstah worker serves lobstah routers; point your client at a router"
            ))
        })?;
        let parts = [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER].map(|h| header(headers, h));
        if parts.iter().all(Option::is_none) {
            let requester = PublicKey::parse(claimed.trim())
                .map_err(|e| ApiError::bad_request(format!("{REQUESTER_HEADER}: {e}")))?;
            if self.policy.require_signed {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "signature_required",
                    "this worker serves signed requests only; use a lobstah router that signs its requests",
                ));
            }
            return Ok((Caller::Anonymous(requester), None));
        }
        let [Some(ts), Some(nonce), Some(sig)] = parts else {
            return Err(bad_signature(format!(
                "a signed request needs all of {TIMESTAMP_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER}"
            )));
        };
        let auth = RequestAuth::parse(claimed, ts, nonce, sig)
            .map_err(|e| bad_signature(e.to_string()))?;
        auth.check_fresh(now_ms)
            .map_err(|e| bad_signature(e.to_string()))?;
        let target = RequestTarget {
            method,
            path,
            body,
            worker: &self.me,
        };
        // Verified through its proof: the body is hashed once for both.
        let proof = RequestProof::of(&auth, target);
        proof.verify().map_err(|_| {
            bad_signature(format!(
                "the request signature does not verify for requester {} (or it was signed for another worker, path or body)",
                auth.requester.short()
            ))
        })?;
        match lock(&self.replay).check_and_insert(&auth.nonce, auth.timestamp_ms, now_ms) {
            Ok(()) => Ok((Caller::Signed(auth.requester), Some(proof))),
            Err(ReplayError::Full) => Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                ReplayError::Full.to_string(),
            )
            .with_retry_after(5)),
            Err(e) => Err(bad_signature(e.to_string())),
        }
    }
}

/// A rough token count for a request body, before any work: a token is rarely shorter
/// than four bytes of JSON.
pub fn estimate_tokens(body: &[u8]) -> u64 {
    (body.len() as u64 / 4).max(1)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

fn link_mismatch(linked: PublicKey) -> ApiError {
    refuse(
        StatusCode::UNAUTHORIZED,
        "link_mismatch",
        format!(
            "this request came over the peer link of {}; it cannot speak for another key",
            linked.short()
        ),
    )
}

fn bad_signature(message: String) -> ApiError {
    refuse(StatusCode::UNAUTHORIZED, "invalid_signature", message)
}
