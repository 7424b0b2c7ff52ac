//! `GET /v1/models` and `GET /v1/models/{id}` through real listeners: a model counts the
//! healthy peers that serve it (an unreachable one does not count), an id may hold a
//! slash, and an id nobody serves is a 404 in OpenAI's error shape.

use std::sync::Arc;

use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{SyntheticConfig, SyntheticEngine};
use lobstah::core::protocol::Identity;
use serde_json::{Value, json};

use crate::support;

fn synthetic(models: &[&str]) -> Arc<SyntheticEngine> {
    Arc::new(SyntheticEngine::new(SyntheticConfig {
        models: models.iter().map(|m| m.to_string()).collect(),
        ..SyntheticConfig::default()
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_count_healthy_peers_and_resolve_ids_with_slashes() {
    let clock = Arc::new(SystemClock);
    let a = support::start_worker(
        Identity::from_seed([41; 32]),
        synthetic(&["synthetic", "org/model-7b"]),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    let b = support::start_worker(
        Identity::from_seed([42; 32]),
        synthetic(&["synthetic"]),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    // Serves "synthetic" too, until it stops (below).
    let gone = support::start_worker(
        Identity::from_seed([43; 32]),
        synthetic(&["synthetic"]),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    let (gone_key, gone_url) = (gone.pubkey, gone.url.clone());
    let router = support::start_router(
        Identity::from_seed([40; 32]),
        support::memory_db(),
        &[
            (a.pubkey, a.url.clone()),
            (b.pubkey, b.url.clone()),
            (gone_key, gone_url),
        ],
        clock,
        |_| {},
    )
    .await;
    let http = support::client();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("{}{path}", router.url));
        async move {
            let response = http.get(url).send().await.expect("the router answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };

    let counted = || async {
        let (status, list) = get("/v1/models").await;
        assert_eq!(status, 200, "{list}");
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().unwrap().to_string(),
                    m["peers"].as_u64().unwrap(),
                )
            })
            .collect::<Vec<(String, u64)>>()
    };
    let models = |synthetic| {
        vec![
            ("org/model-7b".to_string(), 1),
            ("synthetic".to_string(), synthetic),
        ]
    };
    assert_eq!(counted().await, models(3));
    // Once a peer stops answering, what it listed no longer counts.
    gone.shutdown.cancel();
    drop(gone);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    router.service.refresh_capacity(true).await;
    assert_eq!(counted().await, models(2));

    let (status, one) = get("/v1/models/org/model-7b").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        one,
        json!({"id": "org/model-7b", "object": "model", "created": 0, "owned_by": "lobstah",
               "peers": 1, "capabilities": ["chat", "embeddings"]})
    );
    let (status, escaped) = get("/v1/models/org%2Fmodel-7b").await;
    assert_eq!(
        (status, &escaped["id"]),
        (200, &json!("org/model-7b")),
        "{escaped}"
    );

    let (status, missing) = get("/v1/models/no-such-model").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["type"], "model_not_found", "{missing}");
}
