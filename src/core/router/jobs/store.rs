//! The router's client jobs in redb: one row per job (JSON), the idempotency keys, the
//! rows the collector still works on (in creation order), every row by creation time
//! for listings, and when finished rows expire. Each change is one durable transaction
//! that keeps the indexes in step with the row; crediting a receipt happens inside the
//! same transaction as the change to `done`.

use std::sync::Mutex;

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::RouterJobError;
use super::row::RouterJob;
use crate::core::jobs::{JobCounts, JobStatus};
use crate::core::store::Db;

/// job id → JSON of the `RouterJob`.
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("router_jobs");
/// idempotency key → job id.
const KEYS: TableDefinition<&str, &str> = TableDefinition::new("router_job_keys");
/// (created ms, job id) of rows the collector still has work for.
const OPEN: TableDefinition<(u64, &str), ()> = TableDefinition::new("router_job_open");
/// (created ms, job id) of every row.
const BY_TIME: TableDefinition<(u64, &str), ()> = TableDefinition::new("router_job_by_time");
/// (expiry ms, job id) of finished rows.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("router_job_expiry");

type Rows<'t> = redb::Table<'t, &'static str, &'static [u8]>;

fn load(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<RouterJob>, RouterJobError> {
    let Some(bytes) = table.get(id)? else {
        return Ok(None);
    };
    serde_json::from_slice(bytes.value())
        .map(Some)
        .map_err(|e| RouterJobError::Corrupt(format!("job {id}: {e}")))
}

/// Writes the row and brings the indexes in line with it (`before`: the row as it was).
fn save(
    tx: &WriteTransaction,
    rows: &mut Rows<'_>,
    before: Option<&RouterJob>,
    row: &RouterJob,
) -> Result<(), RouterJobError> {
    let bytes = serde_json::to_vec(row).map_err(|e| RouterJobError::Corrupt(e.to_string()))?;
    rows.insert(row.id.as_str(), bytes.as_slice())?;
    let key = (row.created_at, row.id.as_str());
    let mut open = tx.open_table(OPEN)?;
    if row.open() {
        open.insert(key, ())?;
    } else {
        open.remove(key)?;
    }
    if before.is_none() {
        tx.open_table(BY_TIME)?.insert(key, ())?;
    }
    let was = before.and_then(|b| b.expires_at);
    if was != row.expires_at {
        let mut expiry = tx.open_table(EXPIRY)?;
        if let Some(at) = was {
            expiry.remove((at, row.id.as_str()))?;
        }
        if let Some(at) = row.expires_at {
            expiry.insert((at, row.id.as_str()), ())?;
        }
    }
    Ok(())
}

/// What `insert` did.
pub enum Inserted {
    New(RouterJob),
    /// The idempotency key already named this job.
    Existing(RouterJob),
}

pub struct RouterJobStore {
    db: Db,
    counts: Mutex<JobCounts>,
}

impl RouterJobStore {
    pub fn open(db: Db) -> Result<Self, RouterJobError> {
        let tx = db.begin_write()?;
        let mut counts = JobCounts::default();
        {
            let rows = tx.open_table(JOBS)?;
            tx.open_table(KEYS)?;
            tx.open_table(OPEN)?;
            tx.open_table(BY_TIME)?;
            tx.open_table(EXPIRY)?;
            for row in rows.iter()? {
                let (key, bytes) = row?;
                let job: RouterJob = serde_json::from_slice(bytes.value())
                    .map_err(|e| RouterJobError::Corrupt(format!("job {}: {e}", key.value())))?;
                counts.moved(None, Some(job.status));
            }
        }
        tx.commit()?;
        Ok(RouterJobStore {
            db,
            counts: Mutex::new(counts),
        })
    }

    /// Jobs by status, as clients see them.
    pub fn counts(&self) -> JobCounts {
        *self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn moved(&self, from: Option<JobStatus>, to: Option<JobStatus>) {
        if from != to {
            self.counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .moved(from, to);
        }
    }

    /// Stores a new job, unless its idempotency key already names one.
    pub fn insert(&self, row: RouterJob) -> Result<Inserted, RouterJobError> {
        let tx = self.db.begin_write()?;
        {
            let mut rows = tx.open_table(JOBS)?;
            if let Some(key) = &row.idempotency_key {
                let mut keys = tx.open_table(KEYS)?;
                let existing = keys.get(key.as_str())?.map(|v| v.value().to_string());
                if let Some(id) = existing
                    && let Some(job) = load(&rows, &id)?
                {
                    return Ok(Inserted::Existing(job));
                }
                keys.insert(key.as_str(), row.id.as_str())?;
            }
            save(&tx, &mut rows, None, &row)?;
        }
        tx.commit()?;
        self.moved(None, Some(row.status));
        Ok(Inserted::New(row))
    }

    /// The job, unless there is none or it has expired (the sweep may not have run).
    pub fn get(&self, id: &str, now_ms: u64) -> Result<Option<RouterJob>, RouterJobError> {
        let tx = self.db.begin_read()?;
        let rows = tx.open_table(JOBS)?;
        Ok(load(&rows, id)?.filter(|r| r.expires_at.is_none_or(|at| at > now_ms)))
    }

    pub fn by_key(&self, key: &str, now_ms: u64) -> Result<Option<RouterJob>, RouterJobError> {
        let id = {
            let tx = self.db.begin_read()?;
            let keys = tx.open_table(KEYS)?;
            keys.get(key)?.map(|v| v.value().to_string())
        };
        match id {
            Some(id) => self.get(&id, now_ms),
            None => Ok(None),
        }
    }

    /// Changes one row in one transaction. `change` sees the transaction (to append a
    /// receipt to the ledger in it) and the row as stored now, and decides: `Err` aborts
    /// everything, including any append.
    pub fn update<T>(
        &self,
        id: &str,
        change: impl FnOnce(&WriteTransaction, &mut RouterJob) -> Result<T, RouterJobError>,
    ) -> Result<(T, RouterJob), RouterJobError> {
        let tx = self.db.begin_write()?;
        let (out, before, row) = {
            let mut rows = tx.open_table(JOBS)?;
            let Some(before) = load(&rows, id)? else {
                return Err(RouterJobError::NotFound);
            };
            let mut row = before.clone();
            let out = change(&tx, &mut row)?;
            if row != before {
                save(&tx, &mut rows, Some(&before), &row)?;
            }
            (out, before, row)
        };
        tx.commit()?;
        self.moved(Some(before.status), Some(row.status));
        Ok((out, row))
    }

    /// Forgets a job that never reached a peer (its submission failed), and its key.
    pub fn forget_key(&self, key: &str) -> Result<(), RouterJobError> {
        let tx = self.db.begin_write()?;
        tx.open_table(KEYS)?.remove(key)?;
        tx.commit()?;
        Ok(())
    }

    /// Rows the collector has work for, oldest first.
    pub fn open_rows(&self) -> Result<Vec<RouterJob>, RouterJobError> {
        let tx = self.db.begin_read()?;
        let open = tx.open_table(OPEN)?;
        let rows = tx.open_table(JOBS)?;
        let mut out = Vec::new();
        for entry in open.iter()? {
            let (key, _) = entry?;
            if let Some(row) = load(&rows, key.value().1)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The newest `limit` jobs, optionally of one status.
    pub fn list(
        &self,
        limit: usize,
        status: Option<JobStatus>,
        now_ms: u64,
    ) -> Result<Vec<RouterJob>, RouterJobError> {
        let tx = self.db.begin_read()?;
        let by_time = tx.open_table(BY_TIME)?;
        let rows = tx.open_table(JOBS)?;
        let mut out = Vec::new();
        for entry in by_time.iter()?.rev() {
            if out.len() >= limit {
                break;
            }
            let (key, _) = entry?;
            let Some(row) = load(&rows, key.value().1)? else {
                continue;
            };
            let live = row.expires_at.is_none_or(|at| at > now_ms);
            if live && status.is_none_or(|s| s == row.status) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Forgets finished jobs whose time is up (with their keys); returns how many.
    pub fn sweep(&self, now_ms: u64) -> Result<usize, RouterJobError> {
        let tx = self.db.begin_write()?;
        let mut gone = Vec::new();
        {
            let mut expiry = tx.open_table(EXPIRY)?;
            let due: Vec<(u64, String)> = expiry
                .iter()?
                .map_while(|entry| match entry {
                    Ok((k, _)) if k.value().0 <= now_ms => {
                        let (at, id) = k.value();
                        Some(Ok((at, id.to_string())))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()?;
            let mut rows = tx.open_table(JOBS)?;
            let mut keys = tx.open_table(KEYS)?;
            let mut open = tx.open_table(OPEN)?;
            let mut by_time = tx.open_table(BY_TIME)?;
            for (at, id) in due {
                expiry.remove((at, id.as_str()))?;
                let Some(row) = load(&rows, &id)? else {
                    continue;
                };
                rows.remove(id.as_str())?;
                open.remove((row.created_at, id.as_str()))?;
                by_time.remove((row.created_at, id.as_str()))?;
                if let Some(key) = &row.idempotency_key {
                    // Only if the key still names this job (a failed submission's key
                    // may have been taken by a later one).
                    if keys.get(key.as_str())?.is_some_and(|v| v.value() == id) {
                        keys.remove(key.as_str())?;
                    }
                }
                gone.push(row.status);
            }
        }
        tx.commit()?;
        for status in &gone {
            self.moved(Some(*status), None);
        }
        Ok(gone.len())
    }
}
