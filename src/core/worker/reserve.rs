//! Paying before work, as arithmetic: a request reserves its prompt and its output
//! allowance before the engine sees it, the reservations of every request in flight
//! count against the requester's credit (or the anonymous quota) at once, and what is
//! billed afterwards never exceeds what was reserved. Pure, so the rules are tested
//! without a worker; the gate holds the state.

use std::collections::HashMap;
use std::hash::Hash;

use crate::core::engine::Usage;

/// Default for the worker's `max_output_tokens`: a long chat answer or a page of code
/// fits, and a new requester's 10,000-token allowance still pays for two such answers
/// at once; an operator serving long-form work raises it.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4_096;

/// What one admitted request may cost: its prompt (estimated from the body) and the
/// most output tokens the engine is allowed to produce for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub prompt: u64,
    pub output: u64,
}

impl Grant {
    /// The tokens this request holds while it runs.
    pub fn cost(&self) -> u64 {
        self.prompt.saturating_add(self.output)
    }

    /// The usage a receipt may bill: the output never beyond the allowance (an engine
    /// that ignored its limit gave the rest away), and the total never beyond the
    /// reservation (a prompt longer than estimated is the worker's loss, not a debt
    /// the requester never agreed to).
    pub fn bill(&self, usage: Usage) -> Usage {
        let output_tokens = usage.output_tokens.min(self.output);
        let input_tokens = usage
            .input_tokens
            .min(self.cost().saturating_sub(output_tokens));
        Usage {
            input_tokens,
            output_tokens,
            estimated: usage.estimated,
        }
    }
}

/// Why a request cannot be granted: `free` tokens (credit or quota left, less what
/// requests in flight hold) cannot pay for `needed`, its prompt and one token of answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shortfall {
    pub free: i64,
    pub needed: u64,
}

/// The output a request wants: its own limit lowered to the worker's cap, or the cap
/// when it names none (an engine without a limit of its own would otherwise run on).
pub fn wanted_output(requested: Option<u64>, cap: u64) -> u64 {
    requested.map_or(cap, |asked| asked.min(cap))
}

/// Grants a request against `free` tokens: the prompt in full and as much of the
/// wanted output as fits, so the last of a credit still buys a (shorter) answer. An
/// answer cut at its allowance ends as one cut at `max_tokens` does
/// (`finish_reason: "length"`). Refused when not even the prompt and one output token
/// fit: after every granted request completes, `free` is never below zero.
pub(super) fn grant(free: i64, prompt: u64, wanted: u64) -> Result<Grant, Shortfall> {
    let needed = prompt.saturating_add(wanted.min(1));
    let free_tokens = u64::try_from(free).unwrap_or(0);
    if free < 0 || free_tokens < needed {
        return Err(Shortfall { free, needed });
    }
    Ok(Grant {
        prompt,
        output: wanted.min(free_tokens - prompt),
    })
}

/// One requester's requests in flight and the tokens they hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Flight {
    pub requests: usize,
    pub reserved: u64,
}

/// Requests in flight per key; an entry disappears when its last request ends, so
/// refused or finished requesters leave nothing behind.
#[derive(Debug)]
pub(super) struct Flights<K> {
    by_key: HashMap<K, Flight>,
}

impl<K> Default for Flights<K> {
    fn default() -> Self {
        Flights {
            by_key: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq> Flights<K> {
    pub(super) fn of(&self, key: &K) -> Flight {
        self.by_key.get(key).copied().unwrap_or_default()
    }

    /// Holds `tokens` for `key`; `counted` says whether the request also takes one of
    /// the requester's concurrency places (a job's run does not: it has an engine slot).
    pub(super) fn take(&mut self, key: K, counted: bool, tokens: u64) {
        let flight = self.by_key.entry(key).or_default();
        flight.requests += usize::from(counted);
        flight.reserved = flight.reserved.saturating_add(tokens);
    }

    /// Gives back what `take` held.
    pub(super) fn release(&mut self, key: &K, counted: bool, tokens: u64) {
        if let Some(flight) = self.by_key.get_mut(key) {
            flight.requests = flight.requests.saturating_sub(usize::from(counted));
            flight.reserved = flight.reserved.saturating_sub(tokens);
            if *flight == Flight::default() {
                self.by_key.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_output_is_the_request_lowered_to_the_cap() {
        for (requested, cap, want) in [
            (None, 4096, 4096),
            (Some(10), 4096, 10),
            (Some(u64::MAX), 4096, 4096),
            (Some(0), 4096, 0),
        ] {
            assert_eq!(wanted_output(requested, cap), want, "{requested:?} {cap}");
        }
    }

    #[test]
    fn grant_table() {
        // (free, prompt, wanted) -> granted output, or refused
        let cases: [(i64, u64, u64, Option<u64>); 9] = [
            (10_000, 20, 4096, Some(4096)),
            (4_116, 20, 4096, Some(4096)),
            (1_000, 20, 4096, Some(980)),
            (21, 20, 4096, Some(1)),
            (20, 20, 4096, None),
            (20, 20, 0, Some(0)),
            (0, 0, 0, Some(0)),
            (-5, 1, 10, None),
            (i64::MAX, u64::MAX, u64::MAX, None),
        ];
        for (free, prompt, wanted, want) in cases {
            let got = grant(free, prompt, wanted);
            match (got, want) {
                (Ok(g), Some(output)) => {
                    assert_eq!(g, Grant { prompt, output }, "{free} {prompt} {wanted}");
                    assert!(i128::from(g.cost()) <= i128::from(free));
                }
                (Err(s), None) => assert_eq!(s.free, free),
                (got, want) => panic!("{free} {prompt} {wanted}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn billing_never_exceeds_the_reservation() {
        let g = Grant {
            prompt: 20,
            output: 100,
        };
        let usage = |input_tokens, output_tokens| Usage {
            input_tokens,
            output_tokens,
            estimated: false,
        };
        for ((input, output), (billed_in, billed_out)) in [
            ((10, 50), (10, 50)),
            ((10, 32_768), (10, 100)),
            ((60, 50), (60, 50)),
            ((500, 100), (20, 100)),
            ((u64::MAX, u64::MAX), (20, 100)),
        ] {
            let billed = g.bill(usage(input, output));
            assert_eq!(
                (billed.input_tokens, billed.output_tokens),
                (billed_in, billed_out)
            );
            assert!(billed.input_tokens + billed.output_tokens <= g.cost());
        }
    }

    /// 32 requests at once from one requester, each granted against what the ones
    /// before still hold, then all billed in full: the requester ends at its floor or
    /// above, whatever order they finish in.
    #[test]
    fn concurrent_grants_never_overdraw() {
        let credit: i64 = 10_000;
        let mut flights: Flights<u8> = Flights::default();
        let mut granted = Vec::new();
        for _ in 0..32 {
            let free = credit - i64::try_from(flights.of(&1).reserved).unwrap();
            if let Ok(g) = grant(free, 30, wanted_output(Some(u64::MAX), 4096)) {
                flights.take(1, true, g.cost());
                granted.push(g);
            }
        }
        assert_eq!(granted.len(), 3, "{granted:?}");
        let spent: u64 = granted.iter().map(Grant::cost).sum();
        assert!(spent <= 10_000, "{spent}");
        assert_eq!(flights.of(&1).requests, 3);
        for g in &granted {
            flights.release(&1, true, g.cost());
        }
        assert_eq!(flights.of(&1), Flight::default());
        assert!(flights.by_key.is_empty(), "nothing left behind");
    }

    #[test]
    fn a_reservation_without_a_place_is_released_alone() {
        let mut flights: Flights<u8> = Flights::default();
        flights.take(7, true, 100);
        flights.take(7, false, 50);
        assert_eq!(
            flights.of(&7),
            Flight {
                requests: 1,
                reserved: 150
            }
        );
        flights.release(&7, false, 50);
        assert_eq!(
            flights.of(&7),
            Flight {
                requests: 1,
                reserved: 100
            }
        );
        flights.release(&7, true, 100);
        assert!(flights.by_key.is_empty());
    }
}
