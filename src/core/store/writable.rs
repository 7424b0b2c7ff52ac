//! The writable database, and how it comes back from a failed write. Once redb has seen
//! an I/O error (a full disk, typically) it refuses every later write until the file is
//! closed and opened again. So the first such failure marks the database *unavailable*
//! with its cause: writes are refused at once with that cause (servers refuse new work
//! on it, so nothing is served that could not be billed), and a recovery thread closes
//! and reopens the file, then proves it can commit, every [`RETRY`] until it can. Reads
//! go on meanwhile on the last committed state, whenever the file can be opened.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{StoreError, map_open_error};

/// How often a failed database is tried again.
pub const RETRY: Duration = Duration::from_secs(1);

/// A table the recovery probe writes to: one small row, so a commit really hits the disk.
const PROBE: TableDefinition<&str, u64> = TableDefinition::new("store_probe");

/// A writable redb database that can be reopened in place, shared by every store on it.
pub struct WritableDb {
    /// `None` for an in-memory database, which cannot be reopened.
    path: Option<PathBuf>,
    /// `None` only while the file is being reopened.
    current: RwLock<Option<Arc<Database>>>,
    /// Why writes are refused, since the first failure; `None` while healthy.
    failure: Mutex<Option<String>>,
    /// Whether `failure` is set: every request and commit asks, so the healthy answer
    /// takes no lock.
    broken: AtomicBool,
    recovering: AtomicBool,
}

impl WritableDb {
    pub(super) fn new(db: Database, path: Option<PathBuf>) -> Arc<Self> {
        Arc::new(WritableDb {
            path,
            current: RwLock::new(Some(Arc::new(db))),
            failure: Mutex::new(None),
            broken: AtomicBool::new(false),
            recovering: AtomicBool::new(false),
        })
    }

    fn database(&self) -> Result<Arc<Database>, StoreError> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .clone()
            .ok_or_else(|| StoreError::Unavailable(self.unavailable().unwrap_or_default()))
    }

    pub fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        Ok(self.database()?.begin_read()?)
    }

    pub fn begin_write(&self) -> Result<redb::WriteTransaction, StoreError> {
        if let Some(cause) = self.unavailable() {
            return Err(StoreError::Unavailable(cause));
        }
        Ok(self.database()?.begin_write()?)
    }

    /// Why writes are refused, if they are.
    pub fn unavailable(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a failed write: if the storage itself failed, writes are refused from
    /// now on with this cause, and the recovery thread starts.
    pub fn failed(self: &Arc<Self>, error: &StoreError) {
        if !breaks_storage(error) {
            return;
        }
        {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if failure.is_none() {
                tracing::error!(%error, "the database cannot be written; refusing work until it can");
                *failure = Some(error.to_string());
                self.broken.store(true, Ordering::Release);
            }
        }
        if !self.recovering.swap(true, Ordering::SeqCst) {
            let db = self.clone();
            let spawned = std::thread::Builder::new()
                .name("lobstah-store-recovery".into())
                .spawn(move || db.recover());
            if let Err(e) = spawned {
                self.recovering.store(false, Ordering::SeqCst);
                tracing::error!(error = %e, "cannot start the database recovery thread");
            }
        }
    }

    /// Until a commit succeeds: wait, reopen the file, write the probe row.
    fn recover(self: Arc<Self>) {
        loop {
            std::thread::sleep(RETRY);
            match self.reopen_and_probe() {
                Ok(()) => {
                    let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                    *failure = None;
                    self.broken.store(false, Ordering::Release);
                    drop(failure);
                    self.recovering.store(false, Ordering::SeqCst);
                    tracing::info!("the database can be written again");
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "the database still cannot be written"),
            }
        }
    }

    fn reopen_and_probe(&self) -> Result<(), StoreError> {
        if let Some(path) = &self.path {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            // The old handle must be gone before the file can be opened again: redb
            // holds a lock on it while any handle lives.
            drop(current.take());
            let reopened = Database::create(path).map_err(|e| map_open_error(path, e));
            match reopened {
                Ok(db) => *current = Some(Arc::new(db)),
                Err(e) => {
                    // Put something back so reads go on; the next try drops it again.
                    if let Ok(db) = Database::open(path) {
                        *current = Some(Arc::new(db));
                    }
                    return Err(e);
                }
            }
        }
        let tx = self.database()?.begin_write()?;
        {
            let mut probe = tx.open_table(PROBE)?;
            let n = probe.get("writes")?.map(|g| g.value()).unwrap_or(0);
            probe.insert("writes", n.wrapping_add(1))?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Whether `error` means the file can no longer be written through this handle (as
/// opposed to a refused write that leaves the database sound).
fn breaks_storage(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Redb(
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_storage_failures_make_the_database_unavailable() {
        let io = || std::io::Error::from_raw_os_error(28);
        let cases = [
            (StoreError::Redb(redb::Error::Io(io())), true),
            (StoreError::Redb(redb::Error::PreviousIo), true),
            (StoreError::Redb(redb::Error::DatabaseClosed), true),
            (StoreError::Redb(redb::Error::ValueTooLarge(1)), false),
            (StoreError::Corrupt("bad row".into()), false),
            (StoreError::ReadOnly, false),
        ];
        for (error, breaks) in cases {
            assert_eq!(breaks_storage(&error), breaks, "{error}");
        }
    }

    #[test]
    fn an_unavailable_database_refuses_writes_with_the_first_cause_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let db = WritableDb::new(Database::create(&path).unwrap(), Some(path));
        db.failed(&StoreError::Redb(redb::Error::Io(
            std::io::Error::from_raw_os_error(28),
        )));
        db.failed(&StoreError::Redb(redb::Error::PreviousIo));
        let cause = db.unavailable().expect("unavailable");
        assert!(
            cause.contains("os error 28"),
            "the first cause is kept: {cause}"
        );
        match db.begin_write() {
            Err(StoreError::Unavailable(c)) => assert_eq!(c, cause),
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("a write was begun on an unavailable database"),
        }
        assert!(db.begin_read().is_ok(), "reads go on");
        // The disk is fine here, so the recovery thread's first try reopens the file.
        let deadline = std::time::Instant::now() + 10 * RETRY;
        while db.unavailable().is_some() {
            assert!(std::time::Instant::now() < deadline, "never recovered");
            std::thread::sleep(RETRY / 10);
        }
        let tx = db.begin_write().expect("writable again");
        tx.commit().unwrap();
    }
}
