//! How much of the database each table takes, for `lobstah bench` and anyone asking
//! where the bytes of a ledger go.

use redb::ReadableTableMetadata;
use serde::Serialize;

use super::{Db, StoreError};

/// One table's pages and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSize {
    pub name: String,
    /// Leaf and branch pages, times the page size.
    pub page_bytes: u64,
    /// Keys and values as inserted, without the tree's own overhead.
    pub stored_bytes: u64,
}

/// Every table's size, largest first, and the pages the database has allocated in all
/// (tables, free lists and redb's own metadata), when it can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbSizes {
    pub tables: Vec<TableSize>,
    /// `None` for a read-only view, which cannot see the allocator.
    pub allocated_bytes: Option<u64>,
}

pub fn sizes(db: &Db) -> Result<DbSizes, StoreError> {
    let (page_size, allocated_bytes) = match db {
        Db::Writable(w) => {
            let tx = w.begin_write()?;
            let stats = tx.stats()?;
            let page = stats.page_size() as u64;
            tx.abort()?;
            (page, Some(stats.allocated_pages() * page))
        }
        // redb's page size on every platform lobstah runs on.
        Db::ReadOnly(_) => (4096, None),
    };
    let tx = db.begin_read()?;
    let mut tables = Vec::new();
    for handle in tx.list_tables()? {
        let name = redb::TableHandle::name(&handle).to_string();
        let stats = tx.open_untyped_table(handle)?.stats()?;
        tables.push(TableSize {
            name,
            page_bytes: (stats.leaf_pages() + stats.branch_pages()) * page_size,
            stored_bytes: stats.stored_bytes(),
        });
    }
    tables.sort_by_key(|t| std::cmp::Reverse(t.page_bytes));
    Ok(DbSizes {
        tables,
        allocated_bytes,
    })
}
