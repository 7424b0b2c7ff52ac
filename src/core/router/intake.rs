//! Receipt intake: what becomes of the receipt a peer sent with its answer. It is
//! decoded, checked (signature, the two parties, freshness, and plausibility against
//! what was delivered) and ledgered through the writer, returning once it is durable;
//! the latest refusals are kept for the operator. The hub (`RouterService`) turns the
//! verdict into metrics, per-peer counters, the peer's health and observer events.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use super::plausible::{self, Delivered};
use crate::core::ledger::{AcceptRules, AppendOutcome, LedgerWriter, Party, WriterClosed, accept};
use crate::core::protocol::{PublicKey, RequestProof, SignedReceipt};

/// How many refused receipts are remembered for display.
const RECENT_REJECTIONS: usize = 64;

/// A receipt the router refused, kept for the operator to see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptRejection {
    pub at_ms: u64,
    pub peer: PublicKey,
    pub reason: String,
    pub detail: String,
}

/// What the intake made of one receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Durable in the ledger (or ledgered already by our own worker, which served it):
    /// the output it claims, and how long its worker says the answer took.
    Accepted { output_tokens: u64, took_ms: u64 },
    /// Never ledgered. `distrust`: the peer claimed work it did not deliver.
    Refused {
        reason: &'static str,
        detail: String,
        distrust: bool,
    },
}

fn refused(reason: &'static str, detail: impl Into<String>) -> Verdict {
    Verdict::Refused {
        reason,
        detail: detail.into(),
        distrust: false,
    }
}

pub(super) struct ReceiptIntake {
    me: PublicKey,
    writer: LedgerWriter,
    recent: Mutex<VecDeque<ReceiptRejection>>,
}

impl ReceiptIntake {
    pub(super) fn new(me: PublicKey, writer: LedgerWriter) -> Self {
        ReceiptIntake {
            me,
            writer,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_REJECTIONS)),
        }
    }

    /// Checks and ledgers the receipt `peer` sent (`payload`, base64) for an answer of
    /// which `delivered` reached us. `Err` only when a good receipt could not be written:
    /// the caller then withholds the answer.
    pub(super) async fn take(
        &self,
        peer: PublicKey,
        payload: Option<&str>,
        delivered: Delivered,
        request: Option<RequestProof>,
        now_ms: u64,
    ) -> Result<Verdict, WriterClosed> {
        let Some(payload) = payload else {
            return Ok(refused("missing", "the peer sent no receipt"));
        };
        let signed = match SignedReceipt::from_base64(payload) {
            Ok(s) => s,
            Err(e) => return Ok(refused("malformed", e.to_string())),
        };
        let worker = signed.receipt().worker_pubkey;
        if worker != peer {
            return Ok(refused(
                "wrong-worker",
                format!("receipt is signed for worker {}", worker.short()),
            ));
        }
        let rules = AcceptRules {
            now_ms: Some(now_ms),
            party: Party::Requester(self.me),
        };
        let verified = match accept(signed, &rules) {
            Ok(v) => v,
            Err(rejection) => return Ok(refused(rejection.reason.as_str(), rejection.detail)),
        };
        if let Err(detail) = plausible::check(verified.signed().receipt(), &delivered) {
            return Ok(Verdict::Refused {
                reason: "implausible",
                detail,
                distrust: true,
            });
        }
        let receipt = verified.signed().receipt();
        let accepted = Verdict::Accepted {
            output_tokens: receipt.output_tokens,
            took_ms: receipt.completed_at.saturating_sub(receipt.started_at),
        };
        if worker == self.me {
            // Our own worker served this request and has ledgered the receipt already; a
            // second append would be refused as a replayed nonce.
            return Ok(accepted);
        }
        let outcomes = self
            .writer
            .enqueue(vec![verified.answering(request)])?
            .await?;
        Ok(match outcomes.first() {
            Some(AppendOutcome::Duplicate { existing_seq }) => refused(
                "replayed-nonce",
                format!("nonce already ledgered as receipt #{existing_seq}"),
            ),
            Some(AppendOutcome::Appended { .. }) | None => accepted,
        })
    }

    /// Keeps `rejection` among the latest, forgetting the oldest beyond the bound.
    pub(super) fn remember(&self, rejection: ReceiptRejection) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_REJECTIONS {
            recent.pop_front();
        }
        recent.push_back(rejection);
    }

    /// Oldest first.
    pub(super) fn recent(&self) -> Vec<ReceiptRejection> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests;
