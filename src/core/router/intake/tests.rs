//! Table test of the intake's verdicts over a real writer and an in-memory ledger.

use super::*;
use crate::core::ledger::Ledger;
use crate::core::protocol::{Identity, Receipt, receipt_sample};
use crate::core::store;

const NOW: u64 = 1_800_000_000_000;

/// (case, payload, answering peer, verdict, distrusted, receipts ledgered after).
type Case = (
    &'static str,
    Option<String>,
    PublicKey,
    &'static str,
    bool,
    u64,
);

fn receipt(worker: &Identity, requester: PublicKey, completed_at: u64, output: u64) -> Receipt {
    Receipt {
        output_tokens: output,
        ..receipt_sample(worker.public(), requester, completed_at)
    }
}

fn signed(r: Receipt, by: &Identity) -> String {
    SignedReceipt::sign(r, by).unwrap().to_base64()
}

fn delivered() -> Delivered {
    Delivered {
        prompt_bytes: 100,
        content_bytes: 40,
    }
}

fn reason(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Accepted { .. } => "accepted",
        Verdict::Refused { reason, .. } => reason,
    }
}

#[tokio::test]
async fn each_kind_of_receipt_gets_its_verdict_and_only_good_ones_are_ledgered() {
    let me = Identity::from_seed([1; 32]);
    let peer = Identity::from_seed([2; 32]);
    let other = Identity::from_seed([3; 32]);
    let ledger = Ledger::new(store::in_memory().unwrap()).unwrap();
    let (writer, _thread) = LedgerWriter::spawn(ledger.clone(), None);
    let intake = ReceiptIntake::new(me.public(), writer);
    let good = signed(receipt(&peer, me.public(), NOW, 4), &peer);
    let mut tampered = SignedReceipt::sign(receipt(&peer, me.public(), NOW, 4), &peer)
        .unwrap()
        .to_json();
    assert!(tampered.contains("\"outputTokens\":4"), "{tampered}");
    tampered = tampered.replacen("\"outputTokens\":4", "\"outputTokens\":5", 1);
    let cases: Vec<Case> = vec![
        ("no receipt", None, peer.public(), "missing", false, 0),
        (
            "not base64",
            Some("%%%".into()),
            peer.public(),
            "malformed",
            false,
            0,
        ),
        (
            "tampered after signing",
            Some(base64_of(&tampered)),
            peer.public(),
            "bad-signature",
            false,
            0,
        ),
        (
            "signed by another worker",
            Some(signed(receipt(&other, me.public(), NOW, 4), &other)),
            peer.public(),
            "wrong-worker",
            false,
            0,
        ),
        (
            "for another requester",
            Some(signed(receipt(&peer, other.public(), NOW, 4), &peer)),
            peer.public(),
            "not-ours",
            false,
            0,
        ),
        (
            "ten minutes old",
            Some(signed(receipt(&peer, me.public(), NOW - 600_000, 4), &peer)),
            peer.public(),
            "stale",
            false,
            0,
        ),
        (
            "claims more output than delivered",
            Some(signed(receipt(&peer, me.public(), NOW, 500), &peer)),
            peer.public(),
            "implausible",
            true,
            0,
        ),
        (
            "served by our own worker",
            Some(signed(receipt(&me, me.public(), NOW, 4), &me)),
            me.public(),
            "accepted",
            false,
            0,
        ),
        (
            "good",
            Some(good.clone()),
            peer.public(),
            "accepted",
            false,
            1,
        ),
        (
            "the same again",
            Some(good),
            peer.public(),
            "replayed-nonce",
            false,
            1,
        ),
    ];
    for (case, payload, from, expected, distrusted, ledgered) in cases {
        let verdict = intake
            .take(from, payload.as_deref(), delivered(), None, NOW)
            .await
            .unwrap();
        assert_eq!(reason(&verdict), expected, "{case}: {verdict:?}");
        let distrust = matches!(verdict, Verdict::Refused { distrust: true, .. });
        assert_eq!(distrust, distrusted, "{case}");
        assert_eq!(
            ledger.newest(10).unwrap().len() as u64,
            ledgered,
            "{case}: receipts in the ledger"
        );
    }
}

fn base64_of(json: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[test]
fn the_latest_rejections_are_kept_up_to_the_bound() {
    let ledger = Ledger::new(store::in_memory().unwrap()).unwrap();
    let (writer, _thread) = LedgerWriter::spawn(ledger, None);
    let peer = Identity::from_seed([2; 32]).public();
    let intake = ReceiptIntake::new(Identity::from_seed([1; 32]).public(), writer);
    for at_ms in 0..(RECENT_REJECTIONS as u64 + 6) {
        intake.remember(ReceiptRejection {
            at_ms,
            peer,
            reason: "missing".into(),
            detail: String::new(),
        });
    }
    let recent = intake.recent();
    assert_eq!(recent.len(), RECENT_REJECTIONS);
    assert_eq!(
        recent.first().map(|r| r.at_ms),
        Some(6),
        "the oldest go first"
    );
    assert_eq!(
        recent.last().map(|r| r.at_ms),
        Some(RECENT_REJECTIONS as u64 + 5)
    );
}
