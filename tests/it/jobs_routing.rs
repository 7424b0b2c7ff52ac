//! Jobs and the router's choices: an idempotency key names one job, the worker's
//! `/capacity` carries job counts after the fields it always had, and tiers (jobs go to
//! batch peers, chat to interactive ones, either falling back to any capable peer).

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{SyntheticConfig, SyntheticEngine};
use lobstah::core::protocol::{Identity, Tier};
use serde_json::{Value, json};
use support::jobs::{job_body, submit, wait_for};

const WAIT: Duration = Duration::from_secs(10);

fn synthetic() -> Arc<SyntheticEngine> {
    Arc::new(SyntheticEngine::new(SyntheticConfig::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_names_one_job() {
    let worker = support::start_worker(
        Identity::from_seed([78; 32]),
        synthetic(),
        support::memory_db(),
        Arc::new(SystemClock),
    )
    .await;
    let router = support::start_router(
        Identity::from_seed([79; 32]),
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let client = support::client();
    let body = job_body("synthetic", "once");
    let (first_status, first) =
        submit(&client, &router.url, &body, None, Some("batch-7/item-1")).await;
    let (again_status, again) =
        submit(&client, &router.url, &body, None, Some("batch-7/item-1")).await;
    assert_eq!((first_status, again_status), (202, 200));
    assert_eq!(first["id"], again["id"]);
    let (_, other) = submit(&client, &router.url, &body, None, Some("batch-7/item-2")).await;
    assert_ne!(other["id"], first["id"]);
    for id in [&first["id"], &other["id"]] {
        wait_for(
            &client,
            &router.url,
            id.as_str().unwrap(),
            None,
            "done",
            WAIT,
        )
        .await;
    }
    assert_eq!(worker.worker.job_counts().done, 2, "two keys, two jobs");
    let list: Value = client
        .get(format!("{}/v1/jobs?status=done&limit=10", router.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| &j["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&other["id"], &first["id"]],
        "newest first: {list}"
    );
    assert_eq!(list["counts"]["done"], 2);
    for (url, line) in [
        (&worker.url, "lobstah_worker_jobs{status=\"done\"} 2"),
        (&router.url, "lobstah_router_jobs{status=\"done\"} 2"),
        (
            &router.url,
            "lobstah_router_requests_total{outcome=\"job_placed\"} 2",
        ),
    ] {
        let text = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(line), "{line} in {text}");
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_reports_job_counts_after_the_fields_it_always_had() {
    let worker = support::start_worker(
        Identity::from_seed([80; 32]),
        synthetic(),
        support::memory_db(),
        Arc::new(SystemClock),
    )
    .await;
    let client = support::client();
    let text = client
        .get(format!("{}/capacity", worker.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let old = format!(
        r#"{{"pubkey":"{}","models":["synthetic"],"queueDepth":0,"tier":"interactive","concurrency":4,"#,
        worker.pubkey
    );
    assert!(text.starts_with(&old), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["jobs"],
        json!({"queued": 0, "running": 0, "done": 0, "error": 0, "cancelled": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_go_to_batch_peers_and_chat_to_interactive_ones_either_falling_back() {
    let start = |seed: u8, tier: Tier| {
        support::start_worker_with(
            Identity::from_seed([seed; 32]),
            synthetic(),
            support::memory_db(),
            Arc::new(SystemClock),
            move |c| c.tier = tier,
        )
    };
    let batch = start(81, Tier::Batch).await;
    let interactive = start(82, Tier::Interactive).await;
    let router = support::start_router(
        Identity::from_seed([83; 32]),
        support::memory_db(),
        &[
            (interactive.pubkey, interactive.url.clone()),
            (batch.pubkey, batch.url.clone()),
        ],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let client = support::client();
    for i in 0..4 {
        let (status, job) = submit(
            &client,
            &router.url,
            &job_body("synthetic", &format!("j{i}")),
            None,
            None,
        )
        .await;
        assert_eq!(
            (status, &job["servedBy"]),
            (202, &batch.pubkey.to_string().into()),
            "{job}"
        );
        let chat = client
            .post(format!("{}/v1/chat/completions", router.url))
            .json(&support::chat_body("synthetic", false))
            .send()
            .await
            .unwrap();
        assert_eq!(
            chat.headers()["x-lobstah-served-by"],
            interactive.pubkey.to_string().as_str()
        );
    }
    // Without a batch peer, jobs go to the interactive one.
    batch.shutdown.cancel();
    let mut fell_back = false;
    for i in 0..6 {
        let (status, job) = submit(
            &client,
            &router.url,
            &job_body("synthetic", &format!("f{i}")),
            None,
            None,
        )
        .await;
        assert_eq!(status, 202, "{job}");
        if job["servedBy"] == interactive.pubkey.to_string().as_str() {
            fell_back = true;
            break;
        }
    }
    assert!(fell_back, "jobs fall back to the interactive peer");
    router.stop().await;
}
