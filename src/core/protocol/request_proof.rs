//! Proof that a requester asked: the parts of a signed request a worker keeps beside the
//! receipt it signed for it, so the requester can later recognise its own signature.
//!
//! A router that crashed, or cut an answer short, never ledgered the receipt its worker
//! committed. When the worker offers that receipt back, the router takes it only with
//! this proof: its own signature over the method, path, body digest, worker, time and
//! nonce of a request it really sent. The body itself is not kept (a digest is what was
//! signed), so a proof costs a few hundred bytes, and only while the receipt is pending.
//!
//! ```text
//! {"method":"POST","path":"/v1/chat/completions","bodySha256":"<64 hex>",
//!  "worker":"lob1…","requester":"lob1…","timestamp":<unix ms>,"nonce":"<32 hex>",
//!  "signature":"<128 hex, by the requester>"}
//! ```

use serde::{Deserialize, Serialize};

use super::identity::{Identity, PublicKey, Signature};
use super::request_auth::{body_digest, signed_text_of_digest};
use super::{ProtocolError, RequestAuth, RequestTarget, new_nonce};

/// A signed request, minus its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestProof {
    pub method: String,
    pub path: String,
    pub body_sha256: String,
    pub worker: PublicKey,
    pub requester: PublicKey,
    pub timestamp: u64,
    pub nonce: String,
    /// The requester's signature over the request, hex; empty for a request a peer
    /// link carried, which has a [`RequestProof::link_tag`] instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
    /// The requester's own tag on a request a link carried (see `link_tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_tag: Option<String>,
}

impl RequestProof {
    /// The proof of the request `auth` claims to sign; [`RequestProof::verify`] then
    /// checks that signature while hashing the body only once.
    pub fn of(auth: &RequestAuth, target: RequestTarget<'_>) -> Self {
        RequestProof {
            method: target.method.to_ascii_uppercase(),
            path: target.path.to_string(),
            body_sha256: body_digest(target.body),
            worker: *target.worker,
            requester: auth.requester,
            timestamp: auth.timestamp_ms,
            nonce: auth.nonce.clone(),
            signature: auth.signature.to_hex(),
            link_tag: None,
        }
    }

    /// Signs a request to `target.worker` at `now_ms` with a fresh nonce, returning its
    /// headers and its proof, hashing the body once (both are made per request).
    pub fn sign(
        identity: &Identity,
        target: RequestTarget<'_>,
        now_ms: u64,
    ) -> (RequestAuth, RequestProof) {
        let digest = body_digest(target.body);
        let requester = identity.public();
        let nonce = new_nonce();
        let text = signed_text_of_digest(
            target.method,
            target.path,
            &digest,
            target.worker,
            &requester,
            now_ms,
            &nonce,
        );
        let auth = RequestAuth {
            signature: identity.sign(text.as_bytes()),
            requester,
            timestamp_ms: now_ms,
            nonce,
        };
        let proof = RequestProof {
            method: target.method.to_ascii_uppercase(),
            path: target.path.to_string(),
            body_sha256: digest,
            worker: *target.worker,
            requester,
            timestamp: now_ms,
            nonce: auth.nonce.clone(),
            signature: auth.signature.to_hex(),
            link_tag: None,
        };
        (auth, proof)
    }

    /// Checks the requester's signature over what the proof names.
    pub fn verify(&self) -> Result<(), ProtocolError> {
        self.check_shape()?;
        let signature = Signature::parse_hex(&self.signature)?;
        self.requester
            .verify(self.signed_text().as_bytes(), &signature)
    }

    /// The text a signature or a link tag covers, rebuilt from what the proof names.
    pub(super) fn signed_text(&self) -> String {
        signed_text_of_digest(
            &self.method,
            &self.path,
            &self.body_sha256,
            &self.worker,
            &self.requester,
            self.timestamp,
            &self.nonce,
        )
    }

    pub(super) fn check_shape(&self) -> Result<(), ProtocolError> {
        let shaped = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !shaped(&self.body_sha256, 64) || !shaped(&self.nonce, 32) {
            return Err(ProtocolError::malformed(
                "request proof",
                "bodySha256 must be 64 and nonce 32 lowercase hex characters",
            ));
        }
        if self.path.contains('\n') || self.method.contains('\n') {
            return Err(ProtocolError::malformed(
                "request proof",
                "method and path are single lines",
            ));
        }
        Ok(())
    }
}

/// A small chat request to `worker`, which the proof tests sign and tag.
#[cfg(test)]
pub(super) fn sample_chat(worker: &PublicKey) -> RequestTarget<'_> {
    RequestTarget {
        method: "POST",
        path: "/v1/chat/completions",
        body: b"{\"model\":\"m\"}",
        worker,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn signed() -> (RequestProof, Identity) {
        let router = Identity::from_seed([1; 32]);
        let worker = Identity::from_seed([2; 32]).public();
        let target = sample_chat(&worker);
        let (auth, proof) = RequestProof::sign(&router, target, NOW);
        auth.verify(target).unwrap();
        assert_eq!(RequestProof::of(&auth, target), proof);
        (proof, router)
    }

    #[test]
    fn a_proof_verifies_without_the_body_and_survives_json() {
        let (proof, _) = signed();
        proof.verify().unwrap();
        let text = serde_json::to_string(&proof).unwrap();
        assert!(text.contains("\"bodySha256\""), "{text}");
        let back: RequestProof = serde_json::from_str(&text).unwrap();
        assert_eq!(back, proof);
        back.verify().unwrap();
    }

    /// Each field, changed alone, breaks the proof.
    #[test]
    fn every_field_is_bound() {
        let (proof, _) = signed();
        let other = Identity::from_seed([3; 32]).public();
        let changes: [fn(&mut RequestProof, PublicKey); 9] = [
            |p, _| p.method = "GET".into(),
            |p, _| p.path = "/v1/jobs".into(),
            |p, _| p.body_sha256 = "0".repeat(64),
            |p, k| p.worker = k,
            |p, k| p.requester = k,
            |p, _| p.timestamp += 1,
            |p, _| p.nonce = "1".repeat(32),
            |p, _| p.signature = "00".repeat(64),
            |p, _| p.nonce = "XYZ".into(),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut bad = proof.clone();
            change(&mut bad, other);
            assert!(bad.verify().is_err(), "change {i} still verifies");
        }
    }
}
