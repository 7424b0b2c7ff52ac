//! How settled each ledgered receipt is. A worker's receipt is its own word until the
//! requester counter-signs it: until then the earning is *pending*, and a receipt for a
//! request nobody signed (an older router) is *anonymous*, charged to nobody. The
//! receipts table itself never changes; these tables sit beside it, updated in the same
//! transactions, so a balance read never scans.

use std::collections::HashMap;

use redb::{ReadableTable, WriteTransaction};
use serde::Serialize;

use super::keys::KEYS;
use super::record::decode_row;
use super::schema::{
    CONFIRMATIONS, CONFIRMED_BY, LEDGER_META, NONCES, NonceKey, RECEIPTS, UNCONFIRMED,
    UNCONFIRMED_BALANCES, receipt_key,
};
use super::{Ledger, bytes, confirm_record, migrate, open_existing, record, requests};
use crate::core::protocol::{PublicKey, SignedConfirmation, SignedReceipt};
use crate::core::store::StoreError;

/// How settled a receipt is in this ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    /// Both sides agree: a receipt the router verified, or one its requester confirmed.
    Confirmed,
    /// Signed for a verified requester, waiting for its counter-signature.
    Pending,
    /// Served to an unsigned request: the named requester never proved it asked.
    Anonymous,
    /// Not confirmed within the settle window (see `expiry`): charged to nobody, like
    /// an anonymous receipt, until a late confirmation settles it after all.
    Expired,
}

impl Standing {
    pub(super) fn code(self) -> u8 {
        match self {
            Standing::Confirmed => 0,
            Standing::Pending => 1,
            Standing::Anonymous => 2,
            Standing::Expired => 3,
        }
    }

    pub(super) fn from_code(code: u8) -> Standing {
        match code {
            1 => Standing::Pending,
            2 => Standing::Anonymous,
            3 => Standing::Expired,
            _ => Standing::Confirmed,
        }
    }
}

/// One pubkey's unsettled amounts, beside its gross balance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unconfirmed {
    pub earned: u64,
    pub spent_pending: u64,
    pub spent_anonymous: u64,
}

/// What became of one receipt a confirmation named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfirmOutcome {
    Confirmed,
    AlreadyConfirmed,
    /// No receipt with this nonce is ledgered here.
    Unknown,
    /// The ledgered receipt has another requester, worker or signature.
    Mismatch,
}

/// Records a freshly appended receipt's standing (nothing to do when confirmed).
pub(super) fn record(
    tx: &WriteTransaction,
    receipt: &SignedReceipt,
    seq: u64,
    standing: Standing,
) -> Result<(), StoreError> {
    if standing == Standing::Confirmed {
        return Ok(());
    }
    let r = receipt.receipt();
    tx.open_table(UNCONFIRMED)?.insert(seq, standing.code())?;
    adjust(
        tx,
        &r.worker_pubkey,
        r.requester_pubkey,
        r.total_tokens(),
        standing,
        true,
    )
}

/// Adds (`up`) or removes an unsettled receipt's tokens from both parties' rows.
fn adjust(
    tx: &WriteTransaction,
    worker: &PublicKey,
    requester: PublicKey,
    tokens: u64,
    standing: Standing,
    up: bool,
) -> Result<(), StoreError> {
    let mut table = tx.open_table(UNCONFIRMED_BALANCES)?;
    let step = |v: u64| {
        if up {
            v.saturating_add(tokens)
        } else {
            v.saturating_sub(tokens)
        }
    };
    let mut change = |key: String, f: &dyn Fn(&mut (u64, u64, u64))| -> Result<(), StoreError> {
        let mut row = table
            .get(key.as_str())?
            .map(|g| g.value())
            .unwrap_or_default();
        f(&mut row);
        if row == (0, 0, 0) {
            table.remove(key.as_str())?;
        } else {
            table.insert(key.as_str(), row)?;
        }
        Ok(())
    };
    change(worker.to_string(), &|row| row.0 = step(row.0))?;
    change(requester.to_string(), &|row| match standing {
        Standing::Pending => row.1 = step(row.1),
        Standing::Anonymous | Standing::Expired => row.2 = step(row.2),
        Standing::Confirmed => {}
    })
}

/// Moves receipt `seq` from standing `from` to `to`, in the caller's transaction.
pub(super) fn restand(
    tx: &WriteTransaction,
    receipt: &SignedReceipt,
    seq: u64,
    from: Standing,
    to: Standing,
) -> Result<(), StoreError> {
    let r = receipt.receipt();
    let (worker, requester, tokens) = (&r.worker_pubkey, r.requester_pubkey, r.total_tokens());
    if from != Standing::Confirmed {
        tx.open_table(UNCONFIRMED)?.remove(seq)?;
        adjust(tx, worker, requester, tokens, from, false)?;
    }
    record(tx, receipt, seq, to)
}

/// Settles the receipts `confirmation` names, for the worker `me`, in the caller's
/// transaction. The caller has checked the confirmation's signature and that it is
/// addressed to `me`. The confirmation is stored once, beside the receipts it settled,
/// naming by seq what is ledgered here (see `confirm_record`).
pub(super) fn confirm(
    tx: &WriteTransaction,
    confirmation: &SignedConfirmation,
    me: &PublicKey,
) -> Result<Vec<ConfirmOutcome>, StoreError> {
    let c = confirmation.confirmation();
    let mut outcomes = Vec::with_capacity(c.receipts.len());
    let mut settled = Vec::new();
    // Per named receipt: its seq when the receipt there has exactly its nonce and signature.
    let mut seqs = Vec::with_capacity(c.receipts.len());
    let mut known = HashMap::new();
    {
        let mut unconfirmed = tx.open_table(UNCONFIRMED)?;
        let log = tx.open_table(RECEIPTS)?;
        let nonces = tx.open_table(NONCES)?;
        let keys = tx.open_table(KEYS)?;
        for named in &c.receipts {
            let seq = match receipt_key(&named.nonce) {
                Some(key) => nonces.get(key)?.map(|g| g.value()),
                None => None,
            };
            let Some(seq) = seq else {
                seqs.push(None);
                outcomes.push(ConfirmOutcome::Unknown);
                continue;
            };
            let Some(bytes) = log.get(seq)? else {
                return Err(StoreError::Corrupt(format!(
                    "nonce {} points at missing receipt #{seq}",
                    named.nonce
                )));
            };
            let receipt = decode_row(seq, bytes.value(), &keys)?.receipt;
            let signature = receipt.signature().to_hex();
            let same = signature == named.signature;
            seqs.push(same.then_some(seq));
            if same {
                known.insert(seq, (named.nonce.clone(), signature));
            }
            let Some(code) = unconfirmed.get(seq)?.map(|g| g.value()) else {
                outcomes.push(ConfirmOutcome::AlreadyConfirmed);
                continue;
            };
            let r = receipt.receipt();
            if r.requester_pubkey != c.requester_pubkey || r.worker_pubkey != *me || !same {
                outcomes.push(ConfirmOutcome::Mismatch);
                continue;
            }
            unconfirmed.remove(seq)?;
            settled.push((seq, receipt, Standing::from_code(code)));
            outcomes.push(ConfirmOutcome::Confirmed);
        }
    }
    if settled.is_empty() {
        return Ok(outcomes);
    }
    let batch = {
        let mut meta = tx.open_table(LEDGER_META)?;
        let id = meta
            .get("next_confirmation")?
            .map(|g| g.value())
            .unwrap_or(1);
        meta.insert("next_confirmation", id + 1)?;
        id
    };
    let stored = confirm_record::encode(confirmation, &seqs, &known);
    tx.open_table(CONFIRMATIONS)?
        .insert(batch, stored.as_slice())?;
    let mut confirmed_by = tx.open_table(CONFIRMED_BY)?;
    for (seq, receipt, standing) in &settled {
        confirmed_by.insert(*seq, batch)?;
        requests::settled(tx, *seq)?;
        let r = receipt.receipt();
        adjust(
            tx,
            &r.worker_pubkey,
            r.requester_pubkey,
            r.total_tokens(),
            *standing,
            false,
        )?;
    }
    Ok(outcomes)
}

/// The id of the confirmation batch that settled the receipt with `nonce`.
fn confirmed_by(tx: &redb::ReadTransaction, nonce: &str) -> Result<Option<u64>, StoreError> {
    let (Some(nonces), Some(by), Some(key)) = (
        open_existing(tx, NONCES)?,
        open_existing(tx, CONFIRMED_BY)?,
        receipt_key(nonce),
    ) else {
        return Ok(None);
    };
    let Some(seq) = nonces.get(key)?.map(|g| g.value()) else {
        return Ok(None);
    };
    Ok(by.get(seq)?.map(|g| g.value()))
}

/// The unsettled amounts of `key` inside any readable table handle.
pub(super) fn unconfirmed_of<T: ReadableTable<&'static str, (u64, u64, u64)>>(
    table: &T,
    key: &str,
) -> Result<Unconfirmed, StoreError> {
    Ok(table
        .get(key)?
        .map(|g| {
            let (earned, spent_pending, spent_anonymous) = g.value();
            Unconfirmed {
                earned,
                spent_pending,
                spent_anonymous,
            }
        })
        .unwrap_or_default())
}

/// The standing of the receipt with `nonce`, if it is ledgered here.
pub(super) fn standing_of<U, N>(
    unconfirmed: &U,
    nonces: &N,
    nonce: &str,
) -> Result<Option<Standing>, StoreError>
where
    U: ReadableTable<u64, u8>,
    N: ReadableTable<NonceKey, u64>,
{
    let Some(key) = receipt_key(nonce) else {
        return Ok(None);
    };
    let Some(seq) = nonces.get(key)?.map(|g| g.value()) else {
        return Ok(None);
    };
    Ok(Some(match unconfirmed.get(seq)? {
        Some(g) => Standing::from_code(g.value()),
        None => Standing::Confirmed,
    }))
}

impl Ledger {
    /// The signed confirmation that settled the receipt with `nonce`, as received.
    pub fn confirmation_of(&self, nonce: &str) -> Result<Option<SignedConfirmation>, StoreError> {
        let tx = self.db.begin_read()?;
        let (Some(batches), Some(log)) = (
            open_existing(&tx, CONFIRMATIONS)?,
            open_existing(&tx, RECEIPTS)?,
        ) else {
            return Ok(None);
        };
        let keys = open_existing(&tx, KEYS)?;
        let id = if self.old_schema(&tx)? {
            migrate::old_confirmed_by(&tx, nonce)?
        } else {
            confirmed_by(&tx, nonce)?
        };
        let Some(id) = id else {
            return Ok(None);
        };
        let Some(bytes) = batches.get(id)? else {
            return Err(StoreError::Corrupt(format!(
                "confirmation #{id} is missing"
            )));
        };
        let resolve = |seq: u64| match log.get(seq) {
            Ok(Some(row)) => record::decode(row.value(), &keys)
                .map(|r| Some((r.receipt().nonce.clone(), r.signature().to_hex()))),
            Ok(None) => Ok(None),
            Err(e) => Err(bytes::RecordError::Invalid(format!(
                "cannot read receipt #{seq}: {e}"
            ))),
        };
        confirm_record::decode(bytes.value(), resolve)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("confirmation #{id} does not parse: {e}")))
    }

    /// How settled the receipt with `nonce` is; `None` if it is not ledgered here.
    pub fn standing(&self, nonce: &str) -> Result<Option<Standing>, StoreError> {
        let tx = self.db.begin_read()?;
        if self.old_schema(&tx)? {
            return migrate::old_standing(&tx, nonce);
        }
        let (Some(unconfirmed), Some(nonces)) = (
            open_existing(&tx, UNCONFIRMED)?,
            open_existing(&tx, NONCES)?,
        ) else {
            return Ok(None);
        };
        standing_of(&unconfirmed, &nonces, nonce)
    }

    /// Whether a receipt with this nonce is already ledgered.
    pub fn contains_nonce(&self, nonce: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        if self.old_schema(&tx)? {
            return Ok(migrate::old_standing(&tx, nonce)?.is_some());
        }
        let (Some(table), Some(key)) = (open_existing(&tx, NONCES)?, receipt_key(nonce)) else {
            return Ok(false);
        };
        Ok(table.get(key)?.is_some())
    }
}
