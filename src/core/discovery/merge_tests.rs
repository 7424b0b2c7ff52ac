//! Merge tests: refusals are counted by kind, the newest announcement per pubkey wins
//! across sources, manual peers stay, and a source that stops listing a peer loses it.

use std::net::IpAddr;

use serde_json::Value;

use super::*;
use crate::core::discovery::StaticLookup;
use crate::core::protocol::{Announcement, Identity, PROTOCOL_VERSION, Tier};
use crate::core::store;

const NOW: u64 = 1_800_000_000_000;

fn identity(seed: u8) -> Identity {
    Identity::from_seed([seed; 32])
}

fn announce(who: &Identity, url: &str, at: u64) -> SignedAnnouncement {
    let announcement = Announcement {
        version: PROTOCOL_VERSION,
        pubkey: who.public(),
        url: url.into(),
        label: Some(format!("peer-{}", who.public().short())),
        models: vec!["llama3.1:8b".into()],
        tier: Tier::Interactive,
        ttl_seconds: 300,
        announced_at: at,
    };
    SignedAnnouncement::sign(announcement, who).expect("sign")
}

fn tracker(n: u8) -> PeerSource {
    PeerSource::Tracker {
        url: format!("http://tracker-{n}.test:17476"),
    }
}

fn lookup() -> StaticLookup {
    let ip = |t: &str| t.parse::<IpAddr>().expect("ip");
    StaticLookup::default()
        .with("a.test", &[ip("203.0.113.1")])
        .with("b.test", &[ip("203.0.113.2")])
        .with("rebind.test", &[ip("127.0.0.1")])
}

async fn run(book: &PeerBook, listings: &[Listing]) -> SyncReport {
    let lookup = lookup();
    let ctx = MergeContext {
        me: identity(99).public(),
        now_ms: NOW,
        policy: UrlPolicy::default(),
        lookup: &lookup,
    };
    let mut report = SyncReport::default();
    merge(book, listings, &ctx, &mut report).await;
    report
}

#[test]
fn raw_items_are_counted_by_what_is_wrong_with_them() {
    let good = announce(&identity(1), "http://a.test:17474", NOW);
    let mut forged = good.to_value();
    forged["announcement"]["url"] = Value::from("http://evil.test:17474");
    let stale = announce(&identity(2), "http://b.test", NOW - 301_000);
    let future = announce(&identity(3), "http://b.test", NOW + 301_000);
    let items = vec![
        good.to_value(),
        forged,
        stale.to_value(),
        future.to_value(),
        Value::from("not an announcement"),
        serde_json::json!({"announcement": {"version": 1}, "signature": "00"}),
    ];
    let mut report = SyncReport::default();
    let fresh = check_items(&items, NOW, &mut report);
    assert_eq!(fresh, vec![good]);
    assert_eq!(
        (report.bad_signature, report.stale, report.malformed),
        (1, 2, 2)
    );
}

#[tokio::test]
async fn newest_wins_unsafe_urls_are_refused_and_manual_peers_stay() {
    let book = PeerBook::new(store::in_memory().expect("db")).expect("book");
    let (a, b, c, m) = (identity(1), identity(2), identity(3), identity(4));
    book.add(
        m.public(),
        "http://192.168.1.9:17474",
        None,
        PeerSource::Manual,
        1,
    )
    .expect("manual");
    let listings = [
        Listing {
            source: tracker(1),
            fresh: vec![
                announce(&a, "http://a.test:1", NOW - 10_000),
                announce(&b, "http://rebind.test:17474", NOW),
                announce(&m, "http://a.test:9", NOW),
                announce(&identity(99), "http://a.test:5", NOW),
            ],
            complete: true,
        },
        Listing {
            source: tracker(2),
            fresh: vec![
                announce(&a, "http://a.test:2", NOW - 5_000),
                announce(&c, "http://169.254.169.254/latest", NOW),
            ],
            complete: true,
        },
    ];
    let report = run(&book, &listings).await;
    assert_eq!(
        (report.added, report.unsafe_url, report.kept_manual),
        (1, 2, 1),
        "{report:?}"
    );
    let booked_a = book.get(&a.public()).expect("get").expect("a booked");
    assert_eq!(booked_a.url, "http://a.test:2", "the newer announcement");
    assert_eq!(booked_a.source, tracker(2));
    assert_eq!(book.get(&b.public()).expect("get"), None);
    assert_eq!(book.get(&c.public()).expect("get"), None);
    assert_eq!(
        book.get(&identity(99).public()).expect("get"),
        None,
        "not ourselves"
    );
    let manual = book.get(&m.public()).expect("get").expect("manual kept");
    assert_eq!(manual.url, "http://192.168.1.9:17474");
    assert!(
        report.summary().contains("2 unsafe URL"),
        "{}",
        report.summary()
    );
}

#[tokio::test]
async fn a_source_that_stops_listing_a_peer_loses_it_and_others_keep_theirs() {
    let book = PeerBook::new(store::in_memory().expect("db")).expect("book");
    let (a, b) = (identity(1), identity(2));
    let first = [Listing {
        source: tracker(1),
        fresh: vec![
            announce(&a, "http://a.test:17474", NOW),
            announce(&b, "http://b.test:17474", NOW),
        ],
        complete: true,
    }];
    let report = run(&book, &first).await;
    assert_eq!((report.added, report.removed), (2, 0));
    assert!(report.changed());

    let again = run(&book, &first).await;
    assert_eq!((again.unchanged, again.removed), (2, 0));
    assert!(!again.changed());

    // b withdrew from tracker 1; tracker 2 answered too but never listed a or b.
    let later = [
        Listing {
            source: tracker(1),
            fresh: vec![announce(&a, "http://a.test:17474", NOW + 1)],
            complete: true,
        },
        Listing {
            source: tracker(2),
            fresh: Vec::new(),
            complete: true,
        },
    ];
    let report = run(&book, &later).await;
    assert_eq!((report.unchanged, report.removed), (1, 1), "{report:?}");
    assert!(book.get(&a.public()).expect("get").is_some());
    assert!(book.get(&b.public()).expect("get").is_none());

    // A sync that reached no source removes nothing.
    let report = run(&book, &[]).await;
    assert_eq!(report.removed, 0);
    assert!(book.get(&a.public()).expect("get").is_some());
}
