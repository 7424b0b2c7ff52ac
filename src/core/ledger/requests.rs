//! Which signed request each receipt answers. Both sides keep an index from request
//! nonce to receipt, so a ledger holds at most one receipt per request; a worker also
//! keeps the request's proof beside each receipt still pending, and hands both to the
//! requester that asks what it has not settled (see `router::reconcile`). The proof is
//! dropped when the receipt is confirmed: it is only needed while the requester may not
//! know the receipt.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::standing::{Standing, UNCONFIRMED};
use super::{Ledger, RECEIPTS, decode_row};
use crate::core::protocol::{PublicKey, RequestProof, SignedReceipt};
use crate::core::store::StoreError;

/// request nonce → seq of the receipt that answers it.
pub(super) const ANSWERED: TableDefinition<&str, u64> = TableDefinition::new("receipt_answers");
/// receipt nonce → JSON of the request proof, for receipts not yet confirmed.
pub(super) const PROOFS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("receipt_request_proofs");

/// The receipt already answering `proof`'s request, if one is ledgered.
pub(super) fn answered_by(
    tx: &WriteTransaction,
    proof: &RequestProof,
) -> Result<Option<u64>, StoreError> {
    Ok(tx
        .open_table(ANSWERED)?
        .get(proof.nonce.as_str())?
        .map(|g| g.value()))
}

/// Records that receipt `seq` (with nonce `receipt_nonce`) answers `proof`'s request.
pub(super) fn record(
    tx: &WriteTransaction,
    proof: &RequestProof,
    receipt_nonce: &str,
    seq: u64,
    standing: Standing,
) -> Result<(), StoreError> {
    tx.open_table(ANSWERED)?.insert(proof.nonce.as_str(), seq)?;
    if standing == Standing::Pending {
        let json = serde_json::to_vec(proof)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode a request proof: {e}")))?;
        tx.open_table(PROOFS)?
            .insert(receipt_nonce, json.as_slice())?;
    }
    Ok(())
}

/// Drops the proof of a receipt that has just been confirmed.
pub(super) fn settled(tx: &WriteTransaction, receipt_nonce: &str) -> Result<(), StoreError> {
    tx.open_table(PROOFS)?.remove(receipt_nonce)?;
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
        let (unconfirmed, proofs, log) = match (
            tx.open_table(UNCONFIRMED),
            tx.open_table(PROOFS),
            tx.open_table(RECEIPTS),
        ) {
            (Ok(u), Ok(p), Ok(l)) => (u, p, l),
            _ => return Ok(Vec::new()),
        };
        let mut pending: Vec<(u64, String)> = Vec::new();
        for row in unconfirmed.iter()? {
            let (nonce, value) = row?;
            let (code, seq) = value.value();
            if code == Standing::Pending.code() {
                pending.push((seq, nonce.value().to_string()));
            }
        }
        pending.sort_unstable();
        let mut out = Vec::new();
        for (seq, nonce) in pending {
            if out.len() == limit {
                break;
            }
            let Some(proof) = proofs.get(nonce.as_str())? else {
                continue;
            };
            let Some(bytes) = log.get(seq)? else {
                continue;
            };
            let stored = decode_row(seq, bytes.value())?;
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
