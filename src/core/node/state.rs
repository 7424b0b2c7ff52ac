//! What the node remembers between events: the newest receipts with their role, the
//! balance, the net-credit history, advertising and engine status, the queue. It is
//! changed only together with publishing the matching event, under one lock, so a
//! snapshot's `seq` says exactly which receipts it holds.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::core::config::Config;
use crate::core::engine::Engine;
use crate::core::ledger::{Balance, Ledger, StoredReceipt};
use crate::core::protocol::{PublicKey, Receipt};
use crate::core::router::RouterService;
use crate::core::store::StoreError;
use crate::core::worker::Worker;

use super::types::{
    AdvertisingStatus, BalanceView, CoreEvent, EngineStatus, NET_HISTORY_POINTS, OwedView,
    QueueStatus, ReceiptRole, ReceiptRow, SNAPSHOT_RECEIPTS,
};

/// Peer labels by pubkey, to name the other side of a receipt.
pub(super) type Labels = HashMap<PublicKey, Option<String>>;

#[derive(Debug, Clone, Default)]
pub(super) struct State {
    /// Newest first, at most `SNAPSHOT_RECEIPTS`.
    pub receipts: VecDeque<ReceiptRow>,
    pub balance: BalanceView,
    /// Oldest first, at most `NET_HISTORY_POINTS`.
    pub net_history: VecDeque<i64>,
    pub advertising: AdvertisingStatus,
    pub engine: EngineStatus,
    pub queue: QueueStatus,
    pub owed: OwedView,
}

/// Our role in a receipt and the other side, or `None` if we are neither side (an
/// imported receipt of another node).
pub(super) fn role(me: &PublicKey, r: &Receipt) -> Option<(ReceiptRole, PublicKey)> {
    match (r.worker_pubkey == *me, r.requester_pubkey == *me) {
        (true, true) => Some((ReceiptRole::SelfServed, *me)),
        (true, false) => Some((ReceiptRole::Earned, r.requester_pubkey)),
        (false, true) => Some((ReceiptRole::Spent, r.worker_pubkey)),
        (false, false) => None,
    }
}

/// How a receipt moves our net credits.
fn delta(role: ReceiptRole, tokens: u64) -> i64 {
    let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
    match role {
        ReceiptRole::Earned => tokens,
        ReceiptRole::Spent => -tokens,
        ReceiptRole::SelfServed => 0,
    }
}

pub(super) fn balance_view(b: &Balance) -> BalanceView {
    BalanceView {
        earned: b.earned,
        spent: b.spent,
        pending_earned: b.pending_earned,
        pending_spent: b.pending_spent,
        net: b.net(),
        available: b.available(),
        receipts: b.receipts,
    }
}

fn row(me: &PublicKey, stored: &StoredReceipt, labels: &Labels) -> Option<ReceiptRow> {
    let r = stored.receipt.receipt();
    let (role, peer) = role(me, r)?;
    Some(ReceiptRow {
        seq: stored.seq,
        completed_at_ms: r.completed_at,
        role,
        peer: peer.to_string(),
        peer_label: labels.get(&peer).cloned().flatten(),
        model: r.model.clone(),
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
    })
}

fn tokens(row: &ReceiptRow) -> u64 {
    row.input_tokens.saturating_add(row.output_tokens)
}

impl State {
    /// The state a node starts from: its newest receipts and balance from the ledger.
    pub(super) fn load(
        ledger: &Ledger,
        me: &PublicKey,
        labels: &Labels,
    ) -> Result<Self, StoreError> {
        let balance = balance_view(&ledger.balance(me)?);
        let newest = ledger.newest(SNAPSHOT_RECEIPTS.max(NET_HISTORY_POINTS))?;
        let rows: Vec<ReceiptRow> = newest.iter().filter_map(|s| row(me, s, labels)).collect();
        // Walk back from today's net to the net after each earlier receipt.
        let mut net_history = VecDeque::with_capacity(NET_HISTORY_POINTS);
        let mut net = balance.net;
        for r in rows.iter().take(NET_HISTORY_POINTS) {
            net_history.push_front(net);
            net = net.saturating_sub(delta(r.role, tokens(r)));
        }
        Ok(State {
            receipts: rows.into_iter().take(SNAPSHOT_RECEIPTS).collect(),
            balance,
            net_history,
            ..State::default()
        })
    }

    /// Takes receipts just committed to the ledger (oldest first), `after` being our
    /// balance once they are in; returns one event per receipt with the balance after it.
    pub(super) fn apply_receipts(
        &mut self,
        me: &PublicKey,
        appended: &[StoredReceipt],
        after: &Balance,
        labels: &Labels,
    ) -> Vec<CoreEvent> {
        let rows: Vec<ReceiptRow> = appended.iter().filter_map(|s| row(me, s, labels)).collect();
        // The balance before the batch, so each event carries the balance after its own
        // receipt rather than after the whole batch.
        let mut earned = after.earned;
        let mut spent = after.spent;
        let mut count = after.receipts;
        for r in &rows {
            let t = tokens(r);
            if matches!(r.role, ReceiptRole::Earned | ReceiptRole::SelfServed) {
                earned = earned.saturating_sub(t);
            }
            if matches!(r.role, ReceiptRole::Spent | ReceiptRole::SelfServed) {
                spent = spent.saturating_sub(t);
            }
            count = count.saturating_sub(1);
        }
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let t = tokens(&r);
            if matches!(r.role, ReceiptRole::Earned | ReceiptRole::SelfServed) {
                earned = earned.saturating_add(t);
            }
            if matches!(r.role, ReceiptRole::Spent | ReceiptRole::SelfServed) {
                spent = spent.saturating_add(t);
            }
            count += 1;
            let balance = balance_view(&Balance {
                pubkey: *me,
                earned,
                spent,
                receipts: count,
                // Settling is not replayed receipt by receipt: what is still unsettled
                // now is the best figure for every step in between.
                pending_earned: after.pending_earned.min(earned),
                pending_spent: after.pending_spent.min(spent),
                anonymous_spent: after
                    .anonymous_spent
                    .min(spent - after.pending_spent.min(spent)),
            });
            self.balance = balance;
            if self.net_history.len() == NET_HISTORY_POINTS {
                self.net_history.pop_front();
            }
            self.net_history.push_back(balance.net);
            if self.receipts.len() == SNAPSHOT_RECEIPTS {
                self.receipts.pop_back();
            }
            self.receipts.push_front(r.clone());
            events.push(CoreEvent::Receipt {
                receipt: r,
                balance,
            });
        }
        self.balance = balance_view(after);
        events
    }
}

/// What the snapshot shows before any event: the ledger's receipts and balance, the
/// owed table, the engine not yet asked, the queue, and advertising off (with where it
/// would go, so the console's confirmation can say).
pub(super) fn initial(
    config: &Config,
    me: &PublicKey,
    ledger: &Ledger,
    router: &RouterService,
    worker: Option<&Worker>,
    engine: &Option<(Arc<dyn Engine>, Option<String>)>,
) -> Result<State, StoreError> {
    let labels: Labels = router
        .peer_list()
        .into_iter()
        .map(|p| (p.pubkey, p.label))
        .collect();
    let mut state = State::load(ledger, me, &labels)?;
    state.owed = super::owed::load(ledger, router, &labels, &config.access)?;
    state.engine = match engine {
        Some((engine, url)) => EngineStatus {
            kind: engine.kind().to_string(),
            url: url.clone(),
            ok: false,
            models: Vec::new(),
            error: Some("not asked yet".into()),
        },
        None => EngineStatus {
            kind: super::start::NO_ENGINE.into(),
            error: Some("this node runs no worker".into()),
            ..EngineStatus::default()
        },
    };
    state.queue = super::monitor::queue_status(worker, router);
    let nostr = config
        .discovery
        .nostr_relays
        .iter()
        .filter(|_| config.advertise.publish_via_nostr);
    state.advertising = AdvertisingStatus {
        on: false,
        targets: config.trackers.iter().chain(nostr).cloned().collect(),
        last_heartbeat: None,
    };
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::{AcceptRules, Party, accept};
    use crate::core::protocol::{Identity, SignedReceipt};

    fn receipt(worker: &Identity, requester: &PublicKey, tokens: u64, nonce: u8) -> SignedReceipt {
        let r = Receipt {
            version: 1,
            job_id: format!("job-{nonce}"),
            nonce: format!("{nonce:032x}"),
            requester_pubkey: *requester,
            worker_pubkey: worker.public(),
            model: "m".into(),
            input_tokens: tokens,
            output_tokens: 0,
            started_at: 1,
            completed_at: 2,
        };
        SignedReceipt::sign(r, worker).unwrap()
    }

    #[test]
    fn roles_balances_and_history_follow_the_ledger() {
        let me = Identity::from_seed([1; 32]);
        let peer = Identity::from_seed([2; 32]);
        let ledger = Ledger::new(crate::core::store::in_memory().unwrap()).unwrap();
        let mine = me.public();
        let signed = [
            receipt(&me, &peer.public(), 100, 1), // earned
            receipt(&peer, &mine, 30, 2),         // spent
            receipt(&me, &mine, 7, 3),            // self-served
        ];
        let verified: Vec<_> = signed
            .iter()
            .map(|s| {
                accept(
                    s.clone(),
                    &AcceptRules {
                        now_ms: None,
                        party: Party::Any,
                    },
                )
                .unwrap()
            })
            .collect();
        let mut state = State::default();
        let labels: Labels = [(peer.public(), Some("friend".to_string()))].into();
        let outcomes = ledger.append(&verified).unwrap();
        let stored: Vec<StoredReceipt> = outcomes
            .iter()
            .zip(&signed)
            .map(|(o, s)| match o {
                crate::core::ledger::AppendOutcome::Appended { seq } => StoredReceipt {
                    seq: *seq,
                    receipt: s.clone(),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        let after = ledger.balance(&mine).unwrap();
        let events = state.apply_receipts(&mine, &stored, &after, &labels);
        let got: Vec<(ReceiptRole, Option<String>, i64, u64)> = events
            .iter()
            .map(|e| match e {
                CoreEvent::Receipt { receipt, balance } => (
                    receipt.role,
                    receipt.peer_label.clone(),
                    balance.net,
                    balance.receipts,
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (ReceiptRole::Earned, Some("friend".into()), 100, 1),
                (ReceiptRole::Spent, Some("friend".into()), 70, 2),
                (ReceiptRole::SelfServed, None, 70, 3),
            ]
        );
        assert_eq!(state.balance.net, 70);
        assert_eq!(Vec::from(state.net_history.clone()), [100, 70, 70]);
        assert_eq!(state.receipts.front().map(|r| r.seq), Some(3));
        // A node started later rebuilds the same view from the ledger.
        let loaded = State::load(&ledger, &mine, &labels).unwrap();
        assert_eq!(loaded.net_history, state.net_history);
        assert_eq!(loaded.receipts, state.receipts);
        assert_eq!(loaded.balance, state.balance);
    }
}
