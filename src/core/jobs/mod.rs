//! Async jobs, the parts the worker, the router and the CLI share: the lifecycle states,
//! the job object clients see, how a submission is checked, and the retention rules.
//!
//! A job is a non-streaming chat request run in the background: `POST /v1/jobs` queues
//! it, `GET /v1/jobs/{id}` polls it, `DELETE /v1/jobs/{id}` cancels it while it waits.
//! The worker keeps its jobs in `worker::jobs`, the router its clients' jobs (mapped to
//! a peer and that peer's job id) in `router::jobs`; both in redb, so a restart loses
//! none.

mod submission;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use submission::{
    JobSubmission, MAX_METADATA_KEY_CHARS, MAX_METADATA_PAIRS, MAX_METADATA_VALUE_CHARS,
    SubmissionError,
};

use crate::core::ledger::StoredReceipt;

/// The `object` field of every job.
pub const JOB_OBJECT: &str = "lobstah.job";
/// Router → worker: the id the router chose for the job it submits, so that a retried
/// submission (after a timeout or a router crash) finds the job instead of making a
/// second one. Optional: a worker that ignores it answers with its own id.
pub use crate::core::protocol::wire::JOB_ID_HEADER;
/// Client → router: a retried `POST /v1/jobs` with the same key returns the job the
/// first one created.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// How long a worker keeps a finished job for its requester to fetch.
pub const DONE_TTL_MS: u64 = 60 * 60 * 1000;
/// …a failed one.
pub const ERROR_TTL_MS: u64 = 30 * 60 * 1000;
/// …a cancelled one (like a failure: nothing to fetch but the fact).
pub const CANCELLED_TTL_MS: u64 = ERROR_TTL_MS;
/// How long a router keeps a finished client job. Longer than a worker's retention: the
/// router fetches each result as soon as it is done, so a client can come back for it
/// the next day.
pub const ROUTER_KEEP_MS: u64 = 24 * 60 * 60 * 1000;

/// Called with receipts a job transaction appended to the ledger, after the commit (the
/// node turns them into receipt events, as the ledger writer's callback does for chat).
pub type ReceiptHook = Arc<dyn Fn(&[StoredReceipt]) + Send + Sync>;

/// Where a job is in its life. `Cancelled` is a queued job its requester withdrew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Error,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Error,
        JobStatus::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Error => "error",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Done, error and cancelled jobs never change again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Error | JobStatus::Cancelled
        )
    }

    /// How long a worker keeps a job that ended in this state; `None` while it lives.
    pub fn worker_ttl_ms(&self) -> Option<u64> {
        match self {
            JobStatus::Done => Some(DONE_TTL_MS),
            JobStatus::Error => Some(ERROR_TTL_MS),
            JobStatus::Cancelled => Some(CANCELLED_TTL_MS),
            JobStatus::Queued | JobStatus::Running => None,
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!("unknown job status {s:?} (queued, running, done, error or cancelled)")
            })
    }
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCounts {
    pub queued: u32,
    pub running: u32,
    pub done: u32,
    pub error: u32,
    pub cancelled: u32,
}

impl JobCounts {
    pub fn get(&self, status: JobStatus) -> u32 {
        match status {
            JobStatus::Queued => self.queued,
            JobStatus::Running => self.running,
            JobStatus::Done => self.done,
            JobStatus::Error => self.error,
            JobStatus::Cancelled => self.cancelled,
        }
    }

    fn slot(&mut self, status: JobStatus) -> &mut u32 {
        match status {
            JobStatus::Queued => &mut self.queued,
            JobStatus::Running => &mut self.running,
            JobStatus::Done => &mut self.done,
            JobStatus::Error => &mut self.error,
            JobStatus::Cancelled => &mut self.cancelled,
        }
    }

    /// One job left `from` (none: it is new) for `to` (none: it was evicted).
    pub fn moved(&mut self, from: Option<JobStatus>, to: Option<JobStatus>) {
        if let Some(from) = from {
            let n = self.slot(from);
            *n = n.saturating_sub(1);
        }
        if let Some(to) = to {
            let n = self.slot(to);
            *n = n.saturating_add(1);
        }
    }
}

/// Why a job failed, in OpenAI's error shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// What the router knows of a job's receipt; only on the router's job objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptNote {
    /// `credited` (ledgered as spent), `own-worker` (this node's worker served it and
    /// ledgered it), `refused` (not ledgered: `reason`, `detail`) or `missing`.
    pub status: String,
    pub tokens: u64,
    pub nonce: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// A job as `GET /v1/jobs/{id}` shows it, on the worker and on the router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: String,
    pub object: String,
    pub status: JobStatus,
    pub model: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub created_at: u64,
    pub started_at: Option<u64>,
    pub completed_at: Option<u64>,
    /// When a finished job will be forgotten.
    pub expires_at: Option<u64>,
    /// The engine's `chat.completion`, once done.
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<JobFailure>,
    /// Router only: the peer the job was given to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    /// Router only: what became of the job's receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptNote>,
    /// Router only, and rare: receipts of copies of the job that ran at another peer too
    /// (an offer whose answer was lost), paid for because the work was done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_receipts: Vec<ReceiptNote>,
}

impl JobView {
    /// The assistant's text of a done job's first choice, for printing.
    pub fn answer_text(&self) -> Option<&str> {
        self.result
            .as_ref()?
            .pointer("/choices/0/message/content")?
            .as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_moves_and_never_go_negative() {
        let mut c = JobCounts::default();
        c.moved(None, Some(JobStatus::Queued));
        c.moved(None, Some(JobStatus::Queued));
        c.moved(Some(JobStatus::Queued), Some(JobStatus::Running));
        c.moved(Some(JobStatus::Running), Some(JobStatus::Done));
        c.moved(Some(JobStatus::Queued), Some(JobStatus::Cancelled));
        c.moved(Some(JobStatus::Done), None);
        c.moved(Some(JobStatus::Error), None);
        assert_eq!(c, JobCounts::default().with_cancelled(1));
    }

    impl JobCounts {
        fn with_cancelled(mut self, n: u32) -> Self {
            self.cancelled = n;
            self
        }
    }

    #[test]
    fn statuses_round_trip_as_text_and_json() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(status.is_terminal(), status.worker_ttl_ms().is_some());
        }
        assert!("finished".parse::<JobStatus>().is_err());
    }
}
