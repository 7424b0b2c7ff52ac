//! Crediting a done job: its receipt verified against the job (not the ±5-minute chat
//! window), then ledgered in the same transaction that marks the job done and credited,
//! after re-reading the row — so however many polls race, one appends.

use std::sync::Arc;

use super::RouterJobError;
use super::poll::update;
use super::row::{AttemptOutcome, RouterJob};
use crate::core::jobs::{JobStatus, JobView, ROUTER_KEEP_MS, ReceiptNote};
use crate::core::ledger::{
    AcceptRules, AppendOutcome, Ledger, Party, StoredReceipt, Verified, accept,
};
use crate::core::protocol::{PublicKey, RECEIPT_SKEW_MS, SignedReceipt};
use crate::core::router::plausible::{Delivered, check as plausible_check, content_bytes};
use crate::core::router::service::RouterService;

/// Checks a job's receipt: signed by the peer that ran the job, for this very job (its
/// `jobId` is the worker's job id), naming us as requester, and completed no earlier
/// than the router handed the job over (less the clock skew allowed) and not in the
/// future. The ±5-minute window of chat does not apply: a job's result may be
/// collected long after it completed.
pub(super) fn check_job_receipt(
    signed: SignedReceipt,
    me: PublicKey,
    peer: PublicKey,
    worker_job_id: &str,
    offered_at_ms: u64,
    now_ms: u64,
) -> Result<Verified, (&'static str, String)> {
    let r = signed.receipt();
    if r.worker_pubkey != peer {
        let detail = format!("receipt is signed for worker {}", r.worker_pubkey.short());
        return Err(("wrong-worker", detail));
    }
    if r.job_id != worker_job_id {
        let detail = format!("receipt is for job {}, not {worker_job_id}", r.job_id);
        return Err(("wrong-job", detail));
    }
    let earliest = offered_at_ms.saturating_sub(RECEIPT_SKEW_MS);
    if r.started_at < earliest || r.completed_at < earliest {
        let detail = format!(
            "the receipt's work ({}–{} ms) predates the job's submission at {offered_at_ms} ms",
            r.started_at, r.completed_at
        );
        return Err(("stale", detail));
    }
    if r.completed_at > now_ms.saturating_add(RECEIPT_SKEW_MS) {
        let detail = format!("completedAt is {} ms ahead", r.completed_at - now_ms);
        return Err(("future", detail));
    }
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Requester(me),
    };
    accept(signed, &rules).map_err(|rej| (rej.reason.as_str(), rej.detail))
}

fn note(status: &str, signed: Option<&SignedReceipt>, why: Option<(&str, String)>) -> ReceiptNote {
    ReceiptNote {
        status: status.to_string(),
        tokens: signed.map(|s| s.receipt().total_tokens()).unwrap_or(0),
        nonce: signed.map(|s| s.receipt().nonce.clone()),
        reason: why.as_ref().map(|(r, _)| r.to_string()),
        detail: why.map(|(_, d)| d),
    }
}

/// Settles a done job (or a copy that ran elsewhere, `index` not being the placement):
/// verifies its receipt and, in one transaction that re-reads the row, ledgers it and
/// marks it credited. A row already credited changes nothing and appends nothing.
pub(super) async fn credit(
    r: &Arc<RouterService>,
    row: &RouterJob,
    index: usize,
    view: JobView,
    receipt: Option<String>,
) -> Result<RouterJob, RouterJobError> {
    let (me, now, id) = (r.pubkey(), r.now_ms(), row.id.as_str());
    // Attempts are only ever appended, and an accepted one keeps its peer and id.
    let Some(attempt) = row.attempts.get(index).cloned() else {
        return Err(RouterJobError::Corrupt(format!(
            "job {id} has no attempt {index}"
        )));
    };
    let parsed = receipt.map(|b64| SignedReceipt::from_base64(&b64));
    let signed = parsed.as_ref().and_then(|p| p.as_ref().ok()).cloned();
    // Signature checks cost CPU: outside the transaction.
    let checked: Result<Verified, (&'static str, String)> = match parsed {
        None => Err((
            "missing",
            "the peer sent no receipt with the finished job".into(),
        )),
        Some(Err(e)) => Err(("malformed", e.to_string())),
        Some(Ok(s)) => check_job_receipt(
            s,
            me,
            attempt.peer,
            &attempt.worker_job_id,
            attempt.at_ms,
            now,
        )
        .and_then(|verified| {
            // A request no longer held cannot bound the input; the output still can.
            let delivered = Delivered {
                prompt_bytes: row
                    .request
                    .as_ref()
                    .map_or(u64::MAX / 4, |q| q.to_string().len() as u64),
                content_bytes: view
                    .result
                    .as_ref()
                    .map_or(0, |res| content_bytes(res.to_string().as_bytes())),
            };
            match plausible_check(verified.signed().receipt(), &delivered) {
                Ok(()) => Ok(verified),
                Err(detail) => Err(("implausible", detail)),
            }
        }),
    };
    let peer = attempt.peer;
    let (settled, row) = update(r, id, move |tx, row| {
        let is_placement = row.placement == Some(index);
        let already = if is_placement {
            row.credited
        } else {
            row.attempts.get(index).map(|a| a.outcome) != Some(AttemptOutcome::Ran)
        };
        if already {
            return Ok(None);
        }
        let (receipt_note, appended) = match checked {
            Ok(verified) => {
                let signed = verified.signed().clone();
                match Ledger::append_in(tx, std::slice::from_ref(&verified))?.first() {
                    Some(AppendOutcome::Appended { seq }) => (
                        note("credited", Some(&signed), None),
                        Some(StoredReceipt {
                            seq: *seq,
                            receipt: signed,
                        }),
                    ),
                    // Our own worker ran it and ledgered it in this very database.
                    _ if peer == me => (note("own-worker", Some(&signed), None), None),
                    _ => {
                        let why = (
                            "replayed-nonce",
                            "the receipt's nonce is already in the ledger".to_string(),
                        );
                        (note("refused", Some(&signed), Some(why)), None)
                    }
                }
            }
            Err((reason, detail)) => {
                let status = if reason == "missing" {
                    "missing"
                } else {
                    "refused"
                };
                (note(status, signed.as_ref(), Some((reason, detail))), None)
            }
        };
        if is_placement {
            row.result = view.result;
            row.started_at = view.started_at.or(row.started_at);
            row.completed_at = view.completed_at;
            row.receipt = Some(receipt_note.clone());
            row.credited = true;
            row.finish(JobStatus::Done, now, ROUTER_KEEP_MS);
        } else if let Some(a) = row.attempts.get_mut(index) {
            a.outcome = AttemptOutcome::Collected;
            row.extra_receipts.push(receipt_note.clone());
        }
        Ok(Some((receipt_note, appended)))
    })
    .await?;
    if let Some((receipt_note, appended)) = settled {
        match (&receipt_note.reason, appended) {
            (None, Some(appended)) => {
                r.metrics.receipts_accepted.inc();
                r.jobs.appended(&[appended]);
            }
            (None, None) => {
                r.metrics.receipts_accepted.inc();
            }
            (Some(reason), _) => {
                r.reject(
                    peer,
                    reason,
                    receipt_note.detail.clone().unwrap_or_default(),
                );
            }
        }
        if index != row.placement.unwrap_or(usize::MAX) {
            tracing::warn!(job = %id, peer = %peer.short(), "a copy of the job ran at a second peer; its receipt was collected too");
        }
    }
    Ok(row)
}
