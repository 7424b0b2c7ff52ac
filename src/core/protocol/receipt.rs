//! Token-usage receipts: the worker's signed statement that it served a request.
//!
//! A `SignedReceipt` keeps the receipt object exactly as received (unknown fields
//! included) beside a typed view of the fields v1 defines; the signature is always
//! checked over the object as received, never over a re-serialized struct.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{
    Identity, PROTOCOL_VERSION, ProtocolError, PublicKey, Signature, canonical_object,
    check_safe_integer,
};

/// A receipt is fresh when `completedAt` is within this many ms of the verifier's clock.
pub const RECEIPT_SKEW_MS: u64 = 5 * 60 * 1000;

/// The fields of a v1 receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub version: u64,
    pub job_id: String,
    pub nonce: String,
    pub requester_pubkey: PublicKey,
    pub worker_pubkey: PublicKey,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub started_at: u64,
    pub completed_at: u64,
}

impl Receipt {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// 16 random bytes as 32 lowercase hex characters.
pub fn new_nonce() -> String {
    super::identity::lower_hex(&rand::random::<[u8; 16]>())
}

/// A receipt with its signature, as it travels and as the ledger stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedReceipt {
    body: Map<String, Value>,
    receipt: Receipt,
    signature: Signature,
}

impl SignedReceipt {
    /// Signs `receipt` with `identity`, which must be the receipt's worker.
    pub fn sign(receipt: Receipt, identity: &Identity) -> Result<Self, ProtocolError> {
        if identity.public() != receipt.worker_pubkey {
            return Err(ProtocolError::WrongSigner {
                identity: identity.public().to_string(),
                role: "worker",
                expected: receipt.worker_pubkey.to_string(),
            });
        }
        let Value::Object(body) = serde_json::to_value(&receipt)
            .map_err(|e| ProtocolError::malformed("receipt", e.to_string()))?
        else {
            return Err(ProtocolError::malformed(
                "receipt",
                "did not serialize to an object",
            ));
        };
        // The typed receipt is at hand: check it as is instead of parsing the body back.
        check_fields(&receipt)?;
        let signature = identity.sign(&canonical_object(&body)?);
        Ok(SignedReceipt {
            body,
            receipt,
            signature,
        })
    }

    /// Signs an arbitrary receipt object, for callers (and tests) that add fields v1 does
    /// not define. The object must still hold valid v1 fields.
    pub fn sign_body(body: Map<String, Value>, identity: &Identity) -> Result<Self, ProtocolError> {
        let receipt = parse_fields(&body)?;
        let signature = identity.sign(&canonical_object(&body)?);
        Ok(SignedReceipt {
            body,
            receipt,
            signature,
        })
    }

    /// Parses `{"receipt":{…},"signature":"…"}` without verifying the signature.
    pub fn from_value(value: Value) -> Result<Self, ProtocolError> {
        let Value::Object(mut outer) = value else {
            return Err(ProtocolError::malformed(
                "signed receipt",
                "expected a JSON object",
            ));
        };
        let Some(Value::Object(body)) = outer.remove("receipt") else {
            return Err(ProtocolError::malformed(
                "signed receipt",
                "missing the \"receipt\" object",
            ));
        };
        let Some(Value::String(sig)) = outer.remove("signature") else {
            return Err(ProtocolError::malformed(
                "signed receipt",
                "missing the \"signature\" string",
            ));
        };
        let signature = Signature::parse_hex(&sig)?;
        let receipt = parse_fields(&body)?;
        Ok(SignedReceipt {
            body,
            receipt,
            signature,
        })
    }

    /// Parses JSON text (one line of a ledger export, a header's decoded bytes).
    pub fn from_json(text: &[u8]) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_slice(text).map_err(|e| {
            ProtocolError::malformed("signed receipt", format!("invalid JSON: {e}"))
        })?;
        Self::from_value(value)
    }

    /// Parses the `x-lobstah-receipt` header / SSE comment payload (standard base64).
    pub fn from_base64(text: &str) -> Result<Self, ProtocolError> {
        let bytes = BASE64.decode(text.trim()).map_err(|e| {
            ProtocolError::malformed("receipt header", format!("invalid base64: {e}"))
        })?;
        Self::from_json(&bytes)
    }

    pub fn to_value(&self) -> Value {
        let mut outer = Map::with_capacity(2);
        outer.insert("receipt".into(), Value::Object(self.body.clone()));
        outer.insert("signature".into(), Value::String(self.signature.to_hex()));
        Value::Object(outer)
    }

    /// The JSON text, written straight from the body (no copy into a `Value` first): the
    /// same bytes `to_value().to_string()` gives, which a test holds it to.
    pub fn to_json(&self) -> String {
        // Serializing a map of strings and numbers into a String cannot fail.
        serde_json::to_string(&self.wire()).unwrap_or_default()
    }

    fn wire(&self) -> Wire<'_> {
        Wire {
            receipt: &self.body,
            signature: self.signature.to_hex(),
        }
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.to_json())
    }

    /// Checks the worker's signature over the receipt object as received.
    pub fn verify_signature(&self) -> Result<(), ProtocolError> {
        let message = canonical_object(&self.body)?;
        self.receipt.worker_pubkey.verify(&message, &self.signature)
    }

    /// `completedAt` must lie within ±5 minutes of `now_ms`.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), ProtocolError> {
        let at = self.receipt.completed_at;
        if at > now_ms + RECEIPT_SKEW_MS {
            return Err(ProtocolError::Future {
                what: "receipt",
                ahead_ms: at - now_ms,
                limit_ms: RECEIPT_SKEW_MS,
            });
        }
        if now_ms > at + RECEIPT_SKEW_MS {
            return Err(ProtocolError::Stale {
                what: "receipt",
                age_ms: now_ms - at,
                limit_ms: RECEIPT_SKEW_MS,
            });
        }
        Ok(())
    }

    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The receipt object as received, unknown fields included.
    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

/// The travelling form, borrowed: `receipt` first, then `signature`, as `to_value` orders
/// them.
#[derive(Serialize)]
struct Wire<'a> {
    receipt: &'a Map<String, Value>,
    signature: String,
}

impl Serialize for SignedReceipt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(s)
    }
}

impl<'de> Deserialize<'de> for SignedReceipt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SignedReceipt::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn parse_fields(body: &Map<String, Value>) -> Result<Receipt, ProtocolError> {
    // Deserialized from the borrowed map: no copy of the body.
    let receipt = Receipt::deserialize(body)
        .map_err(|e| ProtocolError::malformed("receipt", e.to_string()))?;
    check_fields(&receipt)?;
    Ok(receipt)
}

/// The rules v1 sets beyond the field types.
fn check_fields(receipt: &Receipt) -> Result<(), ProtocolError> {
    if receipt.version != PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedVersion {
            what: "receipt",
            version: receipt.version,
        });
    }
    if receipt.nonce.len() != 32
        || !receipt
            .nonce
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(ProtocolError::malformed(
            "receipt",
            "nonce must be 32 lowercase hex characters",
        ));
    }
    if receipt.job_id.is_empty() {
        return Err(ProtocolError::malformed("receipt", "jobId is empty"));
    }
    for (field, value) in [
        ("inputTokens", receipt.input_tokens),
        ("outputTokens", receipt.output_tokens),
        ("startedAt", receipt.started_at),
        ("completedAt", receipt.completed_at),
    ] {
        check_safe_integer("receipt", field, value)?;
    }
    if receipt.completed_at < receipt.started_at {
        return Err(ProtocolError::malformed(
            "receipt",
            "completedAt is earlier than startedAt",
        ));
    }
    Ok(())
}

/// A receipt for unit tests elsewhere in the crate: `worker` served `requester` 3 input
/// and 4 output tokens over the 10 ms before `completed_at`, under a fresh nonce.
#[cfg(test)]
pub(crate) fn sample(worker: PublicKey, requester: PublicKey, completed_at: u64) -> Receipt {
    Receipt {
        version: 1,
        job_id: "job".into(),
        nonce: new_nonce(),
        requester_pubkey: requester,
        worker_pubkey: worker,
        model: "m".into(),
        input_tokens: 3,
        output_tokens: 4,
        started_at: completed_at - 10,
        completed_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(worker: &Identity) -> Receipt {
        Receipt {
            version: 1,
            job_id: "6f1c1c1e-8a43-4d4f-9d0a-1d2e3f405060".into(),
            nonce: "00112233445566778899aabbccddeeff".into(),
            requester_pubkey: Identity::from_seed([2; 32]).public(),
            worker_pubkey: worker.public(),
            model: "llama3.1:8b".into(),
            input_tokens: 12,
            output_tokens: 34,
            started_at: 1_700_000_000_000,
            completed_at: 1_700_000_001_000,
        }
    }

    #[test]
    fn header_round_trip_verifies() {
        let worker = Identity::from_seed([1; 32]);
        let signed = SignedReceipt::sign(sample(&worker), &worker).unwrap();
        let back = SignedReceipt::from_base64(&signed.to_base64()).unwrap();
        back.verify_signature().unwrap();
        assert_eq!(back, signed);
    }

    #[test]
    fn json_text_is_what_the_value_form_writes() {
        let worker = Identity::from_seed([1; 32]);
        let mut body = match serde_json::to_value(sample(&worker)).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        body.insert(
            "zFuture".into(),
            serde_json::json!({"é": [1.5, null, "\u{1F600}"]}),
        );
        body.insert("aFirst".into(), Value::from(-3));
        let signed = SignedReceipt::sign_body(body, &worker).unwrap();
        for s in [
            signed.clone(),
            SignedReceipt::sign(sample(&worker), &worker).unwrap(),
        ] {
            assert_eq!(s.to_json(), s.to_value().to_string());
            assert_eq!(serde_json::to_string(&s).unwrap(), s.to_json());
            let back = SignedReceipt::from_json(s.to_json().as_bytes()).unwrap();
            back.verify_signature().unwrap();
            assert_eq!(back, s);
        }
    }

    /// `sign` checks the typed receipt instead of parsing the body back; it must refuse
    /// what `sign_body` (which parses) refuses.
    #[test]
    fn sign_refuses_what_sign_body_refuses() {
        let worker = Identity::from_seed([1; 32]);
        let bad: [fn(&mut Receipt); 5] = [
            |r| r.version = 2,
            |r| r.nonce = "00112233445566778899AABBCCDDEEFF".into(),
            |r| r.job_id.clear(),
            |r| r.output_tokens = 1 << 53,
            |r| r.started_at = r.completed_at + 1,
        ];
        for (i, spoil) in bad.iter().enumerate() {
            let mut r = sample(&worker);
            spoil(&mut r);
            let body = match serde_json::to_value(&r).unwrap() {
                Value::Object(m) => m,
                _ => unreachable!(),
            };
            let by_body = SignedReceipt::sign_body(body, &worker).unwrap_err();
            assert_eq!(
                SignedReceipt::sign(r, &worker).unwrap_err(),
                by_body,
                "case {i}"
            );
        }
    }

    #[test]
    fn only_the_worker_may_sign() {
        let worker = Identity::from_seed([1; 32]);
        let other = Identity::from_seed([3; 32]);
        assert!(matches!(
            SignedReceipt::sign(sample(&worker), &other),
            Err(ProtocolError::WrongSigner { .. })
        ));
    }

    #[test]
    fn freshness_window_table() {
        let worker = Identity::from_seed([1; 32]);
        let signed = SignedReceipt::sign(sample(&worker), &worker).unwrap();
        let at = signed.receipt().completed_at;
        let cases = [
            (at, true),
            (at + RECEIPT_SKEW_MS, true),
            (at + RECEIPT_SKEW_MS + 1, false),
            (at - RECEIPT_SKEW_MS, true),
            (at - RECEIPT_SKEW_MS - 1, false),
        ];
        for (now, fresh) in cases {
            assert_eq!(signed.check_fresh(now).is_ok(), fresh, "now={now}");
        }
    }

    #[test]
    fn malformed_receipts_name_the_problem() {
        let cases = [
            (r#"[]"#, "expected a JSON object"),
            (r#"{"signature":"00"}"#, "missing the \"receipt\" object"),
            (r#"{"receipt":{}}"#, "missing the \"signature\" string"),
            (r#"{"receipt":{},"signature":"zz"}"#, "128 lowercase hex"),
            ("not json", "invalid JSON"),
        ];
        for (text, needle) in cases {
            let err = SignedReceipt::from_json(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
