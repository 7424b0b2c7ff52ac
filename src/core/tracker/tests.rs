//! Table tests of the registry's rules, with the clock passed in.

use crate::core::protocol::{Announcement, Identity, Signature, SignedAnnouncement, Tier};

use super::*;

const T: u64 = 1_700_000_000_000;
const MIN: u64 = 60_000;

fn limits() -> RegistryLimits {
    RegistryLimits {
        max_peers: 3,
        max_ttl_seconds: 3600,
        max_listed_bytes: 1 << 20,
    }
}

fn id(n: u8) -> Identity {
    Identity::from_seed([n; 32])
}

fn signed_with(who: &Identity, at: u64, ttl: u64, label: &str) -> SignedAnnouncement {
    let a = Announcement {
        version: 1,
        pubkey: who.public(),
        url: "http://127.0.0.1:17474".into(),
        label: Some(label.into()),
        models: vec!["llama3.1:8b".into()],
        tier: Tier::Batch,
        ttl_seconds: ttl,
        announced_at: at,
        link: None,
    };
    SignedAnnouncement::sign(a, who).expect("sign")
}

fn signed(who: &Identity, at: u64) -> SignedAnnouncement {
    signed_with(who, at, 300, "a")
}

fn reason<T: std::fmt::Debug>(r: Result<T, Refusal>) -> &'static str {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e.reason(),
    }
}

#[test]
fn announce_rules_table() {
    // (what, announcement, now, expected: Ok(change) or Err(reason))
    let a = id(1);
    let tampered = {
        let mut v = signed(&a, T).to_value();
        v["announcement"]["url"] = "http://evil.example".into();
        SignedAnnouncement::from_value(v).unwrap()
    };
    type Want = Result<Change, &'static str>;
    let steps: Vec<(&str, SignedAnnouncement, u64, Want)> = vec![
        ("bad signature", tampered, T, Err("bad-signature")),
        ("from the future", signed(&a, T + 6 * MIN), T, Err("future")),
        (
            "stale by its own TTL",
            signed(&a, T - 6 * MIN),
            T,
            Err("stale"),
        ),
        ("first", signed(&a, T), T, Ok(Change::Added)),
        (
            "identical again",
            signed(&a, T),
            T + 1000,
            Ok(Change::Unchanged),
        ),
        (
            "same time, other content",
            signed_with(&a, T, 300, "b"),
            T,
            Err("replayed"),
        ),
        (
            "newer",
            signed(&a, T + 1000),
            T + 1000,
            Ok(Change::Replaced),
        ),
        (
            "older than held",
            signed(&a, T + 500),
            T + 1000,
            Err("replayed"),
        ),
        ("the first again", signed(&a, T), T + 1000, Err("replayed")),
    ];
    let mut r = Registry::new(limits());
    for (what, ann, now, want) in steps {
        let got = r
            .announce(ann, now)
            .map(|a| a.change)
            .map_err(|e| e.reason());
        assert_eq!(got, want, "{what}");
    }
    let live = r.live(T + 1000);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].announcement().announced_at, T + 1000);
}

#[test]
fn ttl_expiry_and_the_cap() {
    let (a, b) = (id(1), id(2));
    let mut r = Registry::new(limits());
    let ok = r.announce(signed_with(&a, T, 300, "a"), T).unwrap();
    assert_eq!((ok.ttl_seconds, ok.registered_count), (300, 1));
    // A day-long TTL is held for the cap only, and the answer says so.
    let long = r.announce(signed_with(&b, T, 86_400, "b"), T).unwrap();
    assert_eq!((long.ttl_seconds, long.registered_count), (3600, 2));
    assert_eq!(r.count(T + 300_000), 2, "live up to and including its TTL");
    assert_eq!(r.count(T + 300_001), 1, "gone one ms after");
    assert_eq!(r.live(T + 300_001)[0].announcement().pubkey, b.public());
    assert_eq!(r.count(T + 3_600_001), 0, "the long TTL is capped");
    // Fresh by its own day-long TTL but older than the cap: never held, so refused.
    let r2 = &mut Registry::new(limits());
    assert_eq!(
        reason(r2.announce(signed_with(&b, T, 86_400, "b"), T + 2 * 3_600_000)),
        "stale"
    );
}

#[test]
fn an_expired_entry_leaves_a_floor() {
    let a = id(1);
    let mut r = Registry::new(limits());
    r.announce(signed_with(&a, T, 60, "short"), T).unwrap();
    assert_eq!(r.count(T + 61_000), 0);
    assert_eq!(r.floor_count(), 1);
    // An older announcement with a longer TTL is still fresh, but older than one seen.
    let older = signed_with(&a, T - 1000, 300, "older");
    assert_eq!(reason(r.announce(older, T + 61_000)), "replayed");
    r.announce(signed(&a, T + 61_000), T + 61_000).unwrap();
    assert_eq!(r.floor_count(), 0, "held again, the floor goes");
}

#[test]
fn full_registry() {
    let mut r = Registry::new(limits());
    for n in 1..=3 {
        r.announce(signed(&id(n), T), T).unwrap();
    }
    assert_eq!(reason(r.announce(signed(&id(4), T), T)), "registry-full");
    // An update for a key already held always fits.
    let update = r.announce(signed(&id(2), T + 1), T + 1).unwrap();
    assert_eq!(
        (update.change, update.registered_count),
        (Change::Replaced, 3)
    );
    // Expired entries make room.
    r.announce(signed(&id(4), T + 300_001), T + 300_001)
        .unwrap();
    assert_eq!(
        r.count(T + 300_001),
        2,
        "1 and 3 expired; the refreshed 2 and the new 4 stay"
    );
}

#[test]
fn byte_budget() {
    let one = signed(&id(1), T).to_value().to_string().len();
    let mut r = Registry::new(RegistryLimits {
        max_peers: 100,
        max_ttl_seconds: 3600,
        max_listed_bytes: 2 * one + 10,
    });
    r.announce(signed(&id(1), T), T).unwrap();
    r.announce(signed(&id(2), T), T).unwrap();
    assert_eq!(reason(r.announce(signed(&id(3), T), T)), "registry-full");
    // Growing an entry past the budget is refused; the same size fits.
    let big = signed_with(&id(1), T + 1, 300, &"x".repeat(100));
    assert_eq!(reason(r.announce(big, T + 1)), "registry-full");
    r.announce(signed_with(&id(1), T + 2, 300, "b"), T + 2)
        .unwrap();
}

#[test]
fn unannounce_rules() {
    let (a, b) = (id(1), id(2));
    let mut r = Registry::new(limits());
    r.announce(signed(&a, T), T).unwrap();
    let forged = Unannounce {
        signature: Signature([7; 64]),
        ..Unannounce::sign(&a, T + 1000)
    };
    let by_other_key = Unannounce {
        pubkey: a.public(),
        ..Unannounce::sign(&b, T + 1000)
    };
    assert_eq!(reason(r.unannounce(&forged, T + 1000)), "bad-signature");
    assert_eq!(
        reason(r.unannounce(&by_other_key, T + 1000)),
        "bad-signature"
    );
    assert_eq!(r.count(T + 1000), 1, "a refused withdrawal removes nothing");
    let ahead = Unannounce::sign(&a, T + 1000 + 5 * MIN + 1);
    assert_eq!(reason(r.unannounce(&ahead, T + 1000)), "future");
    let old = Unannounce::sign(&a, T - 1);
    assert_eq!(reason(r.unannounce(&old, T + 5 * MIN)), "stale");
    // Dated before the held announcement (within the skew): a replayed withdrawal.
    assert_eq!(r.unannounce(&old, T + 1000), Ok(false));
    assert_eq!(r.count(T + 1000), 1);
    // A current one removes it, and then the old announcement cannot come back.
    assert_eq!(
        r.unannounce(&Unannounce::sign(&a, T + 1000), T + 1000),
        Ok(true)
    );
    assert_eq!(r.count(T + 1000), 0);
    assert_eq!(reason(r.announce(signed(&a, T), T + 2000)), "replayed");
    assert_eq!(
        reason(r.announce(signed(&a, T + 1000), T + 2000)),
        "replayed"
    );
    assert_eq!(
        r.unannounce(&Unannounce::sign(&a, T + 1000), T + 2000),
        Ok(false)
    );
    r.announce(signed(&a, T + 1001), T + 2000).unwrap();
    // Withdrawing a key never held leaves no trace.
    assert_eq!(
        r.unannounce(&Unannounce::sign(&b, T + 2000), T + 2000),
        Ok(false)
    );
    assert_eq!(r.floor_count(), 0);
}

#[test]
fn floors_are_forgotten_and_bounded() {
    let mut r = Registry::new(limits());
    for n in 1..=3 {
        r.announce(signed(&id(n), T), T).unwrap();
        r.unannounce(&Unannounce::sign(&id(n), T), T).unwrap();
    }
    assert_eq!(r.floor_count(), 3);
    // A fourth withdrawn key evicts the floor nearest its end, not beyond the bound.
    r.announce(signed(&id(4), T + 1), T + 1).unwrap();
    r.unannounce(&Unannounce::sign(&id(4), T + 1), T + 1)
        .unwrap();
    assert_eq!(r.floor_count(), 3);
    // Past the TTL cap no announcement old enough to be refused is fresh: all forgotten.
    assert_eq!(r.count(T + 1 + 3_600_001), 0);
    assert_eq!(r.floor_count(), 0);
}

#[test]
fn unannounce_parsing() {
    let a = id(1);
    let good = Unannounce::sign(&a, T);
    let text = good.to_value().to_string();
    assert_eq!(Unannounce::from_json(text.as_bytes()), Ok(good));
    let cases: &[&str] = &[
        "",
        "not json",
        "[]",
        r#"{"pubkey":"lob1","timestamp":1,"signature":"00"}"#,
        r#"{"timestamp":1,"signature":"00"}"#,
        &text.replace(&format!("{T}"), "-1"),
        &text.replace(&format!("{T}"), "1.5"),
        &text.replace(&format!("{T}"), &format!("\"{T}\"")),
    ];
    for c in cases {
        assert_eq!(
            reason(Unannounce::from_json(c.as_bytes())),
            "malformed",
            "{c}"
        );
    }
}
