//! OpenAiEngine against FakeOpenAi: the body passes through, usage is forced on the
//! wire and hidden again unless asked for, missing usage is estimated.

use std::time::{Duration, Instant};

use lobstah::core::engine::{Engine, OpenAiEngine, Usage};
use lobstah::testkit::{FakeConfig, FakeOpenAi};
use serde_json::{Value, json};

use super::{collect, request, within};

fn engine(fake: &FakeOpenAi) -> OpenAiEngine {
    OpenAiEngine::new(fake.url(), None).unwrap()
}

/// A request with everything a client may send, including fields nobody knows.
fn rich(stream: Option<bool>) -> Value {
    let mut body = json!({
        "model": "fake-model",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "what to wear"}]}],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "now",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto",
        "response_format": {"type": "text"},
        "seed": 7,
        "temperature": 0,
        "x_vendor_extension": {"nested": [1, 2, {"k": null}]},
    });
    if let Some(s) = stream {
        body["stream"] = json!(s);
    }
    body
}

const WORDS_IN_RICH: u64 = 3;

#[tokio::test]
async fn whole_answer_body_passes_through_intact() {
    let fake = within(FakeOpenAi::start()).await.unwrap();
    let answer = within(engine(&fake).chat(request(rich(None))))
        .await
        .unwrap();
    assert_eq!(
        fake.last_body().unwrap(),
        rich(None),
        "the engine must see the client's body, untouched"
    );
    assert_eq!(fake.requests()[0].path, "/v1/chat/completions");
    assert_eq!(
        answer.body["id"], "chatcmpl-fake",
        "the engine's own answer is returned"
    );
    assert_eq!(
        answer.body["choices"][0]["message"]["content"],
        "Hello from the fake engine."
    );
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: WORDS_IN_RICH,
            output_tokens: 5,
            estimated: false
        }
    );

    within(engine(&fake).chat(request(rich(Some(false)))))
        .await
        .unwrap();
    assert_eq!(fake.last_body().unwrap(), rich(Some(false)));
}

#[tokio::test]
async fn stream_forces_usage_on_the_wire_and_hides_it_from_the_client() {
    let fake = within(FakeOpenAi::start()).await.unwrap();
    let got = collect(
        within(engine(&fake).chat_stream(request(rich(Some(true)))))
            .await
            .unwrap(),
    )
    .await;
    assert!(got.error.is_none(), "{:?}", got.error);

    let mut sent = fake.last_body().unwrap();
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    sent.as_object_mut().unwrap().shift_remove("stream_options");
    assert_eq!(sent, rich(Some(true)), "everything else passes through");

    assert_eq!(got.text(), "Hello from the fake engine.");
    assert_eq!(got.chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(got.finish_reason(), Some("stop"));
    assert!(
        got.usage_chunks().is_empty(),
        "the client did not ask for the usage chunk"
    );
    assert!(
        got.chunks.iter().all(|c| c.get("usage").is_none()),
        "nor for the usage: null OpenAI adds to every chunk with include_usage"
    );
    assert_eq!(
        got.usage,
        Some(Usage {
            input_tokens: WORDS_IN_RICH,
            output_tokens: 5,
            estimated: false
        })
    );
}

#[tokio::test]
async fn stream_shows_usage_chunk_when_asked_and_keeps_other_options() {
    let fake = within(FakeOpenAi::start()).await.unwrap();
    let mut body = rich(Some(true));
    body["stream_options"] = json!({"include_usage": true, "continuous_usage_stats": false});
    let got = collect(
        within(engine(&fake).chat_stream(request(body)))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        fake.last_body().unwrap()["stream_options"],
        json!({"include_usage": true, "continuous_usage_stats": false})
    );
    let usage_chunks = got.usage_chunks();
    assert_eq!(usage_chunks.len(), 1);
    assert_eq!(usage_chunks[0]["usage"]["prompt_tokens"], WORDS_IN_RICH);
    let untouched = got.chunks.iter().all(|c| c.get("usage").is_some());
    assert!(untouched, "chunks as the engine sent them");
    assert_eq!(got.usage.unwrap().output_tokens, 5);
}

#[tokio::test]
async fn missing_usage_is_estimated() {
    let fake = within(FakeOpenAi::start_with(
        FakeConfig::default().without_usage(),
    ))
    .await
    .unwrap();
    let e = engine(&fake);
    // "what to wear" = 12 chars → 3 tokens; the 27-char reply → 7.
    let want = Usage {
        input_tokens: 3,
        output_tokens: 7,
        estimated: true,
    };
    let answer = within(e.chat(request(rich(None)))).await.unwrap();
    assert_eq!(answer.usage, want);
    assert!(
        answer.body.get("usage").is_none(),
        "the engine's body is not rewritten"
    );
    let got = collect(
        within(e.chat_stream(request(rich(Some(true)))))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.usage, Some(want));
}

#[tokio::test]
async fn tool_call_answers_pass_through() {
    let config = FakeConfig::default().with_tool_calls(json!({"city": "Oslo"}));
    let fake = within(FakeOpenAi::start_with(config)).await.unwrap();
    let answer = within(engine(&fake).chat(request(rich(None))))
        .await
        .unwrap();
    let call = &answer.body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(
        call["function"],
        json!({"name": "weather", "arguments": "{\"city\":\"Oslo\"}"})
    );

    let got = collect(
        within(engine(&fake).chat_stream(request(rich(Some(true)))))
            .await
            .unwrap(),
    )
    .await;
    let args: String = got
        .chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(args, "{\"city\":\"Oslo\"}");
    assert_eq!(got.finish_reason(), Some("tool_calls"));
}

#[tokio::test]
async fn base_url_with_v1_api_key_and_models() {
    let fake = within(FakeOpenAi::start_with(
        FakeConfig::default().with_models(["m1", "m2"]),
    ))
    .await
    .unwrap();
    let e = OpenAiEngine::new(&format!("{}/v1/", fake.url()), Some("sk-test".into())).unwrap();
    assert_eq!(e.kind(), "openai");
    assert_eq!(within(e.list_models()).await.unwrap(), ["m1", "m2"]);
    let mut body = rich(None);
    body["model"] = json!("m2");
    within(e.chat(request(body))).await.unwrap();
    assert_eq!(
        fake.requests()[0].authorization.as_deref(),
        Some("Bearer sk-test")
    );
    let unknown = within(e.chat(request(rich(None)))).await.unwrap_err();
    assert!(unknown.is_client_error(), "{unknown:?}");
}

#[tokio::test]
async fn chunks_arrive_paced() {
    let delay = Duration::from_millis(15);
    let config = FakeConfig::default()
        .with_reply("a b c d")
        .with_chunk_delay(delay);
    let fake = within(FakeOpenAi::start_with(config)).await.unwrap();
    let started = Instant::now();
    let got = collect(
        within(engine(&fake).chat_stream(request(rich(Some(true)))))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.text(), "a b c d");
    // Role chunk, 4 tokens, finish chunk and [DONE]: 6 pauses between 7 writes.
    assert!(started.elapsed() >= delay * 6, "{:?}", started.elapsed());
}

#[tokio::test]
async fn sse_cut_anywhere_across_writes() {
    for size in [1, 7, 4096] {
        let fake = within(FakeOpenAi::start_with(
            FakeConfig::default().with_write_size(size),
        ))
        .await
        .unwrap();
        let got = collect(
            within(engine(&fake).chat_stream(request(rich(Some(true)))))
                .await
                .unwrap(),
        )
        .await;
        assert!(got.error.is_none(), "write size {size}: {:?}", got.error);
        assert_eq!(
            got.text(),
            "Hello from the fake engine.",
            "write size {size}"
        );
        assert!(!got.usage.unwrap().estimated);
    }
}
