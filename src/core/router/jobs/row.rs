//! A client job as the router keeps it: what the client sees (status, result, receipt
//! note) and how the job was placed (every attempt at a peer, and the one that took it).
//!
//! Attempts are written down before the router sends anything, so after a crash it knows
//! which peers may hold a copy of the job. An attempt whose outcome was never learned is
//! *loose*: the collector asks that peer later, adopts the copy when the job has no home
//! yet, withdraws it otherwise, and — if it ran anyway — collects and credits it, since
//! the worker did the work and has ledgered it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::jobs::{JOB_OBJECT, JobFailure, JobStatus, JobView, ReceiptNote};
use crate::core::protocol::PublicKey;

/// What became of one attempt to hand the job to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// Sent (or about to be); the answer has not been recorded.
    Pending,
    /// The peer took the job: this attempt is the job's placement.
    Accepted,
    /// The peer said no, or could not be reached at all: it holds no copy.
    Refused,
    /// Sent, but no answer came (timeout, broken connection): it may hold a copy.
    Unknown,
    /// Checked later: the peer holds no copy (never got it, or it was withdrawn).
    Absent,
    /// Checked later: the peer ran a copy although the job lives elsewhere.
    Ran,
    /// That copy's receipt has been dealt with.
    Collected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub peer: PublicKey,
    /// The id the router proposed, replaced by the one the worker answered with.
    pub worker_job_id: String,
    pub at_ms: u64,
    pub outcome: AttemptOutcome,
    pub detail: Option<String>,
}

/// One client job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterJob {
    pub id: String,
    pub idempotency_key: Option<String>,
    pub status: JobStatus,
    pub model: String,
    pub metadata: BTreeMap<String, String>,
    /// The client's body as sent to peers; kept until the job ends, to place it again.
    pub request: Option<Value>,
    pub created_at: u64,
    pub started_at: Option<u64>,
    pub completed_at: Option<u64>,
    pub expires_at: Option<u64>,
    /// Index into `attempts` of the accepted one.
    pub placement: Option<usize>,
    pub attempts: Vec<Attempt>,
    pub result: Option<Value>,
    pub error: Option<JobFailure>,
    /// The placement's receipt: set once, when the job is done.
    pub receipt: Option<ReceiptNote>,
    /// Receipts of copies that ran elsewhere (see `AttemptOutcome::Ran`).
    #[serde(default)]
    pub extra_receipts: Vec<ReceiptNote>,
    /// The job's receipt is in the ledger (or was refused for good): never again.
    pub credited: bool,
}

impl RouterJob {
    pub fn placed(&self) -> Option<&Attempt> {
        self.placement.and_then(|i| self.attempts.get(i))
    }

    /// Waiting for a peer to take it (never placed, or its peer lost it).
    pub fn unplaced(&self) -> bool {
        !self.status.is_terminal() && self.placement.is_none()
    }

    /// Attempts the collector must still look into. `Pending` counts only when no
    /// submission for this job is under way in this process (`active`).
    pub fn loose(&self, active: bool) -> Vec<usize> {
        self.attempts
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.placement)
            .filter(|(_, a)| match a.outcome {
                AttemptOutcome::Pending => !active,
                AttemptOutcome::Unknown | AttemptOutcome::Ran => true,
                _ => false,
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether the collector has anything to do for this row.
    pub fn open(&self) -> bool {
        !self.status.is_terminal() || !self.loose(false).is_empty()
    }

    /// Ends the job: the state, the time and how long it is kept.
    pub fn finish(&mut self, status: JobStatus, now_ms: u64, keep_ms: u64) {
        self.status = status;
        self.completed_at.get_or_insert(now_ms);
        self.expires_at = Some(now_ms.saturating_add(keep_ms));
        self.request = None;
    }

    pub fn view(&self) -> JobView {
        JobView {
            id: self.id.clone(),
            object: JOB_OBJECT.into(),
            status: self.status,
            model: self.model.clone(),
            metadata: self.metadata.clone(),
            created_at: self.created_at,
            started_at: self.started_at,
            completed_at: self.completed_at,
            expires_at: self.expires_at,
            result: self.result.clone(),
            error: self.error.clone(),
            served_by: self.placed().map(|a| a.peer.to_string()),
            receipt: self.receipt.clone(),
            extra_receipts: self.extra_receipts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::Identity;

    fn row(outcomes: &[AttemptOutcome], placement: Option<usize>, status: JobStatus) -> RouterJob {
        let peer = Identity::from_seed([1; 32]).public();
        RouterJob {
            id: "j".into(),
            idempotency_key: None,
            status,
            model: "m".into(),
            metadata: BTreeMap::new(),
            request: None,
            created_at: 0,
            started_at: None,
            completed_at: None,
            expires_at: None,
            placement,
            attempts: outcomes
                .iter()
                .map(|&outcome| Attempt {
                    peer,
                    worker_job_id: "w".into(),
                    at_ms: 0,
                    outcome,
                    detail: None,
                })
                .collect(),
            result: None,
            error: None,
            receipt: None,
            extra_receipts: Vec::new(),
            credited: false,
        }
    }

    /// (attempts, placement, status, submission active) → (loose, unplaced, open)
    type Case = (
        Vec<AttemptOutcome>,
        Option<usize>,
        JobStatus,
        bool,
        Vec<usize>,
        bool,
        bool,
    );

    #[test]
    fn loose_attempts_and_openness_table() {
        use AttemptOutcome::*;
        use JobStatus::*;
        // (attempts, placement, status, submission active) → (loose, unplaced, open)
        let cases: Vec<Case> = vec![
            (vec![Pending], None, Queued, true, vec![], true, true),
            (vec![Pending], None, Queued, false, vec![0], true, true),
            (
                vec![Refused, Accepted],
                Some(1),
                Queued,
                false,
                vec![],
                false,
                true,
            ),
            (
                vec![Unknown, Accepted],
                Some(1),
                Done,
                false,
                vec![0],
                false,
                true,
            ),
            (
                vec![Unknown, Accepted],
                Some(1),
                Done,
                true,
                vec![0],
                false,
                true,
            ),
            (
                vec![Ran, Accepted],
                Some(1),
                Done,
                false,
                vec![0],
                false,
                true,
            ),
            (
                vec![Absent, Collected, Accepted],
                Some(2),
                Done,
                false,
                vec![],
                false,
                false,
            ),
            (vec![Refused], None, Error, false, vec![], false, false),
            (vec![Unknown], None, Error, false, vec![0], false, true),
            (
                vec![Accepted, Pending],
                Some(0),
                Running,
                false,
                vec![1],
                false,
                true,
            ),
        ];
        for (i, (attempts, placement, status, active, loose, unplaced, open)) in
            cases.into_iter().enumerate()
        {
            let r = row(&attempts, placement, status);
            assert_eq!(r.loose(active), loose, "case {i}");
            assert_eq!(r.unplaced(), unplaced, "case {i}");
            assert_eq!(r.open(), open, "case {i}");
        }
    }

    #[test]
    fn finishing_keeps_the_first_completion_time_and_drops_the_request() {
        let mut r = row(&[AttemptOutcome::Accepted], Some(0), JobStatus::Running);
        r.request = Some(serde_json::json!({"model": "m"}));
        r.completed_at = Some(5);
        r.finish(JobStatus::Done, 9, 100);
        assert_eq!(
            (r.completed_at, r.expires_at, r.request.clone()),
            (Some(5), Some(109), None)
        );
        assert_eq!(r.view().served_by, Some(r.attempts[0].peer.to_string()));
    }
}
