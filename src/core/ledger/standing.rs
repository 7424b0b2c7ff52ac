//! How settled each ledgered receipt is. A worker's receipt is its own word until the
//! requester counter-signs it: until then the earning is *pending*, and a receipt for a
//! request nobody signed (an older router) is *anonymous*, charged to nobody. The
//! receipts table itself never changes; these tables sit beside it, updated in the same
//! transactions, so a balance read never scans.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;

use super::{LEDGER_META, RECEIPTS};
use crate::core::protocol::{PublicKey, SignedConfirmation, SignedReceipt};
use crate::core::store::StoreError;

/// nonce → (standing code, seq) for every receipt not yet confirmed.
pub const UNCONFIRMED: TableDefinition<&str, (u8, u64)> =
    TableDefinition::new("receipt_unconfirmed");
/// pubkey → (earned unconfirmed, spent pending, spent anonymous).
pub const UNCONFIRMED_BALANCES: TableDefinition<&str, (u64, u64, u64)> =
    TableDefinition::new("balances_unconfirmed");
/// nonce → id of the confirmation batch that settled it.
pub const CONFIRMED_BY: TableDefinition<&str, u64> = TableDefinition::new("receipt_confirmed_by");
/// batch id → the requester's signed confirmation, as received.
pub const CONFIRMATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("confirmations");

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

    fn from_code(code: u8) -> Standing {
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
    tx.open_table(UNCONFIRMED)?
        .insert(r.nonce.as_str(), (standing.code(), seq))?;
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
        tx.open_table(UNCONFIRMED)?.remove(r.nonce.as_str())?;
        adjust(tx, worker, requester, tokens, from, false)?;
    }
    record(tx, receipt, seq, to)
}

/// Settles the receipts `confirmation` names, for the worker `me`, in the caller's
/// transaction. The caller has checked the confirmation's signature and that it is
/// addressed to `me`. The confirmation is stored once, beside the receipts it settled.
pub(super) fn confirm(
    tx: &WriteTransaction,
    confirmation: &SignedConfirmation,
    me: &PublicKey,
) -> Result<Vec<ConfirmOutcome>, StoreError> {
    let c = confirmation.confirmation();
    let mut outcomes = Vec::with_capacity(c.receipts.len());
    let mut settled = Vec::new();
    {
        let mut unconfirmed = tx.open_table(UNCONFIRMED)?;
        let confirmed_by = tx.open_table(CONFIRMED_BY)?;
        let log = tx.open_table(RECEIPTS)?;
        let nonces = tx.open_table(super::NONCES)?;
        for named in &c.receipts {
            let Some((code, seq)) = unconfirmed.get(named.nonce.as_str())?.map(|g| g.value())
            else {
                let outcome = if confirmed_by.get(named.nonce.as_str())?.is_some()
                    || nonces.get(named.nonce.as_str())?.is_some()
                {
                    ConfirmOutcome::AlreadyConfirmed
                } else {
                    ConfirmOutcome::Unknown
                };
                outcomes.push(outcome);
                continue;
            };
            let Some(bytes) = log.get(seq)?.map(|g| g.value().to_vec()) else {
                return Err(StoreError::Corrupt(format!(
                    "unconfirmed nonce {} points at missing receipt #{seq}",
                    named.nonce
                )));
            };
            let receipt = SignedReceipt::from_json(&bytes).map_err(|e| {
                StoreError::Corrupt(format!("receipt #{seq} in the ledger does not parse: {e}"))
            })?;
            let r = receipt.receipt();
            if r.requester_pubkey != c.requester_pubkey
                || r.worker_pubkey != *me
                || receipt.signature().to_hex() != named.signature
            {
                outcomes.push(ConfirmOutcome::Mismatch);
                continue;
            }
            unconfirmed.remove(named.nonce.as_str())?;
            settled.push((named.nonce.clone(), receipt, Standing::from_code(code)));
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
    tx.open_table(CONFIRMATIONS)?
        .insert(batch, confirmation.to_value().to_string().as_bytes())?;
    let mut confirmed_by = tx.open_table(CONFIRMED_BY)?;
    for (nonce, receipt, standing) in &settled {
        confirmed_by.insert(nonce.as_str(), batch)?;
        super::requests::settled(tx, nonce)?;
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
    U: ReadableTable<&'static str, (u8, u64)>,
    N: ReadableTable<&'static str, u64>,
{
    if let Some(g) = unconfirmed.get(nonce)? {
        return Ok(Some(Standing::from_code(g.value().0)));
    }
    Ok(nonces.get(nonce)?.map(|_| Standing::Confirmed))
}
