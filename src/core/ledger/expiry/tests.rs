use super::*;
use crate::core::ledger::{AcceptRules, ConfirmOutcome, Party, Verified, accept, verify_ledger};
use crate::core::protocol::{
    Confirmation, ConfirmedReceipt, Identity, PublicKey, Receipt, RequestProof, RequestTarget,
    SignedConfirmation, SignedReceipt,
};
use crate::core::store;

const NOW: u64 = 1_800_000_000_000;
/// The last instant a pending receipt completed at `NOW - age` still counts.
const EDGE: u64 = SETTLE_WINDOW_MS + RECEIPT_SKEW_MS;

fn ids() -> (Identity, Identity) {
    (Identity::from_seed([5; 32]), Identity::from_seed([6; 32]))
}

fn signed(worker: &Identity, requester: PublicKey, completed_at: u64) -> SignedReceipt {
    let receipt = Receipt {
        input_tokens: 10,
        output_tokens: 20,
        started_at: completed_at - 5,
        ..crate::core::protocol::receipt_sample(worker.public(), requester, completed_at)
    };
    SignedReceipt::sign(receipt, worker).unwrap()
}

fn stood(receipt: &SignedReceipt, standing: Standing) -> Verified {
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Any,
    };
    accept(receipt.clone(), &rules)
        .unwrap()
        .with_standing(standing)
}

/// A ledger in a real redb file, and the directory that keeps it.
fn file_ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let db = store::open(&dir.path().join("lobstah.redb")).unwrap();
    (dir, Ledger::new(db).unwrap())
}

fn confirmation(requester: &Identity, worker: PublicKey, r: &SignedReceipt) -> SignedConfirmation {
    let c = Confirmation {
        version: 1,
        requester_pubkey: requester.public(),
        worker_pubkey: worker,
        confirmed_at: NOW,
        receipts: vec![ConfirmedReceipt {
            nonce: r.receipt().nonce.clone(),
            signature: r.signature().to_hex(),
        }],
    };
    SignedConfirmation::sign(c, requester).unwrap()
}

#[test]
fn a_worker_expires_pending_receipts_once_the_window_has_passed() {
    let (worker, requester) = ids();
    // (standing at append, age at the sweep, standing after it)
    let cases = [
        (Standing::Pending, EDGE - 1, Standing::Pending),
        (Standing::Pending, EDGE, Standing::Pending),
        (Standing::Pending, EDGE + 1, Standing::Expired),
        (Standing::Pending, 10 * EDGE, Standing::Expired),
        (Standing::Anonymous, 10 * EDGE, Standing::Anonymous),
        (Standing::Confirmed, 10 * EDGE, Standing::Confirmed),
    ];
    for (before, age, after) in cases {
        let (_dir, ledger) = file_ledger();
        let receipt = signed(&worker, requester.public(), NOW - age);
        ledger.append(&[stood(&receipt, before)]).unwrap();
        let charged_before = ledger.balance(&requester.public()).unwrap().charged_spent();
        let expired = ledger.expire_pending(NOW).unwrap();
        let nonce = &receipt.receipt().nonce;
        assert_eq!(
            ledger.standing(nonce).unwrap(),
            Some(after),
            "{before:?} aged {age}"
        );
        assert_eq!(expired, u64::from(after != before), "{before:?} aged {age}");
        let balance = ledger.balance(&requester.public()).unwrap();
        if after == Standing::Expired {
            // Out of the exposure cap and charged to nobody.
            assert_eq!(balance.pending_spent, 0);
            assert_eq!(balance.charged_spent(), charged_before - 30);
        } else {
            assert_eq!(balance.charged_spent(), charged_before);
        }
        // Earned by nobody either way until confirmed.
        let earned = ledger.balance(&worker.public()).unwrap().confirmed_earned();
        assert_eq!(earned, if after == Standing::Confirmed { 30 } else { 0 });
        assert!(
            verify_ledger(&ledger).unwrap().is_ok(),
            "{before:?} aged {age}"
        );
        // A second sweep finds nothing more.
        assert_eq!(ledger.expire_pending(NOW).unwrap(), 0);
    }
}

#[test]
fn an_expired_receipt_is_no_longer_offered_but_a_late_confirmation_settles_it() {
    let (worker, requester) = ids();
    let (_dir, ledger) = file_ledger();
    let old = signed(&worker, requester.public(), NOW - 2 * EDGE);
    let young = signed(&worker, requester.public(), NOW - 1_000);
    let proof = |r: &SignedReceipt| {
        let target = RequestTarget {
            method: "POST",
            path: "/v1/chat/completions",
            body: b"{}",
            worker: &worker.public(),
        };
        RequestProof::sign(&requester, target, r.receipt().started_at - 1).1
    };
    for r in [&old, &young] {
        let pending = stood(r, Standing::Pending).answering(Some(proof(r)));
        ledger.append(&[pending]).unwrap();
    }
    assert_eq!(
        ledger.unsettled_for(&requester.public(), 10).unwrap().len(),
        2
    );
    assert_eq!(ledger.expire_pending(NOW).unwrap(), 1);
    let offered = ledger.unsettled_for(&requester.public(), 10).unwrap();
    assert_eq!(offered.len(), 1);
    assert_eq!(offered[0].receipt, young);

    let outcomes = ledger
        .confirm(
            &confirmation(&requester, worker.public(), &old),
            &worker.public(),
        )
        .unwrap();
    assert_eq!(outcomes, vec![ConfirmOutcome::Confirmed]);
    assert_eq!(
        ledger.standing(&old.receipt().nonce).unwrap(),
        Some(Standing::Confirmed)
    );
    let balance = ledger.balance(&worker.public()).unwrap();
    assert_eq!(balance.confirmed_earned(), 30);
    assert_eq!(
        ledger.balance(&requester.public()).unwrap().pending_spent,
        30
    );
    assert!(verify_ledger(&ledger).unwrap().is_ok());
}

#[test]
fn a_router_marks_expired_what_it_gave_up_confirming() {
    let (worker, requester) = ids();
    let (_dir, ledger) = file_ledger();
    let given_up = signed(&worker, requester.public(), NOW - 2 * EDGE);
    let kept = signed(&worker, requester.public(), NOW - 1_000);
    for r in [&given_up, &kept] {
        ledger.append(&[stood(r, Standing::Confirmed)]).unwrap();
    }
    assert_eq!(
        ledger.balance(&requester.public()).unwrap().charged_spent(),
        60
    );
    let nonces = vec![given_up.receipt().nonce.clone(), "not-ledgered".to_string()];
    assert_eq!(ledger.expire_given_up(&nonces).unwrap(), 1);
    assert_eq!(ledger.expire_given_up(&nonces).unwrap(), 0, "once");
    assert_eq!(
        ledger.standing(&given_up.receipt().nonce).unwrap(),
        Some(Standing::Expired)
    );
    assert_eq!(
        ledger.standing(&kept.receipt().nonce).unwrap(),
        Some(Standing::Confirmed)
    );
    assert_eq!(
        ledger.balance(&requester.public()).unwrap().charged_spent(),
        30
    );
    assert_eq!(
        ledger.balance(&worker.public()).unwrap().confirmed_earned(),
        30
    );
    assert!(verify_ledger(&ledger).unwrap().is_ok());
}
