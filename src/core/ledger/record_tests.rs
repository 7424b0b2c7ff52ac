//! Table tests of the receipt record: what becomes binary, what stays JSON, and that
//! damaged bytes are refused with a reason, never a panic.

use serde_json::{Value, json};

use super::*;
use crate::core::protocol::{Identity, Receipt};
use crate::core::store;

/// A key book in a transaction of its own, for a test's encodes and decodes.
macro_rules! key_book {
    ($keys:ident) => {
        let db = store::in_memory().unwrap();
        let tx = db.begin_write().unwrap();
        let mut $keys = KeyTables::open(&tx).unwrap();
    };
}

fn worker() -> Identity {
    Identity::from_seed([1; 32])
}

fn v1(job_id: &str, model: &str, tokens: (u64, u64), at: (u64, u64)) -> Receipt {
    Receipt {
        version: 1,
        job_id: job_id.into(),
        nonce: "00112233445566778899aabbccddeeff".into(),
        requester_pubkey: Identity::from_seed([2; 32]).public(),
        worker_pubkey: worker().public(),
        model: model.into(),
        input_tokens: tokens.0,
        output_tokens: tokens.1,
        started_at: at.0,
        completed_at: at.1,
    }
}

fn body_of(receipt: &Receipt) -> Map<String, Value> {
    match serde_json::to_value(receipt).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn v1_receipts_become_binary_and_round_trip() {
    key_book!(keys);
    let max = (1u64 << 53) - 1;
    let cases = [
        v1(
            "chatcmpl-1",
            "llama3.1:8b",
            (12, 34),
            (1_700_000_000_000, 1_700_000_001_000),
        ),
        v1("j", "", (0, 0), (0, 0)),
        v1("ünïcödé job", "模型", (max, max), (0, max)),
        v1(&"x".repeat(5_000), "m", (1, 2), (max, max)),
    ];
    for receipt in cases {
        let signed = SignedReceipt::sign(receipt.clone(), &worker()).unwrap();
        let bytes = encode(&signed, &mut keys).unwrap();
        assert_eq!(bytes[0], TAG_V1, "{receipt:?}");
        assert!(bytes.len() < signed.to_json().len(), "{receipt:?}");
        let back = decode(&bytes, &keys.by_id).unwrap();
        assert!(identical(&back, &signed));
        assert_eq!(back.to_json(), signed.to_json());
        back.verify_signature().unwrap();
    }
}

#[test]
fn other_bodies_stay_json_and_round_trip() {
    key_book!(keys);
    let base = body_of(&v1("job", "m", (3, 4), (10, 20)));
    let mut unknown = base.clone();
    unknown.insert("zFuture".into(), json!({"nested": [1.5, null]}));
    let mut reordered = Map::new();
    for key in V1_FIELDS.iter().rev() {
        reordered.insert((*key).to_string(), base[*key].clone());
    }
    let mut first = Map::new();
    first.insert("aFirst".into(), json!(-3));
    first.extend(base.clone());
    for (what, body) in [
        ("unknown field", unknown),
        ("other key order", reordered),
        ("a negative number in front", first),
    ] {
        let signed = SignedReceipt::sign_body(body, &worker()).unwrap();
        let bytes = encode(&signed, &mut keys).unwrap();
        assert_eq!(bytes[0], JSON_START, "{what}");
        let back = decode(&bytes, &keys.by_id).unwrap();
        assert!(identical(&back, &signed), "{what}");
        assert_eq!(back.to_json(), signed.to_json(), "{what}");
    }
}

#[test]
fn rows_of_older_versions_still_decode() {
    let signed = SignedReceipt::sign(v1("job", "m", (3, 4), (10, 20)), &worker()).unwrap();
    let back = decode_row(
        7,
        signed.to_json().as_bytes(),
        &None::<redb::ReadOnlyTable<u64, [u8; 32]>>,
    )
    .unwrap();
    assert_eq!(back.seq, 7);
    assert!(identical(&back.receipt, &signed));
}

#[test]
fn damaged_rows_are_corrupt_with_a_reason() {
    key_book!(keys);
    let signed = SignedReceipt::sign(v1("job", "m", (3, 4), (10, 20)), &worker()).unwrap();
    let good = encode(&signed, &mut keys).unwrap();
    let mut trailing = good.clone();
    trailing.push(0);
    let mut bad_version = good.clone();
    bad_version[1] = 9;
    let mut huge_string = vec![TAG_V1, 1];
    huge_string.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let mut bad_utf8 = vec![TAG_V1, 1, 2, 0xc3, 0x28];
    bad_utf8.extend_from_slice(&[0; 200]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        (
            "unknown tag",
            vec![0x02, 1, 2, 3],
            "unknown record tag 0x02",
        ),
        ("tag alone", vec![TAG_V1], "ends inside version"),
        (
            "cut short",
            good[..good.len() - 1].to_vec(),
            "ends inside signature",
        ),
        ("left over", trailing, "left over"),
        ("wrong version", bad_version, "version"),
        (
            "string longer than the row",
            huge_string,
            "ends inside jobId",
        ),
        ("not UTF-8", bad_utf8, "not UTF-8"),
        ("JSON garbage", b"{\"receipt\":".to_vec(), "invalid JSON"),
        (
            "an id the key book lacks",
            unknown_key(&good),
            "not in the key book",
        ),
        (
            "overlong varint",
            vec![
                TAG_V1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            "64 bits",
        ),
    ];
    for (what, bytes, says) in cases {
        match decode_row(42, &bytes, &keys.by_id) {
            Err(StoreError::Corrupt(message)) => {
                assert!(message.contains("receipt #42"), "{what}: {message}");
                assert!(message.contains(says), "{what}: {message}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn any_bytes_decode_or_fail_without_panicking() {
    key_book!(keys);
    let signed = SignedReceipt::sign(v1("job", "m", (3, 4), (10, 20)), &worker()).unwrap();
    let good = encode(&signed, &mut keys).unwrap();
    for cut in 0..good.len() {
        let _ = decode(&good[..cut], &keys.by_id);
        let mut flipped = good.clone();
        flipped[cut] ^= 0xff;
        let _ = decode(&flipped, &keys.by_id);
    }
}

/// `good` naming requester key #9 instead: the ids sit after tag, version, jobId, nonce.
fn unknown_key(good: &[u8]) -> Vec<u8> {
    let at = 1 + 1 + 1 + "job".len() + 16;
    let mut out = good.to_vec();
    out[at] = 9;
    out
}
