//! `lobstah doctor` as a user runs it, through the real binary with its home in a
//! temporary directory: beside a fake Ollama and no node (exit 0, the engine and its
//! models, "no node running"), beside nothing at all on the engine's port (exit 1,
//! unreachable, what to do), and beside a running headless node (its router's
//! endpoints at its URL, its worker's capabilities, the same facts in `--json`).

use std::path::Path;
use std::process::Output;

use lobstah::testkit::{FakeConfig, FakeOllama, unused_local_url};
use serde_json::Value;

use crate::support::bin;
use crate::support::headless::Headless;

/// Runs `lobstah ARGS` off the async runtime, so a fake engine on it keeps answering.
async fn doctor(home: &Path, args: &[&str]) -> Output {
    doctor_with(home, args, &[]).await
}

async fn doctor_with(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = bin::lobstah(home);
    command.args(args).env("LOBSTAH_LOG", "warn");
    for (var, value) in env {
        command.env(var, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("run lobstah"))
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reachable_engine_and_no_node_is_fine() {
    let home = tempfile::tempdir().unwrap();
    let models = ["llama3.2:1b", "nomic-embed-text"];
    let engine = FakeOllama::start_with(FakeConfig::default().with_models(models))
        .await
        .unwrap();
    let out = doctor(home.path(), &["--engine-url", engine.url(), "doctor"]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("ollama at {}", engine.url())),
        "{said}"
    );
    assert!(
        said.contains("reachable, models: llama3.2:1b, nomic-embed-text"),
        "{said}"
    );
    assert!(said.contains("embeddings: served"), "{said}");
    assert!(said.contains("none running on"), "{said}");
    assert!(said.contains("lobstah --headless"), "{said}");
    assert!(said.contains("ok: everything checked answers"), "{said}");

    // The same through the environment, as JSON.
    let env = [("LOBSTAH_ENGINE_URL", engine.url())];
    let out = doctor_with(home.path(), &["doctor", "--json"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["engine"]["kind"], "ollama");
    assert_eq!(report["engine"]["reachable"], true);
    assert_eq!(report["engine"]["servesEmbeddings"], true);
    assert_eq!(report["engine"]["source"], "default");
    assert_eq!(report["engine"]["url"], engine.url());
    assert_eq!(
        report["engine"]["models"],
        serde_json::json!(["llama3.2:1b", "nomic-embed-text"])
    );
    assert_eq!(report["node"], Value::Null);
    assert_eq!(report["problems"], serde_json::json!([]));
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_nobody_listens_on_is_a_problem_with_a_fix() {
    let home = tempfile::tempdir().unwrap();
    let closed = unused_local_url().unwrap();
    let out = doctor(home.path(), &["--engine-url", &closed, "doctor"]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("UNREACHABLE"), "{said}");
    assert!(
        said.contains(&format!("the ollama engine at {closed} does not answer")),
        "{said}"
    );
    assert!(said.contains("ollama serve"), "{said}");
    assert!(said.contains("LOBSTAH_ENGINE_URL"), "{said}");

    let out = doctor(home.path(), &["--engine-url", &closed, "doctor", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["engine"]["reachable"], false);
    assert!(report["engine"]["error"].is_string(), "{report}");
    assert_eq!(report["problems"].as_array().unwrap().len(), 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_a_running_node_it_lists_what_the_node_serves() {
    let home = tempfile::tempdir().unwrap();
    let node = Headless::start(home.path(), "0");
    let router = node.url("router_url");
    let worker = node.url("worker_url");
    assert!(router.starts_with("http://127.0.0.1:"), "{router}");

    // The node was started on the synthetic engine; doctor is told the same.
    let out = doctor(home.path(), &["--engine", "synthetic", "doctor"]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for path in [
        "/v1/messages",
        "/api/chat",
        "/v1/embeddings",
        "/v1/chat/completions",
    ] {
        assert!(said.contains(&format!("{router}{path}")), "{path}: {said}");
    }
    assert!(said.contains(&format!("router     {router}")), "{said}");
    assert!(said.contains(&format!("worker     {worker}")), "{said}");
    assert!(said.contains("can: chat, embeddings"), "{said}");
    assert!(
        said.contains(node.info["pubkey"].as_str().unwrap()),
        "{said}"
    );

    let out = doctor(home.path(), &["--engine", "synthetic", "doctor", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["engine"]["kind"], "synthetic");
    let n = &report["node"];
    assert_eq!(n["pubkey"], node.info["pubkey"]);
    assert_eq!(n["router"]["url"], router.as_str());
    assert_eq!(n["router"]["reachable"], true);
    assert!(n["router"]["version"].is_string(), "{n}");
    let endpoints = n["router"]["endpoints"].as_array().unwrap();
    for path in ["/v1/messages", "/api/chat"] {
        let e = endpoints
            .iter()
            .find(|e| e["path"] == path)
            .unwrap_or_else(|| panic!("{path} not in {endpoints:?}"));
        assert_eq!(e["url"], format!("{router}{path}"));
        assert_eq!(e["method"], "POST");
    }
    assert_eq!(n["worker"]["url"], worker.as_str());
    assert_eq!(n["worker"]["reachable"], true);
    assert_eq!(
        n["worker"]["capabilities"],
        serde_json::json!(["chat", "embeddings"])
    );
    assert!(!n["worker"]["models"].as_array().unwrap().is_empty(), "{n}");
    assert!(n["worker"]["queueDepth"].is_u64(), "{n}");

    // Once the node is gone, node.json is removed and doctor says none runs.
    node.terminate();
    let (code, log) = node.wait();
    assert_eq!(code, Some(0), "{log}");
    let out = doctor(home.path(), &["--engine", "synthetic", "doctor"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("none running on"), "{}", text(&out));
}
