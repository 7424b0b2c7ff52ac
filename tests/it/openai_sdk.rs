//! The official OpenAI Python SDK against the router, through workers whose engines are
//! fakes speaking the real Ollama NDJSON and OpenAI SSE wire formats over real HTTP.
//! Asserts the content, that a tools request reaches the engine intact, and that router
//! and worker ledgers hold the same receipts with matching balances.

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;

use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{OllamaEngine, OpenAiEngine};
use lobstah::core::protocol::Identity;
use lobstah::testkit::{FakeConfig, FakeOllama, FakeOpenAi};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_through_router_and_workers() {
    support::python::require_module("openai");
    let weather = json!({"city": "Paris", "unit": "celsius"});
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
    let w1 = support::start_worker(
        Identity::from_seed([11; 32]),
        Arc::new(OllamaEngine::new(ollama.url()).unwrap()),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    let w2 = support::start_worker(
        Identity::from_seed([12; 32]),
        Arc::new(OpenAiEngine::new(openai.url(), None).unwrap()),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    let me = Identity::from_seed([10; 32]);
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(w1.pubkey, w1.url.clone()), (w2.pubkey, w2.url.clone())],
        clock,
        |_| {},
    )
    .await;

    let base = format!("{}/v1", router.url);
    for (model, reply, worker) in [
        ("llama3.1:8b", "Hello from the fake Ollama", &w1),
        ("qwen2.5-7b", "Hello from the fake OpenAI server", &w2),
    ] {
        let out = support::python::run("sdk_client.py", vec![base.clone(), model.into()]).await;
        assert!(
            out.status.success(),
            "sdk client failed for {model}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value = serde_json::from_slice(&out.stdout).expect("client prints JSON");
        assert_eq!(seen["whole"]["content"], reply, "{seen}");
        assert_eq!(seen["whole"]["served_by"], worker.pubkey.to_string());
        assert!(
            seen["whole"]["completion_tokens"].as_u64().unwrap() > 0,
            "{seen}"
        );
        assert_eq!(seen["stream"]["content"], reply, "{seen}");
        assert_eq!(seen["stream"]["finish_reason"], "stop", "{seen}");
        assert_eq!(seen["tools"]["name"], "get_weather", "{seen}");
        assert_eq!(seen["tools"]["arguments"], weather, "{seen}");
        assert_eq!(seen["tools"]["finish_reason"], "tool_calls", "{seen}");
        // models.list and models.retrieve: both models, each served by its one peer.
        assert_eq!(
            seen["models"]["listed"],
            json!(["llama3.1:8b", "qwen2.5-7b"]),
            "{seen}"
        );
        assert_eq!(
            seen["models"]["retrieved"],
            json!({"id": model, "owned_by": "lobstah", "peers": 1, "capabilities": ["chat", "embeddings"]}),
            "{seen}"
        );
        assert_eq!(seen["models"]["missing"]["status"], 404, "{seen}");
    }

    // The tools request reached each engine intact: verbatim for the OpenAI-compatible
    // engine (unknown fields too), translated but complete for Ollama.
    let tools_sent = json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }]);
    let at_openai = openai
        .bodies()
        .into_iter()
        .find(|b| b.get("tools").is_some())
        .expect("tools request recorded");
    assert_eq!(at_openai["tools"], tools_sent);
    assert_eq!(at_openai["tool_choice"], "auto");
    assert_eq!(at_openai["seed"], 7);
    assert_eq!(
        at_openai["x_lobstah_test"],
        json!({"passes": ["through", 1]})
    );
    let at_ollama = ollama
        .bodies()
        .into_iter()
        .find(|b| b.get("tools").is_some())
        .expect("tools request recorded");
    assert_eq!(at_ollama["tools"], tools_sent);
    assert_eq!(at_ollama["options"]["seed"], 7);

    // Both ledgers hold the same receipts: requester spent = workers earned.
    router.service.flush_ledger().await;
    w1.worker.flush_ledger().await;
    w2.worker.flush_ledger().await;
    let nonces = |l: &lobstah::core::ledger::Ledger| -> BTreeSet<String> {
        l.newest(1000)
            .unwrap()
            .into_iter()
            .map(|r| r.receipt.receipt().nonce.clone())
            .collect()
    };
    support::eventually(
        "router ledgered all six",
        std::time::Duration::from_secs(5),
        || router.ledger.totals().unwrap().receipts == 6,
    )
    .await;
    let at_router = nonces(&router.ledger);
    let at_workers: BTreeSet<String> = nonces(&w1.ledger)
        .union(&nonces(&w2.ledger))
        .cloned()
        .collect();
    assert_eq!(at_router.len(), 6, "three requests per model");
    assert_eq!(at_router, at_workers);
    let spent = router.ledger.balance(&me.public()).unwrap().spent;
    let earned = w1.ledger.balance(&w1.pubkey).unwrap().earned
        + w2.ledger.balance(&w2.pubkey).unwrap().earned;
    assert!(spent > 0);
    assert_eq!(spent, earned);
    assert_eq!(
        w1.ledger.balance(&me.public()).unwrap().spent
            + w2.ledger.balance(&me.public()).unwrap().spent,
        spent
    );
    router.stop().await;
}
