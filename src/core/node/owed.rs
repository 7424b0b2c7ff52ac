//! Keeps the snapshot's tables of what requesters owe this node's worker and what its
//! router has yet to confirm to workers. Reading them scans ledger tables, so it is
//! never done per request or per frame: commits of receipts and incoming confirmations
//! only mark them stale, and a timer re-reads stale tables at most once per
//! `OWED_PERIOD`, off the async threads. The router's confirmer drains its side without
//! telling anyone, so a non-empty router side is also re-read every `OWING_PERIOD`.
//! Ages are not refreshed at all: rows carry the oldest receipt's completion time and
//! front ends subtract it from their own clock.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::handle::Core;
use super::state::Labels;
use super::types::{CoreEvent, OwedRow, OwedView};
use crate::core::ledger::{Ledger, OwedReport};
use crate::core::protocol::PublicKey;
use crate::core::router::{Owing, RouterService};
use crate::core::store::StoreError;
use crate::core::worker::AccessPolicy;

/// How often a stale table may be re-read.
pub(super) const OWED_PERIOD: Duration = Duration::from_secs(1);
/// How often, in `OWED_PERIOD`s, a router side that is not empty is re-read anyway.
const OWING_PERIOD_TICKS: u32 = 5;

/// The reports as front ends see them, with labels and the cap the worker holds.
pub(super) fn view(
    report: &OwedReport,
    owing: &[Owing],
    labels: &Labels,
    policy: &AccessPolicy,
) -> OwedView {
    let label = |key: &PublicKey| labels.get(key).cloned().flatten();
    OwedView {
        rows: report
            .rows
            .iter()
            .map(|o| OwedRow {
                pubkey: o.requester.to_string(),
                label: label(&o.requester),
                tokens: o.tokens,
                receipts: o.receipts,
                oldest_completed_at_ms: o.oldest_completed_at_ms,
                trusted: policy.trusted.contains(&o.requester),
            })
            .collect(),
        cap: (policy.max_unconfirmed_tokens > 0).then_some(policy.max_unconfirmed_tokens),
        partial: report.partial,
        owing: owing
            .iter()
            .map(|o| OwedRow {
                pubkey: o.worker.to_string(),
                label: label(&o.worker),
                tokens: o.tokens,
                receipts: o.receipts,
                oldest_completed_at_ms: Some(o.oldest_completed_at_ms),
                trusted: false,
            })
            .collect(),
    }
}

/// Reads both tables now (at start, before anyone can ask for a snapshot).
pub(super) fn load(
    ledger: &Ledger,
    router: &RouterService,
    labels: &Labels,
    policy: &AccessPolicy,
) -> Result<OwedView, StoreError> {
    Ok(view(&ledger.owed()?, &router.owing()?, labels, policy))
}

/// What one refresh reads: both sides, or the router's alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Both,
    Owing,
}

/// What the timer re-reads at tick `n`, given whether a commit or a confirmation marked
/// the tables stale and whether the router side is empty.
fn due(n: u32, stale: bool, owing_empty: bool) -> Option<Read> {
    if stale {
        Some(Read::Both)
    } else if !owing_empty && n.is_multiple_of(OWING_PERIOD_TICKS) {
        Some(Read::Owing)
    } else {
        None
    }
}

/// Re-reads a stale table on a timer until `stop`; holds the core weakly.
pub(super) fn spawn(core: Weak<Core>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(OWED_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n: u32 = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            n = n.wrapping_add(1);
            let Some(core) = core.upgrade() else { break };
            let owing_empty = {
                let state = core.state.lock().unwrap_or_else(|p| p.into_inner());
                state.owed.owing.is_empty()
            };
            let stale = core.owed_stale.swap(false, Ordering::AcqRel);
            let Some(what) = due(n, stale, owing_empty) else {
                continue;
            };
            // Without a router here nothing confirms, so the router side cannot change:
            // re-reading it would decode the same receipts every second for nothing.
            let confirming = core.urls.router.is_some();
            if what == Read::Owing && !confirming {
                continue;
            }
            let (ledger, router) = (core.ledger.clone(), core.router.clone());
            let read = tokio::task::spawn_blocking(move || {
                let owed = match what {
                    Read::Both => Some(ledger.owed()?),
                    Read::Owing => None,
                };
                let owing = if confirming {
                    Some(router.owing()?)
                } else {
                    None
                };
                Ok::<_, StoreError>((owed, owing))
            })
            .await;
            let (report, owing) = match read {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read what requesters owe");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the owed-table read did not finish");
                    continue;
                }
            };
            let labels = core.labels();
            let mut owed = view(
                &report.unwrap_or_default(),
                owing.as_deref().unwrap_or_default(),
                &labels,
                &core.config.access,
            );
            core.update(|state| {
                if owing.is_none() {
                    owed.owing = state.owed.owing.clone();
                }
                if what == Read::Owing {
                    owed.rows = state.owed.rows.clone();
                    owed.partial = state.owed.partial;
                }
                if state.owed == owed {
                    return ((), Vec::new());
                }
                state.owed = owed.clone();
                ((), vec![CoreEvent::OwedChanged { owed }])
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::Owed;
    use crate::core::protocol::Identity;

    #[test]
    fn rows_carry_labels_trust_and_the_cap_that_is_on() {
        let (a, b) = (
            Identity::from_seed([2; 32]).public(),
            Identity::from_seed([3; 32]).public(),
        );
        let owed = |requester, tokens| Owed {
            requester,
            tokens,
            receipts: 1,
            oldest_completed_at_ms: Some(5),
        };
        let report = OwedReport {
            rows: vec![owed(a, 45_000), owed(b, 10)],
            partial: false,
        };
        let labels: Labels = [(a, Some("mac".to_string()))].into();
        let policy = AccessPolicy {
            trusted: vec![b],
            ..AccessPolicy::default()
        };
        let we_owe = [Owing {
            worker: a,
            tokens: 7,
            receipts: 1,
            oldest_completed_at_ms: 9,
        }];
        let v = view(&report, &we_owe, &labels, &policy);
        let owing: Vec<_> = v
            .owing
            .iter()
            .map(|r| (r.label.as_deref(), r.tokens, r.oldest_completed_at_ms))
            .collect();
        assert_eq!(owing, [(Some("mac"), 7, Some(9))]);
        assert_eq!(v.cap, Some(50_000));
        let got: Vec<_> = v
            .rows
            .iter()
            .map(|r| (r.label.as_deref(), r.trusted, r.near_cap(v.cap)))
            .collect();
        assert_eq!(got, [(Some("mac"), false, true), (None, true, false)]);
        let off = AccessPolicy {
            max_unconfirmed_tokens: 0,
            ..AccessPolicy::default()
        };
        let v = view(&report, &[], &labels, &off);
        assert_eq!(v.cap, None);
        assert!(!v.rows[0].near_cap(v.cap));
    }

    #[test]
    fn stale_tables_are_read_whole_and_a_waiting_router_side_now_and_then() {
        let cases = [
            (1, true, true, Some(Read::Both)),
            (1, true, false, Some(Read::Both)),
            (1, false, true, None),
            (1, false, false, None),
            (OWING_PERIOD_TICKS, false, false, Some(Read::Owing)),
            (OWING_PERIOD_TICKS, false, true, None),
        ];
        for (n, stale, owing_empty, expected) in cases {
            assert_eq!(
                due(n, stale, owing_empty),
                expected,
                "{n} {stale} {owing_empty}"
            );
        }
    }

    #[test]
    fn near_cap_starts_at_four_fifths() {
        let row = |tokens| OwedRow {
            pubkey: "k".into(),
            label: None,
            tokens,
            receipts: 1,
            oldest_completed_at_ms: None,
            trusted: false,
        };
        let cases = [(39_999, false), (40_000, true), (u64::MAX, true)];
        for (tokens, near) in cases {
            assert_eq!(row(tokens).near_cap(Some(50_000)), near, "{tokens}");
        }
    }
}
