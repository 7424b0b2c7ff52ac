//! Peer book tests: add, update, remove and list against in-memory and file-backed
//! databases, and what a damaged record looks like.

use std::net::SocketAddr;

use super::*;
use crate::core::store;

fn pk(id: u8) -> PublicKey {
    PublicKey::from_bytes([id; 32])
}

#[test]
fn add_update_unchanged_remove_in_memory() {
    let book = PeerBook::new(store::in_memory().unwrap()).unwrap();
    let add = |url: &str, label: Option<&str>, source: PeerSource, now| {
        book.add(pk(1), url, label, source, now).unwrap()
    };
    assert_eq!(
        add("http://a:17474/", Some(" mac "), PeerSource::Manual, 10),
        AddOutcome::Added
    );
    assert_eq!(
        add("http://a:17474", Some("mac"), PeerSource::Manual, 20),
        AddOutcome::Unchanged
    );
    let stored = book.get(&pk(1)).unwrap().unwrap();
    assert_eq!(
        stored,
        PeerRecord {
            pubkey: pk(1),
            url: "http://a:17474".into(),
            label: Some("mac".into()),
            source: PeerSource::Manual,
            added_at_ms: 10,
            updated_at_ms: 10,
            link: None,
            link_relays: Vec::new(),
        }
    );
    let tracker = PeerSource::Tracker {
        url: "http://tracker:17476".into(),
    };
    assert_eq!(
        add("http://a:17474", Some("mac"), tracker.clone(), 30),
        AddOutcome::Updated
    );
    assert_eq!(
        add("http://b:17474", Some("mac"), tracker.clone(), 40),
        AddOutcome::Updated
    );
    assert_eq!(
        add("http://b:17474", None, tracker.clone(), 50),
        AddOutcome::Updated
    );
    let stored = book.get(&pk(1)).unwrap().unwrap();
    assert_eq!((stored.added_at_ms, stored.updated_at_ms), (10, 50));
    assert_eq!(
        (stored.url.as_str(), stored.label, stored.source),
        ("http://b:17474", None, tracker)
    );

    assert!(book.remove(&pk(1)).unwrap());
    assert!(!book.remove(&pk(1)).unwrap());
    assert_eq!(book.get(&pk(1)).unwrap(), None);
    assert!(book.list().unwrap().is_empty());
}

#[test]
fn list_is_oldest_first_then_by_pubkey() {
    let book = PeerBook::new(store::in_memory().unwrap()).unwrap();
    for (id, now) in [(3, 5), (1, 7), (2, 5)] {
        let url = format!("http://peer{id}:17474");
        book.add(pk(id), &url, None, PeerSource::Nostr, now)
            .unwrap();
    }
    // An update keeps a peer's place.
    book.add(pk(3), "http://moved:1", None, PeerSource::Nostr, 99)
        .unwrap();
    let order: Vec<PublicKey> = book.list().unwrap().iter().map(|r| r.pubkey).collect();
    assert_eq!(order, vec![pk(2), pk(3), pk(1)]);
}

#[test]
fn peers_persist_across_reopen_and_read_only_views() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    {
        let book = PeerBook::new(store::open(&path).unwrap()).unwrap();
        book.add(
            pk(1),
            "https://w.example/",
            Some("w"),
            PeerSource::Manual,
            1,
        )
        .unwrap();
        book.add(pk(2), "http://10.0.0.2:17474", None, PeerSource::Nostr, 2)
            .unwrap();
        assert!(book.remove(&pk(2)).unwrap());
    }
    let book = PeerBook::new(store::open(&path).unwrap()).unwrap();
    let all = book.list().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].url, "https://w.example");
    assert_eq!(all[0].label.as_deref(), Some("w"));
    drop(book);

    let read_only = PeerBook::new(store::open_read_only(&path).unwrap()).unwrap();
    assert_eq!(read_only.list().unwrap(), all);
    assert!(matches!(
        read_only.add(pk(3), "http://x", None, PeerSource::Manual, 3),
        Err(PeerError::Store(StoreError::ReadOnly))
    ));
}

#[test]
fn a_read_only_database_without_the_table_is_an_empty_book() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    drop(store::open(&path).unwrap());
    let book = PeerBook::new(store::open_read_only(&path).unwrap()).unwrap();
    assert!(book.list().unwrap().is_empty());
    assert_eq!(book.get(&pk(1)).unwrap(), None);
}

#[test]
fn a_damaged_record_is_reported_and_can_be_removed() {
    let db = store::in_memory().unwrap();
    let book = PeerBook::new(db.clone()).unwrap();
    let tx = db.begin_write().unwrap();
    tx.open_table(PEERS)
        .unwrap()
        .insert(pk(1).to_string().as_str(), b"{not json".as_slice())
        .unwrap();
    tx.commit().unwrap();
    let err = book.list().unwrap_err().to_string();
    assert!(err.contains(&pk(1).to_string()), "{err}");
    assert!(book.remove(&pk(1)).unwrap());
    assert!(book.list().unwrap().is_empty());
}

#[test]
fn records_are_camel_case_json() {
    let record = PeerRecord {
        pubkey: pk(1),
        url: "http://a".into(),
        label: None,
        source: PeerSource::Tracker {
            url: "http://t".into(),
        },
        added_at_ms: 1,
        updated_at_ms: 2,
        link: None,
        link_relays: Vec::new(),
    };
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["addedAtMs"], 1);
    assert_eq!(json["updatedAtMs"], 2);
    assert_eq!(
        json["source"],
        serde_json::json!({"kind": "tracker", "url": "http://t"})
    );
    assert_eq!(
        serde_json::to_value(PeerSource::Manual).unwrap()["kind"],
        "manual"
    );
    let back: PeerRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, record);
}

#[test]
fn add_refuses_invalid_input_and_writes_nothing() {
    let book = PeerBook::new(store::in_memory().unwrap()).unwrap();
    assert!(matches!(
        book.add(pk(1), "ftp://x", None, PeerSource::Manual, 0),
        Err(PeerError::UrlScheme { .. })
    ));
    assert!(matches!(
        book.add(pk(1), "http://x", Some("a\nb"), PeerSource::Manual, 0),
        Err(PeerError::LabelNotPrintable { .. })
    ));
    assert!(book.list().unwrap().is_empty());
}

#[test]
fn a_linked_peer_keeps_its_link_and_its_url_through_either_add() {
    let book = PeerBook::new(store::in_memory().unwrap()).unwrap();
    let a: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let linked = |addrs: &[SocketAddr], now| {
        book.add_linked(pk(1), addrs, None, PeerSource::Manual, now)
            .unwrap()
    };
    assert_eq!(linked(&[a], 1), AddOutcome::Added);
    let record = book.get(&pk(1)).unwrap().unwrap();
    assert_eq!(
        (record.url.as_str(), record.link.clone()),
        ("", Some(vec![a]))
    );
    assert_eq!(record.base(), LINK_BASE);
    assert_eq!(linked(&[a, a], 2), AddOutcome::Unchanged, "duplicates fold");
    assert_eq!(linked(&[a, b, a], 3), AddOutcome::Updated);
    assert_eq!(book.get(&pk(1)).unwrap().unwrap().link, Some(vec![a, b]));
    assert_eq!(linked(&[a, b], 3), AddOutcome::Unchanged);
    // A URL added later is kept beside the link, which is still preferred.
    let url = book
        .add(pk(1), "http://h:1", None, PeerSource::Manual, 4)
        .unwrap();
    assert_eq!(url, AddOutcome::Updated);
    let record = book.get(&pk(1)).unwrap().unwrap();
    assert_eq!(record.url, "http://h:1");
    assert_eq!(record.link, Some(vec![a, b]));
    assert!(record.is_linked());
    let too_many = vec![a; MAX_LINK_ADDRS + 1];
    assert!(matches!(
        book.add_linked(pk(2), &too_many, None, PeerSource::Manual, 5),
        Err(PeerError::TooManyAddrs { .. })
    ));
    assert!(book.get(&pk(2)).unwrap().is_none());
}

#[test]
fn records_written_before_links_read_as_http_peers() {
    let old = format!(
        r#"{{"pubkey":"{}","url":"http://a","label":null,"source":{{"kind":"manual"}},"addedAtMs":1,"updatedAtMs":2}}"#,
        pk(1)
    );
    let record: PeerRecord = serde_json::from_str(&old).unwrap();
    assert_eq!(record.link, None);
    assert_eq!(record.base(), "http://a");
    let written = serde_json::to_string(&record).unwrap();
    assert!(
        !written.contains("link"),
        "an HTTP peer is written as before: {written}"
    );
}
