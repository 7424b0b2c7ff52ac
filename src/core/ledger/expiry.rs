//! When an unsettled receipt stops counting. Both sides keep one rule, measured from the
//! receipt's `completedAt`: a requester has [`SETTLE_WINDOW_MS`] to counter-sign what it
//! was served. The router confirms and takes receipts back (reconciliation) only within
//! it; the worker expires a receipt still pending after it (plus the clock skew receipts
//! allow), and the router marks expired what it gave up confirming. An expired receipt
//! stays in the log, charged to nobody and earned by nobody, exactly like an anonymous
//! one: the worker's exposure cap then measures debt a requester can still settle, not
//! receipts no one will ever confirm. A confirmation that arrives later still settles it,
//! since a counter-signature proves the debt whenever it comes.

use redb::ReadableTable;

use super::keys::KEYS;
use super::record::decode_row;
use super::schema::{NONCES, RECEIPTS, UNCONFIRMED, receipt_key};
use super::standing::{self, Standing};
use super::{Ledger, requests};
use crate::core::protocol::RECEIPT_SKEW_MS;
use crate::core::store::StoreError;

/// How long a requester has to confirm a receipt, from its `completedAt`.
pub const SETTLE_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// Receipts expired per transaction, so one sweep never holds the writer for long.
const EXPIRE_BATCH: usize = 1_024;

impl Ledger {
    /// Expires the pending receipts completed more than [`SETTLE_WINDOW_MS`] (and the
    /// allowed clock skew) before `now_ms`; returns how many. For a worker.
    pub fn expire_pending(&self, now_ms: u64) -> Result<u64, StoreError> {
        let cutoff = now_ms.saturating_sub(SETTLE_WINDOW_MS + RECEIPT_SKEW_MS);
        let due = {
            let tx = self.db.begin_read()?;
            let (Ok(unconfirmed), Ok(log)) = (tx.open_table(UNCONFIRMED), tx.open_table(RECEIPTS))
            else {
                return Ok(0);
            };
            let keys = super::open_existing(&tx, KEYS)?;
            let mut due = Vec::new();
            for row in unconfirmed.iter()? {
                let (seq, code) = row?;
                let (seq, code) = (seq.value(), code.value());
                if code != Standing::Pending.code() {
                    continue;
                }
                let Some(bytes) = log.get(seq)? else { continue };
                let stored = decode_row(seq, bytes.value(), &keys)?;
                if stored.receipt.receipt().completed_at < cutoff {
                    due.push(stored.receipt.receipt().nonce.clone());
                }
            }
            due
        };
        let mut expired = 0;
        for chunk in due.chunks(EXPIRE_BATCH) {
            expired += self.expire_in_one(chunk, Standing::Pending)?;
        }
        Ok(expired)
    }

    /// Marks expired the receipts with these nonces that this router gave up confirming
    /// (they are confirmed in its ledger until now); returns how many changed.
    pub fn expire_given_up(&self, nonces: &[String]) -> Result<u64, StoreError> {
        let mut expired = 0;
        for chunk in nonces.chunks(EXPIRE_BATCH) {
            expired += self.expire_in_one(chunk, Standing::Confirmed)?;
        }
        Ok(expired)
    }

    /// Moves the receipts named in `nonces` that stand at `from` to expired, in one
    /// durable transaction.
    fn expire_in_one(&self, nonces: &[String], from: Standing) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let mut changed = Vec::new();
        {
            let unconfirmed = tx.open_table(UNCONFIRMED)?;
            let seqs = tx.open_table(NONCES)?;
            let log = tx.open_table(RECEIPTS)?;
            let keys = tx.open_table(KEYS)?;
            for nonce in nonces {
                let now = standing::standing_of(&unconfirmed, &seqs, nonce)?;
                if now != Some(from) {
                    continue;
                }
                let Some(key) = receipt_key(nonce) else {
                    continue;
                };
                let Some(seq) = seqs.get(key)?.map(|g| g.value()) else {
                    continue;
                };
                let Some(bytes) = log.get(seq)? else { continue };
                changed.push((decode_row(seq, bytes.value(), &keys)?, from));
            }
        }
        for (stored, from) in &changed {
            standing::restand(&tx, &stored.receipt, stored.seq, *from, Standing::Expired)?;
            requests::settled(&tx, stored.seq)?;
        }
        tx.commit()?;
        Ok(changed.len() as u64)
    }
}

#[cfg(test)]
mod tests;
