//! Answers of `/v1/responses`: whole (text, tool call, cut at the length limit), the
//! streamed event sequence, mid-stream errors, and error bodies.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Responses;
use crate::core::router::dialects::Dialect;

fn dialect(request: Value) -> Responses {
    let mut d = Responses::new(1_700_000_000_500);
    d.to_upstream(request).unwrap();
    d
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// The frames as (event name, data), checking each names its type both ways.
fn events(frames: &[Bytes]) -> Vec<(String, Value)> {
    frames
        .iter()
        .map(|f| {
            let text = std::str::from_utf8(f).unwrap();
            let (head, data) = text.split_once('\n').unwrap();
            let name = head.strip_prefix("event: ").unwrap().to_string();
            let data: Value =
                serde_json::from_str(data.strip_prefix("data: ").unwrap().trim_end()).unwrap();
            assert_eq!(data["type"], name.as_str());
            assert!(text.ends_with("\n\n"));
            (name, data)
        })
        .collect()
}

#[test]
fn a_whole_text_answer_is_a_completed_response() {
    let mut d = dialect(
        json!({"model": "m", "input": "hi", "instructions": "be kind",
        "tools": [{"type": "function", "name": "f"}], "temperature": 0.5}),
    );
    let r = d.whole(json!({
        "id": "x", "object": "chat.completion", "created": 1, "model": "engine-m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }));
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(r["object"], "response");
    assert_eq!(r["created_at"], 1_700_000_000);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["model"], "m");
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["incomplete_details"], Value::Null);
    assert_eq!(r["instructions"], "be kind");
    assert_eq!(r["tools"], json!([{"type": "function", "name": "f"}]));
    assert_eq!(r["tool_choice"], "auto");
    assert_eq!(r["parallel_tool_calls"], true);
    assert_eq!(r["temperature"], 0.5);
    assert_eq!(r["top_p"], Value::Null);
    assert_eq!(r["text"], json!({"format": {"type": "text"}}));
    assert_eq!(r["metadata"], json!({}));
    assert_eq!(r["store"], false);
    let output = r["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    assert_eq!(output[0]["type"], "message");
    assert!(output[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(output[0]["status"], "completed");
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(
        output[0]["content"],
        json!([{"type": "output_text", "text": "hello", "annotations": [], "logprobs": []}])
    );
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0},
               "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": 7})
    );
}

#[test]
fn a_whole_tool_call_is_a_function_call_item() {
    let mut d = dialect(json!({"model": "m", "input": "weather?"}));
    let r = d.whole(json!({
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null, "tool_calls": [
                {"id": "call_9", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_10", "type": "function",
                 "function": {"name": "get_time", "arguments": "not json"}},
            ]}}],
    }));
    assert_eq!(r["status"], "completed");
    let output = r["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    assert_eq!(output[0]["type"], "function_call");
    assert!(output[0]["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(output[0]["call_id"], "call_9");
    assert_eq!(output[0]["name"], "get_weather");
    assert_eq!(output[0]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(output[0]["status"], "completed");
    assert_eq!(output[1]["arguments"], "not json");
    // No usage in the answer: zeros, not a missing object.
    assert_eq!(r["usage"]["total_tokens"], 0);
}

#[test]
fn a_whole_answer_cut_at_the_limit_is_incomplete() {
    let mut d = dialect(json!({"model": "m", "input": "hi", "max_output_tokens": 3}));
    let r = d.whole(json!({"choices": [{"index": 0, "finish_reason": "length",
        "message": {"role": "assistant", "content": "one two"}}]}));
    assert_eq!(r["status"], "incomplete");
    assert_eq!(
        r["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(r["max_output_tokens"], 3);
    assert_eq!(r["output"][0]["status"], "incomplete");
    assert_eq!(r["output"][0]["content"][0]["text"], "one two");
}

#[test]
fn a_stream_of_text_then_a_split_tool_call_becomes_the_event_sequence() {
    let mut d = dialect(json!({"model": "m", "input": "hi", "stream": true}));
    let mut out = Vec::new();
    d.chunk(
        &chunk(json!({"role": "assistant", "content": ""}), None),
        &mut out,
    );
    d.chunk(&chunk(json!({"content": "Hel"}), None), &mut out);
    d.chunk(&chunk(json!({"content": "lo"}), None), &mut out);
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
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            None,
        ),
        &mut out,
    );
    d.chunk(
        &chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            None,
        ),
        &mut out,
    );
    d.chunk(&chunk(json!({}), Some("tool_calls")), &mut out);
    d.chunk(
        &json!({"id": "c1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}),
        &mut out,
    );
    d.finish(&mut out);
    d.finish(&mut out); // once ended, nothing more
    let events = events(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64);
    }
    let created = &events[0].1["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    let id = created["id"].clone();
    assert_eq!(events[1].1["response"]["id"], id);

    let added = &events[2].1;
    assert_eq!(added["output_index"], 0);
    assert_eq!(added["item"]["type"], "message");
    assert_eq!(added["item"]["status"], "in_progress");
    assert_eq!(added["item"]["content"], json!([]));
    let msg_id = added["item"]["id"].clone();
    assert_eq!(
        events[3].1["part"],
        json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
    );
    assert_eq!(events[4].1["delta"], "Hel");
    assert_eq!(events[4].1["item_id"], msg_id);
    assert_eq!(events[4].1["output_index"], 0);
    assert_eq!(events[4].1["content_index"], 0);
    assert_eq!(events[6].1["text"], "Hello");
    assert_eq!(events[7].1["part"]["text"], "Hello");
    assert_eq!(events[8].1["item"]["status"], "completed");
    assert_eq!(events[8].1["item"]["content"][0]["text"], "Hello");

    let call = &events[9].1;
    assert_eq!(call["output_index"], 1);
    assert_eq!(call["item"]["type"], "function_call");
    assert_eq!(call["item"]["call_id"], "call_1");
    assert_eq!(call["item"]["name"], "get_weather");
    assert_eq!(call["item"]["arguments"], "");
    let fc_id = call["item"]["id"].clone();
    assert_eq!(events[10].1["delta"], "{\"city\":");
    assert_eq!(events[10].1["item_id"], fc_id);
    assert_eq!(events[11].1["delta"], "\"Paris\"}");
    assert_eq!(events[12].1["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(events[13].1["item"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(events[13].1["item"]["status"], "completed");

    let done = &events[14].1["response"];
    assert_eq!(done["id"], id);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["id"], msg_id);
    assert_eq!(done["output"][1]["id"], fc_id);
    assert_eq!(done["output"][1]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(done["usage"]["input_tokens"], 9);
    assert_eq!(done["usage"]["output_tokens"], 4);
    assert_eq!(done["usage"]["total_tokens"], 13);
}

#[test]
fn two_streamed_calls_are_two_items_and_a_cut_stream_is_incomplete() {
    let mut d = dialect(json!({"model": "m", "input": "hi", "stream": true}));
    let mut out = Vec::new();
    d.chunk(
        &chunk(
            json!({"tool_calls": [
        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
            None,
        ),
        &mut out,
    );
    d.chunk(
        &chunk(
            json!({"tool_calls": [
        {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{\"k\""}}]}),
            None,
        ),
        &mut out,
    );
    d.chunk(
        &chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": ":1}"}}]}),
            None,
        ),
        &mut out,
    );
    d.chunk(&chunk(json!({}), Some("length")), &mut out);
    d.finish(&mut out);
    let events = events(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[6].1["output_index"], 1);
    assert_eq!(events[9].1["arguments"], "{\"k\":1}");
    let done = &events[11].1["response"];
    assert_eq!(done["status"], "incomplete");
    assert_eq!(done["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(done["output"].as_array().unwrap().len(), 2);
    assert_eq!(done["usage"]["total_tokens"], 0);
}

#[test]
fn an_empty_stream_still_completes_with_an_empty_message() {
    let mut d = dialect(json!({"model": "m", "input": "hi", "stream": true}));
    let mut out = Vec::new();
    d.finish(&mut out);
    let events = events(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        events[7].1["response"]["output"][0]["content"][0]["text"],
        ""
    );
}

#[test]
fn a_mid_stream_error_is_an_error_event_then_failed_then_nothing() {
    let mut d = dialect(json!({"model": "m", "input": "hi", "stream": true}));
    let mut out = Vec::new();
    d.chunk(&chunk(json!({"content": "par"}), None), &mut out);
    d.stream_error(
        &json!({"error": {"type": "upstream_error", "message": "the peer went away"}}),
        &mut out,
    );
    d.chunk(&chunk(json!({"content": "tial"}), None), &mut out);
    d.finish(&mut out);
    let events = events(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "error",
            "response.failed",
        ]
    );
    let error = &events[5].1;
    assert_eq!(error["code"], "upstream_error");
    assert_eq!(error["message"], "the peer went away");
    assert_eq!(error["param"], Value::Null);
    assert_eq!(error["sequence_number"], 5);
    let failed = &events[6].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["message"], "the peer went away");
    assert_eq!(failed["id"], events[0].1["response"]["id"]);
}

#[test]
fn error_bodies_keep_openai_shape() {
    let d = Responses::new(0);
    let body = d.error_body(
        StatusCode::NOT_FOUND,
        &json!({"error": {"type": "model_not_found", "message": "no peer serves m"}}),
    );
    assert_eq!(
        body,
        json!({"error": {"type": "model_not_found", "message": "no peer serves m",
                         "param": null, "code": null}})
    );
    let body = d.error_body(StatusCode::BAD_GATEWAY, &Value::Null);
    assert_eq!(body["error"]["message"], "Bad Gateway");
    assert_eq!(body["error"]["type"], "api_error");
}
