//! The job store's transitions against an in-memory database: FIFO order, recovery of
//! running jobs after a restart, the receipt committed with `done` and only once,
//! cancelling, retention, idempotent creation and the queue bound.

use serde_json::json;

use super::*;
use crate::core::jobs::{DONE_TTL_MS, ERROR_TTL_MS, JobFailure, JobSubmission};
use crate::core::ledger::{AcceptRules, Ledger, Party, Verified, sign_own};
use crate::core::protocol::{Identity, PublicKey, Receipt, new_nonce};
use crate::core::store::{self, Db};

const T0: u64 = 1_800_000_000_000;

fn worker() -> Identity {
    Identity::from_seed([7; 32])
}

fn requester() -> PublicKey {
    Identity::from_seed([8; 32]).public()
}

fn submission(n: u32) -> JobSubmission {
    JobSubmission::from_value(json!({
        "model": "m", "metadata": {"n": n.to_string()},
        "messages": [{"role": "user", "content": format!("job {n}")}],
    }))
    .unwrap()
}

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn receipt_for(job: &JobRecord, now: u64) -> Verified {
    let w = worker();
    let r = Receipt {
        version: 1,
        job_id: job.id.clone(),
        nonce: new_nonce(),
        requester_pubkey: job.requester,
        worker_pubkey: w.public(),
        model: job.model.clone(),
        input_tokens: 5,
        output_tokens: 7,
        started_at: job.started_at.unwrap(),
        completed_at: now,
    };
    let rules = AcceptRules {
        now_ms: Some(now),
        party: Party::Worker(w.public()),
    };
    sign_own(r, &w).unwrap().accept(&rules).unwrap()
}

fn open(db: &Db, now: u64) -> JobStore {
    Ledger::new(db.clone()).unwrap();
    JobStore::open(db.clone(), 3, now).unwrap()
}

fn done(store: &JobStore, job: &JobRecord, now: u64) -> Vec<crate::core::ledger::StoredReceipt> {
    let receipt = Box::new(receipt_for(job, now));
    let result = json!({"object": "chat.completion", "id": job.id});
    store
        .finish(&job.id, Finish::Done { result, receipt }, now)
        .unwrap()
}

#[test]
fn fifo_runs_and_the_receipt_commits_with_done() {
    let db = store::in_memory().unwrap();
    let s = open(&db, T0);
    for n in 1..=3 {
        let (job, created) = s
            .create(&id(n), requester(), submission(n), T0 + u64::from(n))
            .unwrap();
        assert!(created);
        assert_eq!(job.status, JobStatus::Queued);
    }
    assert_eq!(s.counts().queued, 3);
    let first = s.claim_next(T0 + 10).unwrap().unwrap();
    assert_eq!(
        (first.id.as_str(), first.status, first.runs),
        (id(1).as_str(), JobStatus::Running, 1)
    );
    let appended = done(&s, &first, T0 + 20);
    assert_eq!(appended.len(), 1);
    let stored = s.get(&id(1), T0 + 20).unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Done);
    assert_eq!(stored.expires_at, Some(T0 + 20 + DONE_TTL_MS));
    assert!(stored.request.is_none(), "a finished job drops its request");
    let ledger = Ledger::new(db.clone()).unwrap();
    let receipt = stored.receipt.unwrap();
    assert!(ledger.contains_nonce(&receipt.receipt().nonce).unwrap());
    assert_eq!(receipt.receipt().job_id, id(1));
    assert_eq!(ledger.balance(&worker().public()).unwrap().earned, 12);

    // A second end to the same job is refused and ledgers nothing.
    let again = s.finish(
        &first.id,
        Finish::Done {
            result: json!({}),
            receipt: Box::new(receipt_for(&first, T0 + 30)),
        },
        T0 + 30,
    );
    assert!(matches!(again, Err(JobError::WrongState(JobStatus::Done))));
    assert_eq!(ledger.totals().unwrap().receipts, 1);
    assert_eq!(s.claim_next(T0).unwrap().unwrap().id, id(2));
    assert_eq!(
        s.counts(),
        JobCounts {
            queued: 1,
            running: 1,
            done: 1,
            ..JobCounts::default()
        }
    );
}

#[test]
fn a_restart_requeues_running_jobs_in_their_old_place() {
    let db = store::in_memory().unwrap();
    let s = open(&db, T0);
    for n in 1..=3 {
        s.create(&id(n), requester(), submission(n), T0).unwrap();
    }
    s.claim_next(T0).unwrap();
    s.claim_next(T0).unwrap();
    drop(s);
    let s = open(&db, T0 + 5);
    assert_eq!(
        s.counts(),
        JobCounts {
            queued: 3,
            ..JobCounts::default()
        }
    );
    let order: Vec<(String, u32)> = (0..3)
        .map(|_| {
            let j = s.claim_next(T0 + 6).unwrap().unwrap();
            (j.id, j.runs)
        })
        .collect();
    assert_eq!(order, vec![(id(1), 2), (id(2), 2), (id(3), 1)]);
    assert!(s.claim_next(T0 + 7).unwrap().is_none());
}

#[test]
fn cancel_only_what_waits() {
    let db = store::in_memory().unwrap();
    let s = open(&db, T0);
    for n in 1..=3 {
        s.create(&id(n), requester(), submission(n), T0).unwrap();
    }
    let running = s.claim_next(T0).unwrap().unwrap();
    let stranger = Identity::from_seed([9; 32]).public();
    assert!(matches!(
        s.cancel(&id(2), &stranger, true, T0),
        Err(JobError::NotFound)
    ));
    // An unsigned claim of the signer's key does not reach a signed job.
    assert!(matches!(
        s.cancel(&id(2), &requester(), false, T0),
        Err(JobError::NotFound)
    ));
    let c = s.cancel(&id(2), &requester(), true, T0 + 1).unwrap();
    assert_eq!(c.status, JobStatus::Cancelled);
    assert_eq!(c.expires_at, Some(T0 + 1 + ERROR_TTL_MS));
    // Again: the same answer, not an error.
    assert_eq!(
        s.cancel(&id(2), &requester(), true, T0 + 2).unwrap().status,
        JobStatus::Cancelled
    );
    assert!(matches!(
        s.cancel(&running.id, &requester(), true, T0),
        Err(JobError::WrongState(JobStatus::Running))
    ));
    done(&s, &running, T0 + 3);
    assert!(matches!(
        s.cancel(&running.id, &requester(), true, T0),
        Err(JobError::WrongState(JobStatus::Done))
    ));
    assert!(matches!(
        s.cancel(&id(99), &requester(), true, T0),
        Err(JobError::NotFound)
    ));
    // The cancelled job is skipped: the next to run is job 3.
    assert_eq!(s.claim_next(T0 + 4).unwrap().unwrap().id, id(3));
}

#[test]
fn finished_jobs_expire_after_their_retention() {
    let db = store::in_memory().unwrap();
    let s = open(&db, T0);
    s.create(&id(1), requester(), submission(1), T0).unwrap();
    s.create(&id(2), requester(), submission(2), T0).unwrap();
    let a = s.claim_next(T0).unwrap().unwrap();
    let b = s.claim_next(T0).unwrap().unwrap();
    done(&s, &a, T0 + 10);
    let failure = JobFailure {
        kind: "engine_error".into(),
        message: "boom".into(),
    };
    s.finish(&b.id, Finish::Failed(failure), T0 + 10).unwrap();
    let error_gone = T0 + 10 + ERROR_TTL_MS;
    let done_gone = T0 + 10 + DONE_TTL_MS;
    assert_eq!(s.sweep(error_gone - 1).unwrap(), 0);
    // Past its time a job is gone for readers even before the sweeper runs.
    assert!(s.get(&b.id, error_gone).unwrap().is_none());
    assert!(s.get(&a.id, error_gone).unwrap().is_some());
    assert_eq!(s.sweep(error_gone).unwrap(), 1);
    assert_eq!(s.counts().error, 0);
    assert_eq!(s.sweep(done_gone - 1).unwrap(), 0);
    assert_eq!(s.sweep(done_gone).unwrap(), 1);
    assert_eq!(s.counts(), JobCounts::default());
    assert!(s.get(&a.id, T0).unwrap().is_none(), "evicted for good");
    // The receipt outlives the job: the ledger is not the job table.
    assert_eq!(Ledger::new(db).unwrap().totals().unwrap().receipts, 1);
}

#[test]
fn creation_is_idempotent_per_requester_and_bounded() {
    let db = store::in_memory().unwrap();
    let s = open(&db, T0);
    let (first, created) = s.create(&id(1), requester(), submission(1), T0).unwrap();
    assert!(created);
    let (again, created) = s
        .create(&id(1), requester(), submission(2), T0 + 1)
        .unwrap();
    assert!(!created);
    assert_eq!(again, first);
    let stranger = Identity::from_seed([9; 32]).public();
    assert!(matches!(
        s.create(&id(1), stranger, submission(1), T0),
        Err(JobError::Conflict(_))
    ));
    s.create(&id(2), requester(), submission(2), T0).unwrap();
    s.create(&id(3), requester(), submission(3), T0).unwrap();
    assert!(matches!(
        s.create(&id(4), requester(), submission(4), T0),
        Err(JobError::QueueFull { max: 3 })
    ));
    // Running jobs do not count against the bound.
    s.claim_next(T0).unwrap();
    s.create(&id(4), requester(), submission(4), T0).unwrap();
    assert_eq!(s.counts().queued, 3);
}

/// Who reaches a job: (submitted signed, asking key is the submitter's, asking signed).
#[test]
fn a_signed_job_is_the_signers_alone() {
    let stranger = Identity::from_seed([9; 32]).public();
    let cases = [
        (true, true, true, true),
        (true, true, false, false), // an unsigned claim of the signer's key
        (true, false, true, false),
        (false, true, true, true), // an unsigned submitter who later signs
        (false, true, false, true),
        (false, false, false, false),
    ];
    let db = store::in_memory().unwrap();
    Ledger::new(db.clone()).unwrap();
    let s = JobStore::open(db, cases.len(), T0).unwrap();
    for (n, (submitted_signed, same_key, asking_signed, reaches)) in (1u32..).zip(cases) {
        let (job, _) = s
            .create_for(&id(n), requester(), !submitted_signed, submission(n), T0)
            .unwrap();
        let asker = if same_key { requester() } else { stranger };
        assert_eq!(job.belongs_to(&asker, asking_signed), reaches, "case {n}");
        // Resubmitting under the same id is a retry for the owner, a conflict otherwise.
        let again = s.create_for(&id(n), asker, !asking_signed, submission(n), T0);
        assert_eq!(again.is_ok(), reaches, "case {n}: {again:?}");
    }
}
