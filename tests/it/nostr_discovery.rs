//! Nostr discovery against real relays started in-process on 127.0.0.1: publish and
//! discover, replaceable updates, withdrawal, forged signatures of both kinds, a relay
//! that is down, and the pure event check as a table.

use crate::support;

use std::time::{Duration, Instant};

use lobstah::core::discovery::nostr::{
    ANNOUNCE_KIND, DiscoverReport, NostrError, NostrPublisher, RECEIPT_KIND, Refusal, RefusalClass,
    announcement_event, check_announcement_event, discover,
};
use lobstah::core::protocol::{
    ANNOUNCE_FUTURE_SKEW_MS, Identity, Receipt, SignedAnnouncement, SignedReceipt, new_nonce,
};
use nostr_sdk::prelude::{Keys, Timestamp};
use serde_json::Value;
use support::nostr::*;

async fn run_discover(relays: &[String]) -> DiscoverReport {
    let report = discover(relays, now_ms(), IDLE, STEP)
        .await
        .expect("discover");
    assert!(report.relays_answered >= 1, "{report:?}");
    report
}

fn tag<'a>(event: &'a nostr_sdk::prelude::Event, name: &str) -> Vec<&'a str> {
    event
        .tags
        .iter()
        .filter_map(|t| match t.as_slice() {
            [n, v, ..] if n == name => Some(v.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn publish_then_discover_finds_the_peer() {
    let (_relay, url) = mock_relay().await;
    let identity = Identity::generate();
    let keys = Keys::generate();
    let signed = announcement(&identity, now_ms());

    let publisher = NostrPublisher::connect(keys.clone(), std::slice::from_ref(&url))
        .await
        .expect("connect");
    let report = publisher.publish(&signed).await.expect("publish");
    assert_eq!(report.accepted, vec![url.clone()], "{report}");
    assert!(report.failures.is_empty(), "{report}");

    // The event at the relay is exactly what DESIGN §2 describes.
    let held = held_events(&url, ANNOUNCE_KIND).await;
    assert_eq!(held.len(), 1);
    let event = &held[0];
    assert_eq!(event.id.to_hex(), report.event_id);
    assert_eq!(event.pubkey, keys.public_key());
    assert_eq!(tag(event, "d"), ["lobstah-peer"]);
    assert_eq!(tag(event, "t"), ["lobstah"]);
    assert_eq!(
        tag(event, "lobstah_pubkey"),
        [identity.public().to_string()]
    );
    let content: Value = serde_json::from_str(&event.content).unwrap();
    assert_eq!(content, signed.to_value());

    let found = run_discover(std::slice::from_ref(&url)).await;
    assert_eq!(found.fresh, vec![signed.clone()], "{found:?}");
    found.fresh[0]
        .verify_signature()
        .expect("lobstah signature");
    check_announcement_event(event, now_ms()).expect("both signatures");
    assert_eq!(
        (found.bad_nostr_signature, found.bad_lobstah_signature),
        (0, 0)
    );
    assert_eq!((found.stale, found.malformed), (0, 0));
    assert_eq!(found.relays_answered, 1);
    assert!(found.relay_errors.is_empty(), "{:?}", found.relay_errors);
    publisher.shutdown().await;
}

#[tokio::test]
async fn a_replaceable_update_leaves_only_the_newest() {
    let (_relay, url) = mock_relay().await;
    let relays = [url.clone()];
    let identity = Identity::generate();
    let keys = Keys::generate();
    let publisher = NostrPublisher::connect(keys.clone(), &relays)
        .await
        .expect("connect");
    // One second apart at most: the publisher must still date the second event later.
    let first_at = now_ms();
    let second_at = first_at + 1;
    publisher
        .publish(&announcement(&identity, first_at))
        .await
        .expect("first publish");
    let newest = announcement(&identity, second_at);
    publisher.publish(&newest).await.expect("second publish");

    let held = held_events(&url, ANNOUNCE_KIND).await;
    assert_eq!(held.len(), 1, "the relay kept {held:?}");
    let kept = SignedAnnouncement::from_json(held[0].content.as_bytes()).unwrap();
    assert_eq!(kept.announcement().announced_at, second_at);

    // Another Nostr key replaying an older announcement of the same worker: the relay
    // holds both (different authors), discovery keeps the newest per lobstah key.
    let replayer = raw_client(&url).await;
    let replayed = announcement_event(
        &announcement(&identity, first_at - 10_000),
        &Keys::generate(),
        Timestamp::now(),
    )
    .unwrap();
    assert!(send_raw(&replayer, &replayed).await.failed.is_empty());
    replayer.shutdown().await;
    assert_eq!(held_events(&url, ANNOUNCE_KIND).await.len(), 2);

    let found = run_discover(&relays).await;
    assert_eq!(found.fresh, vec![newest], "{found:?}");
    publisher.shutdown().await;
}

#[tokio::test]
async fn withdraw_removes_the_peer_and_a_later_publish_returns_it() {
    let (_relay, url) = mock_relay().await;
    let relays = [url.clone()];
    let identity = Identity::generate();
    let publisher = NostrPublisher::connect(Keys::generate(), &relays)
        .await
        .expect("connect");
    assert!(matches!(
        publisher.withdraw().await,
        Err(NostrError::NothingPublished)
    ));
    publisher
        .publish(&announcement(&identity, now_ms()))
        .await
        .expect("publish");
    assert_eq!(run_discover(&relays).await.fresh.len(), 1);

    let report = publisher.withdraw().await.expect("withdraw");
    assert_eq!(report.accepted_count(), 1, "{report}");
    let deletions = held_events(&url, 5).await;
    assert_eq!(deletions.len(), 1);
    assert_eq!(tag(&deletions[0], "k"), ["31474"]);
    assert!(held_events(&url, ANNOUNCE_KIND).await.is_empty());
    let found = run_discover(&relays).await;
    assert!(found.fresh.is_empty(), "{found:?}");
    assert!(matches!(
        publisher.withdraw().await,
        Err(NostrError::NothingPublished)
    ));

    // Advertising again: the new event is dated after the deletion. nostr-database (the
    // relay's store here) compares a deleted coordinate with its wall clock rather than
    // with the new event's created_at, so it refuses new versions until the deletion's
    // second has passed; a relay following NIP-09 to the letter would not.
    let deleted_at = deletions[0].created_at;
    let until = Instant::now() + STEP;
    while Timestamp::now() <= deleted_at {
        assert!(Instant::now() < until, "the clock does not move");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = announcement(&identity, now_ms());
    publisher.publish(&again).await.expect("publish again");
    assert_eq!(run_discover(&relays).await.fresh, vec![again]);
    publisher.shutdown().await;
}

#[tokio::test]
async fn a_forged_lobstah_signature_is_refused_and_counted() {
    let (_relay, url) = mock_relay().await;
    let relays = [url.clone()];
    let honest = Identity::generate();
    let victim = Identity::generate();
    let publisher = NostrPublisher::connect(Keys::generate(), &relays)
        .await
        .expect("connect");
    let genuine = announcement(&honest, now_ms());
    publisher.publish(&genuine).await.expect("publish");

    // The victim's real announcement, its URL pointed elsewhere; the Nostr envelope is
    // signed properly, so only the lobstah signature can tell.
    let signed = announcement(&victim, now_ms());
    let tampered = serde_json::to_string(&signed.to_value())
        .unwrap()
        .replace("http://127.0.0.1:17474", "http://198.51.100.7:17474");
    let event = announce_event_with_content(&Keys::generate(), &signed, &tampered);
    let client = raw_client(&url).await;
    let out = send_raw(&client, &event).await;
    assert!(out.failed.is_empty(), "the relay cannot know: {out:?}");
    client.shutdown().await;

    let found = run_discover(&relays).await;
    assert_eq!(found.fresh, vec![genuine], "{found:?}");
    assert_eq!(found.bad_lobstah_signature, 1, "{found:?}");
    assert_eq!(found.bad_nostr_signature, 0);
    publisher.shutdown().await;
}

#[tokio::test]
async fn a_forged_nostr_signature_is_refused_by_the_relay_and_by_discovery() {
    let (_relay, url) = mock_relay().await;
    let identity = Identity::generate();
    let keys = Keys::generate();
    let signed = announcement(&identity, now_ms());
    let genuine = announcement_event(&signed, &keys, Timestamp::now()).unwrap();
    let other = announcement_event(&announcement(&identity, 1), &keys, Timestamp::now()).unwrap();

    // The relay itself refuses both kinds of forgery at publication.
    let client = raw_client(&url).await;
    for (forged, expected) in [
        (
            with_forged_signature(&genuine, &other),
            "invalid event signature",
        ),
        (
            with_forged_content(&genuine, &other.content),
            "invalid event ID",
        ),
    ] {
        let out = send_raw(&client, &forged).await;
        assert!(out.success.is_empty(), "{out:?}");
        let reason = out.failed.values().next().expect("a refusal");
        assert!(reason.contains(expected), "{reason}");
    }
    client.shutdown().await;
    assert!(held_events(&url, ANNOUNCE_KIND).await.is_empty());

    // A dishonest relay serves them anyway: discovery still finds nothing.
    let (_bad_relay, bad_url, db) = relay_with_database().await;
    db.save_event(&with_forged_signature(&genuine, &other))
        .await
        .unwrap();
    let stored = db.query(nostr_sdk::prelude::Filter::new()).await.unwrap();
    assert_eq!(stored.len(), 1, "the relay holds the forged event");
    // LocalRelay answers REQs from its database without re-verifying; nostr-sdk drops
    // the forged event on arrival (logging it), so a plain reader sees nothing.
    assert_eq!(held_events(&bad_url, ANNOUNCE_KIND).await.len(), 0);
    let found = run_discover(&[bad_url]).await;
    assert!(found.fresh.is_empty(), "{found:?}");
    // nostr-sdk drops forged envelopes before discovery sees them; if one gets past it,
    // discovery's own check counts it.
    assert!(found.bad_nostr_signature <= 1, "{found:?}");
}

/// nostr-sdk verifies an event id once per client and trusts later copies carrying the
/// same id, whatever their contents. A relay that is slow to answer can so slip forged
/// contents past it under a genuine id another relay delivered first; discovery's own
/// check catches it.
#[tokio::test]
async fn a_forged_copy_of_a_genuine_event_id_is_caught_by_discovery() {
    let identity = Identity::generate();
    let keys = Keys::generate();
    let signed = announcement(&identity, now_ms());
    let genuine = announcement_event(&signed, &keys, Timestamp::now()).unwrap();
    let older = announcement(&identity, now_ms() - 5_000);
    let other = announcement_event(&older, &keys, Timestamp::now()).unwrap();
    let (_honest, honest_url, honest_db) = relay_with_database().await;
    let (_dishonest, dishonest_url, dishonest_db) = relay_with_database().await;
    honest_db.save_event(&genuine).await.unwrap();
    dishonest_db
        .save_event(&with_forged_content(&genuine, &other.content))
        .await
        .unwrap();
    // Longer than the idle timeout too: a relay still opening is not silence.
    let slow = slow_proxy(&dishonest_url, IDLE + Duration::from_millis(200)).await;

    let found = discover(&[honest_url, slow], now_ms(), IDLE, STEP)
        .await
        .expect("discover");
    assert_eq!(found.relays_answered, 2, "{found:?}");
    assert_eq!(found.fresh, vec![signed], "{found:?}");
    assert_eq!(found.bad_nostr_signature, 1, "{found:?}");
}

#[tokio::test]
async fn a_relay_that_is_down_does_not_stop_publishing_or_discovery() {
    let (_relay, url) = mock_relay().await;
    let down = down_relay_url();
    let relays = [down.clone(), url.clone()];
    let identity = Identity::generate();
    let started = Instant::now();

    let publisher = NostrPublisher::connect(Keys::generate(), &relays)
        .await
        .expect("connect with one relay up");
    let signed = announcement(&identity, now_ms());
    let report = publisher.publish(&signed).await.expect("publish");
    assert_eq!(report.accepted, vec![url.clone()], "{report}");
    assert_eq!(report.failures.len(), 1, "{report}");
    assert!(report.failures[0].relay.starts_with(&down), "{report}");
    assert!(
        report.failures[0].reason.contains("not connected"),
        "{report}"
    );

    let found = discover(&relays, now_ms(), IDLE, STEP)
        .await
        .expect("discover");
    assert_eq!(found.fresh, vec![signed], "{found:?}");
    assert_eq!(found.relays_answered, 1);
    assert_eq!(found.relay_errors.len(), 1, "{:?}", found.relay_errors);
    assert!(
        found.relay_errors[0].starts_with(&down) && found.relay_errors[0].contains("connect"),
        "{:?}",
        found.relay_errors
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a down relay cost {:?}",
        started.elapsed()
    );
    publisher.shutdown().await;

    // Nothing reachable at all is an error naming the relay, for both directions.
    let only_down = [down.clone()];
    match NostrPublisher::connect(Keys::generate(), &only_down).await {
        Err(NostrError::NoRelayReachable(reasons)) => {
            assert!(reasons[0].starts_with(&down), "{reasons:?}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected to a relay that is down"),
    }
    match discover(&only_down, now_ms(), IDLE, STEP).await {
        Err(NostrError::NoRelayReachable(reasons)) => {
            assert!(reasons[0].starts_with(&down), "{reasons:?}")
        }
        other => panic!("expected NoRelayReachable, got {other:?}"),
    }
    assert!(matches!(
        discover(&["not a url".into()], now_ms(), IDLE, STEP).await,
        Err(NostrError::BadRelayUrl { .. })
    ));
    assert!(matches!(
        discover(&[], now_ms(), IDLE, STEP).await,
        Err(NostrError::NoRelays)
    ));
}

#[tokio::test]
async fn a_receipt_can_be_published_as_a_public_event() {
    let (_relay, url) = mock_relay().await;
    let worker = Identity::generate();
    let requester = Identity::generate();
    let now = now_ms();
    let receipt = Receipt {
        version: 1,
        job_id: "5f0c6ad0-8a52-4a8e-9c55-0b3d8d4f6a11".into(),
        nonce: new_nonce(),
        requester_pubkey: requester.public(),
        worker_pubkey: worker.public(),
        model: "llama3.1:8b".into(),
        input_tokens: 12,
        output_tokens: 34,
        started_at: now - 1_000,
        completed_at: now,
    };
    let signed = SignedReceipt::sign(receipt, &worker).unwrap();
    let publisher = NostrPublisher::connect(Keys::generate(), std::slice::from_ref(&url))
        .await
        .expect("connect");
    publisher.publish_receipt(&signed).await.expect("publish");
    publisher.shutdown().await;

    let held = held_events(&url, RECEIPT_KIND).await;
    assert_eq!(held.len(), 1);
    let event = &held[0];
    assert_eq!(tag(event, "t"), ["lobstah-receipt"]);
    assert_eq!(tag(event, "worker_pubkey"), [worker.public().to_string()]);
    assert_eq!(
        tag(event, "requester_pubkey"),
        [requester.public().to_string()]
    );
    assert_eq!(tag(event, "nonce"), [signed.receipt().nonce.as_str()]);
    let back = SignedReceipt::from_json(event.content.as_bytes()).unwrap();
    back.verify_signature().unwrap();
    assert_eq!(back, signed);
}

#[test]
fn check_announcement_event_table() {
    let identity = Identity::generate();
    let keys = Keys::generate();
    let now = now_ms();
    let signed = announcement(&identity, now);
    let content = serde_json::to_string(&signed.to_value()).unwrap();
    let secs = now / 1000;
    let good = announcement_event(&signed, &keys, Timestamp::from_secs(secs)).unwrap();
    let other =
        announcement_event(&announcement(&identity, now - 1), &keys, Timestamp::now()).unwrap();
    let me = identity.public().to_string();
    let someone_else = Identity::generate().public().to_string();
    let with_tags = |tags| raw_event(&keys, ANNOUNCE_KIND, &content, tags, secs);
    let tampered = content.replace("nostr-test", "nostr-tesT");

    let cases: Vec<(&str, nostr_sdk::prelude::Event, Result<(), RefusalClass>)> = vec![
        ("genuine", good.clone(), Ok(())),
        (
            "forged signature",
            with_forged_signature(&good, &other),
            Err(RefusalClass::BadNostrSignature),
        ),
        (
            "forged id (content swapped)",
            with_forged_content(&good, &other.content),
            Err(RefusalClass::BadNostrSignature),
        ),
        (
            "lobstah_pubkey tag names another key",
            with_tags(announce_tags(&someone_else)),
            Err(RefusalClass::Malformed),
        ),
        (
            "two lobstah_pubkey tags",
            with_tags(
                [
                    announce_tags(&me),
                    announce_tags(&someone_else)[2..].to_vec(),
                ]
                .concat(),
            ),
            Err(RefusalClass::Malformed),
        ),
        (
            "no d tag",
            with_tags(announce_tags(&me)[1..].to_vec()),
            Err(RefusalClass::Malformed),
        ),
        (
            "no t tag",
            with_tags(vec![
                announce_tags(&me)[0].clone(),
                announce_tags(&me)[2].clone(),
            ]),
            Err(RefusalClass::Malformed),
        ),
        (
            "wrong kind",
            raw_event(&keys, 1, &content, announce_tags(&me), secs),
            Err(RefusalClass::Malformed),
        ),
        (
            "content not JSON",
            raw_event(&keys, ANNOUNCE_KIND, "hello", announce_tags(&me), secs),
            Err(RefusalClass::Malformed),
        ),
        (
            "content a receipt-shaped object",
            raw_event(
                &keys,
                ANNOUNCE_KIND,
                r#"{"receipt":{},"signature":"00"}"#,
                announce_tags(&me),
                secs,
            ),
            Err(RefusalClass::Malformed),
        ),
        (
            "lobstah signature over other bytes",
            announce_event_with_content(&keys, &signed, &tampered),
            Err(RefusalClass::BadLobstahSignature),
        ),
        (
            "stale",
            announcement_event(
                &announcement(&identity, now - 301_000),
                &keys,
                Timestamp::from_secs(secs),
            )
            .unwrap(),
            Err(RefusalClass::Stale),
        ),
        (
            "future",
            announcement_event(
                &announcement(&identity, now + ANNOUNCE_FUTURE_SKEW_MS + 60_000),
                &keys,
                Timestamp::from_secs(secs),
            )
            .unwrap(),
            Err(RefusalClass::Stale),
        ),
    ];
    for (name, event, expected) in cases {
        let got = check_announcement_event(&event, now);
        match (&got, expected) {
            (Ok(found), Ok(())) => assert_eq!(found, &signed, "{name}"),
            (Err(refusal), Err(class)) => {
                assert_eq!(refusal.class(), class, "{name}: {refusal}");
                assert!(!refusal.to_string().is_empty());
            }
            _ => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
    }

    // The variants carry what an operator needs to read in a log line.
    let forged = check_announcement_event(&with_forged_signature(&good, &other), now);
    assert_eq!(forged, Err(Refusal::BadNostrSignature));
    let swapped = check_announcement_event(&with_forged_content(&good, &other.content), now);
    assert_eq!(swapped, Err(Refusal::BadNostrId));
    match check_announcement_event(&with_tags(announce_tags(&someone_else)), now) {
        Err(Refusal::PubkeyMismatch { tag, announced }) => {
            assert_eq!((tag, announced), (someone_else, me));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let future = announcement_event(
        &announcement(&identity, now + ANNOUNCE_FUTURE_SKEW_MS + 60_000),
        &keys,
        Timestamp::from_secs(secs),
    )
    .unwrap();
    assert!(matches!(
        check_announcement_event(&future, now),
        Err(Refusal::Future(_))
    ));
}
