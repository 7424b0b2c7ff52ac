//! The synthetic engine: determinism, token counts, pace and its labelling.

use std::time::Instant;

use lobstah::core::engine::{Engine, EngineError, SyntheticConfig, SyntheticEngine, Usage};
use serde_json::{Value, json};

use super::{collect, request, within};

fn ask(content: &str, extra: Value) -> lobstah::core::engine::ChatRequest {
    let mut body =
        json!({"model": "synthetic", "messages": [{"role": "user", "content": content}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    request(body)
}

#[tokio::test]
async fn same_messages_same_text() {
    let e = SyntheticEngine::default();
    let a = within(e.chat(ask("tell me a story", json!({}))))
        .await
        .unwrap();
    let b = within(e.chat(ask("tell me a story", json!({"temperature": 1.5}))))
        .await
        .unwrap();
    let c = within(e.chat(ask("tell me another", json!({}))))
        .await
        .unwrap();
    let text = |r: &lobstah::core::engine::ChatResponse| {
        r.body["choices"][0]["message"]["content"].clone()
    };
    assert_eq!(text(&a), text(&b));
    assert_ne!(text(&a), text(&c));
    assert_ne!(a.body["id"], b.body["id"], "each answer has its own id");
    assert_eq!(a.body["system_fingerprint"], "lobstah-synthetic");
    assert_eq!(a.body["model"], "synthetic");
    assert_eq!(e.kind(), "synthetic");
    // Default length, ended by us rather than by the client's limit.
    assert_eq!(
        a.usage,
        Usage {
            input_tokens: 4,
            output_tokens: 64,
            estimated: false
        }
    );
    assert_eq!(text(&a).as_str().unwrap().split(' ').count(), 64);
    assert_eq!(a.body["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn stream_is_one_token_per_chunk_and_matches_the_whole_answer() {
    let e = SyntheticEngine::default();
    let whole = within(e.chat(ask("count", json!({"max_tokens": 10}))))
        .await
        .unwrap();
    let got = collect(
        within(e.chat_stream(ask(
            "count",
            json!({"stream": true, "max_completion_tokens": 10,
            "stream_options": {"include_usage": true}}),
        )))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        got.text(),
        whole.body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
    );
    let content_chunks = got
        .chunks
        .iter()
        .filter(|c| c.pointer("/choices/0/delta/content").is_some())
        .count();
    assert_eq!(content_chunks, 10);
    assert_eq!(got.chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        got.chunks
            .iter()
            .all(|c| c["system_fingerprint"] == "lobstah-synthetic")
    );
    assert_eq!(got.finish_reason(), Some("length"));
    assert_eq!(got.usage_chunks().len(), 1);
    assert_eq!(
        got.usage,
        Some(Usage {
            input_tokens: 1,
            output_tokens: 10,
            estimated: false
        })
    );
}

#[tokio::test]
async fn zero_tokens_and_no_usage_chunk_unless_asked() {
    let e = SyntheticEngine::default();
    let got = collect(
        within(e.chat_stream(ask("x", json!({"max_tokens": 0}))))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.text(), "");
    assert!(got.usage_chunks().is_empty());
    assert_eq!(got.usage.unwrap().output_tokens, 0);
}

#[tokio::test]
async fn rate_zero_is_fast_and_a_rate_is_kept() {
    let e = SyntheticEngine::default();
    let started = Instant::now();
    for _ in 0..20 {
        let got = collect(
            within(e.chat_stream(ask("go", json!({"max_tokens": 1000}))))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got.usage.unwrap().output_tokens, 1000);
    }
    assert!(
        started.elapsed().as_secs() < 5,
        "20k unpaced tokens took {:?}",
        started.elapsed()
    );

    let paced = SyntheticEngine::new(SyntheticConfig {
        tokens_per_second: 200.0,
        ..Default::default()
    });
    let started = Instant::now();
    let got = collect(
        within(paced.chat_stream(ask("go", json!({"max_tokens": 10}))))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.usage.unwrap().output_tokens, 10);
    assert!(
        started.elapsed().as_millis() >= 45,
        "10 tokens at 200/s took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    within(paced.chat(ask("go", json!({"max_tokens": 10}))))
        .await
        .unwrap();
    assert!(
        started.elapsed().as_millis() >= 45,
        "whole answer paced too: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn models_are_configurable_and_others_refused() {
    let e = SyntheticEngine::new(SyntheticConfig {
        models: vec!["synthetic-a".into(), "synthetic-b".into()],
        ..Default::default()
    });
    assert_eq!(
        within(e.list_models()).await.unwrap(),
        ["synthetic-a", "synthetic-b"]
    );
    let err = within(e.chat(ask("hi", json!({})))).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Status { status: 404, .. }),
        "{err:?}"
    );
    let mut r = ask("hi", json!({}));
    r.model = "synthetic-b".into();
    assert_eq!(
        within(e.chat(r)).await.unwrap().body["model"],
        "synthetic-b"
    );
}
