//! `lobstah jobs …` against a router on a real listener: submit from flags and from a
//! file (with metadata and an idempotency key), get --wait, get --json, list, cancel, and
//! finding the router through the running node's node.json.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use lobstah::core::clock::SystemClock;
use lobstah::core::control::{NodeInfo, files};
use lobstah::core::engine::{SyntheticConfig, SyntheticEngine};
use lobstah::core::protocol::Identity;
use serde_json::Value;

/// Runs the CLI off the async threads; returns (exit ok, stdout, stderr).
async fn lobstah(home: &Path, args: &[&str]) -> (bool, String, String) {
    let (home, args): (std::path::PathBuf, Vec<String>) = (
        home.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_lobstah"))
            .arg("--home")
            .arg(&home)
            .args(&args)
            .env("LOBSTAH_LOG", "warn")
            .env_remove("LOBSTAH_ROUTER_URL")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_commands_submit_wait_list_and_cancel() {
    // One job at a time, a second each token: the second job waits long enough to cancel.
    let slow = Arc::new(SyntheticEngine::new(SyntheticConfig {
        models: vec!["synthetic".into()],
        tokens_per_second: 50.0,
    }));
    let worker = support::start_worker_with(
        Identity::from_seed([91; 32]),
        slow,
        support::memory_db(),
        Arc::new(SystemClock),
        |c| c.concurrency = 1,
    )
    .await;
    let router = support::start_router(
        Identity::from_seed([92; 32]),
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    // The node's run file names the router: no --router needed.
    let home = tempfile::tempdir().unwrap();
    files::write_node_info(
        home.path(),
        &NodeInfo {
            pid: std::process::id(),
            pubkey: Identity::from_seed([92; 32]).public().to_string(),
            control_url: "http://127.0.0.1:9".into(),
            router_url: Some(router.url.clone()),
            worker_url: Some(worker.url.clone()),
            started_at_ms: 0,
            data_dir: home.path().to_path_buf(),
        },
    )
    .unwrap();
    let h = home.path();

    let (ok, out, err) = lobstah(
        h,
        &[
            "jobs",
            "submit",
            "--model",
            "synthetic",
            "--prompt",
            "hello there",
            "--meta",
            "batch=7",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let first = out.trim().to_string();
    assert_eq!(first.len(), 36, "prints the id: {out}");
    assert!(err.contains("lobstah jobs get"), "{err}");

    let (ok, out, err) = lobstah(h, &["jobs", "get", &first, "--wait", "--timeout", "20"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("job {first} done · synthetic · served by")),
        "{out}"
    );
    assert!(out.contains("tokens credited"), "{out}");
    assert!(out.lines().count() >= 2, "the answer follows: {out}");
    let (_, out, _) = lobstah(h, &["jobs", "get", &first, "--json"]).await;
    let job: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (job["status"].as_str(), job["metadata"]["batch"].as_str()),
        (Some("done"), Some("7"))
    );

    // From a file, with a key: the same key gives the same job.
    let file = h.join("job.json");
    std::fs::write(
        &file,
        r#"{"model":"synthetic","max_tokens":500,"messages":[{"role":"user","content":"long one"}]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (ok, out, _) = lobstah(
        h,
        &[
            "jobs",
            "submit",
            path,
            "--key",
            "k-1",
            "--router",
            &router.url,
        ],
    )
    .await;
    assert!(ok);
    let second = out.trim().to_string();
    let (ok, out, err) = lobstah(h, &["jobs", "submit", path, "--key", "k-1"]).await;
    assert!(ok);
    assert_eq!(out.trim(), second);
    assert!(err.contains("already submitted"), "{err}");
    // The third waits behind the long second one: it can be cancelled.
    let (_, out, _) = lobstah(
        h,
        &[
            "jobs",
            "submit",
            "--model",
            "synthetic",
            "--prompt",
            "later",
        ],
    )
    .await;
    let third = out.trim().to_string();
    let (ok, out, err) = lobstah(h, &["jobs", "cancel", &third]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("job {third} cancelled"));
    let (ok, out, _) = lobstah(h, &["jobs", "get", &third, "--wait"]).await;
    assert!(!ok, "a cancelled job exits 1: {out}");

    let (ok, out, _) = lobstah(h, &["jobs", "list"]).await;
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three jobs: {out}");
    assert!(
        lines[1].starts_with(&third) && lines[1].contains("cancelled"),
        "{out}"
    );
    assert!(
        lines[3].starts_with(&first) && lines[3].contains("batch=7"),
        "{out}"
    );
    let (_, out, _) = lobstah(h, &["jobs", "list", "--status", "done", "--json"]).await;
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Refusals come back as the router's sentence, exit 1.
    let (ok, _, err) = lobstah(h, &["jobs", "cancel", &first]).await;
    assert!(
        !ok && err.contains("409") && err.contains("already ended"),
        "{err}"
    );
    let (ok, _, err) = lobstah(h, &["jobs", "get", "no-such-job"]).await;
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = lobstah(h, &["jobs", "list", "--router", "http://127.0.0.1:9"]).await;
    assert!(!ok && err.contains("cannot reach the router"), "{err}");
    router.stop().await;
}
