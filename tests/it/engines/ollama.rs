//! OllamaEngine against FakeOllama: translation both ways, over real NDJSON streams.

use lobstah::core::engine::{Engine, EngineError, OllamaEngine, Usage};
use lobstah::testkit::{FakeConfig, FakeOllama, TOOL_CALL_TOKENS};
use serde_json::{Value, json};

use super::{collect, request, within};

fn engine(fake: &FakeOllama) -> OllamaEngine {
    OllamaEngine::new(fake.url()).unwrap()
}

fn hello(extra: Value) -> Value {
    let mut body = json!({"model": "fake-model", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say hello"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

const WORDS_IN_HELLO: u64 = 4;

#[tokio::test]
async fn whole_answer() {
    let fake = within(FakeOllama::start()).await.unwrap();
    let answer = within(engine(&fake).chat(request(hello(json!({})))))
        .await
        .unwrap();
    let b = &answer.body;
    assert_eq!(b["object"], "chat.completion");
    assert!(b["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(b["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(b["model"], "fake-model");
    assert_eq!(
        b["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello from the fake engine."})
    );
    assert_eq!(b["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        b["usage"],
        json!({"prompt_tokens": WORDS_IN_HELLO, "completion_tokens": 5, "total_tokens": 9})
    );
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: WORDS_IN_HELLO,
            output_tokens: 5,
            estimated: false
        }
    );
    assert_eq!(fake.last_body().unwrap()["stream"], false);
}

#[tokio::test]
async fn streamed_answer() {
    let fake = within(FakeOllama::start()).await.unwrap();
    let stream = within(engine(&fake).chat_stream(request(hello(json!({"stream": true})))))
        .await
        .unwrap();
    let got = collect(stream).await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.text(), "Hello from the fake engine.");
    assert_eq!(
        got.chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "Hello"})
    );
    let ids: Vec<&Value> = got.chunks.iter().map(|c| &c["id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one id for the whole stream"
    );
    assert!(
        got.chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let last = got.chunks.last().unwrap();
    assert_eq!(
        last["choices"][0],
        json!({"index": 0, "delta": {}, "finish_reason": "stop"})
    );
    assert!(
        got.usage_chunks().is_empty(),
        "client did not ask for usage"
    );
    assert_eq!(
        got.usage,
        Some(Usage {
            input_tokens: WORDS_IN_HELLO,
            output_tokens: 5,
            estimated: false
        })
    );
    assert_eq!(fake.last_body().unwrap()["stream"], true);
}

#[tokio::test]
async fn streamed_usage_chunk_when_asked() {
    let fake = within(FakeOllama::start()).await.unwrap();
    let body = hello(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let got = collect(
        within(engine(&fake).chat_stream(request(body)))
            .await
            .unwrap(),
    )
    .await;
    let usage_chunks = got.usage_chunks();
    assert_eq!(usage_chunks.len(), 1);
    assert_eq!(usage_chunks[0]["usage"]["completion_tokens"], 5);
    // The usage chunk comes after the finishing chunk.
    assert_eq!(got.chunks.last().unwrap()["choices"], json!([]));
}

#[tokio::test]
async fn ndjson_cut_anywhere_across_writes() {
    // 3-byte writes split every line; 4 KiB writes put many lines in one read.
    for size in [1, 3, 4096] {
        let config = FakeConfig::default()
            .with_reply("one two three four five six")
            .with_write_size(size);
        let fake = within(FakeOllama::start_with(config)).await.unwrap();
        let got = collect(
            within(engine(&fake).chat_stream(request(hello(json!({})))))
                .await
                .unwrap(),
        )
        .await;
        assert!(got.error.is_none(), "write size {size}: {:?}", got.error);
        assert_eq!(
            got.text(),
            "one two three four five six",
            "write size {size}"
        );
        assert_eq!(got.usage.unwrap().output_tokens, 6);
    }
}

#[tokio::test]
async fn options_and_format_reach_ollama() {
    let fake = within(FakeOllama::start()).await.unwrap();
    let body = hello(
        json!({"temperature": 0.3, "top_p": 0.8, "seed": 42, "stop": ["\n\n"],
        "max_tokens": 2, "frequency_penalty": 0.1, "presence_penalty": 0.2,
        "response_format": {"type": "json_object"}}),
    );
    let answer = within(engine(&fake).chat(request(body))).await.unwrap();
    let sent = fake.last_body().unwrap();
    assert_eq!(
        sent["options"],
        json!({"temperature": 0.3, "top_p": 0.8, "seed": 42, "frequency_penalty": 0.1,
            "presence_penalty": 0.2, "stop": ["\n\n"], "num_predict": 2})
    );
    assert_eq!(sent["format"], "json");
    assert!(sent.get("max_tokens").is_none() && sent.get("temperature").is_none());
    // The fake honours num_predict, so the answer is cut: finish_reason length.
    assert_eq!(
        answer.body["choices"][0]["message"]["content"],
        "Hello from"
    );
    assert_eq!(answer.body["choices"][0]["finish_reason"], "length");

    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let body = hello(json!({"max_completion_tokens": 9,
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}}));
    within(engine(&fake).chat(request(body))).await.unwrap();
    let sent = fake.last_body().unwrap();
    assert_eq!(sent["format"], schema);
    assert_eq!(sent["options"], json!({"num_predict": 9}));
}

fn tool_conversation(stream: bool) -> Value {
    json!({"model": "fake-model", "stream": stream,
        "tools": [{"type": "function", "function": {"name": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_a", "type": "function",
                "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_a", "content": "rain"},
            {"role": "user", "content": "and in Paris?"}]})
}

#[tokio::test]
async fn tool_calls_translated_both_ways() {
    let fake = within(FakeOllama::start_with(
        FakeConfig::default().with_tool_calls(json!({"city": "Paris"})),
    ))
    .await
    .unwrap();
    let answer = within(engine(&fake).chat(request(tool_conversation(false))))
        .await
        .unwrap();
    let sent = fake.last_body().unwrap();
    assert_eq!(sent["tools"], tool_conversation(false)["tools"]);
    assert_eq!(
        sent["messages"][0],
        json!({"role": "user", "content": "weather here?", "images": ["/9j/4AAQ"]})
    );
    assert_eq!(
        sent["messages"][1]["tool_calls"],
        json!([{"id": "call_a", "function": {"name": "weather", "arguments": {"city": "Oslo"}}}])
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "content": "rain", "tool_call_id": "call_a", "tool_name": "weather"})
    );

    let choice = &answer.body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(answer.usage.output_tokens, TOOL_CALL_TOKENS);

    let got = collect(
        within(engine(&fake).chat_stream(request(tool_conversation(true))))
            .await
            .unwrap(),
    )
    .await;
    let deltas: Vec<&Value> = got
        .chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls"))
        .collect();
    assert_eq!(deltas.len(), 1);
    assert_eq!(deltas[0][0]["index"], 0);
    assert_eq!(
        deltas[0][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(got.finish_reason(), Some("tool_calls"));
}

#[tokio::test]
async fn missing_counts_are_estimated() {
    let fake = within(FakeOllama::start_with(
        FakeConfig::default().without_usage(),
    ))
    .await
    .unwrap();
    let answer = within(engine(&fake).chat(request(hello(json!({})))))
        .await
        .unwrap();
    // "be brief" + "say hello" = 17 chars → 5 tokens; the 27-char reply → 7.
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 5,
            output_tokens: 7,
            estimated: true
        }
    );
    let got = collect(
        within(engine(&fake).chat_stream(request(hello(json!({})))))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        got.usage,
        Some(Usage {
            input_tokens: 5,
            output_tokens: 7,
            estimated: true
        })
    );
}

#[tokio::test]
async fn lists_models_and_refuses_unknown_ones() {
    let fake = within(FakeOllama::start_with(
        FakeConfig::default().with_models(["a:7b", "b:latest"]),
    ))
    .await
    .unwrap();
    let e = engine(&fake);
    assert_eq!(e.kind(), "ollama");
    assert_eq!(within(e.list_models()).await.unwrap(), ["a:7b", "b:latest"]);
    let err = within(e.chat(request(hello(json!({}))))).await.unwrap_err();
    match &err {
        EngineError::Status { status: 404, body } => assert!(body.contains("not found"), "{body}"),
        other => panic!("{other:?}"),
    }
    assert!(err.is_client_error());
    let err = within(e.chat_stream(request(hello(json!({})))))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, EngineError::Status { status: 404, .. }),
        "{err:?}"
    );
}
