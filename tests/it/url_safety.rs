//! URL safety through a real router: a discovered peer whose name rebinds to loopback
//! after the sync check gets no connection at all, an IP literal is checked on every
//! request, redirects are never followed, and a peer added by hand on loopback is
//! dialled as the operator asked.

use crate::support;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use lobstah::core::clock::system_clock;
use lobstah::core::discovery::{StaticLookup, UrlPolicy};
use lobstah::core::engine::{SyntheticConfig, SyntheticEngine};
use lobstah::core::peers::PeerSource;
use lobstah::core::protocol::Identity;
use serde_json::Value;
use support::{TestRouter, chat_body, client, listener, memory_db, start_router};

fn discovered() -> PeerSource {
    PeerSource::Tracker {
        url: "http://tracker.test:17476".into(),
    }
}

/// Counts every request it gets and answers each with `answer`.
async fn counting_server(answer: fn() -> Response) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(any(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { answer() }
    }));
    let (l, addr) = listener().await;
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://{addr}"), hits)
}

async fn router_with(policy: UrlPolicy, lookup: StaticLookup) -> TestRouter {
    start_router(
        Identity::from_seed([70; 32]),
        memory_db(),
        &[],
        system_clock(),
        move |c| {
            c.url_policy = policy;
            c.lookup = Arc::new(lookup);
        },
    )
    .await
}

fn book(router: &TestRouter, who: &Identity, url: &str, source: PeerSource) {
    router
        .service
        .book()
        .add(
            who.public(),
            url,
            Some("p"),
            source,
            system_clock().now_ms(),
        )
        .expect("book the peer");
    router.service.reload_peers().expect("reload");
}

async fn ask(router: &TestRouter) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&chat_body("synthetic", false))
        .send()
        .await
        .expect("router answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

#[tokio::test]
async fn a_name_that_rebinds_to_loopback_gets_no_connection() {
    let (target, hits) = counting_server(|| StatusCode::OK.into_response()).await;
    let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
    let lookup = StaticLookup::default().with("rebind.test", &[loopback]);
    let router = router_with(UrlPolicy::default(), lookup).await;
    let peer = Identity::from_seed([71; 32]);
    // Booked while the name still pointed somewhere public; now it says 127.0.0.1.
    let url = format!("http://rebind.test:{}", port_of(&target));
    book(&router, &peer, &url, discovered());

    let (status, body) = ask(&router).await;
    assert!(!status.is_success(), "{status} {body}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no byte reached the target");
    router.stop().await;
}

#[tokio::test]
async fn the_same_name_is_served_when_the_operator_allows_local_peers() {
    // The control for the test above: the guard, not the setup, stopped it there.
    let engine = Arc::new(SyntheticEngine::new(SyntheticConfig {
        models: vec!["synthetic".into()],
        tokens_per_second: 0.0,
    }));
    let worker_id = Identity::from_seed([72; 32]);
    // A loopback worker answers to a name only if its operator says so (see the
    // browser policy: a name resolving to 127.0.0.1 is how DNS rebinding looks).
    let worker = support::start_worker_with(
        worker_id.clone(),
        engine,
        memory_db(),
        system_clock(),
        |c| c.browser.allowed_hosts = vec!["grid.test".into()],
    )
    .await;
    let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
    let lookup = StaticLookup::default().with("grid.test", &[loopback]);
    let policy = UrlPolicy {
        allow_local: true,
        ..UrlPolicy::default()
    };
    let router = router_with(policy, lookup).await;
    let url = format!("http://grid.test:{}", port_of(&worker.url));
    book(&router, &worker_id, &url, discovered());

    let (status, body) = ask(&router).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ledger = router.ledger.clone();
    support::eventually("the receipt is ledgered", Duration::from_secs(5), || {
        ledger.newest(10).is_ok_and(|r| r.len() == 1)
    })
    .await;
    router.stop().await;
}

#[tokio::test]
async fn a_discovered_loopback_literal_is_refused_and_a_manual_one_is_dialled() {
    let (target, hits) = counting_server(|| StatusCode::OK.into_response()).await;
    let router = router_with(UrlPolicy::default(), StaticLookup::default()).await;
    let stranger = Identity::from_seed([73; 32]);
    book(&router, &stranger, &target, discovered());
    let (status, body) = ask(&router).await;
    assert!(!status.is_success());
    assert_eq!(hits.load(Ordering::SeqCst), 0, "{body}");

    // The operator vouches for the same address: it is dialled (capacity, at least).
    book(&router, &stranger, &target, PeerSource::Manual);
    router.service.refresh_capacity(true).await;
    assert!(
        hits.load(Ordering::SeqCst) > 0,
        "a manual loopback peer is dialled"
    );
    router.stop().await;
}

#[tokio::test]
async fn redirects_are_not_followed_into_other_addresses() {
    let (internal, internal_hits) = counting_server(|| StatusCode::OK.into_response()).await;
    // The "peer" answers everything with a redirect to the internal service.
    static INTERNAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INTERNAL.set(internal).expect("once");
    let (peer_url, peer_hits) = counting_server(|| {
        let to = INTERNAL.get().cloned().unwrap_or_default();
        (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
    })
    .await;
    let policy = UrlPolicy {
        allow_local: true,
        ..UrlPolicy::default()
    };
    let router = router_with(policy, StaticLookup::default()).await;
    let peer = Identity::from_seed([75; 32]);
    book(&router, &peer, &peer_url, discovered());

    let (status, _) = ask(&router).await;
    assert!(!status.is_success());
    assert!(peer_hits.load(Ordering::SeqCst) > 0, "the peer was asked");
    assert_eq!(
        internal_hits.load(Ordering::SeqCst),
        0,
        "its redirect was not followed"
    );
    router.stop().await;
}
