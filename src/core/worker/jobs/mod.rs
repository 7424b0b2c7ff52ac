//! The worker's async jobs: `POST /v1/jobs` queues a chat request in redb, a dispatcher
//! runs queued jobs in FIFO order on the engine, `GET` and `DELETE /v1/jobs/{id}` poll
//! and cancel.
//!
//! Jobs share the chat requests' admission (`--concurrency`): the limit protects the
//! engine, which cannot tell a job from a chat, so a job takes a slot like a request
//! does. The dispatcher asks for one slot at a time and waits in the same FIFO line, so
//! under load jobs and chat requests take turns rather than one starving the other; it
//! does not count against `--max-queue` (the job queue has its own bound), so a backlog
//! of jobs never makes chat requests bounce with 503.
//!
//! `store` holds the tables and the transitions; `runner` the dispatcher, the runs and
//! the sweeper; `http` the endpoints.

mod http;
mod runner;
mod store;

use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

pub(super) use http::{cancel_job, get_job, submit_job};
pub(super) use runner::{spawn_dispatcher, spawn_sweeper};
pub use store::{Finish, JobRecord, JobStore};

use crate::core::jobs::{JobCounts, JobStatus, ReceiptHook};
use crate::core::ledger::StoredReceipt;
use crate::core::store::StoreError;

/// Jobs allowed to wait by default; beyond it a submission is refused with 503 so the
/// router gives the job to another peer.
pub const DEFAULT_MAX_QUEUED_JOBS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no such job")]
    NotFound,
    #[error("job id {0} is already in use")]
    Conflict(String),
    #[error("the worker's job queue is full ({max} jobs waiting)")]
    QueueFull { max: usize },
    /// The job is not in a state that allows what was asked (cancel a running job).
    #[error("the job is {0}")]
    WrongState(JobStatus),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored job is damaged: {0}")]
    Corrupt(String),
}

crate::core::store::redb_errors_into!(JobError, JobError::Store);

/// The worker's job state: the store, the dispatcher's wake-up, the node's hook.
pub struct Jobs {
    store: Arc<JobStore>,
    /// Woken when a job is queued.
    queued: Notify,
    hook: OnceLock<ReceiptHook>,
}

impl Jobs {
    pub fn new(store: JobStore) -> Self {
        Jobs {
            store: Arc::new(store),
            queued: Notify::new(),
            hook: OnceLock::new(),
        }
    }

    pub fn store(&self) -> &Arc<JobStore> {
        &self.store
    }

    pub fn counts(&self) -> JobCounts {
        self.store.counts()
    }

    /// Sets the one hook told about receipts job runs ledger; `false` if set already.
    pub fn set_receipt_hook(&self, hook: ReceiptHook) -> bool {
        self.hook.set(hook).is_ok()
    }

    fn appended(&self, receipts: &[StoredReceipt]) {
        if let (Some(hook), false) = (self.hook.get(), receipts.is_empty()) {
            hook(receipts);
        }
    }
}

/// Runs a store call off the async threads: redb commits wait on the disk.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(JobError::Corrupt(format!("a job store task failed: {e}"))))
}

#[cfg(test)]
mod tests;
