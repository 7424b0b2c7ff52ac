//! Reading the receipts log by position: the newest, a range after a seq, one seq, and
//! visits that hand each decoded receipt to a closure instead of collecting them, for
//! callers that only aggregate (a Vec of decoded receipts costs ~1 KiB each).

use redb::ReadableTable;

use super::keys::KEYS;
use super::record::decode_row;
use super::schema::RECEIPTS;
use super::{Ledger, StoredReceipt, open_existing};
use crate::core::store::StoreError;

impl Ledger {
    /// The newest `limit` receipts, newest first.
    pub fn newest(&self, limit: usize) -> Result<Vec<StoredReceipt>, StoreError> {
        let tx = self.db.begin_read()?;
        let keys = open_existing(&tx, KEYS)?;
        let Some(log) = open_existing(&tx, RECEIPTS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for row in log.iter()?.rev().take(limit) {
            let (k, v) = row?;
            out.push(decode_row(k.value(), v.value(), &keys)?);
        }
        Ok(out)
    }

    /// Receipts with a sequence number greater than `after`, oldest first, at most `limit`.
    pub fn since(&self, after: u64, limit: usize) -> Result<Vec<StoredReceipt>, StoreError> {
        let tx = self.db.begin_read()?;
        let keys = open_existing(&tx, KEYS)?;
        let Some(log) = open_existing(&tx, RECEIPTS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in log.range(after.saturating_add(1)..)?.take(limit) {
            let (k, v) = row?;
            out.push(decode_row(k.value(), v.value(), &keys)?);
        }
        Ok(out)
    }

    /// The receipt at `seq`, if there is one.
    pub fn receipt_at(&self, seq: u64) -> Result<Option<StoredReceipt>, StoreError> {
        let tx = self.db.begin_read()?;
        let keys = open_existing(&tx, KEYS)?;
        let Some(log) = open_existing(&tx, RECEIPTS)? else {
            return Ok(None);
        };
        match log.get(seq)? {
            Some(v) => decode_row(seq, v.value(), &keys).map(Some),
            None => Ok(None),
        }
    }

    /// Hands each receipt after `after`, oldest first, at most `limit`, to `visit`, in
    /// one read transaction; returns how many it saw.
    pub fn visit_since(
        &self,
        after: u64,
        limit: usize,
        visit: &mut dyn FnMut(&StoredReceipt),
    ) -> Result<usize, StoreError> {
        let tx = self.db.begin_read()?;
        let keys = open_existing(&tx, KEYS)?;
        let Some(log) = open_existing(&tx, RECEIPTS)? else {
            return Ok(0);
        };
        let mut seen = 0;
        for row in log.range(after.saturating_add(1)..)?.take(limit) {
            let (k, v) = row?;
            visit(&decode_row(k.value(), v.value(), &keys)?);
            seen += 1;
        }
        Ok(seen)
    }

    /// Hands the receipt at each of `seqs` that exists to `visit`, in one read
    /// transaction.
    pub fn visit_at(
        &self,
        seqs: &[u64],
        visit: &mut dyn FnMut(&StoredReceipt),
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_read()?;
        let keys = open_existing(&tx, KEYS)?;
        let Some(log) = open_existing(&tx, RECEIPTS)? else {
            return Ok(());
        };
        for &seq in seqs {
            if let Some(v) = log.get(seq)? {
                visit(&decode_row(seq, v.value(), &keys)?);
            }
        }
        Ok(())
    }
}
