//! The tracker through a real loopback listener: what it accepts, what it refuses and
//! why, TTL expiry on its injected clock, withdrawals, every bound (body, entries, rate),
//! the node's own tracker client against it, and `lobstah tracker start` as a process.

use crate::support;

use lobstah::core::node::tracker::{TrackerError, announce, fetch_peers, unannounce};
use lobstah::core::protocol::{Identity, SignedAnnouncement};
use lobstah::core::tracker::{TrackerConfig, Unannounce};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::tracker::{
    T0, TestTracker, TrackerProcess, announcement, announcement_for, announcement_with_extra,
    assert_refused, unlimited,
};

fn id(n: u8) -> Identity {
    Identity::from_seed([n; 32])
}

#[tokio::test]
async fn accepts_lists_and_keeps_announcements_as_received() {
    let t = TestTracker::start(unlimited()).await;
    let (a, b) = (id(1), id(2));
    let first = announcement(&a, T0, 300).to_value();
    let (status, body) = t.post("/announce", &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"ok": true, "pubkey": a.public().to_string(), "ttlSeconds": 300, "registeredCount": 1})
    );
    // A newer peer's unknown field is kept and its signature still verifies.
    let extra = announcement_with_extra(&b, T0 + 1);
    let (status, body) = t.post("/announce", &extra).await;
    assert_eq!(
        (status, &body["registeredCount"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );
    let peers = t.peers().await;
    // Compared as text: key order and number spelling are part of "as received".
    let texts: Vec<String> = peers.iter().map(Value::to_string).collect();
    assert_eq!(
        texts,
        vec![extra.to_string(), first.to_string()],
        "newest first, byte for byte"
    );
    let listed = SignedAnnouncement::from_value(peers[0].clone()).unwrap();
    listed
        .verify_signature()
        .expect("the unknown field is signed over");
    assert_eq!(t.get("/health").await.1, json!({"ok": true, "count": 2}));
    // Announcing the same again is idempotent; a newer one replaces.
    let again = t.post("/announce", &extra).await;
    assert_eq!(
        (again.0, &again.1["registeredCount"]),
        (StatusCode::OK, &json!(2))
    );
    let newer = announcement_for(&a, "http://10.0.0.9:17474", T0 + 2, 300);
    assert_eq!(
        t.post("/announce", &newer.to_value()).await.0,
        StatusCode::OK
    );
    let peers = t.peers().await;
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0]["announcement"]["url"], "http://10.0.0.9:17474");
    t.stop().await;
}

#[tokio::test]
async fn refuses_bad_signature_stale_future_replayed_and_malformed() {
    let t = TestTracker::start(unlimited()).await;
    let a = id(1);
    let held = announcement(&a, T0, 300);
    assert_eq!(
        t.post("/announce", &held.to_value()).await.0,
        StatusCode::OK
    );
    let mut forged = announcement(&id(2), T0, 300).to_value();
    forged["announcement"]["url"] = json!("http://evil.example");
    let mut other_content = announcement(&a, T0, 300).to_value();
    other_content["announcement"]["label"] = json!("changed");
    let same_time_other_content = announcement_for(&a, "http://elsewhere:1", T0, 300).to_value();
    let bad = StatusCode::BAD_REQUEST;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("tampered", forged, "bad-signature"),
        ("changed after signing", other_content, "bad-signature"),
        (
            "stale",
            announcement(&id(3), T0 - 301_000, 300).to_value(),
            "stale",
        ),
        (
            "future",
            announcement(&id(3), T0 + 301_000, 300).to_value(),
            "future",
        ),
        (
            "older than held",
            announcement(&a, T0 - 1000, 300).to_value(),
            "replayed",
        ),
        (
            "same time, other content",
            same_time_other_content,
            "replayed",
        ),
        ("wrong shape", json!({"hello": "world"}), "malformed"),
        ("not an object", json!([1, 2]), "malformed"),
        (
            "bad pubkey",
            json!({"announcement": {"pubkey": "lob1zz"}, "signature": "00"}),
            "malformed",
        ),
    ];
    for (what, body, reason) in cases {
        let (status, answer) = t.post("/announce", &body).await;
        assert_eq!(answer["error"]["reason"], reason, "{what}: {answer}");
        assert_refused(status, &answer, bad, "rejected", reason);
    }
    let (status, _, answer) = t.post_bytes("/announce", b"{not json".to_vec()).await;
    assert_refused(status, &answer, bad, "rejected", "malformed");
    let (status, _, answer) = t.post_bytes("/announce", Vec::new()).await;
    assert_refused(status, &answer, bad, "rejected", "malformed");
    // Nothing refused got in, and what was held is unchanged.
    assert_eq!(t.peers().await, vec![held.to_value()]);
    t.stop().await;
}

#[tokio::test]
async fn expired_announcements_leave_the_list() {
    let t = TestTracker::start(unlimited()).await;
    let short = announcement(&id(1), T0, 60);
    let long = announcement(&id(2), T0, 300);
    for a in [&short, &long] {
        assert_eq!(t.post("/announce", &a.to_value()).await.0, StatusCode::OK);
    }
    t.clock.advance(60_000);
    assert_eq!(t.peers().await.len(), 2, "still live at exactly its TTL");
    t.clock.advance(1);
    assert_eq!(t.peers().await, vec![long.to_value()]);
    assert_eq!(t.get("/health").await.1["count"], 1);
    t.clock.advance(240_000);
    assert!(t.peers().await.is_empty());
    t.stop().await;
}

#[tokio::test]
async fn ttl_above_the_cap_is_clamped_and_said_so() {
    let t = TestTracker::start(TrackerConfig {
        max_ttl_seconds: 120,
        ..unlimited()
    })
    .await;
    let (status, body) = t
        .post("/announce", &announcement(&id(1), T0, 3600).to_value())
        .await;
    assert_eq!(
        (status, &body["ttlSeconds"]),
        (StatusCode::OK, &json!(120)),
        "{body}"
    );
    t.clock.advance(120_001);
    assert!(
        t.peers().await.is_empty(),
        "held for the cap, not its own hour"
    );
    t.stop().await;
}

#[tokio::test]
async fn unannounce_needs_a_valid_signature() {
    let t = TestTracker::start(unlimited()).await;
    let a = id(1);
    let held = announcement(&a, T0, 300);
    assert_eq!(
        t.post("/announce", &held.to_value()).await.0,
        StatusCode::OK
    );
    t.clock.advance(1000);
    let now = t.now();
    let mut forged = Unannounce::sign(&a, now).to_value();
    forged["signature"] = json!("ab".repeat(64));
    let by_stranger = Unannounce {
        pubkey: a.public(),
        ..Unannounce::sign(&id(2), now)
    };
    for body in [forged, by_stranger.to_value()] {
        let (status, answer) = t.post("/unannounce", &body).await;
        assert_refused(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "rejected",
            "bad-signature",
        );
    }
    let (status, answer) = t
        .post("/unannounce", &json!({"pubkey": a.public().to_string()}))
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "rejected",
        "malformed",
    );
    let stale = Unannounce::sign(&a, now - 301_000).to_value();
    let (status, answer) = t.post("/unannounce", &stale).await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "rejected",
        "stale",
    );
    assert_eq!(t.peers().await, vec![held.to_value()], "still listed");
    // A withdrawal dated before the held announcement is a replay: nothing removed.
    let older = Unannounce::sign(&a, T0 - 1).to_value();
    assert_eq!(
        t.post("/unannounce", &older).await.1,
        json!({"ok": true, "removed": false})
    );
    assert_eq!(t.peers().await.len(), 1);
    let valid = Unannounce::sign(&a, now).to_value();
    assert_eq!(
        t.post("/unannounce", &valid).await,
        (StatusCode::OK, json!({"ok": true, "removed": true}))
    );
    assert!(t.peers().await.is_empty());
    assert_eq!(t.post("/unannounce", &valid).await.1["removed"], false);
    // The withdrawn announcement cannot be replayed back in; a newer one can.
    let (status, answer) = t.post("/announce", &held.to_value()).await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "rejected",
        "replayed",
    );
    let back = announcement(&a, now + 1, 300).to_value();
    assert_eq!(t.post("/announce", &back).await.0, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let t = TestTracker::start(TrackerConfig {
        max_body_bytes: 1024,
        ..unlimited()
    })
    .await;
    let mut padded = announcement(&id(1), T0, 300).to_value();
    padded["padding"] = json!("x".repeat(600));
    let fits = padded.to_string().into_bytes();
    assert!(fits.len() <= 1024);
    let (status, _, answer) = t.post_bytes("/announce", fits).await;
    assert_ne!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "under the limit: {answer}"
    );
    padded["padding"] = json!("x".repeat(2000));
    let (status, _, answer) = t
        .post_bytes("/announce", padded.to_string().into_bytes())
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "rejected",
        "too-large",
    );
    let (status, _, answer) = t.post_bytes("/unannounce", vec![b' '; 4096]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    t.stop().await;
}

#[tokio::test]
async fn a_full_registry_refuses_new_keys_but_not_updates() {
    let t = TestTracker::start(TrackerConfig {
        max_peers: 2,
        ..unlimited()
    })
    .await;
    for n in [1, 2] {
        assert_eq!(
            t.post("/announce", &announcement(&id(n), T0, 60).to_value())
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, answer) = t
        .post("/announce", &announcement(&id(3), T0, 60).to_value())
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "registry-full",
    );
    let update = announcement(&id(1), T0 + 1, 300).to_value();
    let (status, answer) = t.post("/announce", &update).await;
    assert_eq!(
        (status, &answer["registeredCount"]),
        (StatusCode::OK, &json!(2)),
        "{answer}"
    );
    // Once one has expired there is room again.
    t.clock.advance(60_002);
    let late = announcement(&id(3), t.now(), 60).to_value();
    assert_eq!(t.post("/announce", &late).await.0, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let t = TestTracker::start(TrackerConfig {
        rate_per_minute: 6,
        rate_burst: 2,
        ..TrackerConfig::default()
    })
    .await;
    assert_eq!(t.get("/peers").await.0, StatusCode::OK);
    assert_eq!(
        t.post("/announce", &announcement(&id(1), T0, 300).to_value())
            .await
            .0,
        StatusCode::OK
    );
    let (status, retry_after, answer) = t
        .post_bytes(
            "/announce",
            announcement(&id(2), T0, 300)
                .to_value()
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "rate-limited",
    );
    assert_eq!(
        retry_after.as_deref(),
        Some("10"),
        "6/min: one token every 10 s"
    );
    t.clock.advance(9_999);
    assert_eq!(t.get("/health").await.0, StatusCode::TOO_MANY_REQUESTS);
    t.clock.advance(1);
    assert_eq!(
        t.peers().await.len(),
        1,
        "the limited announce was not taken"
    );
    assert_eq!(t.get("/health").await.0, StatusCode::TOO_MANY_REQUESTS);
    t.stop().await;
}

#[tokio::test]
async fn the_nodes_tracker_client_round_trips() {
    let t = TestTracker::start(unlimited()).await;
    let http = support::client();
    let (a, b) = (id(1), id(2));
    let signed = announcement(&a, T0, 300);
    assert_eq!(announce(&http, &t.url, &signed).await, Ok(Some(1)));
    assert_eq!(
        announce(&http, &t.url, &announcement(&b, T0, 300)).await,
        Ok(Some(2))
    );
    let listed = fetch_peers(&http, &t.url, t.now())
        .await
        .expect("fetch peers");
    assert!(listed.refused.is_empty(), "{:?}", listed.refused);
    assert_eq!(listed.fresh.len(), 2);
    assert!(listed.fresh.contains(&signed));
    // A refusal reaches the client as the reason word.
    let stale = announcement(&a, T0 - 400_000, 300);
    match announce(&http, &t.url, &stale).await {
        Err(TrackerError::Refused { reason, .. }) => assert_eq!(reason, "stale"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    t.clock.advance(1000);
    unannounce(&http, &t.url, &a, t.now())
        .await
        .expect("unannounce");
    let listed = fetch_peers(&http, &t.url, t.now())
        .await
        .expect("fetch peers");
    let keys: Vec<_> = listed
        .fresh
        .iter()
        .map(|s| s.announcement().pubkey)
        .collect();
    assert_eq!(keys, vec![b.public()]);
    t.stop().await;
}

#[test]
fn cli_tracker_start_serves_and_exits_0_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let tracker = TrackerProcess::spawn(home.path(), &["--port", "0"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let peers: Value = runtime.block_on(async {
        support::client()
            .get(format!("{}/peers", tracker.url))
            .send()
            .await
            .expect("GET /peers")
            .json()
            .await
            .expect("JSON")
    });
    assert_eq!(peers, json!({"version": 1, "count": 0, "peers": []}));
    tracker.terminate();
    assert_eq!(tracker.wait(), Some(0));
}
