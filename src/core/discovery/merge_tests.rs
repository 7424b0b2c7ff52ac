//! Merge tests: refusals are counted by kind, the newest announcement per pubkey wins
//! across sources, manual peers stay, and a source that stops listing a peer loses it.

use std::net::IpAddr;

use serde_json::Value;

use super::*;
use crate::core::discovery::StaticLookup;
use crate::core::protocol::{Announcement, Identity, LinkDial, PROTOCOL_VERSION, Tier};
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
        link: None,
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
    run_with(book, listings, false).await
}

async fn run_with(book: &PeerBook, listings: &[Listing], links: bool) -> SyncReport {
    let lookup = lookup();
    let ctx = MergeContext {
        me: identity(99).public(),
        now_ms: NOW,
        policy: UrlPolicy::default(),
        lookup: &lookup,
        links,
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

fn announce_link(who: &Identity, url: &str, addrs: &[&str], relays: &[&str]) -> SignedAnnouncement {
    let announcement = Announcement {
        version: PROTOCOL_VERSION,
        pubkey: who.public(),
        url: url.into(),
        label: None,
        models: vec!["llama3.1:8b".into()],
        tier: Tier::Interactive,
        ttl_seconds: 300,
        announced_at: NOW,
        link: Some(LinkDial {
            relays: relays.iter().map(|r| r.to_string()).collect(),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
        }),
    };
    SignedAnnouncement::sign(announcement, who).expect("sign")
}

#[tokio::test]
async fn announced_dial_information_is_booked_only_as_far_as_the_url_policy_allows() {
    // (URL, addresses, relays, this node dials links) → booked (url, addrs, relays),
    // or None: refused as unsafe.
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        bool,
        Option<(
            &'static str,
            &'static [&'static str],
            &'static [&'static str],
        )>,
    );
    let cases: [Case; 6] = [
        // A worker behind NAT announces its loopback URL: only its link is usable.
        (
            "http://127.0.0.1:17474",
            &["203.0.113.5:4000", "127.0.0.1:4000"],
            &["http://a.test:3340", "http://rebind.test:3340"],
            true,
            Some(("", &["203.0.113.5:4000"], &["http://a.test:3340"])),
        ),
        // Both usable: booked both ways.
        (
            "http://a.test:17474",
            &["203.0.113.5:4000"],
            &[],
            true,
            Some(("http://a.test:17474", &["203.0.113.5:4000"], &[])),
        ),
        // A relay alone is enough to dial by key.
        (
            "http://127.0.0.1:17474",
            &[],
            &["http://b.test:3340"],
            true,
            Some(("", &[], &["http://b.test:3340"])),
        ),
        // Nothing safe in it: refused like an unsafe URL.
        (
            "http://127.0.0.1:17474",
            &["127.0.0.1:4000", "[::1]:4000"],
            &["http://rebind.test:3340"],
            true,
            None,
        ),
        // A node without links ignores the field: the URL decides.
        (
            "http://127.0.0.1:17474",
            &["203.0.113.5:4000"],
            &[],
            false,
            None,
        ),
        (
            "http://b.test:17474",
            &["203.0.113.5:4000"],
            &[],
            false,
            Some(("http://b.test:17474", &[], &[])),
        ),
    ];
    for (n, (url, addrs, relays, links, want)) in cases.into_iter().enumerate() {
        let book = PeerBook::new(store::in_memory().expect("db")).expect("book");
        let who = identity(10 + n as u8);
        let listing = Listing {
            source: tracker(1),
            fresh: vec![announce_link(&who, url, addrs, relays)],
            complete: true,
        };
        let report = run_with(&book, &[listing], links).await;
        let booked = book.get(&who.public()).expect("read");
        match want {
            None => {
                assert_eq!(booked, None, "case {n}");
                assert_eq!(report.unsafe_url, 1, "case {n}");
            }
            Some((url, addrs, relays)) => {
                let record = booked.unwrap_or_else(|| panic!("case {n}: not booked"));
                assert_eq!(record.url, url, "case {n}");
                let linked: Vec<String> = record
                    .link
                    .clone()
                    .unwrap_or_default()
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                assert_eq!(linked, addrs.to_vec(), "case {n}");
                assert_eq!(record.is_linked(), links, "case {n}");
                assert_eq!(record.link_relays, relays.to_vec(), "case {n}");
                assert_eq!(report.added, 1, "case {n}");
            }
        }
    }
}

/// A discovered peer's book entry follows its newest announcement: a link it stops
/// announcing, or a URL that turns unsafe, is no longer dialled.
#[tokio::test]
async fn a_newer_announcement_replaces_how_a_discovered_peer_is_reached() {
    let book = PeerBook::new(store::in_memory().expect("db")).expect("book");
    let who = identity(40);
    let at = |signed: SignedAnnouncement, when: u64| {
        let mut a = signed.announcement().clone();
        a.announced_at = when;
        SignedAnnouncement::sign(a, &who).expect("sign")
    };
    // (announcement, booked URL, booked link addresses or None)
    let steps: [(SignedAnnouncement, &str, Option<Vec<&str>>); 3] = [
        (
            announce_link(&who, "http://a.test:17474", &["203.0.113.5:4000"], &[]),
            "http://a.test:17474",
            Some(vec!["203.0.113.5:4000"]),
        ),
        // The link is gone from the announcement: URL only.
        (
            announce(&who, "http://a.test:17474", NOW),
            "http://a.test:17474",
            None,
        ),
        // Linked again, its URL now loopback: the old URL is not kept.
        (
            announce_link(&who, "http://127.0.0.1:17474", &["203.0.113.6:4000"], &[]),
            "",
            Some(vec!["203.0.113.6:4000"]),
        ),
    ];
    for (i, (signed, url, link)) in steps.into_iter().enumerate() {
        let listing = Listing {
            source: tracker(1),
            fresh: vec![at(signed, NOW + i as u64)],
            complete: true,
        };
        run_with(&book, &[listing], true).await;
        let record = book.get(&who.public()).expect("read").expect("booked");
        assert_eq!(record.url, url, "step {i}");
        let booked: Option<Vec<String>> = record
            .link
            .map(|addrs| addrs.iter().map(|a| a.to_string()).collect());
        let want: Option<Vec<String>> = link.map(|l| l.iter().map(|a| a.to_string()).collect());
        assert_eq!(booked, want, "step {i}");
    }
}
