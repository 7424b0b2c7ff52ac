//! Counter-signatures: a requester's signed statement that it accepted a batch of a
//! worker's receipts. The worker holds what it earned as pending until one arrives.
//!
//! A confirmation travels beside receipts, never inside them, so receipts stay exactly
//! what the existing network reads. It names each receipt by nonce and by the worker's
//! signature over it: Ed25519 signatures (checked strictly) bind the receipt's content,
//! so a confirmation cannot be stretched to cover a receipt the worker changed later.
//!
//! ```text
//! {"confirmation":{"version":1,"requesterPubkey":"lob1…","workerPubkey":"lob1…",
//!   "confirmedAt":<unix ms>,"receipts":[{"nonce":"<32 hex>","signature":"<128 hex>"}…]},
//!  "signature":"<128 hex, by the requester>"}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::canonical::canonical_object;
use super::identity::{Identity, PublicKey, Signature};
use super::{PROTOCOL_VERSION, ProtocolError, SignedReceipt, check_safe_integer};

/// Receipts one confirmation may name at most; bounds a request body to ~100 KiB.
pub const MAX_CONFIRMED_PER_BATCH: usize = 512;

/// One receipt a confirmation covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedReceipt {
    pub nonce: String,
    /// The worker's signature over the receipt, hex.
    pub signature: String,
}

impl ConfirmedReceipt {
    pub fn of(receipt: &SignedReceipt) -> Self {
        ConfirmedReceipt {
            nonce: receipt.receipt().nonce.clone(),
            signature: receipt.signature().to_hex(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    pub version: u64,
    pub requester_pubkey: PublicKey,
    pub worker_pubkey: PublicKey,
    pub confirmed_at: u64,
    pub receipts: Vec<ConfirmedReceipt>,
}

/// A confirmation with the requester's signature, kept as received.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedConfirmation {
    confirmation: Confirmation,
    body: Map<String, Value>,
    signature: Signature,
}

impl SignedConfirmation {
    /// Signs `confirmation`; `identity` must be its requester.
    pub fn sign(confirmation: Confirmation, identity: &Identity) -> Result<Self, ProtocolError> {
        if confirmation.requester_pubkey != identity.public() {
            return Err(ProtocolError::WrongSigner {
                identity: identity.public().to_string(),
                role: "requester",
                expected: confirmation.requester_pubkey.to_string(),
            });
        }
        check_fields(&confirmation)?;
        let body = match serde_json::to_value(&confirmation) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ProtocolError::malformed("confirmation", "not an object")),
        };
        let signature = identity.sign(&canonical_object(&body)?);
        Ok(SignedConfirmation {
            confirmation,
            body,
            signature,
        })
    }

    pub fn from_value(value: Value) -> Result<Self, ProtocolError> {
        let Value::Object(mut outer) = value else {
            return Err(ProtocolError::malformed(
                "confirmation",
                "not a JSON object",
            ));
        };
        let signature = match outer.remove("signature") {
            Some(Value::String(s)) => Signature::parse_hex(&s)?,
            _ => {
                return Err(ProtocolError::malformed(
                    "confirmation",
                    "no signature string",
                ));
            }
        };
        let body = match outer.remove("confirmation") {
            Some(Value::Object(map)) => map,
            _ => {
                return Err(ProtocolError::malformed(
                    "confirmation",
                    "no \"confirmation\" object",
                ));
            }
        };
        let confirmation: Confirmation = serde_json::from_value(Value::Object(body.clone()))
            .map_err(|e| ProtocolError::malformed("confirmation", e.to_string()))?;
        check_fields(&confirmation)?;
        Ok(SignedConfirmation {
            confirmation,
            body,
            signature,
        })
    }

    pub fn from_json(text: &[u8]) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_slice(text)
            .map_err(|e| ProtocolError::malformed("confirmation", e.to_string()))?;
        Self::from_value(value)
    }

    pub fn to_value(&self) -> Value {
        let mut outer = Map::with_capacity(2);
        outer.insert("confirmation".into(), Value::Object(self.body.clone()));
        outer.insert("signature".into(), Value::String(self.signature.to_hex()));
        Value::Object(outer)
    }

    /// Checks the requester's signature over the confirmation as received.
    pub fn verify_signature(&self) -> Result<(), ProtocolError> {
        let message = canonical_object(&self.body)?;
        self.confirmation
            .requester_pubkey
            .verify(&message, &self.signature)
    }

    pub fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }
}

fn check_fields(c: &Confirmation) -> Result<(), ProtocolError> {
    if c.version != PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedVersion {
            what: "confirmation",
            version: c.version,
        });
    }
    check_safe_integer("confirmation", "confirmedAt", c.confirmed_at)?;
    if c.receipts.is_empty() || c.receipts.len() > MAX_CONFIRMED_PER_BATCH {
        return Err(ProtocolError::malformed(
            "confirmation",
            format!(
                "names {} receipts; 1 to {MAX_CONFIRMED_PER_BATCH} allowed",
                c.receipts.len()
            ),
        ));
    }
    for r in &c.receipts {
        let hex_of = |s: &str, n: usize| {
            s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !hex_of(&r.nonce, 32) || !hex_of(&r.signature, 128) {
            return Err(ProtocolError::malformed(
                "confirmation",
                "each receipt needs a 32-hex nonce and a 128-hex signature",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requester: &Identity, worker: PublicKey, n: usize) -> Confirmation {
        Confirmation {
            version: 1,
            requester_pubkey: requester.public(),
            worker_pubkey: worker,
            confirmed_at: 1_800_000_000_000,
            receipts: (0..n)
                .map(|i| ConfirmedReceipt {
                    nonce: format!("{i:032x}"),
                    signature: "ab".repeat(64),
                })
                .collect(),
        }
    }

    #[test]
    fn round_trip_verify_and_tamper() {
        let requester = Identity::from_seed([1; 32]);
        let worker = Identity::from_seed([2; 32]).public();
        let signed = SignedConfirmation::sign(sample(&requester, worker, 3), &requester).unwrap();
        let text = signed.to_value().to_string();
        let back = SignedConfirmation::from_json(text.as_bytes()).unwrap();
        assert_eq!(back, signed);
        back.verify_signature().unwrap();
        let tampered = text.replacen(&format!("{:032x}", 1), &format!("{:032x}", 7), 1);
        let bad = SignedConfirmation::from_json(tampered.as_bytes()).unwrap();
        assert!(bad.verify_signature().is_err());
    }

    #[test]
    fn unknown_fields_are_signed_as_received() {
        let requester = Identity::from_seed([1; 32]);
        let worker = Identity::from_seed([2; 32]).public();
        let mut body = serde_json::to_value(sample(&requester, worker, 1)).unwrap();
        body["note"] = "later field".into();
        let sig = requester.sign(&canonical_object(body.as_object().unwrap()).unwrap());
        let wire = serde_json::json!({"confirmation": body, "signature": sig.to_hex()});
        let parsed = SignedConfirmation::from_value(wire).unwrap();
        parsed.verify_signature().unwrap();
    }

    #[test]
    fn only_the_requester_signs_and_batches_are_bounded() {
        let requester = Identity::from_seed([1; 32]);
        let worker = Identity::from_seed([2; 32]);
        assert!(matches!(
            SignedConfirmation::sign(sample(&requester, worker.public(), 1), &worker),
            Err(ProtocolError::WrongSigner { .. })
        ));
        for n in [0, MAX_CONFIRMED_PER_BATCH + 1] {
            assert!(
                SignedConfirmation::sign(sample(&requester, worker.public(), n), &requester)
                    .is_err()
            );
        }
        let mut bad_nonce = sample(&requester, worker.public(), 1);
        bad_nonce.receipts[0].nonce = "XYZ".into();
        assert!(SignedConfirmation::sign(bad_nonce, &requester).is_err());
    }
}
