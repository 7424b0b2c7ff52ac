//! The router's async jobs: clients submit, poll and cancel jobs under the router's own
//! ids; each job is handed to a capable peer (batch-tier peers first, failing over like
//! chat), mapped to that peer's job id in redb, and collected when it is done — its
//! receipt verified and ledgered exactly once, however late and however often the
//! client asks.
//!
//! Exactly once: the change of a job to `done` and the receipt's append to the ledger
//! are one redb transaction that first re-reads the row, so a second poll (or the
//! collector racing a client) finds the job credited and appends nothing; the ledger's
//! durable nonce table refuses the same receipt again in any case. Freshness is bounded
//! by the job's own submission time instead of the ±5 minutes of chat, because a job's
//! result may be fetched long after it completed.
//!
//! `row` is the job as stored and its attempts; `store` the tables; `place` submission
//! and failover; `poll` asks peers about placed jobs; `credit` ledgers a done job's
//! receipt; `loose` settles unanswered offers and homeless jobs; `collect` is the
//! background loop; `http` the endpoints.

mod collect;
mod credit;
mod http;
mod loose;
mod place;
mod poll;
mod row;
mod store;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

pub(super) use collect::spawn_collector;
pub(super) use http::{cancel_job, get_job, list_jobs, submit_job};
pub use row::{Attempt, AttemptOutcome, RouterJob};
pub use store::RouterJobStore;

use crate::core::jobs::{JobCounts, ReceiptHook};
use crate::core::ledger::StoredReceipt;
use crate::core::store::{Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RouterJobError {
    #[error("no such job")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored job is damaged: {0}")]
    Corrupt(String),
}

crate::core::store::redb_errors_into!(RouterJobError, RouterJobError::Store);

/// The router's job state: the store, the submissions under way in this process, the
/// node's hook.
pub struct RouterJobs {
    store: Arc<RouterJobStore>,
    /// Jobs a request handler is placing right now; the collector leaves them alone.
    active: Mutex<HashSet<String>>,
    hook: OnceLock<ReceiptHook>,
}

impl RouterJobs {
    pub fn open(db: Db) -> Result<Self, RouterJobError> {
        Ok(RouterJobs {
            store: Arc::new(RouterJobStore::open(db)?),
            active: Mutex::new(HashSet::new()),
            hook: OnceLock::new(),
        })
    }

    pub fn store(&self) -> &Arc<RouterJobStore> {
        &self.store
    }

    pub fn counts(&self) -> JobCounts {
        self.store.counts()
    }

    /// Sets the one hook told about receipts job credits ledger; `false` if set already.
    pub fn set_receipt_hook(&self, hook: ReceiptHook) -> bool {
        self.hook.set(hook).is_ok()
    }

    fn appended(&self, receipts: &[StoredReceipt]) {
        if let (Some(hook), false) = (self.hook.get(), receipts.is_empty()) {
            hook(receipts);
        }
    }

    fn is_active(&self, id: &str) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Marks `id` as being placed until the guard drops; `None` if it already is.
    fn activate(self: &Arc<Self>, id: &str) -> Option<ActiveGuard> {
        let fresh = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
        fresh.then(|| ActiveGuard {
            jobs: self.clone(),
            id: id.to_string(),
        })
    }
}

struct ActiveGuard {
    jobs: Arc<RouterJobs>,
    id: String,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.jobs
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// Runs a store call off the async threads: redb commits wait on the disk.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RouterJobError> + Send + 'static,
) -> Result<T, RouterJobError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(RouterJobError::Corrupt(format!(
            "a job store task failed: {e}"
        )))
    })
}

#[cfg(test)]
mod tests;
