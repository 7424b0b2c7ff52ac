//! The conversion of a ledger written by the first schema, whose indexes were keyed by
//! nonce strings, to the current one (see `schema`). It runs once, when a node opens the
//! database for writing, inside the transaction that opens the tables: the old tables
//! are read, their rows written under the new keys, and the old tables deleted, so a
//! crash leaves either the old ledger or the new one. Receipts, balances, totals and
//! confirmations keep their tables: old receipt and confirmation rows are JSON text,
//! which the current decoders still read, so they are left as they are.
//!
//! A read-only open (CLI commands beside no node) cannot convert: `is_old` tells the
//! readers, which read the old tables where they can and otherwise ask for one start of
//! the node.

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use super::schema::{ANSWERED, CONFIRMED_BY, NONCES, PROOFS, UNCONFIRMED, request_key};
use super::standing::Standing;
use crate::core::store::StoreError;

/// The first schema's tables that changed type, as it defined them.
pub(super) mod old {
    use redb::TableDefinition;

    /// nonce → seq.
    pub(crate) const NONCES: TableDefinition<&str, u64> = TableDefinition::new("receipt_nonces");
    /// nonce → (standing code, seq).
    pub(crate) const UNCONFIRMED: TableDefinition<&str, (u8, u64)> =
        TableDefinition::new("receipt_unconfirmed");
    /// nonce → confirmation batch id.
    pub(crate) const CONFIRMED_BY: TableDefinition<&str, u64> =
        TableDefinition::new("receipt_confirmed_by");
    /// request nonce → seq.
    pub(crate) const ANSWERED: TableDefinition<&str, u64> = TableDefinition::new("receipt_answers");
    /// receipt nonce → JSON of the request proof.
    pub(crate) const PROOFS: TableDefinition<&str, &[u8]> =
        TableDefinition::new("receipt_request_proofs");
}

/// Whether this read sees a ledger still in the first schema (opened read-only).
pub(super) fn is_old(tx: &ReadTransaction) -> Result<bool, StoreError> {
    Ok(tx.list_tables()?.any(|t| t.name() == old::NONCES.name()))
}

/// What readers that cannot read the old tables answer on such a ledger.
pub(super) fn needs_upgrade() -> StoreError {
    StoreError::Unavailable(
        "this ledger was written by an older lobstah: start the node once to upgrade it".into(),
    )
}

/// `Ledger::standing` over the first schema's tables.
pub(super) fn old_standing(
    tx: &ReadTransaction,
    nonce: &str,
) -> Result<Option<Standing>, StoreError> {
    if let Some(g) = tx.open_table(old::UNCONFIRMED)?.get(nonce)? {
        return Ok(Some(Standing::from_code(g.value().0)));
    }
    Ok(tx
        .open_table(old::NONCES)?
        .get(nonce)?
        .map(|_| Standing::Confirmed))
}

/// `confirmation_of`'s batch id over the first schema's tables.
pub(super) fn old_confirmed_by(
    tx: &ReadTransaction,
    nonce: &str,
) -> Result<Option<u64>, StoreError> {
    match tx.open_table(old::CONFIRMED_BY) {
        Ok(t) => Ok(t.get(nonce)?.map(|g| g.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The seq of the receipt with `nonce` in the old nonce table.
fn seq_of<T: ReadableTable<&'static str, u64>>(
    nonces: &T,
    nonce: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(nonces.get(nonce)?.map(|g| g.value()))
}

fn key_of(nonce: &str) -> Result<[u8; 16], StoreError> {
    super::schema::receipt_key(nonce).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "the old nonce index holds {nonce:?}, which is not a 32-hex receipt nonce"
        ))
    })
}

/// Converts the first schema's tables in `tx`, if there are any; returns whether it did.
pub(super) fn upgrade(tx: &WriteTransaction) -> Result<bool, StoreError> {
    let present: Vec<String> = tx.list_tables()?.map(|t| t.name().to_string()).collect();
    let has = |def: &dyn TableHandle| present.iter().any(|n| n == def.name());
    if !has(&old::NONCES) {
        return Ok(false);
    }
    {
        let old_nonces = tx.open_table(old::NONCES)?;
        let mut nonces = tx.open_table(NONCES)?;
        for row in old_nonces.iter()? {
            let (nonce, seq) = row?;
            nonces.insert(key_of(nonce.value())?, seq.value())?;
        }
        if has(&old::UNCONFIRMED) {
            let mut unconfirmed = tx.open_table(UNCONFIRMED)?;
            for row in tx.open_table(old::UNCONFIRMED)?.iter()? {
                let (code, seq) = row?.1.value();
                unconfirmed.insert(seq, code)?;
            }
        }
        if has(&old::CONFIRMED_BY) {
            let mut confirmed_by = tx.open_table(CONFIRMED_BY)?;
            for row in tx.open_table(old::CONFIRMED_BY)?.iter()? {
                let (nonce, batch) = row?;
                let seq = seq_of(&old_nonces, nonce.value())?.ok_or_else(|| {
                    StoreError::Corrupt(format!("confirmed nonce {} has no receipt", nonce.value()))
                })?;
                confirmed_by.insert(seq, batch.value())?;
            }
        }
        if has(&old::ANSWERED) {
            let mut answered = tx.open_table(ANSWERED)?;
            for row in tx.open_table(old::ANSWERED)?.iter()? {
                let (nonce, seq) = row?;
                answered.insert(request_key(nonce.value()), seq.value())?;
            }
        }
        if has(&old::PROOFS) {
            let mut proofs = tx.open_table(PROOFS)?;
            for row in tx.open_table(old::PROOFS)?.iter()? {
                let (nonce, proof) = row?;
                // A proof whose receipt is gone was dead weight already.
                if let Some(seq) = seq_of(&old_nonces, nonce.value())? {
                    proofs.insert(seq, proof.value())?;
                }
            }
        }
    }
    delete(tx, old::NONCES)?;
    delete(tx, old::UNCONFIRMED)?;
    delete(tx, old::CONFIRMED_BY)?;
    delete(tx, old::ANSWERED)?;
    delete(tx, old::PROOFS)?;
    tracing::info!("ledger indexes converted to the compact schema");
    Ok(true)
}

fn delete<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    tx.delete_table(def)?;
    Ok(())
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
