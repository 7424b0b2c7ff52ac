//! The acceptance rule for a job's receipt: bound below by the job's submission, above
//! by now, and tied to the peer and the worker's job id; the signature and the requester
//! checked as for chat.

use super::credit::check_job_receipt;
use crate::core::protocol::{Identity, PublicKey, RECEIPT_SKEW_MS, Receipt, SignedReceipt};

const OFFERED: u64 = 1_800_000_000_000;
const JOB: &str = "7d1f3c1e-8a43-4d4f-9d0a-1d2e3f405060";

fn worker() -> Identity {
    Identity::from_seed([1; 32])
}

fn me() -> PublicKey {
    Identity::from_seed([2; 32]).public()
}

fn receipt(started_at: u64, completed_at: u64) -> Receipt {
    Receipt {
        version: 1,
        job_id: JOB.into(),
        nonce: "00112233445566778899aabbccddeeff".into(),
        requester_pubkey: me(),
        worker_pubkey: worker().public(),
        model: "m".into(),
        input_tokens: 3,
        output_tokens: 4,
        started_at,
        completed_at,
    }
}

fn check(r: Receipt, now: u64) -> Result<(), &'static str> {
    let signed = SignedReceipt::sign(r, &worker()).unwrap();
    check_job_receipt(signed, me(), worker().public(), JOB, OFFERED, now)
        .map(|_| ())
        .map_err(|(reason, _)| reason)
}

#[test]
fn job_receipt_window_table() {
    let day = 24 * 60 * 60 * 1000;
    let earliest = OFFERED - RECEIPT_SKEW_MS;
    let cases: Vec<(&str, Receipt, u64, Result<(), &str>)> = vec![
        (
            "fetched at once",
            receipt(OFFERED, OFFERED + 10),
            OFFERED + 10,
            Ok(()),
        ),
        (
            "fetched a day later",
            receipt(OFFERED, OFFERED + 10),
            OFFERED + day,
            Ok(()),
        ),
        (
            "worker clock at the skew limit",
            receipt(earliest, earliest),
            OFFERED,
            Ok(()),
        ),
        (
            "started before the job existed",
            receipt(earliest - 1, OFFERED),
            OFFERED,
            Err("stale"),
        ),
        (
            "completed before the job existed",
            receipt(earliest - 2, earliest - 1),
            OFFERED,
            Err("stale"),
        ),
        (
            "completed in the future, within skew",
            receipt(OFFERED, OFFERED + RECEIPT_SKEW_MS),
            OFFERED,
            Ok(()),
        ),
        (
            "completed too far in the future",
            receipt(OFFERED, OFFERED + RECEIPT_SKEW_MS + 1),
            OFFERED,
            Err("future"),
        ),
        (
            "another job's receipt",
            Receipt {
                job_id: "0d1f3c1e-8a43-4d4f-9d0a-1d2e3f405060".into(),
                ..receipt(OFFERED, OFFERED)
            },
            OFFERED,
            Err("wrong-job"),
        ),
        (
            "someone else's request",
            Receipt {
                requester_pubkey: Identity::from_seed([3; 32]).public(),
                ..receipt(OFFERED, OFFERED)
            },
            OFFERED,
            Err("not-ours"),
        ),
    ];
    for (name, r, now, want) in cases {
        assert_eq!(check(r, now), want, "{name}");
    }
}

#[test]
fn only_the_peer_that_ran_it_and_an_intact_signature() {
    let other = Identity::from_seed([4; 32]);
    let by_other = SignedReceipt::sign(
        Receipt {
            worker_pubkey: other.public(),
            ..receipt(OFFERED, OFFERED)
        },
        &other,
    )
    .unwrap();
    let got = check_job_receipt(by_other, me(), worker().public(), JOB, OFFERED, OFFERED);
    assert_eq!(got.map(|_| ()).map_err(|e| e.0), Err("wrong-worker"));

    let signed = SignedReceipt::sign(receipt(OFFERED, OFFERED), &worker()).unwrap();
    let mut value = signed.to_value();
    value["receipt"]["outputTokens"] = 4_000.into();
    let tampered = SignedReceipt::from_value(value).unwrap();
    let got = check_job_receipt(tampered, me(), worker().public(), JOB, OFFERED, OFFERED);
    assert_eq!(got.map(|_| ()).map_err(|e| e.0), Err("bad-signature"));
}
