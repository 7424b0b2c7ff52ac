//! Counter-signing: every receipt the router ledgered for a request it made is confirmed
//! back to the worker that signed it, batched per worker and retried until the worker
//! answers, so the worker's pending earnings become confirmed.
//!
//! The work list is durable and kept apart from the append path: a scan cursor walks the
//! ledger and copies the receipts to confirm into an outbox table, one transaction per
//! round. A crash between a receipt's append and its confirmation only delays the
//! confirmation to the next start; the hot path pays nothing for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redb::{ReadableTable, TableDefinition};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::service::RouterService;
use crate::core::ledger::{Ledger, SETTLE_WINDOW_MS};
use crate::core::protocol::wire::CONFIRM_PATH;
use crate::core::protocol::{
    Confirmation, ConfirmedReceipt, MAX_CONFIRMED_PER_BATCH, PublicKey, SignedConfirmation,
};
use crate::core::store::{Db, StoreError};

/// ledger seq → when it was queued (unix ms).
const OUTBOX: TableDefinition<u64, u64> = TableDefinition::new("router_confirm_outbox");
/// `scanned`: the highest ledger seq already looked at.
const META: TableDefinition<&str, u64> = TableDefinition::new("router_confirm_meta");

/// Receipts read from the ledger per scan, and taken from the outbox per round.
const ROUND_LIMIT: usize = 4_096;
/// A worker that has not taken its confirmations in this long is given up on, and the
/// receipt marked expired here as the worker expires it there (see `ledger::expiry`).
const GIVE_UP_MS: u64 = SETTLE_WINDOW_MS;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful stop waits for the last round.
const FINAL_ROUND: Duration = Duration::from_secs(3);

/// What this router has not yet confirmed to one worker: receipts it ledgered that the
/// worker still counts against it. Normally gone within a round; it grows while the
/// worker cannot be reached, and that worker's credit gate will refuse us at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owing {
    pub worker: PublicKey,
    pub tokens: u64,
    pub receipts: u64,
    pub oldest_completed_at_ms: u64,
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfirmRound {
    /// Receipts the worker reported settled (newly, or already).
    pub settled: u64,
    /// Receipts the worker did not know or saw differently (dropped, logged).
    pub disputed: u64,
    /// Receipts left for a later round (the worker was unreachable).
    pub waiting: u64,
}

fn open_tables(db: &Db) -> Result<(), StoreError> {
    if let Db::Writable(_) = db {
        let tx = db.begin_write()?;
        tx.open_table(OUTBOX)?;
        tx.open_table(META)?;
        tx.commit()?;
    }
    Ok(())
}

/// Copies the receipts appended since the last scan that we requested from someone
/// else into the outbox.
fn scan(ledger: &Ledger, me: &PublicKey, now_ms: u64) -> Result<(), StoreError> {
    let db = ledger.db();
    let scanned = {
        let tx = db.begin_read()?;
        let meta = tx.open_table(META)?;
        meta.get("scanned")?.map(|g| g.value()).unwrap_or(0)
    };
    let fresh = ledger.since(scanned, ROUND_LIMIT)?;
    let Some(last) = fresh.last().map(|r| r.seq) else {
        return Ok(());
    };
    let tx = db.begin_write()?;
    {
        let mut outbox = tx.open_table(OUTBOX)?;
        for stored in &fresh {
            let r = stored.receipt.receipt();
            if r.requester_pubkey == *me && r.worker_pubkey != *me {
                outbox.insert(stored.seq, now_ms)?;
            }
        }
        tx.open_table(META)?.insert("scanned", last)?;
    }
    tx.commit()?;
    Ok(())
}

/// The outbox's receipts, grouped by worker: (seq, queued at, receipt).
type Batches = BTreeMap<PublicKey, Vec<(u64, u64, ConfirmedReceipt)>>;

fn load_outbox(ledger: &Ledger) -> Result<Batches, StoreError> {
    let tx = ledger.db().begin_read()?;
    let outbox = tx.open_table(OUTBOX)?;
    let mut batches = Batches::new();
    let rows: Vec<(u64, u64)> = outbox
        .iter()?
        .take(ROUND_LIMIT)
        .map(|row| row.map(|(k, v)| (k.value(), v.value())))
        .collect::<Result<_, _>>()?;
    drop(outbox);
    drop(tx);
    for (seq, queued) in rows {
        if let Some(stored) = ledger.receipt_at(seq)? {
            batches
                .entry(stored.receipt.receipt().worker_pubkey)
                .or_default()
                .push((seq, queued, ConfirmedReceipt::of(&stored.receipt)));
        }
    }
    Ok(batches)
}

/// The receipts still to confirm, by worker, largest first: the outbox and what the next
/// scan will add to it, `ROUND_LIMIT` of each at most (read-only; no round is run).
fn owing(ledger: &Ledger, me: &PublicKey) -> Result<Vec<Owing>, StoreError> {
    let (queued, scanned) = {
        let tx = ledger.db().begin_read()?;
        let outbox = tx.open_table(OUTBOX)?;
        let queued: Vec<u64> = outbox
            .iter()?
            .take(ROUND_LIMIT)
            .map(|row| row.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        let scanned = tx
            .open_table(META)?
            .get("scanned")?
            .map(|g| g.value())
            .unwrap_or(0);
        (queued, scanned)
    };
    // Summed as they are read: collecting ROUND_LIMIT decoded receipts first cost
    // megabytes of heap per call, once a second.
    let mut by_worker: BTreeMap<PublicKey, Owing> = BTreeMap::new();
    let mut add = |s: &crate::core::ledger::StoredReceipt| {
        let r = s.receipt.receipt();
        if r.requester_pubkey != *me || r.worker_pubkey == *me {
            return;
        }
        let row = by_worker.entry(r.worker_pubkey).or_insert(Owing {
            worker: r.worker_pubkey,
            tokens: 0,
            receipts: 0,
            oldest_completed_at_ms: r.completed_at,
        });
        row.tokens = row.tokens.saturating_add(r.total_tokens());
        row.receipts += 1;
        row.oldest_completed_at_ms = row.oldest_completed_at_ms.min(r.completed_at);
    };
    ledger.visit_at(&queued, &mut add)?;
    ledger.visit_since(scanned, ROUND_LIMIT, &mut add)?;
    let mut rows: Vec<Owing> = by_worker.into_values().collect();
    rows.sort_by_key(|o| std::cmp::Reverse(o.tokens));
    Ok(rows)
}

fn remove(ledger: &Ledger, seqs: &[u64]) -> Result<(), StoreError> {
    if seqs.is_empty() {
        return Ok(());
    }
    let tx = ledger.db().begin_write()?;
    {
        let mut outbox = tx.open_table(OUTBOX)?;
        for seq in seqs {
            outbox.remove(seq)?;
        }
    }
    tx.commit()?;
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StoreError::Corrupt(format!(
            "confirmation task failed: {e}"
        )))
    })
}

/// What a worker made of one batch.
enum Sent {
    /// Per receipt: settled (confirmed or already) or not.
    Answered(Vec<bool>),
    /// The worker does not take confirmations (an older worker): nothing to retry.
    Unsupported,
    Failed(String),
}

impl RouterService {
    pub(super) fn open_confirm_tables(db: &Db) -> Result<(), StoreError> {
        open_tables(db)
    }

    /// What we have yet to confirm to each worker (reads the ledger: call it off the
    /// async threads, and on a timer).
    pub fn owing(&self) -> Result<Vec<Owing>, StoreError> {
        owing(&self.ledger, &self.pubkey())
    }

    /// Runs one round now: scan the ledger, send every waiting confirmation.
    pub async fn confirm_now(self: &Arc<Self>) -> Result<ConfirmRound, StoreError> {
        let (ledger, me, now) = (self.ledger.clone(), self.pubkey(), self.now_ms());
        let batches = blocking(move || {
            scan(&ledger, &me, now)?;
            load_outbox(&ledger)
        })
        .await?;
        let mut round = ConfirmRound::default();
        let (mut done, mut given_up) = (Vec::new(), Vec::new());
        for (worker, items) in batches {
            for chunk in items.chunks(MAX_CONFIRMED_PER_BATCH) {
                match self.send_batch(&worker, chunk).await {
                    Sent::Answered(settled) => {
                        for ((seq, _, _), ok) in chunk.iter().zip(settled) {
                            done.push(*seq);
                            if ok {
                                round.settled += 1;
                            } else {
                                round.disputed += 1;
                            }
                        }
                    }
                    Sent::Unsupported => {
                        tracing::info!(peer = %worker.short(), "the worker does not take receipt confirmations (an older version)");
                        done.extend(chunk.iter().map(|(seq, _, _)| *seq));
                    }
                    Sent::Failed(reason) => {
                        tracing::debug!(peer = %worker.short(), %reason, "confirmations not delivered; will retry");
                        for (seq, queued, named) in chunk {
                            if now.saturating_sub(*queued) > GIVE_UP_MS {
                                done.push(*seq);
                                given_up.push(named.nonce.clone());
                            } else {
                                round.waiting += 1;
                            }
                        }
                    }
                }
            }
        }
        if round.disputed > 0 {
            tracing::warn!(
                count = round.disputed,
                "workers did not recognise some receipts we confirmed"
            );
        }
        self.metrics.confirmations_sent.inc_by(round.settled);
        if !given_up.is_empty() {
            tracing::warn!(
                count = given_up.len(),
                "receipts never confirmed to their workers within a day: marked expired"
            );
        }
        let ledger = self.ledger.clone();
        blocking(move || {
            ledger.expire_given_up(&given_up)?;
            remove(&ledger, &done)
        })
        .await?;
        Ok(round)
    }

    async fn send_batch(&self, worker: &PublicKey, items: &[(u64, u64, ConfirmedReceipt)]) -> Sent {
        let Some(record) = self.peer_record(worker) else {
            return Sent::Failed("the worker is not in the peer book".into());
        };
        let client = match self.client_for(&record) {
            Ok(c) => c,
            Err(reason) => return Sent::Failed(reason),
        };
        let confirmation = Confirmation {
            version: 1,
            requester_pubkey: self.pubkey(),
            worker_pubkey: *worker,
            confirmed_at: self.now_ms(),
            receipts: items.iter().map(|(_, _, r)| r.clone()).collect(),
        };
        let signed = match SignedConfirmation::sign(confirmation, &self.config.identity) {
            Ok(s) => s,
            Err(e) => return Sent::Failed(e.to_string()),
        };
        let sent = client
            .post(format!("{}{CONFIRM_PATH}", record.base()))
            .json(&signed.to_value())
            .timeout(SEND_TIMEOUT)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Sent::Failed(crate::core::describe::transport(&e)),
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND
            || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
        {
            return Sent::Unsupported;
        }
        if !status.is_success() {
            return Sent::Failed(format!("HTTP {}", status.as_u16()));
        }
        let Ok(body) = response.json::<Value>().await else {
            return Sent::Failed("the answer is not JSON".into());
        };
        let Some(results) = body.get("results").and_then(Value::as_array) else {
            return Sent::Failed("the answer has no results".into());
        };
        let settled = items
            .iter()
            .map(|(_, _, item)| {
                results.iter().any(|r| {
                    r.get("nonce").and_then(Value::as_str) == Some(item.nonce.as_str())
                        && matches!(
                            r.get("outcome").and_then(Value::as_str),
                            Some("confirmed" | "already-confirmed")
                        )
                })
            })
            .collect();
        Sent::Answered(settled)
    }

    /// Every half second until `shutdown`: takes receipts workers hold that we never
    /// read (see `reconcile`), then confirms; at the end, one last short round.
    pub fn spawn_confirmer(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let every = self.config.confirm_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                // First: what the workers hold that we never read goes into this round.
                service.reconcile_now().await;
                if let Err(e) = service.confirm_now().await {
                    tracing::error!(error = %e, "cannot confirm receipts");
                }
            }
            service.flush_ledger().await;
            let _ = tokio::time::timeout(FINAL_ROUND, service.confirm_now()).await;
        })
    }
}
