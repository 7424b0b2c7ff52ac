//! The worker over a peer link, on loopback with direct addresses (no relay): a request
//! is served in the name of the key the link's handshake proved, whatever the headers
//! say; a header or a signature naming anyone else is refused before the engine sees
//! it; a router's tag in place of a signature is kept for reconciliation; and a link dialled to a key that does not answer at that address is not made.

use crate::support;

use lobstah::core::ledger::Standing;
use lobstah::core::links::{Bridge, LinkConfig, LinkEndpoint};
use lobstah::core::protocol::{Identity, REQUEST_TAG_HEADER, RequestProof, RequestTarget};
use lobstah::core::worker::REQUESTER_HEADER;
use lobstah::testkit::FakeConfig;
use support::signed::{Sent, error_type, receipt_of};
use tokio_util::sync::CancellationToken;

const CHAT: &str = "/v1/chat/completions";

fn loopback() -> LinkConfig {
    LinkConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        relays: Vec::new(),
        relay_roots: Vec::new(),
    }
}

#[tokio::test]
async fn a_link_speaks_for_its_key_and_no_other() {
    let (w, fake) = support::worker_on(
        60,
        FakeConfig::default().with_reply("over the link"),
        |_| {},
    )
    .await;
    let worker_identity = Identity::from_seed([60; 32]);
    let worker_link = LinkEndpoint::bind(&worker_identity, &loopback())
        .await
        .expect("worker link");
    assert_eq!(
        worker_link.key(),
        w.pubkey,
        "the endpoint id is the lobstah key"
    );
    let stop = CancellationToken::new();
    let served = tokio::spawn(
        w.worker
            .clone()
            .serve_links(worker_link.clone(), stop.clone()),
    );

    let router = Identity::from_seed([61; 32]);
    let router_link = LinkEndpoint::bind(&router, &loopback())
        .await
        .expect("router link");
    let dir = tempfile::tempdir().expect("tempdir");
    let bridge = Bridge::new(
        router_link,
        &dir.path().join("links"),
        std::time::Duration::from_secs(3),
    )
    .expect("bridge");
    let client = bridge
        .client(
            &w.pubkey,
            &worker_link.bound_sockets(),
            &[],
            reqwest::Client::builder,
        )
        .expect("client");
    let base = "http://link.invalid";
    let body = support::chat_body("fake-model", false);

    // No signature: the link proves the requester, so it is charged (not anonymous).
    let answer = client
        .post(format!("{base}{CHAT}"))
        .header(REQUESTER_HEADER, router.public().to_string())
        .json(&body)
        .send()
        .await
        .expect("sent over the link");
    assert_eq!(answer.status().as_u16(), 200);
    let receipt = receipt_of(&answer);
    assert_eq!(receipt.receipt().requester_pubkey, router.public());
    let text: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(text["choices"][0]["message"]["content"], "over the link");
    w.worker.flush_ledger().await;
    assert_eq!(
        w.ledger
            .standing(&receipt.receipt().nonce)
            .expect("standing"),
        Some(Standing::Pending),
        "a linked requester is held to its credit like a signed one"
    );
    assert!(
        w.ledger
            .balance(&router.public())
            .expect("balance")
            .charged_spent()
            > 0
    );
    let served_before = fake.request_count();

    // Naming another key in the header, over this link: refused.
    let victim = Identity::from_seed([62; 32]);
    let claim = client
        .post(format!("{base}{CHAT}"))
        .header(REQUESTER_HEADER, victim.public().to_string())
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(error_type(claim).await, (401, "link_mismatch".to_string()));

    // A valid signature by another key does not stand in for the link's.
    let now = lobstah::core::clock::Clock::now_ms(&lobstah::core::clock::SystemClock);
    let signed = Sent::post(CHAT, &body, &w.pubkey, Some(&victim), &victim.public(), now);
    let (status, kind) = error_type(signed.send(&client, base).await).await;
    assert_eq!((status, kind.as_str()), (401, "link_mismatch"));
    assert_eq!(
        fake.request_count(),
        served_before,
        "the engine saw neither"
    );

    // Signed by the link's own key: served, with the proof kept as over TCP.
    let own = Sent::post(CHAT, &body, &w.pubkey, Some(&router), &router.public(), now);
    let answer = own.send(&client, base).await;
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        receipt_of(&answer).receipt().requester_pubkey,
        router.public()
    );

    // Tagged instead of signed, as a router sends over a link: served, and the tag is
    // kept with the pending receipt, where the router, and only it, recognises it.
    let bytes = serde_json::to_vec(&body).expect("body");
    let target = RequestTarget {
        method: "POST",
        path: CHAT,
        body: &bytes,
        worker: &w.pubkey,
    };
    let (tag, _) = RequestProof::tag(&router, target, now);
    let tagged = |value: String| {
        client
            .post(format!("{base}{CHAT}"))
            .header(REQUEST_TAG_HEADER, value)
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
    };
    let answer = tagged(tag.header_value()).await.expect("sent");
    assert_eq!(answer.status().as_u16(), 200);
    let nonce = receipt_of(&answer).receipt().nonce.clone();
    w.worker.flush_ledger().await;
    let offered = w
        .ledger
        .unsettled_for(&router.public(), 100)
        .expect("unsettled");
    let kept = offered
        .iter()
        .find(|u| u.receipt.receipt().nonce == nonce)
        .expect("the tagged request's receipt is offered back with its tag");
    assert_eq!(kept.request.nonce, tag.nonce);
    kept.request
        .verify_for(&router)
        .expect("the router's own tag");
    assert!(kept.request.verify_for(&victim).is_err());
    let served_before = fake.request_count();
    let (status, _) = error_type(tagged("1 2 3".into()).await.expect("sent")).await;
    assert_eq!(status, 400, "a malformed tag is refused");
    assert_eq!(fake.request_count(), served_before, "before the engine");

    stop.cancel();
    worker_link.close().await;
    served.await.expect("link server stopped");
    w.shutdown.cancel();
}

#[tokio::test]
async fn a_link_to_a_key_that_is_not_there_is_not_made() {
    let (w, fake) = support::worker_on(63, FakeConfig::default(), |_| {}).await;
    // Someone else answers at the address; the worker's key is what we dial.
    let impostor = LinkEndpoint::bind(&Identity::from_seed([64; 32]), &loopback())
        .await
        .expect("impostor");
    let stop = CancellationToken::new();
    let served = tokio::spawn(w.worker.clone().serve_links(impostor.clone(), stop.clone()));

    let router = LinkEndpoint::bind(&Identity::from_seed([65; 32]), &loopback())
        .await
        .expect("router");
    let dir = tempfile::tempdir().expect("tempdir");
    let bridge = Bridge::new(
        router,
        &dir.path().join("links"),
        std::time::Duration::from_secs(3),
    )
    .expect("bridge");
    let client = bridge
        .client(&w.pubkey, &impostor.bound_sockets(), &[], || {
            reqwest::Client::builder().timeout(std::time::Duration::from_secs(20))
        })
        .expect("client");
    let sent = client
        .post(format!("http://link.invalid{CHAT}"))
        .header(
            REQUESTER_HEADER,
            Identity::from_seed([65; 32]).public().to_string(),
        )
        .json(&support::chat_body("fake-model", false))
        .send()
        .await;
    assert!(
        sent.is_err(),
        "no answer from a key that is not the one dialled: {sent:?}"
    );
    assert_eq!(fake.request_count(), 0);

    stop.cancel();
    impostor.close().await;
    served.await.expect("link server stopped");
    w.shutdown.cancel();
}
