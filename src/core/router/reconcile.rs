//! Reconciliation: receipts a worker committed for us that we never ledgered.
//!
//! A worker commits its receipt before the end of its answer leaves, and the router
//! commits before its client sees that end; what can still fall between them is an
//! answer the router never finished reading: the router was killed, the connection
//! broke, or the router gave up on a stalled peer. The worker then holds a pending
//! receipt nobody will confirm, which would also count against us under its exposure
//! cap. So the router asks the worker what it has not settled (`GET
//! /v1/receipts/unsettled`, signed), and ledgers each receipt that comes with the proof
//! of a request we really signed for that worker, at most one receipt per request. The
//! confirmation loop then confirms it like any other, and both ledgers hold the same
//! receipts.
//!
//! When: at start (a crash leaves no trace of what was in flight), after any failed
//! attempt at a peer (marked here, asked at the next confirmation round), and once in a
//! while for every peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::service::RouterService;
use crate::core::ledger::{AcceptRules, AppendOutcome, Party, Verified, accept};
use crate::core::protocol::wire::{MAX_UNSETTLED_PER_ANSWER, UNSETTLED_PATH};
use crate::core::protocol::{Identity, PublicKey, REQUEST_SKEW_MS, RequestProof, SignedReceipt};

/// How old a request may be for its receipt to be taken late: the window a requester
/// has to settle a receipt, after which the worker expires it (`ledger::expiry`).
pub const CLAIM_WINDOW_MS: u64 = crate::core::ledger::SETTLE_WINDOW_MS;
/// Tokens one receipt taken late may carry at most. A receipt read with its answer is
/// checked against the answer's size; one offered later has no answer to check, so its
/// claim is bounded instead (a long generation's worth).
pub const MAX_CLAIMED_TOKENS: u64 = 65_536;
/// Every peer is asked this often even when nothing failed.
pub const RECONCILE_ALL_EVERY_MS: u64 = 10 * 60 * 1000;
/// How long a marked peer that could not be asked waits before the next try.
pub const RETRY_MS: u64 = 3_000;
/// How long after a cut attempt its peer is asked: the work may be committing still.
pub const SETTLE_MS: u64 = 2_000;
/// Pages of unsettled receipts taken from one peer per round.
pub const MAX_PAGES: usize = 8;
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Which peers to ask at the next round.
#[derive(Debug, Default)]
pub struct Reconciler {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Peers to ask: not before when, and how many asks in a row failed.
    marked: HashMap<PublicKey, (u64, u32)>,
    /// When every peer was last asked; `None` until the first round (at start).
    all_asked_ms: Option<u64>,
}

/// Whom one round asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Nobody,
    Every,
    These(Vec<PublicKey>),
}

impl Reconciler {
    /// An attempt at `peer` failed or was cut at `now_ms`: it may hold a receipt we
    /// never read. It is asked [`SETTLE_MS`] later, since work cut at this moment may
    /// still be committing there.
    pub fn mark(&self, peer: PublicKey, now_ms: u64) {
        let settled = now_ms.saturating_add(SETTLE_MS);
        let mut state = self.lock();
        let entry = state.marked.entry(peer).or_insert((settled, 0));
        entry.0 = entry.0.max(settled);
    }

    /// Whom to ask now. A marked peer that could not be asked waits [`RETRY_MS`], twice
    /// that after a second miss and so on up to [`RECONCILE_ALL_EVERY_MS`], so a dead
    /// peer costs an attempt now and then, not one per round.
    pub fn due(&self, now_ms: u64) -> Ask {
        let state = self.lock();
        let every_due = state
            .all_asked_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= RECONCILE_ALL_EVERY_MS);
        if every_due {
            return Ask::Every;
        }
        let mut due: Vec<PublicKey> = state
            .marked
            .iter()
            .filter(|(_, (not_before, _))| now_ms >= *not_before)
            .map(|(peer, _)| *peer)
            .collect();
        if due.is_empty() {
            return Ask::Nobody;
        }
        due.sort_unstable();
        Ask::These(due)
    }

    /// What a round came to: `answered` peers are settled up, `failed` ones are tried
    /// again later; `every` says the round was one for all peers.
    pub fn asked(&self, answered: &[PublicKey], failed: &[PublicKey], every: bool, now_ms: u64) {
        let mut state = self.lock();
        // At start, what the last run left in flight may still be committing on its
        // peers: those that answered are asked once more after it settles.
        let first = every && state.all_asked_ms.is_none();
        for peer in answered {
            if first {
                state
                    .marked
                    .insert(*peer, (now_ms.saturating_add(SETTLE_MS), 0));
            } else {
                state.marked.remove(peer);
            }
        }
        for peer in failed {
            let misses = state
                .marked
                .get(peer)
                .map_or(1, |(_, m)| m.saturating_add(1));
            let next = now_ms.saturating_add(backoff(misses));
            state.marked.insert(*peer, (next, misses));
        }
        if every {
            state.all_asked_ms = Some(now_ms);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How long to wait after `misses` failed asks in a row.
fn backoff(misses: u32) -> u64 {
    RETRY_MS
        .saturating_mul(1u64 << misses.saturating_sub(1).min(16))
        .min(RECONCILE_ALL_EVERY_MS)
}

/// Why a receipt offered back by `peer` cannot be ours, or the receipt to ledger.
pub fn judge_claim(
    me: &Identity,
    peer: &PublicKey,
    receipt: SignedReceipt,
    request: RequestProof,
    now_ms: u64,
) -> Result<Verified, String> {
    let r = receipt.receipt();
    let me_key = me.public();
    if r.worker_pubkey != *peer || request.worker != *peer {
        return Err(format!(
            "offered by {}, signed for another worker",
            peer.short()
        ));
    }
    if r.requester_pubkey != me_key || request.requester != me_key {
        return Err("names another requester".into());
    }
    if request.method != "POST" || !is_chat_path(&request.path) {
        // Jobs settle through the job store, which collects every run it placed.
        return Err(format!(
            "answers {} {}, not a chat request",
            request.method, request.path
        ));
    }
    // Our signature, or our tag on a request a link carried.
    request
        .verify_for(me)
        .map_err(|e| format!("the request proof does not hold: {e}"))?;
    if now_ms.saturating_sub(request.timestamp) > CLAIM_WINDOW_MS {
        return Err("the request is older than a day".into());
    }
    if r.started_at.saturating_add(REQUEST_SKEW_MS) < request.timestamp {
        return Err("the work started before the request was signed".into());
    }
    if r.total_tokens() > MAX_CLAIMED_TOKENS {
        return Err(format!(
            "claims {} tokens, above the {MAX_CLAIMED_TOKENS} a receipt taken late may carry",
            r.total_tokens()
        ));
    }
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Requester(me_key),
    };
    let verified = accept(receipt, &rules).map_err(|e| e.to_string())?;
    Ok(verified.answering(Some(request)))
}

/// What one peer's answer came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Receipts newly ledgered.
    pub taken: u64,
    /// Receipts refused (logged and counted as rejections).
    pub refused: u64,
}

impl RouterService {
    /// Asks the peers that are due what they have not settled with us, and ledgers what
    /// is ours. Peers that could not be asked stay due.
    pub async fn reconcile_now(self: &Arc<Self>) -> Recovered {
        let now = self.now_ms();
        let me = self.pubkey();
        let ask = self.reconciler.due(now);
        let peers: Vec<PublicKey> = match &ask {
            Ask::Nobody => return Recovered::default(),
            Ask::Every => self.peer_list().iter().map(|p| p.pubkey).collect(),
            Ask::These(peers) => peers.clone(),
        };
        let mut total = Recovered::default();
        let (mut answered, mut failed) = (Vec::new(), Vec::new());
        // Side by side: one unreachable peer must not hold up the others, nor the
        // confirmations that follow in the same round.
        let asks = peers
            .into_iter()
            .filter(|p| *p != me)
            .map(|peer| async move { (peer, self.reconcile_with(peer).await) });
        for (peer, result) in futures_util::future::join_all(asks).await {
            match result {
                Ok(got) => {
                    answered.push(peer);
                    total.taken += got.taken;
                    total.refused += got.refused;
                }
                Err(reason) => {
                    tracing::debug!(peer = %peer.short(), %reason, "cannot ask what the peer has not settled; will retry");
                    failed.push(peer);
                }
            }
        }
        self.reconciler
            .asked(&answered, &failed, ask == Ask::Every, self.now_ms());
        total
    }

    async fn reconcile_with(self: &Arc<Self>, peer: PublicKey) -> Result<Recovered, String> {
        let Some(record) = self.peer_record(&peer) else {
            // Gone from the book: nobody to ask.
            return Ok(Recovered::default());
        };
        let client = self.client_for(&record)?;
        let url = format!("{}{UNSETTLED_PATH}", record.base());
        let mut got = Recovered::default();
        for _ in 0..MAX_PAGES {
            let response = self
                .signed_request(&client, reqwest::Method::GET, &url, &peer, b"")
                .timeout(ASK_TIMEOUT)
                .send()
                .await
                .map_err(|e| crate::core::describe::transport(&e))?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND
                || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
            {
                // An older worker: it offers nothing back.
                return Ok(got);
            }
            if !status.is_success() {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            let page: Page = response
                .json()
                .await
                .map_err(|e| format!("the answer is not a list of receipts: {e}"))?;
            let mut fresh = Vec::new();
            for offered in page.receipts {
                let judged = SignedReceipt::from_value(offered.receipt)
                    .map_err(|e| e.to_string())
                    .and_then(|receipt| {
                        judge_claim(
                            &self.config.identity,
                            &peer,
                            receipt,
                            offered.request,
                            self.now_ms(),
                        )
                    });
                match judged {
                    Ok(verified) => fresh.push(verified),
                    Err(detail) => {
                        got.refused += 1;
                        self.reject(peer, "unprovable-claim", detail);
                    }
                }
            }
            let offered = fresh.len();
            got.taken += self.ledger_recovered(peer, fresh).await?;
            // A page of receipts we hold already (not yet confirmed) ends the round.
            if !page.more || offered < MAX_UNSETTLED_PER_ANSWER {
                break;
            }
        }
        if got.taken > 0 {
            tracing::info!(peer = %peer.short(), receipts = got.taken, "took receipts whose answers we never finished reading");
        }
        Ok(got)
    }

    async fn ledger_recovered(&self, peer: PublicKey, fresh: Vec<Verified>) -> Result<u64, String> {
        if fresh.is_empty() {
            return Ok(0);
        }
        let outcomes = match self.writer.enqueue(fresh) {
            Ok(done) => done.await,
            Err(e) => Err(e),
        }
        .map_err(|e| format!("cannot ledger recovered receipts: {e}"))?;
        let taken = outcomes
            .iter()
            .filter(|o| matches!(o, AppendOutcome::Appended { .. }))
            .count() as u64;
        self.metrics.receipts_accepted.inc_by(taken);
        self.metrics.receipts_recovered.inc_by(taken);
        self.count(peer, |c| c.receipts += taken);
        Ok(taken)
    }
}

#[derive(Deserialize)]
struct Page {
    receipts: Vec<Offered>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct Offered {
    receipt: Value,
    request: RequestProof,
}

fn is_chat_path(path: &str) -> bool {
    let bare = path.split('?').next().unwrap_or(path);
    bare.trim_end_matches('/').ends_with("/chat/completions")
}

#[cfg(test)]
mod tests;
