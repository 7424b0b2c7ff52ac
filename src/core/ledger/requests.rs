//! Which signed request each receipt answers. Both sides keep an index from request
//! nonce to receipt, so a ledger holds at most one receipt per request; a worker also
//! keeps the request's proof beside each receipt still pending, and hands both to the
//! requester that asks what it has not settled (see `router::reconcile`). The proof is
//! dropped when the receipt is confirmed: it is only needed while the requester may not
//! know the receipt.

use redb::{ReadableTable, WriteTransaction};

use super::keys::KEYS;
use super::record::decode_row;
use super::schema::{PROOFS, RECEIPTS, UNCONFIRMED};
use super::standing::Standing;
use super::{Ledger, migrate};
use crate::core::protocol::{PublicKey, RequestProof, SignedReceipt};
use crate::core::store::StoreError;

/// Keeps the proof of receipt `seq`'s request while the receipt is pending (the index
/// from request nonce to receipt is written by `append_in`, beside the nonce index).
pub(super) fn record(
    tx: &WriteTransaction,
    proof: &RequestProof,
    seq: u64,
    standing: Standing,
) -> Result<(), StoreError> {
    if standing == Standing::Pending {
        let json = serde_json::to_vec(proof)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode a request proof: {e}")))?;
        tx.open_table(PROOFS)?.insert(seq, json.as_slice())?;
    }
    Ok(())
}

/// Drops the proof of receipt `seq`, which has just been confirmed or expired.
pub(super) fn settled(tx: &WriteTransaction, seq: u64) -> Result<(), StoreError> {
    tx.open_table(PROOFS)?.remove(seq)?;
    Ok(())
}

/// A pending receipt and the request it answers, as offered back to its requester.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsettled {
    pub receipt: SignedReceipt,
    pub request: RequestProof,
}

impl Ledger {
    /// Up to `limit` receipts signed for `requester` that it has not confirmed and whose
    /// request proof is kept, oldest first. Scans the unconfirmed set, which the
    /// worker's exposure cap keeps small.
    pub fn unsettled_for(
        &self,
        requester: &PublicKey,
        limit: usize,
    ) -> Result<Vec<Unsettled>, StoreError> {
        let tx = self.db.begin_read()?;
        if self.old_schema(&tx)? {
            return Err(migrate::needs_upgrade());
        }
        let (unconfirmed, proofs, log) = match (
            tx.open_table(UNCONFIRMED),
            tx.open_table(PROOFS),
            tx.open_table(RECEIPTS),
        ) {
            (Ok(u), Ok(p), Ok(l)) => (u, p, l),
            _ => return Ok(Vec::new()),
        };
        let keys = super::open_existing(&tx, KEYS)?;
        let mut out = Vec::new();
        // Keyed by seq: already oldest first.
        for row in unconfirmed.iter()? {
            if out.len() == limit {
                break;
            }
            let (seq, code) = row?;
            let (seq, code) = (seq.value(), code.value());
            if code != Standing::Pending.code() {
                continue;
            }
            let Some(proof) = proofs.get(seq)? else {
                continue;
            };
            let Some(bytes) = log.get(seq)? else {
                continue;
            };
            let stored = decode_row(seq, bytes.value(), &keys)?;
            if stored.receipt.receipt().requester_pubkey != *requester {
                continue;
            }
            let request: RequestProof = serde_json::from_slice(proof.value()).map_err(|e| {
                StoreError::Corrupt(format!("the request proof of receipt #{seq}: {e}"))
            })?;
            out.push(Unsettled {
                receipt: stored.receipt,
                request,
            });
        }
        Ok(out)
    }
}
