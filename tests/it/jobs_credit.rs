//! A job's receipt is ledgered at the router exactly once, however late its result is
//! fetched: here ten minutes after the worker finished (a hand-moved clock), twice the
//! window a chat receipt gets, and then again and again, concurrently too.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::{Clock, ManualClock, SystemClock};
use lobstah::core::engine::{SyntheticConfig, SyntheticEngine};
use lobstah::core::jobs::JobStatus;
use lobstah::core::protocol::{Identity, RECEIPT_SKEW_MS};
use support::jobs::{get, job_body, submit};

const TEN_MINUTES: u64 = 10 * 60 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_fetched_ten_minutes_late_is_credited_once() {
    let clock = ManualClock::new(SystemClock.now_ms());
    let engine = Arc::new(SyntheticEngine::new(SyntheticConfig::default()));
    let worker = support::start_worker(
        Identity::from_seed([61; 32]),
        engine,
        support::memory_db(),
        Arc::new(clock.clone()),
    )
    .await;
    let me = Identity::from_seed([62; 32]);
    // No background collection: the client's late GET is what fetches the result.
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        Arc::new(clock.clone()),
        |c| c.collect_jobs = false,
    )
    .await;
    let client = support::client();

    let (status, job) = submit(
        &client,
        &router.url,
        &job_body("synthetic", "late"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["servedBy"], worker.pubkey.to_string());
    let id = job["id"].as_str().unwrap().to_string();
    let w = worker.worker.clone();
    support::eventually(
        "the worker finishes the job",
        Duration::from_secs(10),
        || w.job_counts().done == 1,
    )
    .await;
    let completed_at = clock.now_ms();
    assert_eq!(
        router.ledger.totals().unwrap().receipts,
        0,
        "nothing fetched yet"
    );

    clock.advance(TEN_MINUTES);
    let (status, done) = get(&client, &router.url, &id, None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["receipt"]["status"], "credited", "{done}");
    let tokens = done["receipt"]["tokens"].as_u64().unwrap();
    assert!(tokens > 0);
    assert_eq!(done["result"]["object"], "chat.completion", "{done}");
    assert_eq!(done["metadata"]["text"], "late");
    // The chat rule would have refused it: completed more than 5 minutes before now.
    assert!(clock.now_ms() - completed_at > RECEIPT_SKEW_MS);

    // Again, and eight at once: the job is credited, nothing more is appended.
    let again: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, id) = (client.clone(), router.url.clone(), id.clone());
            tokio::spawn(async move { get(&client, &url, &id, None).await })
        })
        .collect();
    for handle in again {
        let (status, job) = handle.await.unwrap();
        assert_eq!(
            (status, &job["receipt"]["status"]),
            (200, &"credited".into()),
            "{job}"
        );
    }
    let spent = router.ledger.balance(&me.public()).unwrap();
    assert_eq!((spent.spent, spent.receipts), (tokens, 1));
    assert_eq!(router.ledger.totals().unwrap().receipts, 1);

    // The worker agrees, and once it is gone the router still answers from its own row.
    worker.worker.flush_ledger().await;
    assert_eq!(
        worker.ledger.balance(&worker.pubkey).unwrap().earned,
        tokens
    );
    worker.shutdown.cancel();
    clock.advance(TEN_MINUTES);
    let (status, later) = get(&client, &router.url, &id, None).await;
    assert_eq!(
        (status, later["status"].as_str()),
        (200, Some("done")),
        "{later}"
    );
    assert_eq!(later["result"], done["result"]);
    assert_eq!(router.ledger.totals().unwrap().receipts, 1);
    assert_eq!(router.service.jobs().counts().get(JobStatus::Done), 1);
    router.stop().await;
}
