//! Table tests of the completions dialect: requests, whole answers, streams, errors.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Completions;
use crate::core::router::dialects::Dialect;

const NOW_MS: u64 = 1_700_000_000_123;

fn translate(request: Value) -> Result<Value, String> {
    Completions::new(NOW_MS)
        .to_upstream(request)
        .map_err(|e| e.message)
}

#[test]
fn a_prompt_becomes_one_user_message() {
    let out = translate(json!({
        "model": "m", "prompt": "Once upon", "max_tokens": 16, "temperature": 0.2, "top_p": 1,
        "stop": ["\n"], "seed": 7, "presence_penalty": 0.1, "frequency_penalty": -0.1,
        "logit_bias": {"50256": -100}, "user": "u", "n": 1, "best_of": 1, "echo": false,
        "logprobs": null, "suffix": null, "top_k": 20,
    }))
    .unwrap();
    assert_eq!(
        out,
        json!({"model": "m", "messages": [{"role": "user", "content": "Once upon"}],
            "stream": false,
            "max_tokens": 16, "temperature": 0.2, "top_p": 1, "stop": ["\n"], "seed": 7,
            "presence_penalty": 0.1, "frequency_penalty": -0.1, "logit_bias": {"50256": -100},
            "user": "u", "top_k": 20})
    );
    let out = translate(json!({"model": "m", "prompt": ["one"], "stream": true})).unwrap();
    assert_eq!(out["messages"], json!([{"role": "user", "content": "one"}]));
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
}

#[test]
fn what_chat_cannot_do_is_refused() {
    let cases = [
        (json!({"prompt": "x"}), "`model` is required"),
        (json!({"model": "m"}), "`prompt` is required"),
        (
            json!({"model": "m", "prompt": ["a", "b"]}),
            "several prompts",
        ),
        (json!({"model": "m", "prompt": [1, 2, 3]}), "token arrays"),
        (json!({"model": "m", "prompt": [[1, 2]]}), "token arrays"),
        (
            json!({"model": "m", "prompt": []}),
            "`prompt` must not be empty",
        ),
        (
            json!({"model": "m", "prompt": 5}),
            "`prompt` must be a string",
        ),
        (json!({"model": "m", "prompt": "x", "n": 2}), "`n` above 1"),
        (
            json!({"model": "m", "prompt": "x", "best_of": 3}),
            "`best_of` above 1",
        ),
        (json!({"model": "m", "prompt": "x", "echo": true}), "`echo`"),
        (
            json!({"model": "m", "prompt": "x", "logprobs": 2}),
            "`logprobs`",
        ),
        (
            json!({"model": "m", "prompt": "x", "suffix": "end"}),
            "`suffix`",
        ),
        (
            json!({"model": "m", "prompt": "x", "max_tokens": "9"}),
            "`max_tokens` must be a non-negative integer",
        ),
        (
            json!({"model": "m", "prompt": "x", "stop": [1]}),
            "`stop` must be",
        ),
        (
            json!({"model": "m", "prompt": "x", "stream": 1}),
            "`stream` must be a boolean",
        ),
        (
            json!({"model": "m", "prompt": "x", "messages": []}),
            "`messages` belongs",
        ),
    ];
    for (request, want) in cases {
        let got = translate(request.clone()).unwrap_err();
        assert!(got.contains(want), "{request}: {got}");
    }
}

#[test]
fn whole_answers() {
    let mut d = Completions::new(NOW_MS);
    d.to_upstream(json!({"model": "m", "prompt": "x"})).unwrap();
    let out = d.whole(
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "m:latest",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": " a time"},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
    );
    assert!(out["id"].as_str().unwrap().starts_with("cmpl-"));
    let mut expected = json!({"object": "text_completion", "created": 1_700_000_000u64,
        "model": "m:latest",
        "choices": [{"text": " a time", "index": 0, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
    expected["id"] = out["id"].clone();
    assert_eq!(out, expected);

    let out =
        d.whole(json!({"choices": [{"message": {"content": null}, "finish_reason": "length"}]}));
    assert_eq!(out["model"], "m");
    assert_eq!(out["choices"][0]["text"], "");
    assert_eq!(out["choices"][0]["finish_reason"], "length");
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    );
}

fn delta(content: Option<&str>, finish: Value) -> Value {
    let delta = content.map_or(json!({}), |c| json!({"content": c}));
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

const USAGE: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
    "choices":[],
    "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

/// Streams the chunks through a dialect set up by `request`; returns each frame's data.
fn run(request: Value, chunks: &[Value], error: Option<Value>) -> Vec<String> {
    let mut d = Completions::new(NOW_MS);
    d.to_upstream(request).unwrap();
    let mut out = Vec::new();
    for c in chunks {
        d.chunk(c, &mut out);
    }
    if let Some(e) = error {
        d.stream_error(&e, &mut out);
    }
    d.finish(&mut out);
    d.finish(&mut out);
    out.iter()
        .map(|f| {
            let text = std::str::from_utf8(f).unwrap();
            assert!(text.ends_with("\n\n"), "{text}");
            text.strip_prefix("data: ").unwrap().trim_end().to_string()
        })
        .collect()
}

fn chunks() -> Vec<Value> {
    vec![
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                "finish_reason": null}]}),
        delta(Some(" a"), Value::Null),
        delta(Some(" time"), Value::Null),
        delta(None, json!("length")),
        serde_json::from_str(USAGE).unwrap(),
    ]
}

#[test]
fn a_stream_with_usage_asked() {
    let request = json!({"model": "m", "prompt": "x", "stream": true,
        "stream_options": {"include_usage": true}});
    let frames = run(request, &chunks(), None);
    assert_eq!(frames.len(), 5, "{frames:?}");
    let parsed: Vec<Value> = frames[..4]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let id = parsed[0]["id"].as_str().unwrap();
    assert!(id.starts_with("cmpl-"));
    for p in &parsed {
        assert_eq!(p["id"], id);
        assert_eq!(p["object"], "text_completion");
        assert_eq!(p["created"], 1_700_000_000u64);
        assert_eq!(p["model"], "m");
    }
    let choice = |i: usize| parsed[i]["choices"][0].clone();
    assert_eq!(
        choice(0),
        json!({"text": " a", "index": 0, "logprobs": null, "finish_reason": null})
    );
    assert_eq!(choice(1)["text"], " time");
    assert_eq!(
        choice(2),
        json!({"text": "", "index": 0, "logprobs": null, "finish_reason": "length"})
    );
    assert_eq!(parsed[3]["choices"], json!([]));
    assert_eq!(
        parsed[3]["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
    );
    assert_eq!(frames[4], "[DONE]");
}

#[test]
fn a_stream_without_usage_asked() {
    let frames = run(
        json!({"model": "m", "prompt": "x", "stream": true}),
        &chunks(),
        None,
    );
    assert_eq!(frames.len(), 4, "{frames:?}");
    assert!(frames.iter().all(|f| !f.contains("usage")));
    assert_eq!(frames[3], "[DONE]");
    // Text and finish in one chunk, no usage chunk at all: zeros are reported.
    let request = json!({"model": "m", "prompt": "x", "stream": true,
        "stream_options": {"include_usage": true}});
    let frames = run(request, &[delta(Some("!"), json!("stop"))], None);
    let last: Value = serde_json::from_str(&frames[1]).unwrap();
    assert_eq!(last["usage"]["total_tokens"], 0);
    assert!(frames[0].contains(r#""finish_reason":"stop""#) && frames[0].contains(r#""text":"!""#));
}

#[test]
fn errors_keep_openai_shape() {
    let error = json!({"error": {"type": "peer_stream_stalled", "message": "quiet"}});
    let frames = run(
        json!({"model": "m", "prompt": "x", "stream": true}),
        &[delta(Some("a"), Value::Null)],
        Some(error.clone()),
    );
    assert_eq!(frames.len(), 2);
    assert_eq!(serde_json::from_str::<Value>(&frames[1]).unwrap(), error);
    let d = Completions::new(NOW_MS);
    assert_eq!(d.error_body(StatusCode::SERVICE_UNAVAILABLE, &error), error);
    assert_eq!(
        d.error_body(StatusCode::BAD_GATEWAY, &Value::Null),
        json!({"error": {"type": "api_error", "message": "the request failed"}})
    );
}
