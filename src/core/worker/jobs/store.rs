//! The worker's jobs in redb: one row per job (JSON), the FIFO of queued jobs, and an
//! index of when finished jobs expire. Every change of state is one transaction, and the
//! change to `done` commits together with the job's receipt in the ledger, so a receipt
//! exists exactly when its job is done: a crash before that commit leaves the job
//! `running` (requeued at the next start, run again, signed once); a crash after it
//! leaves a done job that is served.

use std::collections::BTreeMap;
use std::sync::Mutex;

use redb::{Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::JobError;
use crate::core::jobs::{JOB_OBJECT, JobCounts, JobFailure, JobStatus, JobSubmission, JobView};
use crate::core::ledger::{AppendOutcome, Ledger, StoredReceipt, Verified};
use crate::core::protocol::{PublicKey, SignedReceipt};
use crate::core::store::Db;

/// job id → JSON of the `JobRecord`.
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("worker_jobs");
/// enqueue sequence → job id, for queued jobs only: the first key is the next to run.
const QUEUE: TableDefinition<u64, &str> = TableDefinition::new("worker_job_queue");
/// (expiry ms, job id) for finished jobs: the sweeper takes them from the front.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("worker_job_expiry");
/// `next_seq`.
const META: TableDefinition<&str, u64> = TableDefinition::new("worker_job_meta");

/// One job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    pub id: String,
    pub status: JobStatus,
    pub requester: PublicKey,
    pub model: String,
    pub metadata: BTreeMap<String, String>,
    /// The chat request; dropped once the job has finished.
    pub request: Option<Map<String, Value>>,
    pub created_at: u64,
    pub started_at: Option<u64>,
    pub completed_at: Option<u64>,
    pub expires_at: Option<u64>,
    /// Its place in the FIFO, kept while it runs so a requeued job goes back there.
    pub queue_seq: u64,
    /// Times it was started (more than one after a crash or restart mid-run).
    pub runs: u32,
    pub result: Option<Value>,
    pub receipt: Option<SignedReceipt>,
    pub error: Option<JobFailure>,
    /// Submitted unsigned: its receipt is ledgered as anonymous, charged to nobody.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

impl JobRecord {
    /// Whether this requester may see, resubmit or cancel the job. A job submitted with
    /// a signature is the signer's alone: an unsigned request claiming the same key
    /// does not reach it (to it, the job does not exist).
    pub fn belongs_to(&self, requester: &PublicKey, signed: bool) -> bool {
        self.requester == *requester && (signed || self.anonymous)
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
            served_by: None,
            receipt: None,
            extra_receipts: Vec::new(),
        }
    }

    fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_ms)
    }
}

/// How a run ended.
#[derive(Clone)]
pub enum Finish {
    Done {
        result: Value,
        receipt: Box<Verified>,
    },
    Failed(JobFailure),
}

/// The worker's job tables over its database.
pub struct JobStore {
    db: Db,
    max_queued: usize,
    /// Mirrors the rows; changed after each commit by the transition it made.
    counts: Mutex<JobCounts>,
}

type Jobs<'t> = redb::Table<'t, &'static str, &'static [u8]>;

fn load(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<JobRecord>, JobError> {
    let Some(bytes) = table.get(id)? else {
        return Ok(None);
    };
    serde_json::from_slice(bytes.value())
        .map(Some)
        .map_err(|e| JobError::Corrupt(format!("job {id}: {e}")))
}

fn save(table: &mut Jobs<'_>, record: &JobRecord) -> Result<(), JobError> {
    let bytes = serde_json::to_vec(record).map_err(|e| JobError::Corrupt(e.to_string()))?;
    table.insert(record.id.as_str(), bytes.as_slice())?;
    Ok(())
}

/// Ends a job's life: the state, the time, and its place in the expiry index.
fn finish_record(
    record: &mut JobRecord,
    status: JobStatus,
    now_ms: u64,
    expiry: &mut redb::Table<'_, (u64, &'static str), ()>,
) -> Result<(), JobError> {
    let expires_at = now_ms.saturating_add(status.worker_ttl_ms().unwrap_or(0));
    record.status = status;
    record.completed_at = Some(now_ms);
    record.expires_at = Some(expires_at);
    record.request = None;
    expiry.insert((expires_at, record.id.as_str()), ())?;
    Ok(())
}

impl JobStore {
    /// Opens the tables and recovers from the last run: jobs that were running go back
    /// to their place in the queue, expired ones are dropped, and the counts are taken.
    pub fn open(db: Db, max_queued: usize, now_ms: u64) -> Result<Self, JobError> {
        let tx = db.begin_write()?;
        let mut counts = JobCounts::default();
        let mut requeued = 0;
        {
            let mut jobs = tx.open_table(JOBS)?;
            let mut queue = tx.open_table(QUEUE)?;
            let mut expiry = tx.open_table(EXPIRY)?;
            tx.open_table(META)?;
            let mut records = Vec::new();
            for row in jobs.iter()? {
                let (key, bytes) = row?;
                let record: JobRecord = serde_json::from_slice(bytes.value())
                    .map_err(|e| JobError::Corrupt(format!("job {}: {e}", key.value())))?;
                records.push(record);
            }
            for mut record in records {
                if record.is_expired(now_ms) {
                    jobs.remove(record.id.as_str())?;
                    if let Some(at) = record.expires_at {
                        expiry.remove((at, record.id.as_str()))?;
                    }
                    continue;
                }
                if record.status == JobStatus::Running {
                    // Its run died with the process; its receipt was never committed.
                    record.status = JobStatus::Queued;
                    record.started_at = None;
                    save(&mut jobs, &record)?;
                    requeued += 1;
                }
                if record.status == JobStatus::Queued {
                    queue.insert(record.queue_seq, record.id.as_str())?;
                }
                counts.moved(None, Some(record.status));
            }
        }
        tx.commit()?;
        if requeued > 0 {
            tracing::info!(
                requeued,
                "jobs that were running when the worker stopped are queued again"
            );
        }
        Ok(JobStore {
            db,
            max_queued,
            counts: Mutex::new(counts),
        })
    }

    pub fn counts(&self) -> JobCounts {
        *self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn moved(&self, from: Option<JobStatus>, to: Option<JobStatus>) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .moved(from, to);
    }

    /// Queues a job under `id`. A job that already has this id is returned as it is
    /// (`false`: not created) when it is the same requester's: a retried submission.
    pub fn create(
        &self,
        id: &str,
        requester: PublicKey,
        submission: JobSubmission,
        now_ms: u64,
    ) -> Result<(JobRecord, bool), JobError> {
        self.create_for(id, requester, false, submission, now_ms)
    }

    /// `create`, saying whether the requester proved who it is (`anonymous`: it did not).
    pub fn create_for(
        &self,
        id: &str,
        requester: PublicKey,
        anonymous: bool,
        submission: JobSubmission,
        now_ms: u64,
    ) -> Result<(JobRecord, bool), JobError> {
        let tx = self.db.begin_write()?;
        let record = {
            let mut jobs = tx.open_table(JOBS)?;
            if let Some(existing) = load(&jobs, id)? {
                if !existing.belongs_to(&requester, !anonymous) || existing.is_expired(now_ms) {
                    return Err(JobError::Conflict(id.to_string()));
                }
                return Ok((existing, false));
            }
            let mut queue = tx.open_table(QUEUE)?;
            let waiting = queue.len()? as usize;
            if waiting >= self.max_queued {
                return Err(JobError::QueueFull {
                    max: self.max_queued,
                });
            }
            let mut meta = tx.open_table(META)?;
            let seq = meta.get("next_seq")?.map(|v| v.value()).unwrap_or(0).max(1);
            meta.insert("next_seq", seq + 1)?;
            let record = JobRecord {
                id: id.to_string(),
                status: JobStatus::Queued,
                requester,
                model: submission.request.model.clone(),
                metadata: submission.metadata,
                request: Some(submission.request.body),
                created_at: now_ms,
                started_at: None,
                completed_at: None,
                expires_at: None,
                queue_seq: seq,
                runs: 0,
                result: None,
                receipt: None,
                error: None,
                anonymous,
            };
            save(&mut jobs, &record)?;
            queue.insert(seq, id)?;
            record
        };
        tx.commit()?;
        self.moved(None, Some(JobStatus::Queued));
        Ok((record, true))
    }

    /// The job, unless there is none or it has expired (the sweeper may not have run).
    pub fn get(&self, id: &str, now_ms: u64) -> Result<Option<JobRecord>, JobError> {
        let tx = self.db.begin_read()?;
        let jobs = tx.open_table(JOBS)?;
        Ok(load(&jobs, id)?.filter(|r| !r.is_expired(now_ms)))
    }

    /// Withdraws a queued job for its requester (`signed`: proved by a signature).
    /// Cancelling a cancelled job again is not an error (the first answer may have been
    /// lost); a running or finished one cannot be.
    pub fn cancel(
        &self,
        id: &str,
        requester: &PublicKey,
        signed: bool,
        now_ms: u64,
    ) -> Result<JobRecord, JobError> {
        let tx = self.db.begin_write()?;
        let record = {
            let mut jobs = tx.open_table(JOBS)?;
            let mut record = match load(&jobs, id)? {
                Some(r) if r.belongs_to(requester, signed) && !r.is_expired(now_ms) => r,
                _ => return Err(JobError::NotFound),
            };
            match record.status {
                JobStatus::Cancelled => return Ok(record),
                JobStatus::Queued => {}
                other => return Err(JobError::WrongState(other)),
            }
            tx.open_table(QUEUE)?.remove(record.queue_seq)?;
            let mut expiry = tx.open_table(EXPIRY)?;
            finish_record(&mut record, JobStatus::Cancelled, now_ms, &mut expiry)?;
            save(&mut jobs, &record)?;
            record
        };
        tx.commit()?;
        self.moved(Some(JobStatus::Queued), Some(JobStatus::Cancelled));
        Ok(record)
    }

    /// Takes the first queued job and marks it running.
    pub fn claim_next(&self, now_ms: u64) -> Result<Option<JobRecord>, JobError> {
        let tx = self.db.begin_write()?;
        let record = {
            let mut queue = tx.open_table(QUEUE)?;
            let Some((seq, id)) = queue
                .first()?
                .map(|(k, v)| (k.value(), v.value().to_string()))
            else {
                return Ok(None);
            };
            queue.remove(seq)?;
            let mut jobs = tx.open_table(JOBS)?;
            let Some(mut record) = load(&jobs, &id)? else {
                return Err(JobError::Corrupt(format!("queued job {id} has no row")));
            };
            record.status = JobStatus::Running;
            record.started_at = Some(now_ms);
            record.runs = record.runs.saturating_add(1);
            save(&mut jobs, &record)?;
            record
        };
        tx.commit()?;
        self.moved(Some(JobStatus::Queued), Some(JobStatus::Running));
        Ok(Some(record))
    }

    /// Ends a running job. For `Done`, the receipt enters the ledger in the same
    /// transaction; the receipts appended are returned for the node's events.
    pub fn finish(
        &self,
        id: &str,
        outcome: Finish,
        now_ms: u64,
    ) -> Result<Vec<StoredReceipt>, JobError> {
        let result = self.finish_once(id, outcome, now_ms);
        if let Err(JobError::Store(e)) = &result {
            self.db.failed(e);
        }
        result
    }

    /// Why the database refuses writes now, if it does (see `store::writable`).
    pub fn unavailable(&self) -> Option<String> {
        self.db.unavailable()
    }

    fn finish_once(
        &self,
        id: &str,
        outcome: Finish,
        now_ms: u64,
    ) -> Result<Vec<StoredReceipt>, JobError> {
        let tx = self.db.begin_write()?;
        let (appended, status) = {
            let mut jobs = tx.open_table(JOBS)?;
            let Some(mut record) = load(&jobs, id)? else {
                return Err(JobError::NotFound);
            };
            if record.status != JobStatus::Running {
                return Err(JobError::WrongState(record.status));
            }
            let mut expiry = tx.open_table(EXPIRY)?;
            let mut appended = Vec::new();
            let status = match outcome {
                Finish::Done { result, receipt } => {
                    let outcomes = Ledger::append_in(&tx, std::slice::from_ref(&*receipt))?;
                    if let Some(AppendOutcome::Appended { seq }) = outcomes.first() {
                        appended.push(StoredReceipt {
                            seq: *seq,
                            receipt: receipt.signed().clone(),
                        });
                    }
                    record.result = Some(result);
                    record.receipt = Some((*receipt).into_signed());
                    JobStatus::Done
                }
                Finish::Failed(failure) => {
                    record.error = Some(failure);
                    JobStatus::Error
                }
            };
            finish_record(&mut record, status, now_ms, &mut expiry)?;
            save(&mut jobs, &record)?;
            (appended, status)
        };
        tx.commit()?;
        self.moved(Some(JobStatus::Running), Some(status));
        Ok(appended)
    }

    /// Forgets finished jobs whose time is up; returns how many. Not durable on its own
    /// (a lost sweep is redone).
    pub fn sweep(&self, now_ms: u64) -> Result<usize, JobError> {
        let mut tx = self.db.begin_write()?;
        let _ = tx.set_durability(Durability::None);
        let mut gone = Vec::new();
        {
            let mut expiry = tx.open_table(EXPIRY)?;
            let mut jobs = tx.open_table(JOBS)?;
            let due: Vec<(u64, String)> = expiry
                .iter()?
                .map_while(|row| match row {
                    Ok((k, _)) if k.value().0 <= now_ms => {
                        let (at, id) = k.value();
                        Some(Ok((at, id.to_string())))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()?;
            for (at, id) in due {
                expiry.remove((at, id.as_str()))?;
                if let Some(record) = load(&jobs, &id)? {
                    jobs.remove(id.as_str())?;
                    gone.push(record.status);
                }
            }
        }
        tx.commit()?;
        for status in &gone {
            self.moved(Some(*status), None);
        }
        Ok(gone.len())
    }
}
