//! How a signed confirmation is kept in the `confirmations` table. It names each receipt
//! by nonce and signature, which the receipts table already holds: the compact record
//! keeps the requester's header and signature, and for each named receipt that is
//! ledgered here with that very nonce and signature only its seq (as a small delta from
//! the one before). What it names that is not ledgered here (unknown nonces, mismatched
//! signatures) is kept whole. So a batch of 512 costs about a kilobyte instead of 100.
//!
//! As with receipts, `encode` decodes what it made and keeps the JSON text unless the
//! confirmation comes back exactly (same body, same order, same signature); receipts are
//! never changed or deleted, so a seq keeps resolving to what it resolved to here.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::bytes::{Reader, RecordError, hex16, put_varint};
use crate::core::protocol::{PublicKey, SignedConfirmation};

const TAG_V1: u8 = 0x01;
const JSON_START: u8 = b'{';

/// The body keys a binary record stands for, in this order.
const FIELDS: [&str; 5] = [
    "version",
    "requesterPubkey",
    "workerPubkey",
    "confirmedAt",
    "receipts",
];

/// (nonce, signature), both hex, of the receipt ledgered at a seq.
pub(super) type Named = (String, String);

/// The bytes to store for `signed`. `seqs` has one entry per receipt it names: the seq
/// of the ledgered receipt with exactly that nonce and signature, when there is one, and
/// `known` holds what those seqs resolve to.
pub(super) fn encode(
    signed: &SignedConfirmation,
    seqs: &[Option<u64>],
    known: &HashMap<u64, Named>,
) -> Vec<u8> {
    let resolve = |seq: u64| Ok(known.get(&seq).cloned());
    if let Some(bytes) = binary(signed, seqs)
        && decode(&bytes, resolve).is_ok_and(|back| identical(&back, signed))
    {
        return bytes;
    }
    signed.to_value().to_string().into_bytes()
}

/// Decodes a stored row; `resolve` gives the nonce and signature of the receipt at a seq.
pub(super) fn decode<F>(bytes: &[u8], resolve: F) -> Result<SignedConfirmation, RecordError>
where
    F: Fn(u64) -> Result<Option<Named>, RecordError>,
{
    match bytes.first() {
        None => Err(RecordError::Empty),
        Some(&JSON_START) => {
            SignedConfirmation::from_json(bytes).map_err(|e| RecordError::Invalid(e.to_string()))
        }
        Some(&TAG_V1) => decode_v1(&bytes[1..], resolve),
        Some(&tag) => Err(RecordError::UnknownTag(tag)),
    }
}

/// The JSON texts are compared, not the values: serde_json's maps compare without
/// regard to order, and the text covers the order of every key, nested ones included.
fn identical(a: &SignedConfirmation, b: &SignedConfirmation) -> bool {
    let text = |c: &SignedConfirmation| c.to_value().to_string();
    a == b && text(a) == text(b)
}

fn binary(signed: &SignedConfirmation, seqs: &[Option<u64>]) -> Option<Vec<u8>> {
    let Value::Object(outer) = signed.to_value() else {
        return None;
    };
    let Some(Value::Object(body)) = outer.get("confirmation") else {
        return None;
    };
    if body.len() != FIELDS.len() || !body.keys().zip(FIELDS).all(|(k, f)| k == f) {
        return None;
    }
    let c = signed.confirmation();
    if seqs.len() != c.receipts.len() {
        return None;
    }
    let Some(Value::String(signature)) = outer.get("signature") else {
        return None;
    };
    let signature = hex::decode(signature).ok()?;
    let mut out = Vec::with_capacity(160 + 2 * seqs.len());
    out.push(TAG_V1);
    put_varint(&mut out, c.version);
    out.extend_from_slice(c.requester_pubkey.as_bytes());
    out.extend_from_slice(c.worker_pubkey.as_bytes());
    put_varint(&mut out, c.confirmed_at);
    out.extend_from_slice(&signature);
    put_varint(&mut out, seqs.len() as u64);
    let mut previous = 0u64;
    for (named, seq) in c.receipts.iter().zip(seqs) {
        match seq {
            // Even: a seq, as the zigzag of its distance from the previous one.
            Some(seq) => {
                let delta = seq.wrapping_sub(previous) as i64;
                put_varint(&mut out, zigzag(delta) << 1);
                previous = *seq;
            }
            // Odd: the nonce and signature themselves.
            None => {
                put_varint(&mut out, 1);
                out.extend_from_slice(&hex16(&named.nonce)?);
                out.extend_from_slice(&hex::decode(&named.signature).ok()?);
            }
        }
    }
    Some(out)
}

fn decode_v1<F>(bytes: &[u8], resolve: F) -> Result<SignedConfirmation, RecordError>
where
    F: Fn(u64) -> Result<Option<Named>, RecordError>,
{
    let mut r = Reader::new(bytes);
    let version = r.varint("version")?;
    let requester: [u8; 32] = r.array("requesterPubkey")?;
    let worker: [u8; 32] = r.array("workerPubkey")?;
    let confirmed_at = r.varint("confirmedAt")?;
    let signature: [u8; 64] = r.array("signature")?;
    let count = r.varint("receipts")?;
    let mut receipts = Vec::new();
    let mut previous = 0u64;
    for _ in 0..count {
        let entry = r.varint("a named receipt")?;
        let (nonce, signature) = if entry & 1 == 0 {
            // Not 1 shifted back: the top bit of the zigzag is the sign.
            let delta = unzigzag(entry >> 1);
            let seq = previous.wrapping_add(delta as u64);
            previous = seq;
            resolve(seq)?.ok_or_else(|| {
                RecordError::Invalid(format!("it names receipt #{seq}, which is not ledgered"))
            })?
        } else {
            let nonce: [u8; 16] = r.array("a nonce")?;
            let signature: [u8; 64] = r.array("a receipt signature")?;
            (hex::encode(nonce), hex::encode(signature))
        };
        let mut named = Map::with_capacity(2);
        named.insert("nonce".into(), Value::String(nonce));
        named.insert("signature".into(), Value::String(signature));
        receipts.push(Value::Object(named));
    }
    r.finish()?;
    let values = [
        Value::from(version),
        Value::String(PublicKey::from_bytes(requester).to_string()),
        Value::String(PublicKey::from_bytes(worker).to_string()),
        Value::from(confirmed_at),
        Value::Array(receipts),
    ];
    let body: Map<String, Value> = FIELDS
        .iter()
        .map(|f| (*f).to_string())
        .zip(values)
        .collect();
    let mut outer = Map::with_capacity(2);
    outer.insert("confirmation".into(), Value::Object(body));
    outer.insert("signature".into(), Value::String(hex::encode(signature)));
    SignedConfirmation::from_value(Value::Object(outer))
        .map_err(|e| RecordError::Invalid(e.to_string()))
}

/// Signed deltas as unsigned: 0, -1, 1, -2… → 0, 1, 2, 3… Only 63 bits fit beside the
/// tag bit; seqs are far below 2^62.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
#[path = "confirm_record_tests.rs"]
mod tests;
