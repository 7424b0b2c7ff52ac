//! The ledger's book of public keys: each identity that appears in a receipt gets a
//! small number, so a binary receipt record names worker and requester in a byte or two
//! instead of 32 bytes each (a node deals with a handful of peers, and every receipt
//! names two of them). Ids are given inside the transaction that appends the receipt
//! naming the key, so a rolled-back append takes its ids with it; nothing is cached
//! outside a transaction.

use redb::{ReadOnlyTable, ReadableTable, Table, TableDefinition, WriteTransaction};

use super::bytes::RecordError;
use crate::core::protocol::PublicKey;
use crate::core::store::StoreError;

/// id → public key.
pub(super) const KEYS: TableDefinition<u64, [u8; 32]> = TableDefinition::new("keys");
/// public key → id.
pub(super) const KEY_IDS: TableDefinition<[u8; 32], u64> = TableDefinition::new("key_ids");

/// Where a decoder looks up a key id.
pub(super) trait KeyBook {
    fn key(&self, id: u64) -> Result<Option<[u8; 32]>, RecordError>;
}

fn read<T: ReadableTable<u64, [u8; 32]>>(t: &T, id: u64) -> Result<Option<[u8; 32]>, RecordError> {
    t.get(id)
        .map(|g| g.map(|g| g.value()))
        .map_err(|e| RecordError::Invalid(format!("cannot read key #{id}: {e}")))
}

impl KeyBook for ReadOnlyTable<u64, [u8; 32]> {
    fn key(&self, id: u64) -> Result<Option<[u8; 32]>, RecordError> {
        read(self, id)
    }
}

impl KeyBook for Table<'_, u64, [u8; 32]> {
    fn key(&self, id: u64) -> Result<Option<[u8; 32]>, RecordError> {
        read(self, id)
    }
}

/// A ledger without the table (one a read-only open finds in the first schema) has
/// JSON rows only, which need no key.
impl<T: KeyBook> KeyBook for Option<T> {
    fn key(&self, id: u64) -> Result<Option<[u8; 32]>, RecordError> {
        match self {
            Some(book) => book.key(id),
            None => Ok(None),
        }
    }
}

/// Both directions of the book, open for writing in one transaction.
pub(super) struct KeyTables<'tx> {
    pub(super) by_id: Table<'tx, u64, [u8; 32]>,
    ids: Table<'tx, [u8; 32], u64>,
}

impl<'tx> KeyTables<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Self, StoreError> {
        Ok(KeyTables {
            by_id: tx.open_table(KEYS)?,
            ids: tx.open_table(KEY_IDS)?,
        })
    }

    /// The id of `key`, given now if it has none.
    pub(super) fn id_of(&mut self, key: &PublicKey) -> Result<u64, StoreError> {
        if let Some(id) = self.ids.get(key.as_bytes())? {
            return Ok(id.value());
        }
        let next = match self.by_id.last()? {
            Some((id, _)) => id.value() + 1,
            None => 1,
        };
        self.by_id.insert(next, key.as_bytes())?;
        self.ids.insert(key.as_bytes(), next)?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store;

    #[test]
    fn ids_are_given_once_and_rolled_back_with_their_transaction() {
        let db = store::in_memory().unwrap();
        let (a, b) = (
            PublicKey::from_bytes([1; 32]),
            PublicKey::from_bytes([2; 32]),
        );
        let tx = db.begin_write().unwrap();
        {
            let mut keys = KeyTables::open(&tx).unwrap();
            assert_eq!(keys.id_of(&a).unwrap(), 1);
            assert_eq!(keys.id_of(&b).unwrap(), 2);
            assert_eq!(keys.id_of(&a).unwrap(), 1);
            assert_eq!(keys.by_id.key(2).unwrap(), Some([2; 32]));
            assert_eq!(keys.by_id.key(3).unwrap(), None);
        }
        tx.commit().unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut keys = KeyTables::open(&tx).unwrap();
            assert_eq!(keys.id_of(&PublicKey::from_bytes([3; 32])).unwrap(), 3);
        }
        tx.abort().unwrap();
        let tx = db.begin_write().unwrap();
        let mut keys = KeyTables::open(&tx).unwrap();
        assert_eq!(keys.id_of(&PublicKey::from_bytes([4; 32])).unwrap(), 3);
    }
}
