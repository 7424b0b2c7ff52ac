//! Who the worker serves, and how much: the requester's identity is taken only from a
//! valid request signature; unsigned requests (the existing network's routers) are
//! anonymous and share a small quota; signed ones are held to the requester's credit in
//! this worker's ledger, to a cap on earnings it has not confirmed, and to per-requester
//! concurrency and rate limits. Every refusal happens before the engine sees the request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{HeaderMap, StatusCode};

use super::REQUESTER_HEADER;
use super::replay::{MAX_REMEMBERED, ReplayCache, ReplayError};
use crate::core::api_error::ApiError;
use crate::core::ledger::{Ledger, Standing};
use crate::core::protocol::{
    NONCE_HEADER, PublicKey, REQUEST_SKEW_MS, RequestAuth, RequestProof, RequestTarget,
    SIGNATURE_HEADER, TIMESTAMP_HEADER,
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
    /// Requests in flight per requester; `None` is the anonymous pool.
    in_flight: Mutex<HashMap<Option<PublicKey>, usize>>,
    rates: Mutex<RateLimiter<Option<PublicKey>>>,
    /// (window start, tokens used) for unsigned requests.
    anonymous_used: Mutex<(u64, u64)>,
}

/// A request admitted by the gate; holds its requester's in-flight slot until dropped.
pub struct Pass {
    gate: Arc<Gate>,
    key: Option<Option<PublicKey>>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut map = lock(&self.gate.in_flight);
            if let Some(n) = map.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }
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
            in_flight: Mutex::new(HashMap::new()),
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
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Caller, ApiError> {
        self.identify_proved(method, path, headers, body, now_ms)
            .map(|(caller, _)| caller)
    }

    /// [`Gate::identify`], with the proof of a signed request kept for its receipt, so
    /// the requester can recognise the request when the receipt is offered back to it.
    pub fn identify_proved(
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

    /// Admits `caller` for a request estimated at `estimated_tokens`, or says why not.
    pub fn admit(
        self: &Arc<Self>,
        caller: Caller,
        estimated_tokens: u64,
        ledger: &Ledger,
        now_ms: u64,
    ) -> Result<Pass, ApiError> {
        let key = match caller {
            Caller::Signed(k) if k == self.me => {
                // Our own router: nothing to meter between us and ourselves.
                return Ok(Pass {
                    gate: self.clone(),
                    key: None,
                });
            }
            Caller::Signed(k) => {
                if !self.serve_only.is_empty() && !self.serve_only.contains(&k) {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "requester_not_allowed",
                        format!(
                            "this worker serves only its operator's friends, and {} is not one",
                            k.short()
                        ),
                    ));
                }
                if !self.trusted.contains(&k) && !self.serve_only.contains(&k) {
                    self.check_credit(k, estimated_tokens, ledger)?;
                }
                Some(k)
            }
            Caller::Anonymous(_) => {
                if !self.serve_only.is_empty() || self.policy.anonymous_tokens_per_hour == 0 {
                    return Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "signature_required",
                        "this worker does not serve unsigned requests; use a lobstah router that signs its requests",
                    ));
                }
                let mut used = lock(&self.anonymous_used);
                if now_ms.saturating_sub(used.0) >= ANONYMOUS_WINDOW_MS {
                    *used = (now_ms, 0);
                }
                if used.1 >= self.policy.anonymous_tokens_per_hour {
                    let wait = (used.0 + ANONYMOUS_WINDOW_MS).saturating_sub(now_ms);
                    return Err(refuse(
                        StatusCode::TOO_MANY_REQUESTS,
                        "anonymous_quota_exhausted",
                        format!(
                            "unsigned requests have used this hour's {} tokens; sign requests (a current lobstah router does) to be served on credit",
                            self.policy.anonymous_tokens_per_hour
                        ),
                    )
                    .with_retry_after(wait.div_ceil(1000).max(1)));
                }
                None
            }
        };
        let limit = match key {
            Some(_) => self.policy.per_requester_concurrency,
            None => self.policy.anonymous_concurrency.max(1),
        };
        {
            let mut map = lock(&self.in_flight);
            // Counted only once admitted: a refused request leaves no entry behind.
            let n = map.get(&key).copied().unwrap_or(0);
            if limit > 0 && n >= limit {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_in_flight",
                    format!("this requester already has {n} requests in flight here (the limit is {limit})"),
                )
                .with_retry_after(1));
            }
            if let Err(limited) = lock(&self.rates).check_key(key, now_ms) {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "this requester is over {} requests a minute here",
                        self.policy.per_requester_per_minute
                    ),
                )
                .with_retry_after(limited.retry_after_secs()));
            }
            *map.entry(key).or_insert(0) += 1;
        }
        Ok(Pass {
            gate: self.clone(),
            key: Some(key),
        })
    }

    fn check_credit(
        &self,
        requester: PublicKey,
        estimated: u64,
        ledger: &Ledger,
    ) -> Result<(), ApiError> {
        let balance = ledger.balance(&requester).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                e.to_string(),
            )
        })?;
        let cap = self.policy.max_unconfirmed_tokens;
        if cap > 0 && balance.pending_spent >= cap {
            return Err(refuse(
                StatusCode::PAYMENT_REQUIRED,
                "unconfirmed_exposure",
                format!(
                    "{} tokens served to you here are not confirmed yet (the cap is {cap}); send the confirmations before asking for more",
                    balance.pending_spent
                ),
            ));
        }
        let available = balance.available();
        if available < i64::try_from(estimated).unwrap_or(i64::MAX) {
            return Err(refuse(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_credit",
                format!(
                    "your credit at this worker is {available} tokens and this request needs about {estimated}; serve requests to earn more"
                ),
            ));
        }
        Ok(())
    }

    /// Counts tokens an unsigned request used against the anonymous quota.
    pub fn charge_anonymous(&self, tokens: u64, now_ms: u64) {
        let mut used = lock(&self.anonymous_used);
        if now_ms.saturating_sub(used.0) >= ANONYMOUS_WINDOW_MS {
            *used = (now_ms, 0);
        }
        used.1 = used.1.saturating_add(tokens);
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

fn bad_signature(message: String) -> ApiError {
    refuse(StatusCode::UNAUTHORIZED, "invalid_signature", message)
}
