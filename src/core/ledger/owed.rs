//! What requesters still owe this node's worker: per requester, the tokens on receipts
//! it was served and has not counter-signed, how many receipts that is and when the
//! oldest of them completed, so an operator sees a relationship going bad before the
//! credit gate refuses the requester (402).
//!
//! Only a worker ledgers a receipt as pending (for a signed request), so every pending
//! receipt here was signed by this node. The amounts are the very figure the gate
//! compares with its cap, `Balance::pending_spent`, from the same tables. Counts and
//! ages need the receipts themselves: the unconfirmed set is scanned (as
//! `unsettled_for` does) and at most `MAX_OWED_RECEIPTS` of the pending ones are read,
//! oldest first, so the oldest age stays right when the counts are cut short. Callers
//! refresh this on a timer, never per frame or per request.

use std::collections::HashMap;

use redb::ReadableTable;
use serde::Serialize;

use super::keys::KEYS;
use super::record::decode_row;
use super::schema::{BALANCES, RECEIPTS, UNCONFIRMED, UNCONFIRMED_BALANCES};
use super::{Balance, Ledger, Standing, migrate, open_existing, standing};
use crate::core::protocol::PublicKey;
use crate::core::store::StoreError;

/// Pending receipts read per query; beyond it counts are partial (amounts and the
/// oldest age stay exact). Under the default cap of 50,000 unconfirmed tokens per
/// requester, real backlogs are far below this.
pub const MAX_OWED_RECEIPTS: usize = 20_000;
/// Unconfirmed nonces looked at per query: receipts for unsigned requests stay in that
/// set for good, and years of them must not make one query unbounded.
const MAX_SCANNED_NONCES: usize = 500_000;

/// Unconfirmed tokens one requester owes this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Owed {
    pub requester: PublicKey,
    /// What the credit gate compares with its cap.
    pub tokens: u64,
    /// The pending receipts behind `tokens` that were read (all unless `partial`).
    pub receipts: u64,
    /// `completedAt` of the oldest of them.
    pub oldest_completed_at_ms: Option<u64>,
}

impl Owed {
    /// How long the oldest receipt has waited, by the caller's clock.
    pub fn age_ms(&self, now_ms: u64) -> Option<u64> {
        self.oldest_completed_at_ms
            .map(|oldest| now_ms.saturating_sub(oldest))
    }
}

/// Everything owed to this node, largest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OwedReport {
    pub rows: Vec<Owed>,
    /// True when the backlog was too large to read whole: some counts are low.
    pub partial: bool,
}

impl Ledger {
    /// What each requester owes on receipts it has not counter-signed.
    pub fn owed(&self) -> Result<OwedReport, StoreError> {
        self.owed_reading(MAX_OWED_RECEIPTS)
    }

    /// `owed`, reading at most `limit` receipts (small in tests).
    fn owed_reading(&self, limit: usize) -> Result<OwedReport, StoreError> {
        let tx = self.db.begin_read()?;
        if self.old_schema(&tx)? {
            return Err(migrate::needs_upgrade());
        }
        let (Some(unconfirmed), Some(amounts), Some(gross), Some(log)) = (
            open_existing(&tx, UNCONFIRMED)?,
            open_existing(&tx, UNCONFIRMED_BALANCES)?,
            open_existing(&tx, BALANCES)?,
            open_existing(&tx, RECEIPTS)?,
        ) else {
            return Ok(OwedReport::default());
        };
        let keys = open_existing(&tx, KEYS)?;
        let mut partial = false;
        let mut pending = Vec::new();
        for (i, row) in unconfirmed.iter()?.enumerate() {
            if i == MAX_SCANNED_NONCES {
                partial = true;
                break;
            }
            let (seq, code) = row?;
            if code.value() == Standing::Pending.code() {
                pending.push(seq.value());
            }
        }
        // Keyed by seq, so oldest first: if the list is cut, the oldest receipt of each
        // requester is kept.
        if pending.len() > limit {
            partial = true;
            pending.truncate(limit);
        }
        // requester → (receipts, oldest completion)
        let mut tally: HashMap<PublicKey, (u64, u64)> = HashMap::new();
        for seq in pending {
            let Some(bytes) = log.get(seq)? else {
                return Err(StoreError::Corrupt(format!(
                    "an unconfirmed nonce points at missing receipt #{seq}"
                )));
            };
            let stored = decode_row(seq, bytes.value(), &keys)?;
            let r = stored.receipt.receipt();
            let entry = tally
                .entry(r.requester_pubkey)
                .or_insert((0, r.completed_at));
            entry.0 += 1;
            // Ledger order follows commits, not completions: a slow request ledgered
            // after a fast one completed earlier.
            entry.1 = entry.1.min(r.completed_at);
        }
        let mut rows = Vec::new();
        for row in amounts.iter()? {
            let (key, _) = row?;
            // Keys are written only from parsed public keys; skip anything else rather
            // than fail the whole report.
            let Ok(requester) = PublicKey::parse(key.value()) else {
                continue;
            };
            let (earned, spent, receipts) = gross
                .get(key.value())?
                .map(|g| g.value())
                .unwrap_or_default();
            // The same arithmetic as `Ledger::balance`, which the gate reads.
            let balance = Balance {
                earned,
                spent,
                receipts,
                ..Balance::empty(requester)
            }
            .with_unconfirmed(standing::unconfirmed_of(&amounts, key.value())?);
            if balance.pending_spent == 0 {
                continue;
            }
            let (receipts, oldest) = match tally.get(&requester) {
                Some(&(n, oldest)) => (n, Some(oldest)),
                None => (0, None),
            };
            rows.push(Owed {
                requester,
                tokens: balance.pending_spent,
                receipts,
                oldest_completed_at_ms: oldest,
            });
        }
        rows.sort_by(|a, b| {
            b.tokens
                .cmp(&a.tokens)
                .then_with(|| a.requester.to_string().cmp(&b.requester.to_string()))
        });
        Ok(OwedReport { rows, partial })
    }
}

#[cfg(test)]
#[path = "owed_tests.rs"]
mod tests;
