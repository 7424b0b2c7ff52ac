//! Nostr test helpers: in-process relays on 127.0.0.1 (nostr-relay-builder), a relay URL
//! nothing listens on, announcements dated by the caller, and raw clients to send events
//! the publisher would never build and to read what a relay holds.

use std::sync::Arc;
use std::time::Duration;

use lobstah::core::discovery::nostr::{ANNOUNCE_KIND, LOBSTAH_PUBKEY_TAG, PEER_D_TAG};
use lobstah::core::protocol::{Announcement, Identity, SignedAnnouncement, Tier};
use nostr_relay_builder::prelude::{LocalRelay, MockRelay, RelayBuilder};
use nostr_sdk::prelude::{
    Client, Event, EventBuilder, EventId, Filter, Keys, Kind, MemoryDatabase,
    MemoryDatabaseOptions, NostrDatabase, Output, Tag, TagKind, Timestamp,
};

/// Every network step in these tests finishes in milliseconds; this only bounds a hang.
pub const STEP: Duration = Duration::from_secs(5);
/// Idle time for discovery against in-process relays.
pub const IDLE: Duration = Duration::from_millis(500);

pub async fn mock_relay() -> (MockRelay, String) {
    super::install_crypto();
    // The relay picks a free port itself and can lose a race for it with another test
    // binary running at the same time: a few tries.
    let mut tries = 0;
    let relay = loop {
        match MockRelay::run().await {
            Ok(relay) => break relay,
            Err(e) if tries < 5 => {
                tries += 1;
                eprintln!("the mock relay could not start ({e}); trying another port");
            }
            Err(e) => panic!("start the mock relay: {e:?}"),
        }
    };
    let url = relay.url().await.to_string();
    (relay, url)
}

/// A relay whose database the test can write to directly, bypassing the relay's checks:
/// how a dishonest relay serves events it should have refused.
pub async fn relay_with_database() -> (LocalRelay, String, Arc<dyn NostrDatabase>) {
    super::install_crypto();
    let db: Arc<dyn NostrDatabase> = Arc::new(MemoryDatabase::with_opts(MemoryDatabaseOptions {
        events: true,
        max_events: None,
    }));
    let relay = LocalRelay::new(RelayBuilder::default().database(db.clone()));
    relay.run().await.expect("start the local relay");
    let url = relay.url().await.to_string();
    (relay, url, db)
}

/// A ws:// URL on 127.0.0.1 that refuses connections (a port just freed).
pub fn down_relay_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("ws://127.0.0.1:{port}")
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

pub fn announcement(identity: &Identity, announced_at: u64) -> SignedAnnouncement {
    let announcement = Announcement {
        version: 1,
        pubkey: identity.public(),
        url: "http://127.0.0.1:17474".into(),
        label: Some("nostr-test".into()),
        models: vec!["llama3.1:8b".into()],
        tier: Tier::Batch,
        ttl_seconds: 300,
        announced_at,
        link: None,
    };
    SignedAnnouncement::sign(announcement, identity).expect("sign the announcement")
}

/// The standard tags of an announcement event naming `lobstah_pubkey`.
pub fn announce_tags(lobstah_pubkey: &str) -> Vec<Tag> {
    vec![
        Tag::identifier(PEER_D_TAG),
        Tag::hashtag("lobstah"),
        Tag::custom(
            TagKind::custom(LOBSTAH_PUBKEY_TAG),
            [lobstah_pubkey.to_owned()],
        ),
    ]
}

/// A validly signed Nostr event of `kind` with any content and tags.
pub fn raw_event(keys: &Keys, kind: u16, content: &str, tags: Vec<Tag>, created_at: u64) -> Event {
    EventBuilder::new(Kind::Custom(kind), content)
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(created_at))
        .sign_with_keys(keys)
        .expect("sign the Nostr event")
}

/// An announcement event for `signed` whose content is `content` instead (validly signed).
pub fn announce_event_with_content(
    keys: &Keys,
    signed: &SignedAnnouncement,
    content: &str,
) -> Event {
    let pubkey = signed.announcement().pubkey.to_string();
    raw_event(
        keys,
        ANNOUNCE_KIND,
        content,
        announce_tags(&pubkey),
        signed.announcement().announced_at / 1000,
    )
}

/// `event` with another event's Schnorr signature: id and contents intact.
pub fn with_forged_signature(event: &Event, other: &Event) -> Event {
    Event::new(
        event.id,
        event.pubkey,
        event.created_at,
        event.kind,
        event.tags.iter().cloned(),
        event.content.clone(),
        other.sig,
    )
}

/// `event` with `content` swapped in, keeping its id and signature (both now lie).
pub fn with_forged_content(event: &Event, content: &str) -> Event {
    Event::new(
        event.id,
        event.pubkey,
        event.created_at,
        event.kind,
        event.tags.iter().cloned(),
        content,
        event.sig,
    )
}

/// A client connected to `url`, signing with fresh keys, for raw sends and reads.
pub async fn raw_client(url: &str) -> Client {
    super::install_crypto();
    let client = Client::new(Keys::generate());
    client.add_relay(url).await.expect("add relay");
    client.try_connect(STEP).await;
    client
}

/// Sends `event` as it is; returns the relay's verdict.
pub async fn send_raw(client: &Client, event: &Event) -> Output<EventId> {
    client.send_event(event).await.expect("send the event")
}

/// The events of `kind` that `url` holds.
pub async fn held_events(url: &str, kind: u16) -> Vec<Event> {
    let client = raw_client(url).await;
    let events = client
        .fetch_events(Filter::new().kind(Kind::Custom(kind)), STEP)
        .await
        .expect("fetch events");
    client.shutdown().await;
    events.into_iter().collect()
}

/// A ws:// URL that reaches the relay at `target` only after `delay`: a TCP proxy that
/// waits before connecting through, like a relay that is slow to open.
pub async fn slow_proxy(target: &str, delay: Duration) -> String {
    let upstream = target
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_owned();
    let (listener, addr) = super::listener().await;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    format!("ws://{addr}")
}
