//! Answers of `/api/chat` and `/api/generate`: whole objects, NDJSON streams (text, a
//! tool call gathered from fragments, the usage chunk), mid-stream errors, error bodies.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Chat, Generate};
use crate::core::router::dialects::Dialect;

const NOW_MS: u64 = 1_700_000_000_123;

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "engine",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn usage_chunk() -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [],
           "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}})
}

fn lines(frames: &[Bytes]) -> Vec<Value> {
    frames
        .iter()
        .map(|f| {
            let text = std::str::from_utf8(f).unwrap();
            assert!(
                text.ends_with('\n') && text.matches('\n').count() == 1,
                "{text}"
            );
            serde_json::from_str(text).unwrap()
        })
        .collect()
}

fn chat_dialect() -> Chat {
    let mut d = Chat::new(NOW_MS);
    d.to_upstream(json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap();
    d
}

#[test]
fn a_whole_chat_answer_is_ollamas_object() {
    let mut d = chat_dialect();
    assert_eq!(d.stream_content_type(), "application/x-ndjson");
    let r = d.whole(json!({"choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "hello"}}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}}));
    assert_eq!(r["model"], "llama3.2");
    assert_eq!(r["created_at"], "2023-11-14T22:13:20.123Z");
    assert_eq!(
        r["message"],
        json!({"role": "assistant", "content": "hello"})
    );
    assert_eq!(r["done"], true);
    assert_eq!(r["done_reason"], "stop");
    assert_eq!(r["prompt_eval_count"], 4);
    assert_eq!(r["eval_count"], 1);
    for key in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(r[key].is_u64(), "{key}");
    }
}

#[test]
fn a_whole_tool_call_has_object_arguments_and_a_cut_answer_says_length() {
    let mut d = chat_dialect();
    let r = d.whole(
        json!({"choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "oops"}},
        ]}}]}),
    );
    assert_eq!(r["message"]["content"], "");
    assert_eq!(
        r["message"]["tool_calls"],
        json!([
            {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}},
            {"id": "call_2", "function": {"index": 1, "name": "f", "arguments": {}}},
        ])
    );
    assert_eq!(r["done_reason"], "stop");
    assert_eq!(r["eval_count"], 0);

    let r = chat_dialect().whole(json!({"choices": [{"index": 0, "finish_reason": "length",
        "message": {"role": "assistant", "content": "one two"}}]}));
    assert_eq!(r["done_reason"], "length");
}

#[test]
fn a_chat_stream_is_ndjson_with_the_tool_call_whole_and_a_done_line() {
    let mut d = chat_dialect();
    let mut out = Vec::new();
    d.chunk(
        &chunk(json!({"role": "assistant", "content": ""}), None),
        &mut out,
    );
    d.chunk(&chunk(json!({"content": "Let me "}), None), &mut out);
    d.chunk(&chunk(json!({"reasoning_content": "hmm"}), None), &mut out);
    d.chunk(&chunk(json!({"content": "check."}), None), &mut out);
    d.chunk(
        &chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": ""}}]}),
            None,
        ),
        &mut out,
    );
    d.chunk(
        &chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\""}}]}),
            None,
        ),
        &mut out,
    );
    d.chunk(
        &chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":\"Paris\"}"}}]}),
            None,
        ),
        &mut out,
    );
    d.chunk(&chunk(json!({}), Some("tool_calls")), &mut out);
    d.chunk(&usage_chunk(), &mut out);
    d.finish(&mut out);
    d.finish(&mut out);
    let lines = lines(&out);
    assert_eq!(lines.len(), 5);
    let head =
        json!({"model": "llama3.2", "created_at": "2023-11-14T22:13:20.123Z", "done": false});
    for line in &lines[..4] {
        assert_eq!(line["model"], head["model"]);
        assert_eq!(line["created_at"], head["created_at"]);
        assert_eq!(line["done"], false);
    }
    assert_eq!(
        lines[0]["message"],
        json!({"role": "assistant", "content": "Let me "})
    );
    assert_eq!(
        lines[1]["message"],
        json!({"role": "assistant", "content": "", "thinking": "hmm"})
    );
    assert_eq!(
        lines[2]["message"],
        json!({"role": "assistant", "content": "check."})
    );
    assert_eq!(
        lines[3]["message"],
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}]})
    );
    let done = &lines[4];
    assert_eq!(done["done"], true);
    assert_eq!(done["done_reason"], "stop");
    assert_eq!(done["message"], json!({"role": "assistant", "content": ""}));
    assert_eq!(done["prompt_eval_count"], 11);
    assert_eq!(done["eval_count"], 3);
    assert!(done["eval_duration"].is_u64() && done["total_duration"].is_u64());
}

#[test]
fn a_generate_stream_puts_text_in_response_and_counts_zero_without_usage() {
    let mut d = Generate::new(NOW_MS);
    d.to_upstream(json!({"model": "m", "prompt": "hi"}))
        .unwrap();
    let mut out = Vec::new();
    d.chunk(&chunk(json!({"content": "a"}), None), &mut out);
    d.chunk(&chunk(json!({"content": "b"}), Some("length")), &mut out);
    d.finish(&mut out);
    let lines = lines(&out);
    assert_eq!(
        lines[0],
        json!({"model": "m", "created_at": "2023-11-14T22:13:20.123Z", "response": "a", "done": false})
    );
    assert_eq!(lines[1]["response"], "b");
    assert_eq!(lines[2]["response"], "");
    assert_eq!(lines[2]["done"], true);
    assert_eq!(lines[2]["done_reason"], "length");
    assert_eq!(lines[2]["eval_count"], 0);
    assert!(lines[2].get("message").is_none());

    let r = Generate::new(NOW_MS).whole(json!({"choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "whole"}}]}));
    assert_eq!(r["response"], "whole");
    assert_eq!(r["done"], true);
}

#[test]
fn a_mid_stream_error_is_one_error_line_then_nothing() {
    let mut d = chat_dialect();
    let mut out = Vec::new();
    d.chunk(&chunk(json!({"content": "par"}), None), &mut out);
    d.stream_error(
        &json!({"error": {"type": "upstream_error", "message": "peer lost"}}),
        &mut out,
    );
    d.chunk(&chunk(json!({"content": "tial"}), None), &mut out);
    d.finish(&mut out);
    let lines = lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], json!({"error": "peer lost"}));
}

#[test]
fn error_bodies_are_ollamas() {
    let d = chat_dialect();
    let body = d.error_body(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": {"type": "no_capacity", "message": "no peer serves llama3.2"}}),
    );
    assert_eq!(body, json!({"error": "no peer serves llama3.2"}));
    assert_eq!(
        Generate::new(0).error_body(StatusCode::BAD_GATEWAY, &Value::Null),
        json!({"error": "the request failed"})
    );
}
