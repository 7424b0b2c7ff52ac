//! How a receipt is kept in the `receipts` table. A receipt with exactly the v1 fields,
//! in the order our serializer writes them, becomes a binary record (under a third of its
//! JSON): raw nonce and signature instead of hex, the two public keys as their ids in
//! the ledger's key book (`keys`), varints for numbers, `completedAt` as the few bytes
//! it is after `startedAt`. Anything else (unknown fields, another key order, a number
//! that is not a u64) is kept as its JSON text.
//!
//! The record must give back exactly what was received, since the signature covers the
//! receipt object as received: `encode` decodes what it made and falls back to JSON
//! unless the result equals the original, key order included. Rows written before this
//! format are JSON text starting with `{`, which still decodes.

use serde_json::{Map, Value};

use super::StoredReceipt;
use super::bytes::{Reader, RecordError, hex16, put_str, put_varint};
use super::keys::{KeyBook, KeyTables};
use crate::core::protocol::{PublicKey, SignedReceipt};
use crate::core::store::StoreError;

/// The binary v1 record. JSON rows begin with `{` (0x7b), so the tags cannot collide.
const TAG_V1: u8 = 0x01;
const JSON_START: u8 = b'{';

/// The body a binary record stands for, in this order.
const V1_FIELDS: [&str; 10] = [
    "version",
    "jobId",
    "nonce",
    "requesterPubkey",
    "workerPubkey",
    "model",
    "inputTokens",
    "outputTokens",
    "startedAt",
    "completedAt",
];

/// The bytes to store for `signed`: the binary record when it gives `signed` back
/// exactly, else the JSON text. Keys it names get ids in `keys` if they had none.
pub(super) fn encode(signed: &SignedReceipt, keys: &mut KeyTables) -> Result<Vec<u8>, StoreError> {
    if let Some(bytes) = binary(signed, keys)?
        && decode(&bytes, &keys.by_id).is_ok_and(|back| identical(&back, signed))
    {
        return Ok(bytes);
    }
    Ok(signed.to_json().into_bytes())
}

/// Decodes a stored row. Rows were written from verified receipts, so a failure here
/// means the file was damaged or edited; it is reported, not papered over.
pub(super) fn decode_row(
    seq: u64,
    bytes: &[u8],
    keys: &dyn KeyBook,
) -> Result<StoredReceipt, StoreError> {
    let receipt = decode(bytes, keys).map_err(|e| {
        StoreError::Corrupt(format!("receipt #{seq} in the ledger does not parse: {e}"))
    })?;
    Ok(StoredReceipt { seq, receipt })
}

pub(super) fn decode(bytes: &[u8], keys: &dyn KeyBook) -> Result<SignedReceipt, RecordError> {
    match bytes.first() {
        None => Err(RecordError::Empty),
        Some(&JSON_START) => {
            SignedReceipt::from_json(bytes).map_err(|e| RecordError::Invalid(e.to_string()))
        }
        Some(&TAG_V1) => decode_v1(&bytes[1..], keys),
        Some(&tag) => Err(RecordError::UnknownTag(tag)),
    }
}

/// Equal bodies (serde_json's ordered map compares without regard to order), the same
/// key order, the same signature.
fn identical(a: &SignedReceipt, b: &SignedReceipt) -> bool {
    a == b && a.body().keys().eq(b.body().keys())
}

fn binary(signed: &SignedReceipt, keys: &mut KeyTables) -> Result<Option<Vec<u8>>, StoreError> {
    let body = signed.body();
    if body.len() != V1_FIELDS.len() || !body.keys().zip(V1_FIELDS).all(|(k, f)| k == f) {
        return Ok(None);
    }
    let r = signed.receipt();
    let (Some(nonce), Some(duration)) = (hex16(&r.nonce), r.completed_at.checked_sub(r.started_at))
    else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(160 + r.job_id.len() + r.model.len());
    out.push(TAG_V1);
    put_varint(&mut out, r.version);
    put_str(&mut out, &r.job_id);
    out.extend_from_slice(&nonce);
    put_varint(&mut out, keys.id_of(&r.requester_pubkey)?);
    put_varint(&mut out, keys.id_of(&r.worker_pubkey)?);
    put_str(&mut out, &r.model);
    put_varint(&mut out, r.input_tokens);
    put_varint(&mut out, r.output_tokens);
    put_varint(&mut out, r.started_at);
    put_varint(&mut out, duration);
    out.extend_from_slice(&signed.signature().0);
    Ok(Some(out))
}

fn decode_v1(bytes: &[u8], keys: &dyn KeyBook) -> Result<SignedReceipt, RecordError> {
    let mut r = Reader::new(bytes);
    let version = r.varint("version")?;
    let job_id = r.string("jobId")?;
    let nonce: [u8; 16] = r.array("nonce")?;
    let requester = key(keys, r.varint("requesterPubkey")?)?;
    let worker = key(keys, r.varint("workerPubkey")?)?;
    let model = r.string("model")?;
    let input = r.varint("inputTokens")?;
    let output = r.varint("outputTokens")?;
    let started = r.varint("startedAt")?;
    let duration = r.varint("completedAt")?;
    let signature: [u8; 64] = r.array("signature")?;
    r.finish()?;
    let completed = started
        .checked_add(duration)
        .ok_or(RecordError::Overlong("completedAt"))?;
    let values = [
        Value::from(version),
        Value::String(job_id),
        Value::String(hex::encode(nonce)),
        Value::String(PublicKey::from_bytes(requester).to_string()),
        Value::String(PublicKey::from_bytes(worker).to_string()),
        Value::String(model),
        Value::from(input),
        Value::from(output),
        Value::from(started),
        Value::from(completed),
    ];
    let body: Map<String, Value> = V1_FIELDS
        .iter()
        .map(|f| (*f).to_string())
        .zip(values)
        .collect();
    let mut outer = Map::with_capacity(2);
    outer.insert("receipt".into(), Value::Object(body));
    outer.insert("signature".into(), Value::String(hex::encode(signature)));
    SignedReceipt::from_value(Value::Object(outer)).map_err(|e| RecordError::Invalid(e.to_string()))
}

fn key(keys: &dyn KeyBook, id: u64) -> Result<[u8; 32], RecordError> {
    keys.key(id)?.ok_or_else(|| {
        RecordError::Invalid(format!("it names key #{id}, which is not in the key book"))
    })
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
