//! Every API the router speaks, driven by the official client libraries as users run
//! them: the OpenAI Python and Node SDKs (chat, embeddings, completions, responses), the
//! Anthropic Python SDK (messages) and the `ollama` Python client, through workers whose
//! engines are the fake Ollama and OpenAI servers (real wire formats over real HTTP) and
//! the synthetic engine. Tool calls go through each API and come back in its shape, and
//! each request leaves one receipt on both sides.

use crate::support;

use std::collections::BTreeSet;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{OllamaEngine, OpenAiEngine, SyntheticConfig, SyntheticEngine};
use lobstah::core::ledger::Ledger;
use lobstah::core::protocol::Identity;
use lobstah::testkit::{FakeConfig, FakeOllama, FakeOpenAi, fake_vector};
use serde_json::{Value, json};

fn parsed(what: &str, out: Output) -> Value {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what} printed no JSON: {e}"))
}

fn nonces(ledger: &Ledger) -> BTreeSet<String> {
    ledger
        .newest(10_000)
        .unwrap()
        .into_iter()
        .map(|r| r.receipt.receipt().nonce.clone())
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_of_every_api() {
    for module in ["openai", "anthropic", "ollama"] {
        support::python::require_module(module);
    }
    support::node_js::require_packages();
    let weather = json!({"city": "Paris"});
    let ollama = FakeOllama::start_with(
        FakeConfig::default()
            .with_models(["llama3.1:8b"])
            .with_reply("Hello from the fake Ollama")
            .with_tool_calls(weather.clone()),
    )
    .await
    .unwrap();
    let openai = FakeOpenAi::start_with(
        FakeConfig::default()
            .with_models(["qwen2.5-7b"])
            .with_reply("Hello from the fake OpenAI server")
            .with_tool_calls(weather.clone()),
    )
    .await
    .unwrap();
    let clock = Arc::new(SystemClock);
    let workers = [
        support::start_worker(
            Identity::from_seed([21; 32]),
            Arc::new(OllamaEngine::new(ollama.url()).unwrap()),
            support::memory_db(),
            clock.clone(),
        )
        .await,
        support::start_worker(
            Identity::from_seed([22; 32]),
            Arc::new(OpenAiEngine::new(openai.url(), None).unwrap()),
            support::memory_db(),
            clock.clone(),
        )
        .await,
        support::start_worker(
            Identity::from_seed([23; 32]),
            Arc::new(SyntheticEngine::new(SyntheticConfig::default())),
            support::memory_db(),
            clock.clone(),
        )
        .await,
    ];
    let me = Identity::from_seed([20; 32]);
    let peers: Vec<_> = workers.iter().map(|w| (w.pubkey, w.url.clone())).collect();
    let router =
        support::start_router(me.clone(), support::memory_db(), &peers, clock, |_| {}).await;
    let v1 = format!("{}/v1", router.url);
    let mut requests = 0;
    let cases = [
        ("llama3.1:8b", Some("Hello from the fake Ollama")),
        ("qwen2.5-7b", Some("Hello from the fake OpenAI server")),
        ("synthetic", None),
    ];
    for (model, reply) in cases {
        let fake = reply.is_some();
        let args = vec![v1.clone(), model.to_string()];

        let seen = parsed(
            "openai_apis.py",
            support::python::run("openai_apis.py", args.clone()).await,
        );
        requests += seen["requests"].as_u64().unwrap();
        let e = &seen["embeddings"];
        let (hello, hi) = (floats(&e["base64"][0]), floats(&e["base64"][1]));
        assert!(
            close(&hello, &floats(&e["float"])),
            "{model}: base64 and floats agree: {e}"
        );
        assert_ne!(hello, hi, "{model}: one vector per input");
        if fake {
            let want: Vec<f64> = fake_vector("hello world")
                .iter()
                .map(|&x| f64::from(x))
                .collect();
            assert!(
                close(&hello, &want),
                "{model}: the engine's own vector: {e}"
            );
            assert_eq!(e["prompt_tokens"], 3, "{model}: the engine's count");
        } else {
            assert_eq!(hello.len(), 64, "synthetic vectors");
        }
        let c = &seen["completions"];
        let r = &seen["responses"];
        if let Some(reply) = reply {
            assert_eq!(c["whole"], reply, "{model}: {c}");
            assert_eq!(c["stream"], reply, "{model}: {c}");
            assert_eq!(r["whole"], reply, "{model}: {r}");
            assert_eq!(r["stream"], reply, "{model}: {r}");
            assert_eq!(r["completed"], reply, "{model}: {r}");
            assert_eq!(
                r["tool"],
                json!({"name": "get_weather", "arguments": weather}),
                "{model}"
            );
        } else {
            for text in [&c["whole"], &c["stream"], &r["whole"], &r["stream"]] {
                assert!(!text.as_str().unwrap().is_empty(), "{model}: {seen}");
            }
            assert_eq!(r["stream"], r["completed"], "{model}: {r}");
        }
        assert_eq!(c["finish_reason"], "stop", "{model}: {c}");
        assert!(c["whole_tokens"].as_u64().unwrap() > 0, "{model}: {c}");
        assert_eq!(r["status"], "completed", "{model}: {r}");

        let seen = parsed(
            "anthropic_client.py",
            support::python::run(
                "anthropic_client.py",
                vec![router.url.clone(), model.into()],
            )
            .await,
        );
        requests += seen["requests"].as_u64().unwrap();
        assert_eq!(seen["stream"]["text"], seen["stream"]["final"], "{seen}");
        assert!(
            seen["stream"]["output_tokens"].as_u64().unwrap() > 0,
            "{seen}"
        );
        if reply.is_none() {
            // The synthetic engine talks until it is stopped: max_tokens (64) ends it.
            assert_eq!(seen["whole"]["stop_reason"], "max_tokens", "{seen}");
            assert_eq!(seen["whole"]["output_tokens"], 64, "{seen}");
        }
        if let Some(reply) = reply {
            assert_eq!(seen["whole"]["stop_reason"], "end_turn", "{model}: {seen}");
            assert_eq!(seen["whole"]["text"], reply, "{model}: {seen}");
            assert_eq!(seen["stream"]["text"], reply, "{model}: {seen}");
            assert_eq!(
                seen["tool"],
                json!({"name": "get_weather", "input": weather, "stop_reason": "tool_use"}),
                "{model}"
            );
        }

        let seen = parsed(
            "ollama_client.py",
            support::python::run("ollama_client.py", vec![router.url.clone(), model.into()]).await,
        );
        requests += seen["requests"].as_u64().unwrap();
        assert_eq!(
            seen["listed"],
            json!(["llama3.1:8b", "qwen2.5-7b", "synthetic"]),
            "{seen}"
        );
        assert_eq!(seen["stream"]["done"], true, "{seen}");
        assert_eq!(seen["stream"]["done_reason"], "stop", "{seen}");
        assert_eq!(
            seen["whole"]["content"], seen["stream"]["content"],
            "{seen}"
        );
        assert_eq!(seen["embed"].as_array().unwrap().len(), 2, "{seen}");
        if let Some(reply) = reply {
            assert_eq!(seen["whole"]["content"], reply, "{model}: {seen}");
            assert_eq!(seen["generate"], reply, "{model}: {seen}");
            assert_eq!(
                seen["tool"],
                json!({"name": "get_weather", "arguments": weather})
            );
            let want: Vec<f64> = fake_vector("hi").iter().map(|&x| f64::from(x)).collect();
            assert!(close(&floats(&seen["embed"][1]), &want), "{seen}");
        }

        let seen = parsed(
            "openai_client.mjs",
            support::node_js::run("openai_client.mjs", args).await,
        );
        requests += seen["requests"].as_u64().unwrap();
        assert_eq!(
            seen["retrieved"],
            json!({"id": model, "peers": 1}),
            "{seen}"
        );
        assert_eq!(seen["embeddings"].as_array().unwrap().len(), 2, "{seen}");
        if let Some(reply) = reply {
            for key in [
                "whole",
                "stream",
                "completion",
                "response",
                "responseStream",
            ] {
                assert_eq!(seen[key], reply, "{model} {key}: {seen}");
            }
        }
    }

    // One receipt per routed request, the same on both sides.
    router.service.flush_ledger().await;
    for w in &workers {
        w.worker.flush_ledger().await;
    }
    support::eventually(
        "the router ledgered every request",
        Duration::from_secs(10),
        || router.ledger.totals().unwrap().receipts == requests,
    )
    .await;
    let at_workers: BTreeSet<String> = workers.iter().flat_map(|w| nonces(&w.ledger)).collect();
    assert_eq!(nonces(&router.ledger), at_workers);
    assert_eq!(at_workers.len() as u64, requests);
    let spent = router.ledger.balance(&me.public()).unwrap().spent;
    let earned: u64 = workers
        .iter()
        .map(|w| w.ledger.balance(&w.pubkey).unwrap().earned)
        .sum();
    assert_eq!(spent, earned);

    // A page in the user's browser drives none of the new endpoints: refused before
    // routing, so nothing more is spent.
    let http = reqwest::Client::new();
    for path in [
        "/v1/completions",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/messages",
        "/api/chat",
        "/api/generate",
        "/api/embed",
    ] {
        let response = http
            .post(format!("{}{path}", router.url))
            .header("origin", "http://evil.example")
            .header("content-type", "application/json")
            .body(r#"{"model":"synthetic","prompt":"hi","input":"hi","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{path}");
    }
    router.service.flush_ledger().await;
    assert_eq!(router.ledger.totals().unwrap().receipts, requests);
    router.stop().await;
}
