//! Signed requests: how a router proves to a worker who is asking.
//!
//! The `x-lobstah-requester` header alone is a claim anyone can make. A router also sends
//! a timestamp, a fresh nonce and an Ed25519 signature (by the requester's key) over the
//! method, the path, a SHA-256 of the body, the worker it is meant for, the timestamp and
//! the nonce. The worker rebuilds that text from what it received and its own key, so a
//! captured request cannot be sent to another worker, with another body, or after its
//! timestamp has left the window; the worker's nonce cache stops a replay within it.
//!
//! The signed text is lines, not JSON: every field has a fixed alphabet without `\n`
//! (an HTTP path cannot hold one), and the first line names what it is, so it can never
//! be mistaken for a receipt, an announcement or an unannounce.

use sha2::{Digest, Sha256};

use super::identity::{Identity, PublicKey, Signature};
use super::{ProtocolError, check_safe_integer, new_nonce};

use super::wire::{NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// How far a signed request's timestamp may be from the worker's clock. Tighter than the
/// receipts' 5 minutes: the worker remembers every nonce for twice this long.
pub const REQUEST_SKEW_MS: u64 = 60_000;

/// The signature headers of one request, parsed but not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuth {
    pub requester: PublicKey,
    pub timestamp_ms: u64,
    /// 32 lowercase hex characters.
    pub nonce: String,
    pub signature: Signature,
}

/// What a request signature covers besides the requester, time and nonce.
#[derive(Debug, Clone, Copy)]
pub struct RequestTarget<'a> {
    pub method: &'a str,
    /// Path and query, as sent on the request line.
    pub path: &'a str,
    pub body: &'a [u8],
    /// The worker the request is for.
    pub worker: &'a PublicKey,
}

impl RequestAuth {
    /// Signs a request to `target.worker` at `now_ms` with a fresh nonce.
    pub fn sign(identity: &Identity, target: RequestTarget<'_>, now_ms: u64) -> Self {
        let nonce = new_nonce();
        let requester = identity.public();
        let message = signed_text(&target, &requester, now_ms, &nonce);
        RequestAuth {
            signature: identity.sign(message.as_bytes()),
            requester,
            timestamp_ms: now_ms,
            nonce,
        }
    }

    /// Parses the four header values.
    pub fn parse(
        requester: &str,
        timestamp: &str,
        nonce: &str,
        signature: &str,
    ) -> Result<Self, ProtocolError> {
        let requester = PublicKey::parse(requester.trim())?;
        let timestamp = timestamp.trim();
        if timestamp.is_empty()
            || timestamp.len() > 16
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ProtocolError::malformed(
                "request signature",
                format!("{TIMESTAMP_HEADER} must be unix milliseconds"),
            ));
        }
        let timestamp_ms: u64 = timestamp.parse().map_err(|_| {
            ProtocolError::malformed(
                "request signature",
                format!("{TIMESTAMP_HEADER} is out of range"),
            )
        })?;
        check_safe_integer("request signature", TIMESTAMP_HEADER, timestamp_ms)?;
        let nonce = nonce.trim();
        if nonce.len() != 32
            || !nonce
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ProtocolError::malformed(
                "request signature",
                format!("{NONCE_HEADER} must be 32 lowercase hex characters"),
            ));
        }
        Ok(RequestAuth {
            requester,
            timestamp_ms,
            nonce: nonce.to_string(),
            signature: Signature::parse_hex(signature.trim())?,
        })
    }

    /// Checks the signature over `target`.
    pub fn verify(&self, target: RequestTarget<'_>) -> Result<(), ProtocolError> {
        let message = signed_text(&target, &self.requester, self.timestamp_ms, &self.nonce);
        self.requester.verify(message.as_bytes(), &self.signature)
    }

    /// The timestamp must lie within ±[`REQUEST_SKEW_MS`] of `now_ms`.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), ProtocolError> {
        let at = self.timestamp_ms;
        if at > now_ms.saturating_add(REQUEST_SKEW_MS) {
            return Err(ProtocolError::Future {
                what: "signed request",
                ahead_ms: at - now_ms,
                limit_ms: REQUEST_SKEW_MS,
            });
        }
        if now_ms > at.saturating_add(REQUEST_SKEW_MS) {
            return Err(ProtocolError::Stale {
                what: "signed request",
                age_ms: now_ms - at,
                limit_ms: REQUEST_SKEW_MS,
            });
        }
        Ok(())
    }

    /// The header values, in the order `parse` takes them (requester first).
    pub fn header_values(&self) -> [(&'static str, String); 3] {
        [
            (TIMESTAMP_HEADER, self.timestamp_ms.to_string()),
            (NONCE_HEADER, self.nonce.clone()),
            (SIGNATURE_HEADER, self.signature.to_hex()),
        ]
    }
}

fn signed_text(
    target: &RequestTarget<'_>,
    requester: &PublicKey,
    at_ms: u64,
    nonce: &str,
) -> String {
    signed_text_of_digest(
        target.method,
        target.path,
        &body_digest(target.body),
        target.worker,
        requester,
        at_ms,
        nonce,
    )
}

/// The SHA-256 of a request body, lowercase hex, as the signed text holds it.
pub(super) fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The signed text from the body's digest: what a [`super::RequestProof`] verifies
/// without holding the body.
pub(super) fn signed_text_of_digest(
    method: &str,
    path: &str,
    digest: &str,
    worker: &PublicKey,
    requester: &PublicKey,
    at_ms: u64,
    nonce: &str,
) -> String {
    format!(
        "lobstah-request:v1\n{}\n{path}\n{digest}\n{worker}\n{requester}\n{at_ms}\n{nonce}",
        method.to_ascii_uppercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn target<'a>(worker: &'a PublicKey, body: &'a [u8]) -> RequestTarget<'a> {
        RequestTarget {
            method: "POST",
            path: "/v1/chat/completions",
            body,
            worker,
        }
    }

    fn reparse(auth: &RequestAuth) -> RequestAuth {
        let [(_, ts), (_, nonce), (_, sig)] = auth.header_values();
        RequestAuth::parse(&auth.requester.to_string(), &ts, &nonce, &sig).unwrap()
    }

    #[test]
    fn a_signed_request_verifies_through_its_headers() {
        let router = Identity::from_seed([1; 32]);
        let worker = Identity::from_seed([2; 32]).public();
        let auth = RequestAuth::sign(&router, target(&worker, b"{\"model\":\"m\"}"), NOW);
        let back = reparse(&auth);
        assert_eq!(back, auth);
        back.verify(target(&worker, b"{\"model\":\"m\"}")).unwrap();
        back.check_fresh(NOW).unwrap();
    }

    /// Each covered part, changed alone, makes the signature fail.
    #[test]
    fn every_covered_part_is_bound() {
        let router = Identity::from_seed([1; 32]);
        let worker = Identity::from_seed([2; 32]).public();
        let other_worker = Identity::from_seed([3; 32]).public();
        let body = b"{\"model\":\"m\"}".as_slice();
        let auth = RequestAuth::sign(&router, target(&worker, body), NOW);
        let variants = [
            RequestTarget {
                method: "GET",
                ..target(&worker, body)
            },
            RequestTarget {
                path: "/v1/jobs",
                ..target(&worker, body)
            },
            RequestTarget {
                body: b"{\"model\":\"n\"}",
                ..target(&worker, body)
            },
            target(&other_worker, body),
        ];
        for variant in variants {
            assert!(auth.verify(variant).is_err(), "{variant:?}");
        }
        let mut later = auth.clone();
        later.timestamp_ms += 1;
        assert!(later.verify(target(&worker, body)).is_err());
        let mut renonced = auth.clone();
        renonced.nonce = "0".repeat(32);
        assert!(renonced.verify(target(&worker, body)).is_err());
        let mut impersonated = auth.clone();
        impersonated.requester = Identity::from_seed([9; 32]).public();
        assert!(impersonated.verify(target(&worker, body)).is_err());
    }

    #[test]
    fn freshness_window() {
        let router = Identity::from_seed([1; 32]);
        let worker = Identity::from_seed([2; 32]).public();
        let auth = RequestAuth::sign(&router, target(&worker, b""), NOW);
        let cases = [
            (NOW, true),
            (NOW + REQUEST_SKEW_MS, true),
            (NOW + REQUEST_SKEW_MS + 1, false),
            (NOW - REQUEST_SKEW_MS, true),
            (NOW - REQUEST_SKEW_MS - 1, false),
        ];
        for (now, fresh) in cases {
            assert_eq!(auth.check_fresh(now).is_ok(), fresh, "now={now}");
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let key = Identity::from_seed([1; 32]).public().to_string();
        let nonce = "ab".repeat(16);
        let sig = "00".repeat(64);
        let cases = [
            ("lob1zz", "1", nonce.as_str(), sig.as_str()),
            (key.as_str(), "", &nonce, &sig),
            (key.as_str(), "-5", &nonce, &sig),
            (key.as_str(), "1e3", &nonce, &sig),
            (key.as_str(), "99999999999999999", &nonce, &sig),
            (key.as_str(), "1", "AB", &sig),
            (key.as_str(), "1", &"AB".repeat(16), &sig),
            (key.as_str(), "1", &nonce, "00"),
        ];
        for (requester, ts, nonce, sig) in cases {
            assert!(
                RequestAuth::parse(requester, ts, nonce, sig).is_err(),
                "{requester} {ts} {nonce} {sig}"
            );
        }
        assert!(RequestAuth::parse(&key, "1", &nonce, &sig).is_ok());
    }
}
