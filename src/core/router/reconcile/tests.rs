use super::*;
use crate::core::protocol::{Identity, Receipt, RequestAuth, RequestTarget};

const NOW: u64 = 1_800_000_000_000;

fn key(seed: u8) -> PublicKey {
    Identity::from_seed([seed; 32]).public()
}

#[test]
fn who_is_asked_when() {
    let (a, b) = (key(1), key(2));
    let r = Reconciler::default();
    // At start, everyone: a crash leaves no trace of what was in flight.
    assert_eq!(r.due(NOW), Ask::Every);
    r.asked(&[], &[], true, NOW);
    assert_eq!(r.due(NOW + 1), Ask::Nobody);
    r.mark(b, NOW + 1);
    r.mark(a, NOW + 1);
    r.mark(a, NOW + 2);
    // A cut attempt is asked about once its work had time to commit there.
    assert_eq!(r.due(NOW + SETTLE_MS), Ask::Nobody);
    assert_eq!(r.due(NOW + 1 + SETTLE_MS), Ask::These(vec![b]));
    let mut both = vec![a, b];
    both.sort_unstable();
    let settled = NOW + 2 + SETTLE_MS;
    assert_eq!(r.due(settled), Ask::These(both));
    // `a` answered, `b` did not: `b` waits before the next try, then twice as long.
    r.asked(&[a], &[b], false, settled);
    let cases = [
        (settled + 1, Ask::Nobody),
        (settled + RETRY_MS - 1, Ask::Nobody),
        (settled + RETRY_MS, Ask::These(vec![b])),
    ];
    for (at, expected) in cases {
        assert_eq!(r.due(at), expected, "at +{}", at - NOW);
    }
    r.asked(&[], &[b], false, NOW + 10_000);
    assert_eq!(r.due(NOW + 10_000 + RETRY_MS), Ask::Nobody);
    assert_eq!(r.due(NOW + 10_000 + 2 * RETRY_MS), Ask::These(vec![b]));
    // A new cut while it is in backoff does not bring the next try forward.
    r.mark(b, NOW + 10_001);
    assert_eq!(r.due(NOW + 10_001 + SETTLE_MS), Ask::Nobody);
    r.asked(&[b], &[], false, NOW + 20_000);
    assert_eq!(r.due(NOW + 20_001), Ask::Nobody);
    // A failure marks again a peer that was asked already: it may owe a new receipt.
    r.mark(b, NOW + 20_002);
    assert_eq!(r.due(NOW + 20_002 + SETTLE_MS), Ask::These(vec![b]));
    // And every so often, everyone.
    assert_eq!(r.due(NOW + RECONCILE_ALL_EVERY_MS), Ask::Every);
}

#[test]
fn at_start_those_that_answered_are_asked_again_once_settled() {
    let (a, b) = (key(1), key(2));
    let r = Reconciler::default();
    assert_eq!(r.due(NOW), Ask::Every);
    r.asked(&[a], &[b], true, NOW);
    assert_eq!(r.due(NOW + SETTLE_MS - 1), Ask::Nobody);
    assert_eq!(r.due(NOW + SETTLE_MS), Ask::These(vec![a]));
    r.asked(&[a], &[], false, NOW + SETTLE_MS);
    assert_eq!(r.due(NOW + RETRY_MS), Ask::These(vec![b]));
    r.asked(&[b], &[], false, NOW + RETRY_MS);
    assert_eq!(r.due(NOW + RETRY_MS + 1), Ask::Nobody);
    // Later full rounds are not repeated.
    r.asked(&[a, b], &[], true, NOW + RECONCILE_ALL_EVERY_MS);
    assert_eq!(r.due(NOW + RECONCILE_ALL_EVERY_MS + SETTLE_MS), Ask::Nobody);
}

#[test]
fn backoff_grows_and_stops_at_the_full_round() {
    let cases = [
        (1, RETRY_MS),
        (2, 2 * RETRY_MS),
        (3, 4 * RETRY_MS),
        (40, RECONCILE_ALL_EVERY_MS),
        (u32::MAX, RECONCILE_ALL_EVERY_MS),
    ];
    for (misses, wait) in cases {
        assert_eq!(backoff(misses), wait, "misses={misses}");
    }
}

struct Claim {
    router: Identity,
    worker: Identity,
    path: &'static str,
    method: &'static str,
    signed_at: u64,
    started_at: u64,
    output_tokens: u64,
    /// Carried by a link: tagged, not signed.
    linked: bool,
}

impl Claim {
    fn honest() -> Self {
        Claim {
            router: Identity::from_seed([1; 32]),
            worker: Identity::from_seed([2; 32]),
            path: "/v1/chat/completions",
            method: "POST",
            signed_at: NOW - 1_000,
            started_at: NOW - 900,
            output_tokens: 40,
            linked: false,
        }
    }

    fn parts(&self) -> (SignedReceipt, RequestProof) {
        let worker = self.worker.public();
        let target = RequestTarget {
            method: self.method,
            path: self.path,
            body: b"{\"model\":\"m\"}",
            worker: &worker,
        };
        let proof = if self.linked {
            RequestProof::tag(&self.router, target, self.signed_at).1
        } else {
            RequestProof::of(
                &RequestAuth::sign(&self.router, target, self.signed_at),
                target,
            )
        };
        let receipt = Receipt {
            version: 1,
            job_id: "j".into(),
            nonce: crate::core::protocol::new_nonce(),
            requester_pubkey: self.router.public(),
            worker_pubkey: worker,
            model: "m".into(),
            input_tokens: 10,
            output_tokens: self.output_tokens,
            started_at: self.started_at,
            completed_at: self.started_at + 100,
        };
        let signed = SignedReceipt::sign(receipt, &self.worker).unwrap();
        (signed, proof)
    }
}

#[test]
fn a_claim_is_taken_only_with_proof_of_a_request_we_signed_for_that_worker() {
    type Change = fn(&mut Claim);
    let cases: [(&str, Change, bool); 8] = [
        ("honest", |_| {}, true),
        (
            "old but within the day",
            |c| {
                c.signed_at = NOW - CLAIM_WINDOW_MS + 10;
                c.started_at = c.signed_at + 5;
            },
            true,
        ),
        (
            "older than a day",
            |c| {
                c.signed_at = NOW - CLAIM_WINDOW_MS - 10;
                c.started_at = c.signed_at + 5;
            },
            false,
        ),
        (
            "work before the request",
            |c| c.started_at = c.signed_at - REQUEST_SKEW_MS - 1,
            false,
        ),
        ("a job, not a chat", |c| c.path = "/v1/jobs", false),
        ("a GET", |c| c.method = "GET", false),
        (
            "signed by someone else",
            |c| c.router = Identity::from_seed([7; 32]),
            false,
        ),
        (
            "too many tokens",
            |c| c.output_tokens = MAX_CLAIMED_TOKENS,
            false,
        ),
    ];
    let me = Identity::from_seed([1; 32]);
    let worker = Identity::from_seed([2; 32]).public();
    for linked in [false, true] {
        for (name, change, taken) in cases {
            let mut claim = Claim::honest();
            claim.linked = linked;
            change(&mut claim);
            let (receipt, proof) = claim.parts();
            let judged = judge_claim(&me, &worker, receipt, proof.clone(), NOW);
            assert_eq!(
                judged.is_ok(),
                taken,
                "{name} (linked {linked}): {judged:?}"
            );
            if let Ok(v) = judged {
                assert_eq!(v.request(), Some(&proof), "{name}");
            }
        }
    }
}

#[test]
fn a_claim_from_the_wrong_peer_or_with_a_borrowed_proof_is_refused() {
    let me = Identity::from_seed([1; 32]);
    let worker = Identity::from_seed([2; 32]).public();
    let (receipt, proof) = Claim::honest().parts();
    assert!(judge_claim(&me, &key(9), receipt.clone(), proof.clone(), NOW).is_err());
    // A proof of a request to another worker, with this worker's receipt.
    let mut elsewhere = Claim::honest();
    elsewhere.worker = Identity::from_seed([3; 32]);
    let (_, foreign_proof) = elsewhere.parts();
    assert!(judge_claim(&me, &worker, receipt.clone(), foreign_proof, NOW).is_err());
    // A proof whose fields were edited after signing.
    let mut edited = proof.clone();
    edited.path = "/x/v1/chat/completions".into();
    assert!(judge_claim(&me, &worker, receipt, edited, NOW).is_err());
    let (receipt, _) = Claim::honest().parts();
    assert!(judge_claim(&me, &worker, receipt.clone(), proof, NOW).is_ok());
    // A tag the worker made itself, in our name, for a request we never sent.
    let mut invented = Claim::honest();
    invented.linked = true;
    invented.router = Identity::from_seed([2; 32]);
    let (_, mut forged) = invented.parts();
    forged.requester = me.public();
    assert!(judge_claim(&me, &worker, receipt, forged, NOW).is_err());
}
