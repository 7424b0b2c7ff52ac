//! Table tests of the confirmation record: named receipts by seq or whole, the JSON
//! fallback, and damaged bytes refused with a reason.

use serde_json::json;

use super::*;
use crate::core::protocol::{Confirmation, ConfirmedReceipt, Identity};

fn requester() -> Identity {
    Identity::from_seed([2; 32])
}

fn named(i: u8) -> ConfirmedReceipt {
    ConfirmedReceipt {
        nonce: hex::encode([i; 16]),
        signature: hex::encode([i; 64]),
    }
}

fn signed(receipts: Vec<ConfirmedReceipt>) -> SignedConfirmation {
    let c = Confirmation {
        version: 1,
        requester_pubkey: requester().public(),
        worker_pubkey: Identity::from_seed([1; 32]).public(),
        confirmed_at: 1_800_000_000_000,
        receipts,
    };
    SignedConfirmation::sign(c, &requester()).unwrap()
}

/// Receipt `i` is ledgered at seq `seq_of(i)`.
fn known(items: &[(u8, u64)]) -> HashMap<u64, Named> {
    items
        .iter()
        .map(|&(i, seq)| (seq, (named(i).nonce, named(i).signature)))
        .collect()
}

#[test]
fn ledgered_receipts_are_named_by_seq_and_come_back_exactly() {
    let ledgered = known(&[(1, 100), (2, 101), (3, 7), (4, 5_000_000)]);
    // (what, receipts named, the seq each is ledgered at)
    type Case = (&'static str, Vec<u8>, Vec<Option<u64>>);
    let cases: Vec<Case> = vec![
        ("ascending", vec![1, 2], vec![Some(100), Some(101)]),
        (
            "backwards and far",
            vec![4, 3, 1],
            vec![Some(5_000_000), Some(7), Some(100)],
        ),
        (
            "some not ledgered",
            vec![1, 9, 2],
            vec![Some(100), None, Some(101)],
        ),
        ("none ledgered", vec![8, 9], vec![None, None]),
    ];
    for (what, items, seqs) in cases {
        let c = signed(items.iter().map(|&i| named(i)).collect());
        let bytes = encode(&c, &seqs, &ledgered);
        assert_eq!(bytes[0], TAG_V1, "{what}");
        let back = decode(&bytes, |seq| Ok(ledgered.get(&seq).cloned())).unwrap();
        assert!(identical(&back, &c), "{what}");
        back.verify_signature().unwrap();
        let whole = c.to_value().to_string().len();
        assert!(
            bytes.len() < whole / 2,
            "{what}: {} of {whole}",
            bytes.len()
        );
    }
}

#[test]
fn a_seq_that_resolves_elsewhere_falls_back_to_json() {
    let c = signed(vec![named(1)]);
    // The caller claims receipt 1 is at seq 5, but seq 5 holds receipt 2.
    let bytes = encode(&c, &[Some(5)], &known(&[(2, 5)]));
    assert_eq!(bytes[0], JSON_START);
    let back = decode(&bytes, |_| Ok(None)).unwrap();
    assert!(identical(&back, &c));
}

#[test]
fn another_key_order_stays_json() {
    let c = signed(vec![named(1)]);
    let json = c.to_value();
    let body = &json["confirmation"];
    let reordered = json!({
        "signature": json["signature"],
        "confirmation": {
            "receipts": body["receipts"],
            "confirmedAt": body["confirmedAt"],
            "workerPubkey": body["workerPubkey"],
            "requesterPubkey": body["requesterPubkey"],
            "version": body["version"],
        },
    });
    let received = SignedConfirmation::from_value(reordered).unwrap();
    received.verify_signature().unwrap();
    let bytes = encode(&received, &[Some(1)], &known(&[(1, 1)]));
    assert_eq!(bytes[0], JSON_START);
    let back = decode(&bytes, |_| Ok(None)).unwrap();
    assert!(identical(&back, &received));
}

#[test]
fn damaged_rows_are_refused_with_a_reason() {
    let ledgered = known(&[(1, 100)]);
    let good = encode(&signed(vec![named(1)]), &[Some(100)], &ledgered);
    let mut trailing = good.clone();
    trailing.push(0);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        ("unknown tag", vec![0x7f], "unknown record tag"),
        ("cut short", good[..40].to_vec(), "ends inside"),
        ("left over", trailing, "left over"),
        ("JSON garbage", b"{nope".to_vec(), ""),
    ];
    for (what, bytes, says) in cases {
        let err = decode(&bytes, |seq| Ok(ledgered.get(&seq).cloned())).unwrap_err();
        assert!(err.to_string().contains(says), "{what}: {err}");
    }
    let err = decode(&good, |_| Ok(None)).unwrap_err();
    assert!(err.to_string().contains("not ledgered"), "{err}");
    for cut in 0..good.len() {
        let _ = decode(&good[..cut], |seq| Ok(ledgered.get(&seq).cloned()));
    }
}
