//! Link request tags: how a router recognises its own requests after a link carried them.
//!
//! Over a peer link the handshake proves who the requester is, so a request there is not
//! signed (the Ed25519 signature and its check are most of a request's crypto). What the
//! signature also gave is a record the worker keeps with a receipt nobody confirmed,
//! which the router checks before it takes that receipt late (see `router::reconcile`).
//! A tag keeps that: a keyed BLAKE3 hash, by a key only the router derives from its
//! seed, over the same text a signature covers. The worker stores the tag without being
//! able to check it, and only the router that made it can; a worker cannot make one for
//! a request it invents.
//!
//! ```text
//! X-Lobstah-Request-Tag: <unix ms> <32 hex nonce> <64 hex tag>
//! ```

use super::identity::{Identity, PublicKey};
use super::request_auth::body_digest;
use super::{ProtocolError, RequestProof, RequestTarget, new_nonce};

/// The key derivation context: a tag key is good for nothing else.
const TAG_KEY_CONTEXT: &str = "lobstah 2026-12 link request tag v1";

/// The tag a router puts on one request it sends over a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRequestTag {
    pub timestamp_ms: u64,
    pub nonce: String,
    /// Keyed BLAKE3 of the request's signed text, lowercase hex.
    pub tag: String,
}

impl LinkRequestTag {
    pub fn header_value(&self) -> String {
        format!("{} {} {}", self.timestamp_ms, self.nonce, self.tag)
    }

    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let bad = || {
            ProtocolError::malformed(
                "link request tag",
                "expected \"<unix ms> <32 hex nonce> <64 hex tag>\"",
            )
        };
        let mut parts = text.trim().split(' ');
        let (Some(ts), Some(nonce), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let timestamp_ms = ts.parse().map_err(|_| bad())?;
        if !lower_hex(nonce, 32) || !lower_hex(tag, 64) {
            return Err(bad());
        }
        Ok(LinkRequestTag {
            timestamp_ms,
            nonce: nonce.to_string(),
            tag: tag.to_string(),
        })
    }
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn tag_of(identity: &Identity, text: &str) -> blake3::Hash {
    let key = blake3::derive_key(TAG_KEY_CONTEXT, &identity.seed());
    blake3::keyed_hash(&key, text.as_bytes())
}

impl RequestProof {
    /// Tags a request to `target.worker` at `now_ms` with a fresh nonce: the tag to send
    /// and the proof the router keeps, hashing the body once.
    pub fn tag(
        identity: &Identity,
        target: RequestTarget<'_>,
        now_ms: u64,
    ) -> (LinkRequestTag, RequestProof) {
        let nonce = new_nonce();
        let mut proof = RequestProof {
            method: target.method.to_ascii_uppercase(),
            path: target.path.to_string(),
            body_sha256: body_digest(target.body),
            worker: *target.worker,
            requester: identity.public(),
            timestamp: now_ms,
            nonce,
            signature: String::new(),
            link_tag: None,
        };
        let tag = tag_of(identity, &proof.signed_text()).to_hex().to_string();
        proof.link_tag = Some(tag.clone());
        let sent = LinkRequestTag {
            timestamp_ms: now_ms,
            nonce: proof.nonce.clone(),
            tag,
        };
        (sent, proof)
    }

    /// What a worker keeps of a tagged request `requester` sent it over a link.
    pub fn of_tag(
        tag: &LinkRequestTag,
        requester: PublicKey,
        target: RequestTarget<'_>,
    ) -> RequestProof {
        RequestProof {
            method: target.method.to_ascii_uppercase(),
            path: target.path.to_string(),
            body_sha256: body_digest(target.body),
            worker: *target.worker,
            requester,
            timestamp: tag.timestamp_ms,
            nonce: tag.nonce.clone(),
            signature: String::new(),
            link_tag: Some(tag.tag.clone()),
        }
    }

    /// Checks that `me` asked for what this proof names: by its signature, or, for a
    /// request a link carried, by the tag only `me` can make.
    pub fn verify_for(&self, me: &Identity) -> Result<(), ProtocolError> {
        if self.requester != me.public() {
            return Err(ProtocolError::BadSignature(self.requester.to_string()));
        }
        let Some(tag) = &self.link_tag else {
            return self.verify();
        };
        self.check_shape()?;
        let claimed = blake3::Hash::from_hex(tag)
            .map_err(|_| ProtocolError::malformed("request proof", "linkTag is 64 hex"))?;
        // blake3::Hash compares in constant time.
        if claimed == tag_of(me, &self.signed_text()) {
            Ok(())
        } else {
            Err(ProtocolError::BadSignature(self.requester.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn tagged() -> (RequestProof, LinkRequestTag, Identity, PublicKey) {
        let router = Identity::from_seed([1; 32]);
        let worker = Identity::from_seed([2; 32]).public();
        let target = super::super::request_proof::sample_chat(&worker);
        let (sent, proof) = RequestProof::tag(&router, target, NOW);
        let received = LinkRequestTag::parse(&sent.header_value()).unwrap();
        assert_eq!(received, sent);
        assert_eq!(
            RequestProof::of_tag(&received, router.public(), target),
            proof
        );
        (proof, sent, router, worker)
    }

    #[test]
    fn only_the_router_that_tagged_a_request_recognises_it() {
        let (proof, _, router, _) = tagged();
        proof.verify_for(&router).unwrap();
        let text = serde_json::to_string(&proof).unwrap();
        assert!(
            text.contains("\"linkTag\"") && !text.contains("signature"),
            "{text}"
        );
        let back: RequestProof = serde_json::from_str(&text).unwrap();
        back.verify_for(&router).unwrap();
        // Nobody else can check it, or make one that passes as the router's.
        assert!(proof.verify().is_err(), "a tag is not a signature");
        let worker = Identity::from_seed([2; 32]);
        assert!(proof.verify_for(&worker).is_err());
        // The worker's key over the very text the router tagged.
        let mut forged = proof.clone();
        forged.link_tag = Some(tag_of(&worker, &forged.signed_text()).to_hex().to_string());
        assert!(forged.verify_for(&router).is_err());
    }

    /// Each field, changed alone, breaks the tag.
    #[test]
    fn every_field_is_bound() {
        let (proof, _, router, _) = tagged();
        let other = Identity::from_seed([3; 32]).public();
        let changes: [fn(&mut RequestProof, PublicKey); 8] = [
            |p, _| p.method = "GET".into(),
            |p, _| p.path = "/v1/jobs".into(),
            |p, _| p.body_sha256 = "0".repeat(64),
            |p, k| p.worker = k,
            |p, _| p.timestamp += 1,
            |p, _| p.nonce = "1".repeat(32),
            |p, _| p.link_tag = Some("0".repeat(64)),
            |p, _| p.link_tag = Some("not hex".into()),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut bad = proof.clone();
            change(&mut bad, other);
            assert!(
                bad.verify_for(&router).is_err(),
                "change {i} still verifies"
            );
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let (_, sent, _, _) = tagged();
        let good = sent.header_value();
        let cases = [
            String::new(),
            "1 2".to_string(),
            format!("{good} extra"),
            good.replacen(&sent.nonce, "XYZ", 1),
            good.replacen(&sent.tag, &sent.tag.to_uppercase(), 1),
            good.replacen(&sent.timestamp_ms.to_string(), "soon", 1),
        ];
        for case in cases {
            assert!(LinkRequestTag::parse(&case).is_err(), "{case:?} parsed");
        }
    }
}
