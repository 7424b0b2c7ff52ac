//! The acceptance rules a receipt passes before it may enter a ledger. A `Verified`
//! receipt can only be made here, so the ledger never stores one that was not checked.

use std::fmt;

use crate::core::protocol::{ProtocolError, PublicKey, SignedReceipt};

/// Whose receipts this ledger takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// Any validly signed receipt (imports of another node's history).
    Any,
    /// Receipts for requests we made (the router's rule).
    Requester(PublicKey),
    /// Receipts we signed as a worker.
    Worker(PublicKey),
    /// Receipts in which we are either side.
    Either(PublicKey),
}

/// What a receipt is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptRules {
    /// When set, `completedAt` must be within ±5 minutes of this time.
    pub now_ms: Option<u64>,
    pub party: Party,
}

/// Why a receipt was not ledgered; `as_str` is the label logs and metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Malformed,
    BadSignature,
    NotOurs,
    Stale,
    Future,
    ReplayedNonce,
}

impl RejectReason {
    pub const ALL: [RejectReason; 6] = [
        RejectReason::Malformed,
        RejectReason::BadSignature,
        RejectReason::NotOurs,
        RejectReason::Stale,
        RejectReason::Future,
        RejectReason::ReplayedNonce,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::BadSignature => "bad-signature",
            RejectReason::NotOurs => "not-ours",
            RejectReason::Stale => "stale",
            RejectReason::Future => "future",
            RejectReason::ReplayedNonce => "replayed-nonce",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused receipt: the reason label and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receipt refused ({reason}): {detail}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

impl From<ProtocolError> for Rejection {
    fn from(e: ProtocolError) -> Self {
        let reason = match e {
            ProtocolError::BadSignature(_) => RejectReason::BadSignature,
            ProtocolError::Stale { .. } => RejectReason::Stale,
            ProtocolError::Future { .. } => RejectReason::Future,
            _ => RejectReason::Malformed,
        };
        Rejection::new(reason, e.to_string())
    }
}

/// A receipt whose signature, party and freshness have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified(SignedReceipt);

impl Verified {
    pub fn signed(&self) -> &SignedReceipt {
        &self.0
    }

    pub fn into_signed(self) -> SignedReceipt {
        self.0
    }
}

/// Checks `signed` against `rules`. Nonce uniqueness is the ledger's to check, inside
/// the transaction that appends.
pub fn accept(signed: SignedReceipt, rules: &AcceptRules) -> Result<Verified, Rejection> {
    let r = signed.receipt();
    let ours = match rules.party {
        Party::Any => true,
        Party::Requester(me) => r.requester_pubkey == me,
        Party::Worker(me) => r.worker_pubkey == me,
        Party::Either(me) => r.requester_pubkey == me || r.worker_pubkey == me,
    };
    if !ours {
        return Err(Rejection::new(
            RejectReason::NotOurs,
            format!(
                "receipt names requester {} and worker {}, neither is this node",
                r.requester_pubkey.short(),
                r.worker_pubkey.short()
            ),
        ));
    }
    signed.verify_signature()?;
    if let Some(now) = rules.now_ms {
        signed.check_fresh(now)?;
    }
    Ok(Verified(signed))
}
