//! Table tests of the Messages dialect's streams and error bodies.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Messages;
use crate::core::router::dialects::Dialect;

/// Feeds chunks, then ends the stream; returns (event name, data) per frame.
fn run(chunks: &[Value], error: Option<Value>) -> Vec<(String, Value)> {
    let mut d = Messages::new(0);
    let request = json!({"model": "m", "max_tokens": 8, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    d.to_upstream(request).unwrap();
    let mut out = Vec::new();
    for c in chunks {
        d.chunk(c, &mut out);
    }
    if let Some(e) = error {
        d.stream_error(&e, &mut out);
    }
    d.finish(&mut out);
    out.iter()
        .map(|frame| {
            let text = std::str::from_utf8(frame).unwrap();
            let (head, data) = text.trim_end().split_once('\n').unwrap();
            let name = head.strip_prefix("event: ").unwrap().to_string();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str(), "{text}");
            (name, data)
        })
        .collect()
}

fn delta(delta: Value, finish: Value) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "engine",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "engine",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}})
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn a_text_stream() {
    let events = run(
        &[
            delta(json!({"role": "assistant", "content": ""}), Value::Null),
            delta(json!({"content": "Hel"}), Value::Null),
            delta(json!({"content": "lo"}), Value::Null),
            delta(json!({}), json!("stop")),
            usage(5, 2),
        ],
        None,
    );
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &events[0].1["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start["model"], "m");
    assert_eq!(start["content"], json!([]));
    assert_eq!(
        start["usage"],
        json!({"input_tokens": 0, "output_tokens": 0})
    );
    assert_eq!(
        events[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text",
            "text": ""}})
    );
    assert_eq!(
        events[3].1["delta"],
        json!({"type": "text_delta", "text": "lo"})
    );
    assert_eq!(
        events[4].1,
        json!({"type": "content_block_stop", "index": 0})
    );
    assert_eq!(
        events[5].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"input_tokens": 5, "output_tokens": 2}})
    );
}

#[test]
fn a_streamed_tool_call_after_text() {
    let call = |tc: Value| delta(json!({"tool_calls": [tc]}), Value::Null);
    let events = run(
        &[
            delta(
                json!({"role": "assistant", "content": "Checking."}),
                Value::Null,
            ),
            call(json!({"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}})),
            call(json!({"index": 0, "function": {"arguments": "{\"city\":"}})),
            call(json!({"index": 0, "function": {"arguments": "\"Paris\"}"}})),
            call(
                json!({"index": 1, "id": "call_2", "function": {"name": "get_time",
                    "arguments": "{}"}}),
            ),
            delta(json!({}), json!("tool_calls")),
            usage(12, 7),
        ],
        None,
    );
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        events[4].1,
        json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "call_1", "name": "get_weather",
                "input": {}}})
    );
    let partial: String = events[5..7]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["index"], 1);
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(partial, "{\"city\":\"Paris\"}");
    assert_eq!(events[7].1["index"], 1);
    assert_eq!(events[8].1["index"], 2);
    assert_eq!(events[8].1["content_block"]["name"], "get_time");
    assert_eq!(events[9].1["delta"]["partial_json"], "{}");
    assert_eq!(events[10].1["index"], 2);
    assert_eq!(events[11].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[11].1["usage"]["output_tokens"], 7);
}

#[test]
fn odd_streams() {
    // Nothing came: still a whole, empty message.
    assert_eq!(
        names(&run(&[], None)),
        ["message_start", "message_delta", "message_stop"]
    );
    // Usage on the finish chunk, a length stop.
    let mut last = delta(json!({"content": "ab"}), json!("length"));
    last["usage"] = json!({"prompt_tokens": 3, "completion_tokens": 1});
    let events = run(&[last], None);
    assert_eq!(events[4].1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(
        events[4].1["usage"],
        json!({"input_tokens": 3, "output_tokens": 1})
    );
    // A call whose name came after its id; a call sent whole, arguments as an object.
    let events = run(
        &[
            delta(
                json!({"tool_calls": [{"index": 0, "id": "call_9",
                    "function": {"arguments": "{\"a\""}}]}),
                Value::Null,
            ),
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"name": "f",
                    "arguments": ":1}"}}]}),
                Value::Null,
            ),
            delta(
                json!({"tool_calls": [{"id": "call_10", "function": {"name": "g",
                    "arguments": {"b": 2}}}]}),
                json!("stop"),
            ),
        ],
        None,
    );
    assert_eq!(events[1].1["content_block"]["id"], "call_9");
    assert_eq!(events[2].1["delta"]["partial_json"], "{\"a\":1}");
    assert_eq!(events[4].1["content_block"]["name"], "g");
    assert_eq!(events[5].1["delta"]["partial_json"], "{\"b\":2}");
    assert_eq!(events[7].1["delta"]["stop_reason"], "tool_use");
}

#[test]
fn errors() {
    let error = json!({"error": {"type": "peer_stream_stalled", "message": "the peer went quiet"}});
    let events = run(
        &[delta(json!({"content": "Hi"}), Value::Null)],
        Some(error.clone()),
    );
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        events[3].1,
        json!({"type": "error", "error": {"type": "api_error", "message": "the peer went quiet"}})
    );
    let d = Messages::new(0);
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ] {
        let body = d.error_body(StatusCode::from_u16(status).unwrap(), &error);
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": kind, "message": "the peer went quiet"}}),
            "{status}"
        );
    }
    let body = d.error_body(StatusCode::BAD_GATEWAY, &Value::Null);
    assert_eq!(body["error"]["message"], "the request failed");
}
