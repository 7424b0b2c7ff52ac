//! How much a request may cost, paid for before work: each admitted request reserves
//! its prompt and its output allowance (see `reserve`), and a requester's reservations
//! in flight count against its credit (or the anonymous pool's hourly quota) at once,
//! so requests sent together cannot all pass before any is charged. The reservation
//! lasts as long as the [`Pass`], which the caller drops once the receipt is in the
//! ledger: the real charge replaces the reservation, with no moment where neither counts.

use std::sync::Arc;

use axum::http::StatusCode;

use super::{ANONYMOUS_WINDOW_MS, Caller, Gate, lock, refuse};
use crate::core::api_error::ApiError;
use crate::core::engine::Usage;
use crate::core::ledger::Ledger;
use crate::core::protocol::PublicKey;
use crate::core::worker::reserve::{Grant, grant};

/// A request admitted by the gate; holds its requester's in-flight place and its
/// reservation until dropped, however the request ends (answered, failed, client gone).
pub struct Pass {
    gate: Arc<Gate>,
    /// The in-flight entry held; `None` for our own router, which is not metered.
    key: Option<Option<PublicKey>>,
    /// Whether the pass holds one of the requester's concurrency places.
    counted: bool,
    grant: Grant,
}

impl Pass {
    /// What the request may cost: its prompt and its output allowance.
    pub fn grant(&self) -> Grant {
        self.grant
    }

    /// The usage its receipt may bill (never more than was reserved).
    pub fn bill(&self, usage: Usage) -> Usage {
        self.grant.bill(usage)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.gate.in_flight).release(&key, self.counted, self.grant.cost());
        }
    }
}

impl Gate {
    /// Admits `caller` for a request whose prompt is estimated at `prompt` tokens and
    /// which wants up to `wanted_output` tokens of answer, or says why not. The pass's
    /// grant may allow less output than wanted: what the requester can still pay for.
    pub fn admit(
        self: &Arc<Self>,
        caller: Caller,
        prompt: u64,
        wanted_output: u64,
        ledger: &Ledger,
        now_ms: u64,
    ) -> Result<Pass, ApiError> {
        self.hold(caller, prompt, wanted_output, ledger, now_ms, true)
    }

    /// Reserves for a job's run: a queued job holds nothing (its submission was only
    /// checked), so it is paid for when it starts, by the same rule as a chat request,
    /// without the per-requester concurrency and rate limits its submission passed.
    pub fn reserve_run(
        self: &Arc<Self>,
        caller: Caller,
        prompt: u64,
        wanted_output: u64,
        ledger: &Ledger,
        now_ms: u64,
    ) -> Result<Pass, ApiError> {
        self.hold(caller, prompt, wanted_output, ledger, now_ms, false)
    }

    fn hold(
        self: &Arc<Self>,
        caller: Caller,
        prompt: u64,
        wanted_output: u64,
        ledger: &Ledger,
        now_ms: u64,
        counted: bool,
    ) -> Result<Pass, ApiError> {
        let unmetered = Grant {
            prompt,
            output: wanted_output,
        };
        let (key, metered) = match caller {
            Caller::Signed(k) if k == self.me => {
                // Our own router: nothing to meter between us and ourselves.
                return Ok(Pass {
                    gate: self.clone(),
                    key: None,
                    counted,
                    grant: unmetered,
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
                (
                    Some(k),
                    !self.trusted.contains(&k) && !self.serve_only.contains(&k),
                )
            }
            Caller::Anonymous(_) => {
                if !self.serve_only.is_empty() || self.policy.anonymous_tokens_per_hour == 0 {
                    return Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "signature_required",
                        "this worker does not serve unsigned requests; use a lobstah router that signs its requests",
                    ));
                }
                (None, true)
            }
        };
        let mut flights = lock(&self.in_flight);
        let held = flights.of(&key);
        let granted = match (metered, key) {
            (false, _) => unmetered,
            (true, Some(k)) => {
                self.credit_grant(k, held.reserved, prompt, wanted_output, ledger)?
            }
            (true, None) => self.anonymous_grant(held.reserved, prompt, wanted_output, now_ms)?,
        };
        if counted {
            let limit = match key {
                Some(_) => self.policy.per_requester_concurrency,
                None => self.policy.anonymous_concurrency.max(1),
            };
            let n = held.requests;
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
        }
        // Held only once admitted: a refused request leaves no entry behind.
        flights.take(key, counted, granted.cost());
        Ok(Pass {
            gate: self.clone(),
            key: Some(key),
            counted,
            grant: granted,
        })
    }

    /// The grant a signed requester's credit pays for, given the tokens its other
    /// requests in flight hold.
    fn credit_grant(
        &self,
        requester: PublicKey,
        reserved: u64,
        prompt: u64,
        wanted_output: u64,
        ledger: &Ledger,
    ) -> Result<Grant, ApiError> {
        let balance = ledger.balance(&requester).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                e.to_string(),
            )
        })?;
        let cap = self.policy.max_unconfirmed_tokens;
        // What is in flight will be owed unconfirmed too.
        let exposure = balance.pending_spent.saturating_add(reserved);
        if cap > 0 && exposure >= cap {
            return Err(refuse(
                StatusCode::PAYMENT_REQUIRED,
                "unconfirmed_exposure",
                format!(
                    "{exposure} tokens served or being served to you here are not confirmed yet (the cap is {cap}); send the confirmations before asking for more"
                ),
            ));
        }
        let available = balance.available();
        let free = available.saturating_sub(i64::try_from(reserved).unwrap_or(i64::MAX));
        grant(free, prompt, wanted_output).map_err(|short| {
            refuse(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_credit",
                format!(
                    "your credit at this worker is {available} tokens, {reserved} of them held by your requests in flight, and this request needs at least {} (its prompt and one token of answer); serve requests to earn more",
                    short.needed
                ),
            )
        })
    }

    /// The grant the anonymous pool's hourly quota pays for.
    fn anonymous_grant(
        &self,
        reserved: u64,
        prompt: u64,
        wanted_output: u64,
        now_ms: u64,
    ) -> Result<Grant, ApiError> {
        let quota = self.policy.anonymous_tokens_per_hour;
        let mut used = lock(&self.anonymous_used);
        if now_ms.saturating_sub(used.0) >= ANONYMOUS_WINDOW_MS {
            *used = (now_ms, 0);
        }
        let left = quota.saturating_sub(used.1);
        let free = i64::try_from(left.saturating_sub(reserved)).unwrap_or(i64::MAX);
        grant(free, prompt, wanted_output).map_err(|short| {
            // Held by requests in flight: back soon. Used up: back when the hour turns.
            let wait_ms = if left >= short.needed {
                1_000
            } else {
                (used.0 + ANONYMOUS_WINDOW_MS).saturating_sub(now_ms)
            };
            refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "anonymous_quota_exhausted",
                format!(
                    "unsigned requests have used or hold this hour's {quota} tokens; sign requests (a current lobstah router does) to be served on credit"
                ),
            )
            .with_retry_after(wait_ms.div_ceil(1000).max(1))
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::Identity;
    use crate::core::worker::AccessPolicy;

    fn gate() -> (Arc<Gate>, Ledger) {
        let ledger = Ledger::new(crate::core::store::in_memory().unwrap()).unwrap();
        let me = Identity::from_seed([1; 32]).public();
        (Gate::new(AccessPolicy::default(), me, 0), ledger)
    }

    fn kind(refused: Result<Pass, ApiError>) -> &'static str {
        refused.err().map_or("admitted", |e| e.kind)
    }

    #[test]
    fn passes_in_flight_hold_credit_until_dropped() {
        let (gate, ledger) = gate();
        let them = Caller::Signed(Identity::from_seed([2; 32]).public());
        let first = gate.admit(them, 100, 6_000, &ledger, 0).unwrap();
        assert_eq!(first.grant().output, 6_000);
        // What is left after the first reservation, not the whole credit.
        let second = gate.admit(them, 100, 6_000, &ledger, 0).unwrap();
        assert_eq!(second.grant().output, 10_000 - 6_100 - 100);
        assert_eq!(
            kind(gate.admit(them, 100, 6_000, &ledger, 0)),
            "insufficient_credit"
        );
        drop(first);
        let third = gate.admit(them, 100, 6_000, &ledger, 0).unwrap();
        assert_eq!(
            third.grant().output,
            6_000,
            "the first's reservation came back"
        );
        drop((second, third));
        assert_eq!(
            lock(&gate.in_flight).of(&Some(them.requester())).reserved,
            0
        );
    }

    #[test]
    fn the_anonymous_quota_counts_what_is_in_flight_and_what_was_used() {
        let (gate, ledger) = gate();
        let anyone = Caller::Anonymous(Identity::from_seed([3; 32]).public());
        let first = gate.admit(anyone, 10, u64::MAX, &ledger, 0).unwrap();
        assert_eq!(
            first.grant().cost(),
            5_000,
            "one request gets the quota, no more"
        );
        let refused = gate.admit(anyone, 10, 100, &ledger, 0);
        let retry = refused.as_ref().err().and_then(|e| e.retry_after_s);
        assert_eq!(kind(refused), "anonymous_quota_exhausted");
        assert_eq!(retry, Some(1), "held by a request in flight: back soon");
        gate.charge_anonymous(5_000, 0);
        drop(first);
        let refused = gate.admit(anyone, 10, 100, &ledger, 1_000);
        let retry = refused.as_ref().err().and_then(|e| e.retry_after_s);
        assert_eq!(retry, Some(3_599), "used up: back when the hour turns");
        assert!(gate.admit(anyone, 10, 100, &ledger, 3_600_000).is_ok());
    }

    #[test]
    fn a_jobs_run_reserves_without_taking_a_place() {
        let (gate, ledger) = gate();
        let them = Caller::Signed(Identity::from_seed([4; 32]).public());
        let run = gate.reserve_run(them, 10, 4_096, &ledger, 0).unwrap();
        let flight = lock(&gate.in_flight).of(&Some(them.requester()));
        assert_eq!((flight.requests, flight.reserved), (0, 4_106));
        drop(run);
        assert_eq!(
            lock(&gate.in_flight).of(&Some(them.requester())).reserved,
            0
        );
    }
}
