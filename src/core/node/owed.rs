//! Keeps the snapshot's table of what requesters owe this node's worker. Reading it
//! scans the ledger's unconfirmed set, so it is never done per request or per frame:
//! commits of earned receipts and incoming confirmations only mark it stale, and a
//! timer re-reads a stale table at most once per `OWED_PERIOD`, off the async threads.
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
use crate::core::store::StoreError;
use crate::core::worker::AccessPolicy;

/// How often a stale table may be re-read.
pub(super) const OWED_PERIOD: Duration = Duration::from_secs(1);

/// The report as front ends see it, with labels and the cap it is measured against.
pub(super) fn view(report: &OwedReport, labels: &Labels, policy: &AccessPolicy) -> OwedView {
    OwedView {
        rows: report
            .rows
            .iter()
            .map(|o| OwedRow {
                pubkey: o.requester.to_string(),
                label: labels.get(&o.requester).cloned().flatten(),
                tokens: o.tokens,
                receipts: o.receipts,
                oldest_completed_at_ms: o.oldest_completed_at_ms,
                trusted: policy.trusted.contains(&o.requester),
            })
            .collect(),
        cap: (policy.max_unconfirmed_tokens > 0).then_some(policy.max_unconfirmed_tokens),
        partial: report.partial,
    }
}

/// Reads the table now (at start, before anyone can ask for a snapshot).
pub(super) fn load(
    ledger: &Ledger,
    labels: &Labels,
    policy: &AccessPolicy,
) -> Result<OwedView, StoreError> {
    Ok(view(&ledger.owed()?, labels, policy))
}

/// Re-reads a stale table on a timer until `stop`; holds the core weakly.
pub(super) fn spawn(core: Weak<Core>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(OWED_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Some(core) = core.upgrade() else { break };
            if !core.owed_stale.swap(false, Ordering::AcqRel) {
                continue;
            }
            let ledger = core.ledger.clone();
            let read = tokio::task::spawn_blocking(move || ledger.owed()).await;
            let report = match read {
                Ok(Ok(report)) => report,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read what requesters owe");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the owed-table read did not finish");
                    continue;
                }
            };
            let owed = view(&report, &core.labels(), &core.config.access);
            core.update(|state| {
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
        let v = view(&report, &labels, &policy);
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
        let v = view(&report, &labels, &off);
        assert_eq!(v.cap, None);
        assert!(!v.rows[0].near_cap(v.cap));
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
