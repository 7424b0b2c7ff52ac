//! Running jobs: the dispatcher takes queued jobs in FIFO order as engine slots free up,
//! each run ends in one transaction (done + receipt, or error), and the sweeper forgets
//! finished jobs when their time is up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Finish, JobError, JobRecord, Jobs, blocking};
use crate::core::api_error::ApiError;
use crate::core::engine::{ChatRequest, Usage};
use crate::core::jobs::JobFailure;
use crate::core::ledger::{AcceptRules, Party, Standing, Verified, sign_own};
use crate::core::metrics::DirectionLabel;
use crate::core::protocol::{Receipt, new_nonce};
use crate::core::store::RECOVERY_RETRY;
use crate::core::worker::{Caller, Pass, Slot, Worker, estimate_tokens, wanted_output};

/// A run that takes longer is given up as an error: a hung engine must not hold a slot
/// and a job forever.
const RUN_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How often finished jobs past their retention are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Pause after a store failure before trying again, so a broken disk is not spun on.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Runs queued jobs until `stop`; then abandons the runs in progress (their jobs stay
/// `running` in the store and are queued again when the worker next opens it).
pub(crate) fn spawn_dispatcher(
    worker: Arc<Worker>,
    jobs: Arc<Jobs>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut runs: JoinSet<()> = JoinSet::new();
        let mut ids: HashMap<tokio::task::Id, String> = HashMap::new();
        loop {
            reap(&jobs, &worker, &mut runs, &mut ids).await;
            if jobs.counts().queued == 0 {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = jobs.queued.notified() => continue,
                }
            }
            // One place in the admission line at a time, kept until a slot comes.
            let slot = tokio::select! {
                _ = stop.cancelled() => break,
                slot = worker.admission.admit_background() => slot,
            };
            let Some(slot) = slot else { break };
            let now = worker.clock.now_ms();
            let store = jobs.store.clone();
            match blocking(move || store.claim_next(now)).await {
                Ok(Some(job)) => {
                    let id = job.id.clone();
                    let handle = runs.spawn(run(worker.clone(), jobs.clone(), job, slot));
                    ids.insert(handle.id(), id);
                }
                // Cancelled while we waited for the slot. (A pause, so that counts gone
                // wrong could never make this loop spin.)
                Ok(None) => {
                    drop(slot);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot take the next job from the queue");
                    drop(slot);
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
        }
        runs.shutdown().await;
    })
}

/// Collects finished runs; a run that panicked ends its job as an error instead of
/// leaving it `running` until the next restart.
async fn reap(
    jobs: &Arc<Jobs>,
    worker: &Arc<Worker>,
    runs: &mut JoinSet<()>,
    ids: &mut HashMap<tokio::task::Id, String>,
) {
    while let Some(joined) = runs.try_join_next_with_id() {
        let (task, panicked) = match joined {
            Ok((task, ())) => (task, None),
            Err(e) => (e.id(), Some(e.to_string())),
        };
        let Some(id) = ids.remove(&task) else {
            continue;
        };
        if let Some(why) = panicked {
            tracing::error!(job = %id, %why, "a job run failed");
            let failure = JobFailure {
                kind: "internal_error".into(),
                message: format!("the run failed: {why}"),
            };
            let (store, now) = (jobs.store.clone(), worker.clock.now_ms());
            if let Err(e) = blocking(move || store.finish(&id, Finish::Failed(failure), now)).await
            {
                tracing::error!(error = %e, "cannot record a failed job");
            }
        }
    }
}

/// Tries to record a job's end while the database is unavailable: ten minutes' worth.
const FINISH_ATTEMPTS: u32 = 600;

async fn run(worker: Arc<Worker>, jobs: Arc<Jobs>, job: JobRecord, slot: Slot) {
    let started_at = job.started_at.unwrap_or_else(|| worker.clock.now_ms());
    let request = job
        .request
        .clone()
        .ok_or_else(|| "the job has no request".to_string())
        .and_then(|body| ChatRequest::from_value(Value::Object(body)).map_err(|e| e.to_string()));
    // Held until the job's end (and its receipt) is in the store.
    let mut pass = None;
    let outcome = match request.map(|r| (reserve(&worker, &job, &r), r)) {
        Err(why) => Finish::Failed(JobFailure {
            kind: "invalid_request_error".into(),
            message: why,
        }),
        Ok((Err(refused), _)) => Finish::Failed(JobFailure {
            kind: refused.kind.into(),
            message: refused.message,
        }),
        Ok((Ok(held), mut request)) => {
            request.output_cap = Some(held.grant().output);
            let answer = tokio::time::timeout(RUN_LIMIT, worker.engine.chat(request)).await;
            drop(slot);
            let grant = pass.insert(held).grant();
            match answer {
                Ok(Ok(answer)) => match sign(&worker, &job, grant.bill(answer.usage), started_at) {
                    Ok(receipt) => Finish::Done {
                        result: answer.body,
                        receipt: Box::new(receipt),
                    },
                    Err(message) => Finish::Failed(JobFailure {
                        kind: "internal_error".into(),
                        message,
                    }),
                },
                Ok(Err(e)) => {
                    let api = ApiError::from_engine(&e);
                    Finish::Failed(JobFailure {
                        kind: api.kind.into(),
                        message: api.message,
                    })
                }
                Err(_) => Finish::Failed(JobFailure {
                    kind: "timeout".into(),
                    message: format!(
                        "the engine did not answer within {} minutes",
                        RUN_LIMIT.as_secs() / 60
                    ),
                }),
            }
        }
    };
    let label = match &outcome {
        Finish::Done { .. } => "job_done",
        Finish::Failed(_) => "job_error",
    };
    let now = worker.clock.now_ms();
    // A full disk: the end (and its receipt) is recorded once the database can be
    // written again, so the job is neither lost nor run twice.
    for attempt in 1..=FINISH_ATTEMPTS {
        let (store, id, outcome) = (jobs.store.clone(), job.id.clone(), outcome.clone());
        match blocking(move || store.finish(&id, outcome, now)).await {
            Ok(appended) => {
                worker.metrics.outcome(label);
                jobs.appended(&appended);
                return;
            }
            Err(JobError::Store(e))
                if attempt < FINISH_ATTEMPTS && jobs.store.unavailable().is_some() =>
            {
                tracing::debug!(job = %job.id, error = %e, "the end of a job waits for the disk");
                tokio::time::sleep(RECOVERY_RETRY).await;
            }
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "cannot record the end of a job");
                return;
            }
        }
    }
    drop(pass);
}

/// Pays for a job's run before it starts, by the chat rule (see `gate::metering`).
fn reserve(worker: &Arc<Worker>, job: &JobRecord, request: &ChatRequest) -> Result<Pass, ApiError> {
    let caller = if job.anonymous {
        Caller::Anonymous(job.requester)
    } else {
        Caller::Signed(job.requester)
    };
    let wanted = wanted_output(request.requested_output(), worker.max_output_tokens);
    worker.gate.reserve_run(
        caller,
        estimate_tokens(&request.to_bytes()),
        wanted,
        &worker.ledger_reader,
        worker.clock.now_ms(),
    )
}

/// Signs the job's receipt: its `jobId` is the job's id, so requester and worker can
/// tell which job it pays for.
fn sign(w: &Worker, job: &JobRecord, usage: Usage, started_at: u64) -> Result<Verified, String> {
    let receipt = Receipt {
        version: 1,
        job_id: job.id.clone(),
        nonce: new_nonce(),
        requester_pubkey: job.requester,
        worker_pubkey: w.identity.public(),
        model: job.model.clone(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        started_at,
        completed_at: w.clock.now_ms().max(started_at),
    };
    let own = sign_own(receipt, &w.identity).map_err(|e| e.to_string())?;
    let rules = AcceptRules {
        now_ms: Some(w.clock.now_ms()),
        party: Party::Worker(w.identity.public()),
    };
    let standing = if job.anonymous {
        Standing::Anonymous
    } else {
        Standing::Pending
    };
    let verified = own
        .accept(&rules)
        .map_err(|e| e.to_string())?
        .with_standing(standing);
    w.metrics.receipts_signed.inc();
    if job.anonymous {
        w.gate.charge_anonymous(
            usage.input_tokens.saturating_add(usage.output_tokens),
            w.clock.now_ms(),
        );
    }
    for (direction, n) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
    ] {
        w.metrics
            .tokens
            .get_or_create(&DirectionLabel {
                direction: direction.into(),
            })
            .inc_by(n);
    }
    Ok(verified)
}

/// Forgets expired jobs every `SWEEP_EVERY` until `stop`.
pub(crate) fn spawn_sweeper(
    worker: Arc<Worker>,
    jobs: Arc<Jobs>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let (store, now) = (jobs.store.clone(), worker.clock.now_ms());
            match blocking(move || store.sweep(now)).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(evicted = n, "finished jobs forgotten"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep finished jobs"),
            }
        }
    })
}
