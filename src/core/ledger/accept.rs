//! The acceptance rules a receipt passes before it may enter a ledger. A `Verified`
//! receipt can only be made here, so the ledger never stores one that was not checked.

use std::fmt;

use super::Standing;
use crate::core::protocol::{
    Identity, ProtocolError, PublicKey, Receipt, RequestProof, SignedReceipt,
};

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

/// A receipt whose signature, party and freshness have been checked, with how settled
/// it is to be recorded (confirmed unless said otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    signed: SignedReceipt,
    standing: Standing,
    /// The signed request this receipt answers, when one is known (see `answering`).
    request: Option<Box<RequestProof>>,
}

impl Verified {
    fn new(signed: SignedReceipt) -> Self {
        Verified {
            signed,
            standing: Standing::Confirmed,
            request: None,
        }
    }

    /// Records which signed request this receipt answers. The ledger then holds at most
    /// one receipt per request (a second is a duplicate), and a worker keeps the proof
    /// while the receipt is pending, so its requester can recognise it if offered back.
    pub fn answering(mut self, request: Option<RequestProof>) -> Self {
        self.request = request.map(Box::new);
        self
    }

    pub fn request(&self) -> Option<&RequestProof> {
        self.request.as_deref()
    }

    pub fn signed(&self) -> &SignedReceipt {
        &self.signed
    }

    pub fn into_signed(self) -> SignedReceipt {
        self.signed
    }

    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// Records the receipt as `standing` instead: a worker's earnings wait for the
    /// requester's counter-signature. A receipt between one identity and itself is
    /// always confirmed (there is nobody else to ask).
    pub fn with_standing(mut self, standing: Standing) -> Self {
        let r = self.signed.receipt();
        self.standing = if r.worker_pubkey == r.requester_pubkey {
            Standing::Confirmed
        } else {
            standing
        };
        self
    }
}

/// Checks `signed` against `rules`. Nonce uniqueness is the ledger's to check, inside
/// the transaction that appends.
pub fn accept(signed: SignedReceipt, rules: &AcceptRules) -> Result<Verified, Rejection> {
    check_party(&signed, rules)?;
    signed.verify_signature()?;
    if let Some(now) = rules.now_ms {
        signed.check_fresh(now)?;
    }
    Ok(Verified::new(signed))
}

/// A receipt this node has just signed with its own identity. Only [`sign_own`] makes
/// one, so its signature is known good without checking it.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnReceipt(SignedReceipt);

/// Signs `receipt` with `identity`, which must be the receipt's worker (a worker
/// ledgering what it serves).
pub fn sign_own(receipt: Receipt, identity: &Identity) -> Result<OwnReceipt, ProtocolError> {
    SignedReceipt::sign(receipt, identity).map(OwnReceipt)
}

impl OwnReceipt {
    pub fn signed(&self) -> &SignedReceipt {
        &self.0
    }

    /// Checks the receipt against `rules` like [`accept`], except for the signature:
    /// it was made a moment ago by `sign_own` over this very body with the key the
    /// receipt names, so verifying it would only redo the signing at twice its cost
    /// (it was a fifth of a worker's CPU per request under load).
    pub fn accept(self, rules: &AcceptRules) -> Result<Verified, Rejection> {
        check_party(&self.0, rules)?;
        if let Some(now) = rules.now_ms {
            self.0.check_fresh(now)?;
        }
        Ok(Verified::new(self.0))
    }
}

fn check_party(signed: &SignedReceipt, rules: &AcceptRules) -> Result<(), Rejection> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(worker: &Identity, requester: PublicKey, completed_at: u64) -> Receipt {
        crate::core::protocol::receipt_sample(worker.public(), requester, completed_at)
    }

    /// An own receipt passes exactly when `accept` would pass the same signed receipt.
    #[test]
    fn own_receipts_follow_the_same_rules_as_accept() {
        let worker = Identity::from_seed([1; 32]);
        let requester = Identity::from_seed([2; 32]).public();
        let now = 1_800_000_000_000;
        let cases = [
            (Party::Worker(worker.public()), now),
            (Party::Worker(requester), now),
            (Party::Requester(requester), now),
            (Party::Any, now + 301_000),
            (Party::Either(worker.public()), now - 301_000),
        ];
        for (party, at) in cases {
            let own = sign_own(receipt(&worker, requester, at), &worker).unwrap();
            let rules = AcceptRules {
                now_ms: Some(now),
                party,
            };
            let checked = accept(own.signed().clone(), &rules);
            assert_eq!(own.accept(&rules), checked, "{party:?} at {at}");
        }
    }

    #[test]
    fn only_the_worker_signs_its_own() {
        let worker = Identity::from_seed([1; 32]);
        let other = Identity::from_seed([3; 32]);
        let r = receipt(&worker, other.public(), 1_800_000_000_000);
        assert!(matches!(
            sign_own(r, &other),
            Err(ProtocolError::WrongSigner { .. })
        ));
    }
}
