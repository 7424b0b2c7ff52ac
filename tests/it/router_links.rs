//! The router reaching workers by key over peer links, on loopback with direct
//! addresses: a key-only peer answers whole and streamed requests with both ledgers
//! agreeing receipt by receipt, and when the linked peer dies an HTTP peer of the
//! existing network takes over; a peer known both ways is reached on its link and, when
//! the link fails, at its URL, from the very request that found it gone; a worker found
//! by its announcement is dialled by the key and addresses it announced; a receipt committed for an answer the router never read
//! is taken back over the link on the strength of the router's tag.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::support;

use lobstah::core::clock::SystemClock;
use lobstah::core::links::{Bridge, LinkConfig, LinkEndpoint};
use lobstah::core::peers::{PeerBook, PeerSource};
use lobstah::core::protocol::{
    Identity, PublicKey, REQUEST_TAG_HEADER, RequestProof, RequestTarget,
};
use lobstah::testkit::FakeConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn loopback() -> LinkConfig {
    LinkConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        relays: Vec::new(),
        relay_roots: Vec::new(),
    }
}

/// A worker with a fake engine, served over a link (and over TCP, which the router is
/// not told about unless a test says so).
struct LinkedWorker {
    worker: support::TestWorker,
    link: LinkEndpoint,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<()>,
    _engine: lobstah::testkit::FakeOpenAi,
}

impl LinkedWorker {
    async fn start(seed: u8, reply: &str) -> Self {
        let (worker, engine) = support::worker_on(
            seed,
            FakeConfig::default()
                .with_models(["fake-model"])
                .with_reply(reply),
            |_| {},
        )
        .await;
        let link = LinkEndpoint::bind(&Identity::from_seed([seed; 32]), &loopback())
            .await
            .expect("worker link");
        let stop = CancellationToken::new();
        let served = tokio::spawn(
            worker
                .worker
                .clone()
                .serve_links(link.clone(), stop.clone()),
        );
        LinkedWorker {
            worker,
            link,
            stop,
            served,
            _engine: engine,
        }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.link.bound_sockets()
    }

    /// Ends the link server and closes the endpoint: the peer is gone from the link.
    async fn kill_link(mut self) -> support::TestWorker {
        self.close_link().await;
        self.worker
    }

    /// As `kill_link`, keeping the worker's TCP listener and engine.
    async fn close_link(&mut self) {
        self.stop.cancel();
        self.link.close().await;
        let _ = (&mut self.served).await;
    }
}

/// A router whose book holds `linked` (by key and addresses) and `http` (by URL).
async fn router_with(
    me: &Identity,
    linked: &[(PublicKey, Vec<SocketAddr>)],
    http: &[(PublicKey, String)],
    dir: &std::path::Path,
) -> support::TestRouter {
    router_with_both(me, linked, http, &[], dir).await
}

/// As `router_with`, and `both` booked with a link and a URL.
async fn router_with_both(
    me: &Identity,
    linked: &[(PublicKey, Vec<SocketAddr>)],
    http: &[(PublicKey, String)],
    both: &[(PublicKey, Vec<SocketAddr>, String)],
    dir: &std::path::Path,
) -> support::TestRouter {
    let db = support::memory_db();
    let book = PeerBook::new(db.clone()).expect("book");
    for (key, addrs) in linked {
        book.add_linked(*key, addrs, Some("linked"), PeerSource::Manual, 1)
            .expect("add linked");
    }
    for (key, addrs, url) in both {
        book.add_linked(*key, addrs, Some("both"), PeerSource::Manual, 1)
            .expect("add linked");
        book.add(*key, url, Some("both"), PeerSource::Manual, 1)
            .expect("add its URL");
    }
    let router = support::start_router(me.clone(), db, http, Arc::new(SystemClock), |_| {}).await;
    let link = LinkEndpoint::bind(me, &loopback())
        .await
        .expect("router link");
    router.service.attach_links(Arc::new(
        Bridge::new(link, &dir.join("links"), std::time::Duration::from_secs(3)).expect("bridge"),
    ));
    router.service.refresh_capacity(true).await;
    router
}

async fn chat(client: &reqwest::Client, router: &str, stream: bool) -> (u16, String) {
    let response = client
        .post(format!("{router}/v1/chat/completions"))
        .json(&support::chat_body("fake-model", stream))
        .send()
        .await
        .expect("router answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn a_peer_known_only_by_key_is_served_over_its_link() {
    let me = Identity::from_seed([70; 32]);
    let w = LinkedWorker::start(71, "hello over the link").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let router = router_with(&me, &[(w.worker.pubkey, w.addrs())], &[], dir.path()).await;
    let client = support::client();

    let listed = first_peer(&client, &router.url).await;
    assert_eq!(listed["transport"], "link", "{listed}");
    assert_eq!(
        listed["state"], "ok",
        "capacity came over the link: {listed}"
    );

    let (status, whole) = chat(&client, &router.url, false).await;
    assert_eq!(status, 200, "{whole}");
    let whole: Value = serde_json::from_str(&whole).expect("json");
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "hello over the link"
    );
    let (status, streamed) = chat(&client, &router.url, true).await;
    assert_eq!(status, 200);
    assert!(
        streamed.contains("link") && streamed.contains("[DONE]"),
        "{streamed}"
    );

    router.service.flush_ledger().await;
    w.worker.worker.flush_ledger().await;
    let at_router = router.ledger.newest(100).expect("router receipts");
    let at_worker = w.worker.ledger.newest(100).expect("worker receipts");
    assert_eq!(at_router.len(), 2);
    let nonces = |rs: &[lobstah::core::ledger::StoredReceipt]| {
        let mut n: Vec<String> = rs
            .iter()
            .map(|r| r.receipt.receipt().nonce.clone())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        nonces(&at_router),
        nonces(&at_worker),
        "the same receipts on both sides"
    );
    let spent = router.ledger.balance(&me.public()).expect("balance").spent;
    assert!(spent > 0);
    assert_eq!(
        w.worker
            .ledger
            .balance(&me.public())
            .expect("balance")
            .spent,
        spent
    );
    assert_eq!(
        w.worker
            .ledger
            .balance(&me.public())
            .expect("balance")
            .charged_spent(),
        spent,
        "charged to the router's key, which the link proved"
    );

    // Removed from the book: its way onto the link goes with it.
    let sockets = || {
        std::fs::read_dir(dir.path().join("links"))
            .expect("links dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sock"))
            })
            .count()
    };
    assert_eq!(sockets(), 1, "one socket for the one linked peer");
    router
        .service
        .book()
        .remove(&w.worker.pubkey)
        .expect("remove");
    router.service.reload_peers().expect("reload");
    assert_eq!(sockets(), 0, "the socket is removed with the peer");

    router.stop().await;
    w.kill_link().await.shutdown.cancel();
}

#[tokio::test]
async fn when_the_linked_peer_dies_an_http_peer_answers() {
    let me = Identity::from_seed([72; 32]);
    let linked = LinkedWorker::start(73, "from the link").await;
    let (http, _http_engine) = support::worker_on(
        74,
        FakeConfig::default()
            .with_models(["fake-model"])
            .with_reply("from http"),
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let router = router_with(
        &me,
        &[(linked.worker.pubkey, linked.addrs())],
        &[(http.pubkey, http.url.clone())],
        dir.path(),
    )
    .await;
    let client = support::client();

    let mut by_link = 0;
    for _ in 0..8 {
        let (status, body) = chat(&client, &router.url, false).await;
        assert_eq!(status, 200, "{body}");
        by_link += usize::from(body.contains("from the link"));
    }
    assert!(by_link > 0, "the linked peer takes a share while it lives");

    let gone = linked.kill_link().await;
    for _ in 0..6 {
        let (status, body) = chat(&client, &router.url, false).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("from http"), "{body}");
    }

    router.stop().await;
    gone.shutdown.cancel();
    http.shutdown.cancel();
}

async fn first_peer(client: &reqwest::Client, router: &str) -> Value {
    let peers: Value = client
        .get(format!("{router}/peers"))
        .send()
        .await
        .expect("peers")
        .json()
        .await
        .expect("json");
    peers["peers"][0].clone()
}

#[tokio::test]
async fn a_peer_known_both_ways_is_reached_on_its_link_then_at_its_url_when_the_link_fails() {
    let me = Identity::from_seed([75; 32]);
    let mut w = LinkedWorker::start(76, "one worker, two ways").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let both = [(w.worker.pubkey, w.addrs(), w.worker.url.clone())];
    let router = router_with_both(&me, &[], &[], &both, dir.path()).await;
    let client = support::client();

    let (status, body) = chat(&client, &router.url, false).await;
    assert_eq!(status, 200, "{body}");
    let peer = first_peer(&client, &router.url).await;
    assert_eq!(peer["transport"], "link", "{peer}");
    assert_eq!(peer["path"], "direct", "the link is preferred: {peer}");
    assert!(peer["rttMs"].as_f64().is_some(), "{peer}");

    // The link goes; the worker's TCP listener stays.
    w.close_link().await;
    let mut answered = 0;
    for _ in 0..4 {
        let (status, body) = chat(&client, &router.url, false).await;
        if status == 200 {
            assert!(body.contains("one worker, two ways"), "{body}");
            answered += 1;
        }
    }
    assert_eq!(
        answered, 4,
        "the request that found the link gone is retried at the URL"
    );
    let peer = first_peer(&client, &router.url).await;
    assert_eq!(
        peer["transport"], "link",
        "still booked with its link: {peer}"
    );
    assert_eq!(peer["path"], "http", "reached at its URL meanwhile: {peer}");

    router.service.flush_ledger().await;
    w.worker.worker.flush_ledger().await;
    let at_router = router.ledger.newest(100).expect("router receipts").len();
    let at_worker = w.worker.ledger.newest(100).expect("worker receipts").len();
    assert_eq!(at_router, 1 + answered);
    assert_eq!(at_router, at_worker);

    router.stop().await;
    w.worker.shutdown.cancel();
}

#[tokio::test]
async fn a_discovered_worker_is_reached_by_the_key_and_addresses_it_announced() {
    use lobstah::core::discovery::announcer::{AnnounceSettings, Announcer};
    use lobstah::core::discovery::url_safety::UrlPolicy;
    use lobstah::core::discovery::{Listing, MergeContext, SyncReport, SystemLookup, merge};
    use lobstah::core::protocol::Tier;

    let me = Identity::from_seed([78; 32]);
    let w = LinkedWorker::start(79, "found by its announcement").await;
    // Its announced URL is its loopback address, useless to a friend: the link is what
    // the router can use.
    let announcer = Announcer::new(
        support::client(),
        Identity::from_seed([79; 32]),
        Arc::new(SystemClock),
        AnnounceSettings {
            trackers: Vec::new(),
            url: "http://127.0.0.1:9".into(),
            label: None,
            tier: Tier::Interactive,
            ttl_secs: 300,
        },
    )
    .with_link(w.link.clone());
    let signed = announcer
        .sign(vec!["fake-model".into()])
        .expect("sign the announcement");
    let dial = signed
        .announcement()
        .link
        .clone()
        .expect("dial information");
    assert_eq!(
        dial.addrs,
        w.addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let router = router_with(&me, &[], &[], dir.path()).await;
    let mut report = SyncReport::default();
    let ctx = MergeContext {
        me: me.public(),
        now_ms: lobstah::core::clock::system_clock().now_ms(),
        policy: UrlPolicy {
            block_private: false,
            allow_local: true,
        },
        lookup: &SystemLookup,
        links: true,
    };
    let listing = Listing {
        source: PeerSource::Tracker {
            url: "http://127.0.0.1:17476".into(),
        },
        fresh: vec![signed],
        complete: true,
    };
    merge(router.service.book(), &[listing], &ctx, &mut report).await;
    assert_eq!(report.added, 1, "{report:?}");
    router.service.reload_peers().expect("reload");
    router.service.refresh_capacity(true).await;

    let client = support::client();
    let (status, body) = chat(&client, &router.url, false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("found by its announcement"), "{body}");
    let peer = first_peer(&client, &router.url).await;
    assert_eq!(peer["transport"], "link", "{peer}");
    assert_eq!(peer["path"], "direct", "{peer}");

    router.stop().await;
    w.kill_link().await.shutdown.cancel();
}

#[tokio::test]
async fn a_receipt_whose_answer_the_router_never_read_is_taken_back_over_the_link() {
    let me = Identity::from_seed([79; 32]);
    let w = LinkedWorker::start(80, "lost on the way").await;
    let dir = tempfile::tempdir().expect("tempdir");

    // An earlier run of this router sent a tagged request over the link and died before
    // it read the answer: the worker committed a receipt nobody ledgered.
    let earlier = LinkEndpoint::bind(&me, &loopback())
        .await
        .expect("earlier link");
    let bridge = Bridge::new(
        earlier.clone(),
        &dir.path().join("earlier"),
        std::time::Duration::from_secs(3),
    )
    .expect("bridge");
    let client = bridge
        .client(&w.worker.pubkey, &w.addrs(), &[], reqwest::Client::builder)
        .expect("client");
    let body = serde_json::to_vec(&support::chat_body("fake-model", false)).expect("body");
    let path = "/v1/chat/completions";
    let target = RequestTarget {
        method: "POST",
        path,
        body: &body,
        worker: &w.worker.pubkey,
    };
    let now = lobstah::core::clock::Clock::now_ms(&SystemClock);
    let (tag, _) = RequestProof::tag(&me, target, now);
    let lost = client
        .post(format!("{}{path}", lobstah::core::peers::LINK_BASE))
        .header(REQUEST_TAG_HEADER, tag.header_value())
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("served");
    assert_eq!(lost.status().as_u16(), 200);
    let nonce = support::signed::receipt_of(&lost).receipt().nonce.clone();
    drop(bridge);
    earlier.close().await;
    w.worker.worker.flush_ledger().await;

    let router = router_with(&me, &[(w.worker.pubkey, w.addrs())], &[], dir.path()).await;
    router.service.reconcile_now().await;
    router.service.flush_ledger().await;
    let held = |ledger: &lobstah::core::ledger::Ledger| {
        ledger
            .newest(100)
            .expect("receipts")
            .iter()
            .any(|r| r.receipt.receipt().nonce == nonce)
    };
    assert!(held(&router.ledger), "the router took its receipt back");
    router.service.confirm_now().await.expect("confirm round");
    w.worker.worker.flush_ledger().await;
    assert_eq!(
        w.worker.ledger.standing(&nonce).expect("standing"),
        Some(lobstah::core::ledger::Standing::Confirmed),
        "and confirmed it: both ledgers hold it, settled"
    );

    router.stop().await;
    w.kill_link().await.shutdown.cancel();
}
