//! The withdrawal request, `{"pubkey","timestamp","signature"}`: parsed strictly, its
//! signature checked over `unannounce:<pubkey>:<timestamp>`, its timestamp within ±5
//! minutes of the tracker's clock.

use serde_json::Value;

use crate::core::protocol::{Identity, PublicKey, Signature, unannounce_message};

use super::registry::Refusal;

/// How far a withdrawal's timestamp may be from the tracker's clock, either way.
pub const UNANNOUNCE_SKEW_MS: u64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unannounce {
    pub pubkey: PublicKey,
    pub timestamp_ms: u64,
    pub signature: Signature,
}

impl Unannounce {
    /// A signed withdrawal, as a node sends one.
    pub fn sign(identity: &Identity, timestamp_ms: u64) -> Self {
        let pubkey = identity.public();
        let signature = identity.sign(unannounce_message(&pubkey, timestamp_ms).as_bytes());
        Unannounce {
            pubkey,
            timestamp_ms,
            signature,
        }
    }

    pub fn from_json(text: &[u8]) -> Result<Self, Refusal> {
        let value: Value = serde_json::from_slice(text)
            .map_err(|e| Refusal::Malformed(format!("unannounce body is not JSON: {e}")))?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Self, Refusal> {
        let malformed = |what: &str| {
            Refusal::Malformed(format!(
                "unannounce body needs {what}: {{\"pubkey\":\"lob1…\",\"timestamp\":<unix ms>,\"signature\":\"<128 hex>\"}}"
            ))
        };
        if !value.is_object() {
            return Err(malformed("to be a JSON object"));
        }
        let pubkey = value
            .get("pubkey")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("a \"pubkey\" string"))?;
        // The signed text carries the number as the sender wrote it; only a plain
        // non-negative integer has one spelling both sides agree on.
        let timestamp_ms = value
            .get("timestamp")
            .and_then(Value::as_u64)
            .ok_or_else(|| malformed("a \"timestamp\" integer"))?;
        let signature = value
            .get("signature")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("a \"signature\" string"))?;
        Ok(Unannounce {
            pubkey: PublicKey::parse(pubkey)?,
            timestamp_ms,
            signature: Signature::parse_hex(signature)?,
        })
    }

    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "pubkey": self.pubkey.to_string(),
            "timestamp": self.timestamp_ms,
            "signature": self.signature.to_hex(),
        })
    }

    pub fn verify(&self) -> Result<(), Refusal> {
        let message = unannounce_message(&self.pubkey, self.timestamp_ms);
        Ok(self.pubkey.verify(message.as_bytes(), &self.signature)?)
    }

    pub fn check_fresh(&self, now_ms: u64) -> Result<(), Refusal> {
        let ts = self.timestamp_ms;
        if ts > now_ms.saturating_add(UNANNOUNCE_SKEW_MS) {
            return Err(Refusal::Future(format!(
                "unannounce timestamp is {} ms ahead of this tracker's clock, the limit is {UNANNOUNCE_SKEW_MS} ms",
                ts - now_ms
            )));
        }
        if now_ms > ts.saturating_add(UNANNOUNCE_SKEW_MS) {
            return Err(Refusal::Stale(format!(
                "unannounce timestamp is {} ms old, the limit is {UNANNOUNCE_SKEW_MS} ms",
                now_ms - ts
            )));
        }
        Ok(())
    }
}
