//! The self-hosted relay on loopback: a router that knows only a worker's key and the
//! relay reaches it through the relay; a relay admitting only listed keys keeps an
//! unlisted worker off it, so nobody reaches that worker through it.

use std::time::Duration;

use lobstah::core::links::{
    LinkConfig, LinkEndpoint, RelayCertificate, RelaySettings, RunningRelay,
};
use lobstah::core::protocol::{Identity, PublicKey};

async fn start_relay(
    admit_only: Option<Vec<PublicKey>>,
    dir: &std::path::Path,
) -> (RunningRelay, String) {
    let certificate = RelayCertificate::load_or_create(dir, "127.0.0.1").expect("certificate");
    let settings = RelaySettings {
        http_bind: "127.0.0.1:0".parse().expect("address"),
        quic_bind: None,
        admit_only,
    };
    let relay = RunningRelay::spawn(&settings, &certificate)
        .await
        .expect("relay starts");
    let url = format!("http://{}", relay.http_addr().expect("http side"));
    (relay, url)
}

async fn endpoint(identity: &Identity, relay_url: &str) -> LinkEndpoint {
    let config = LinkConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        relays: vec![relay_url.to_string()],
        relay_roots: Vec::new(),
    };
    LinkEndpoint::bind(identity, &config)
        .await
        .expect("endpoint")
}

/// Dials `to` by key alone (no address: only the relay can find it).
async fn dial(from: &LinkEndpoint, to: &PublicKey) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(5), from.connect(to, &[], &[])).await {
        Ok(Ok(connection)) => {
            connection.close(0u32.into(), b"done");
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// Dials `worker` by key from `router` while `worker` accepts; the key the worker saw.
async fn reach(router: &LinkEndpoint, worker: &LinkEndpoint) -> Result<PublicKey, String> {
    // Accepting is what the link server does; here the handshake is what is tested.
    let accepting = worker.clone();
    let accepted = tokio::spawn(async move { accepting.accept_one().await });
    dial(router, &worker.key()).await?;
    accepted
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the worker accepted nothing".to_string())
}

#[tokio::test]
async fn a_key_alone_and_the_relay_are_enough_to_reach_a_worker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (relay, url) = start_relay(None, dir.path()).await;
    let (worker_id, router_id) = (Identity::from_seed([90; 32]), Identity::from_seed([91; 32]));
    let worker = endpoint(&worker_id, &url).await;
    let router = endpoint(&router_id, &url).await;
    let remote = reach(&router, &worker)
        .await
        .expect("reached by key through the relay");
    assert_eq!(
        remote,
        router_id.public(),
        "the worker sees the router's key"
    );
    router.close().await;
    worker.close().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_relay_for_listed_keys_carries_nobody_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (worker_id, router_id) = (Identity::from_seed([92; 32]), Identity::from_seed([93; 32]));
    // The router is listed, the worker is not: it cannot keep a home on this relay.
    let (relay, url) = start_relay(Some(vec![router_id.public()]), dir.path()).await;
    let worker = endpoint(&worker_id, &url).await;
    let router = endpoint(&router_id, &url).await;
    let refused = dial(&router, &worker_id.public()).await;
    assert!(
        refused.is_err(),
        "an unlisted worker is not reachable through it"
    );
    router.close().await;
    worker.close().await;
    relay.shutdown().await;

    // Listed too, the same worker is reached.
    let (relay, url) = start_relay(
        Some(vec![router_id.public(), worker_id.public()]),
        dir.path(),
    )
    .await;
    let worker = endpoint(&worker_id, &url).await;
    let router = endpoint(&router_id, &url).await;
    reach(&router, &worker)
        .await
        .expect("a listed worker is reached");
    router.close().await;
    worker.close().await;
    relay.shutdown().await;
}

#[test]
fn the_relay_certificate_is_made_once_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = RelayCertificate::load_or_create(dir.path(), "198.18.1.1").expect("made");
    let again = RelayCertificate::load_or_create(dir.path(), "198.18.1.1").expect("loaded");
    assert_eq!(first.fingerprint(), again.fingerprint());
    assert!(first.cert_path.exists());
    let other = RelayCertificate::load_or_create(dir.path(), "relay.example").expect("made");
    assert_ne!(first.fingerprint(), other.fingerprint(), "one per name");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.path().join("198_18_1_1-key.pem");
        let mode = std::fs::metadata(key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is the relay operator's only");
    }
}
