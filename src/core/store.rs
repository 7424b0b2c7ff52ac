//! The node's one redb database file, shared by the ledger, the peer book, the job
//! stores and the confirmation outbox.

mod sizes;
mod writable;

pub use sizes::{DbSizes, TableSize, sizes};
pub use writable::{RETRY as RECOVERY_RETRY, WritableDb};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, backends::InMemoryBackend};

/// Storage failures, named after what the operator can do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database {0} is in use by another lobstah process (a running router, worker or node); stop it first, or give this command its own --home"
    )]
    InUse(PathBuf),
    #[error("no database at {0} yet: nothing has been ledgered on this node")]
    Missing(PathBuf),
    #[error(
        "the database {0} is empty (0 bytes), so it is not a lobstah ledger: its receipts and nonces are gone, or it was never written. Restore it from a backup, or move it away to start a new ledger (one is created only where none exists)"
    )]
    Empty(PathBuf),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("the database is damaged: {0}")]
    Corrupt(String),
    #[error("the database was opened read-only")]
    ReadOnly,
    /// Writes are refused since a write failed at the storage (see `writable`).
    #[error("the database cannot be written until the cause is gone ({0})")]
    Unavailable(String),
    #[error("cannot create the data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Redb(#[from] redb::Error),
}

/// `From` the redb error types of a transaction for `$target`, through `$wrap` (a
/// variant or function taking `StoreError`), so `?` works on redb calls in any store.
macro_rules! redb_errors_into {
    ($target:ty, $wrap:expr) => {
        $crate::core::store::redb_errors_into!(@each $target, $wrap,
            redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);
    };
    (@each $target:ty, $wrap:expr, $($t:ty),*) => {$(
        impl From<$t> for $target {
            fn from(e: $t) -> Self { $wrap(e.into()) }
        }
    )*};
}
pub(crate) use redb_errors_into;

redb_errors_into!(StoreError, StoreError::Redb);

/// Either a writable database or a read-only view used by CLI commands that only look.
#[derive(Clone)]
pub enum Db {
    Writable(Arc<WritableDb>),
    ReadOnly(Arc<ReadOnlyDatabase>),
}

impl Db {
    pub fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        Ok(match self {
            Db::Writable(db) => db.begin_read()?,
            Db::ReadOnly(db) => db.begin_read()?,
        })
    }

    pub fn begin_write(&self) -> Result<redb::WriteTransaction, StoreError> {
        match self {
            Db::Writable(db) => db.begin_write(),
            Db::ReadOnly(_) => Err(StoreError::ReadOnly),
        }
    }

    /// Why writes are refused now (a full disk, say), if they are: servers refuse new
    /// work on it, since its receipt could not be kept.
    pub fn unavailable(&self) -> Option<String> {
        match self {
            Db::Writable(db) => db.unavailable(),
            Db::ReadOnly(_) => None,
        }
    }

    /// Reports a failed write; a storage failure makes the database unavailable until
    /// it can be reopened and written again.
    pub fn failed(&self, error: &StoreError) {
        if let Db::Writable(db) = self {
            db.failed(error);
        }
    }
}

/// The database cache a node gets unless configured: enough for the hot pages (balances,
/// the newest receipts, the nonce index's upper levels) of a ledger of millions of
/// receipts. redb's own default is 1 GiB, which a long-running daemon would fill with the
/// file and never give back.
pub const DEFAULT_CACHE_MIB: u64 = 8;

/// Opens (creating if needed) the database at `path` for reading and writing, with the
/// default cache.
pub fn open(path: &Path) -> Result<Db, StoreError> {
    open_with_cache(path, DEFAULT_CACHE_MIB)
}

/// Opens (creating if needed) the database at `path`, caching at most `cache_mib` MiB.
pub fn open_with_cache(path: &Path, cache_mib: u64) -> Result<Db, StoreError> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => return Err(StoreError::Empty(path.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private_file(path)?,
        Err(e) => return Err(e.into()),
    }
    let cache_bytes = usize::try_from(cache_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    match Database::builder().set_cache_size(cache_bytes).create(path) {
        Ok(db) => Ok(Db::Writable(WritableDb::new(db, Some(path.to_path_buf())))),
        Err(e) => Err(map_open_error(path, e)),
    }
}

/// Opens an existing database for reading only; works beside a running node.
pub fn open_read_only(path: &Path) -> Result<Db, StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => return Err(StoreError::Empty(path.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        Err(e) => return Err(e.into()),
    }
    // Bounded like a writable open: a `ledger verify` over millions of receipts reads
    // the whole file, which redb's default cache (1 GiB) would keep.
    let cache_bytes = usize::try_from(DEFAULT_CACHE_MIB << 20).unwrap_or(usize::MAX);
    match Database::builder()
        .set_cache_size(cache_bytes)
        .open_read_only(path)
    {
        Ok(db) => Ok(Db::ReadOnly(Arc::new(db))),
        Err(e) => Err(map_open_error(path, e)),
    }
}

/// Creates `dir` (and its parents) readable by its owner only, as ssh does for its own.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the database file empty with mode 0600 (the ledger is as private as the
/// identity), for redb to initialize at once.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another process created it a moment ago; redb's lock decides who opens it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A database that lives in memory only, for tests.
pub fn in_memory() -> Result<Db, StoreError> {
    let db = Database::builder()
        .create_with_backend(InMemoryBackend::new())
        .map_err(|e| map_open_error(Path::new(":memory:"), e))?;
    Ok(Db::Writable(WritableDb::new(db, None)))
}

fn map_open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_path_buf()),
        redb::DatabaseError::Storage(redb::StorageError::Io(ref io))
            if io.kind() == std::io::ErrorKind::WouldBlock =>
        {
            StoreError::InUse(path.to_path_buf())
        }
        source => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}
