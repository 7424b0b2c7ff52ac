//! Table tests of the Messages dialect's requests and whole answers.

use serde_json::{Value, json};

use super::Messages;
use crate::core::router::dialects::Dialect;

fn translate(request: Value) -> Result<Value, String> {
    Messages::new(0).to_upstream(request).map_err(|e| e.message)
}

fn base() -> Value {
    json!({"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
}

fn with(extra: Value) -> Value {
    let mut request = base();
    for (k, v) in extra.as_object().unwrap() {
        request[k] = v.clone();
    }
    request
}

#[test]
fn a_plain_request_becomes_chat() {
    let out = translate(with(json!({
        "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "be kind"}],
        "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 40,
        "metadata": {"user_id": "u1"}, "cache_control": {"type": "ephemeral"},
        "thinking": {"type": "disabled"},
    })))
    .unwrap();
    assert_eq!(
        out,
        json!({"model": "m", "max_tokens": 64, "stream": false,
            "messages": [{"role": "system", "content": "be brief\nbe kind"},
                         {"role": "user", "content": "hi"}],
            "stop": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 40, "user": "u1"})
    );
    let out = translate(with(json!({"stream": true, "system": "s"}))).unwrap();
    assert_eq!(out["stream"], true);
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": "s"})
    );
}

#[test]
fn tools_calls_results_and_images_are_mapped() {
    let out = translate(with(json!({
        "tools": [{"name": "get_weather", "description": "Weather of a city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                    "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                    "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "and now?"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text",
                    "text": "sunny"}]}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no such city",
                    "is_error": true}]},
        ],
    })))
    .unwrap();
    assert_eq!(
        out["tools"],
        json!([{"type": "function", "function": {"name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
    );
    assert_eq!(
        out["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(out["parallel_tool_calls"], false);
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [{"id": "toolu_1",
                "type": "function", "function": {"name": "get_weather",
                    "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
            {"role": "user", "content": "and now?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_2",
                "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no such city"},
        ])
    );
}

#[test]
fn tool_choices_map() {
    for (choice, want) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
    ] {
        let out = translate(with(json!({"tool_choice": choice}))).unwrap();
        assert_eq!(out["tool_choice"], want);
        assert!(out.get("parallel_tool_calls").is_none());
    }
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let out = translate(with(
        json!({"output_config": {"format": {"type": "json_schema", "schema": schema}}}),
    ));
    assert_eq!(
        out.unwrap()["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema,
            "strict": true}})
    );
}

#[test]
fn bad_requests_name_the_field() {
    let no_max = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let cases = [
        (no_max, "`max_tokens` is required"),
        (
            json!({"max_tokens": 1, "messages": []}),
            "`model` is required",
        ),
        (
            with(json!({"max_tokens": 0})),
            "`max_tokens` must be an integer of at least 1",
        ),
        (
            with(json!({"messages": []})),
            "`messages` must be a non-empty array",
        ),
        (
            with(json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})),
            "extended thinking",
        ),
        (
            with(json!({"mcp_servers": []})),
            "`mcp_servers` is not supported",
        ),
        (
            with(json!({"temperature": "hot"})),
            "`temperature` must be a number",
        ),
        (
            with(json!({"messages": [{"role": "system", "content": "x"}]})),
            "`messages[0].role`",
        ),
        (
            with(
                json!({"messages": [{"role": "user", "content": [{"type": "document",
                    "source": {}}]}]}),
            ),
            "`messages[0].content[0]`: the content block type `document`",
        ),
        (
            with(json!({"messages": [{"role": "user", "content": [{"type": "text"}]}]})),
            "`messages[0].content[0].text` must be a string",
        ),
        (
            with(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})),
            "`tools[0]`: the tool type `web_search_20250305`",
        ),
        (
            with(json!({"tools": [{"name": "f"}]})),
            "`tools[0].input_schema` must be an object",
        ),
        (
            with(json!({"tool_choice": {"type": "tool"}})),
            "`tool_choice.name` must be a string",
        ),
        (
            with(json!({"output_config": {"effort": "high"}})),
            "`output_config.effort`",
        ),
        (with(json!({"stream": "yes"})), "`stream` must be a boolean"),
    ];
    for (request, want) in cases {
        let got = translate(request.clone()).unwrap_err();
        assert!(got.contains(want), "{request}: {got}");
    }
}

#[test]
fn whole_answers() {
    let text = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "engine:tag",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}});
    let mut d = Messages::new(0);
    d.to_upstream(base()).unwrap();
    let out = d.whole(text);
    assert!(out["id"].as_str().unwrap().starts_with("msg_"));
    let mut expected = json!({"type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": "Hello!"}], "stop_reason": "end_turn",
            "stop_sequence": null,
        "usage": {"input_tokens": 5, "output_tokens": 2}});
    expected["id"] = out["id"].clone();
    assert_eq!(out, expected);

    let call = json!({"choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant",
        "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                "arguments": "{\"city\":\"Paris\"}"}},
            {"type": "function", "function": {"name": "broken", "arguments": "{not json"}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4}});
    let out = d.whole(call);
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(out["content"].as_array().unwrap().len(), 2);
    assert_eq!(
        out["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather",
            "input": {"city": "Paris"}})
    );
    assert!(
        out["content"][1]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_")
    );
    assert_eq!(out["content"][1]["input"], json!({}));

    let long = json!({"choices": [{"message": {"role": "assistant", "content": "abc"},
        "finish_reason": "length"}]});
    let out = d.whole(long);
    assert_eq!(out["stop_reason"], "max_tokens");
    assert_eq!(out["usage"], json!({"input_tokens": 0, "output_tokens": 0}));
}
