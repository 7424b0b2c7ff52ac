//! Request translation of `/api/chat` and `/api/generate`: messages, images, tool calls
//! and their results, tools, options, format, the stream default, and refusals.

use serde_json::{Value, json};

use super::{Chat, Generate};
use crate::core::router::dialects::Dialect;

fn chat(request: Value) -> Result<Value, String> {
    Chat::new(0).to_upstream(request).map_err(|e| e.message)
}

fn generate(request: Value) -> Result<Value, String> {
    Generate::new(0).to_upstream(request).map_err(|e| e.message)
}

#[test]
fn chat_streams_by_default_and_maps_options_and_format() {
    let up = chat(json!({
        "model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "tools": [],
        "options": {"temperature": 0.1, "top_p": 0.8, "top_k": 20, "num_predict": 64,
                    "stop": ["\n\n"], "seed": 7, "presence_penalty": 0.5,
                    "frequency_penalty": 0.25, "num_ctx": 8192, "repeat_penalty": 1.1},
        "format": "json", "keep_alive": "5m", "think": false,
    }))
    .unwrap();
    assert_eq!(
        up,
        json!({
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"},
            "temperature": 0.1, "top_p": 0.8, "top_k": 20, "max_tokens": 64, "stop": ["\n\n"],
            "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.25,
            "stream": true, "stream_options": {"include_usage": true},
        })
    );
    let up = chat(json!({"model": "m", "messages": [], "stream": false,
        "format": {"type": "object", "properties": {"a": {"type": "string"}}},
        "options": {"num_predict": -1, "stop": "END"}}))
    .unwrap();
    assert_eq!(up["stream"], false);
    assert!(up.get("stream_options").is_none());
    assert!(up.get("max_tokens").is_none());
    assert_eq!(up["stop"], json!(["END"]));
    assert_eq!(
        up["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "response",
               "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}})
    );
}

#[test]
fn chat_messages_carry_images_tool_calls_and_their_results() {
    let tool = json!({"type": "function", "function": {"name": "get_weather",
        "description": "w", "parameters": {"type": "object", "properties": {}}}});
    let up = chat(json!({
        "model": "m", "tools": [tool],
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is it?", "images": ["iVBORw0KGgoAAAA"]},
            {"role": "assistant", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {}}},
            ]},
            {"role": "tool", "content": "09:00", "tool_name": "get_time"},
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
            {"role": "assistant", "content": "sunny at nine"},
        ],
    }))
    .unwrap();
    assert_eq!(up["tools"], json!([tool]));
    let m = up["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        m[1]["content"],
        json!([{"type": "text", "text": "what is it?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAA"}}])
    );
    assert_eq!(m[2]["content"], Value::Null);
    let calls = m[2]["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(
        calls[0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(calls[1]["function"]["arguments"], "{}");
    let (weather_id, time_id) = (calls[0]["id"].clone(), calls[1]["id"].clone());
    assert!(weather_id.as_str().unwrap().starts_with("call_"));
    assert_ne!(weather_id, time_id);
    // Each result is tied to the call of its name, whatever the order.
    assert_eq!(
        m[3],
        json!({"role": "tool", "content": "09:00", "tool_call_id": time_id})
    );
    assert_eq!(
        m[4],
        json!({"role": "tool", "content": "sunny", "tool_call_id": weather_id})
    );
    assert_eq!(
        m[5],
        json!({"role": "assistant", "content": "sunny at nine"})
    );
}

#[test]
fn chat_keeps_given_ids_and_refuses_what_it_cannot_serve() {
    let up = chat(json!({"model": "m", "messages": [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_a", "function": {"name": "f", "arguments": {}}}]},
        {"role": "tool", "content": "x", "tool_call_id": "call_a"},
    ]}))
    .unwrap();
    assert_eq!(up["messages"][0]["tool_calls"][0]["id"], "call_a");
    assert_eq!(up["messages"][1]["tool_call_id"], "call_a");

    let cases = [
        (json!({"messages": []}), "`model` is required"),
        (json!({"model": "m"}), "`messages` is required"),
        (
            json!({"model": "m", "messages": {}}),
            "`messages` must be an array",
        ),
        (
            json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
            "`messages[0].role` must be system, user, assistant or tool",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": 3}]}),
            "`messages[0].content` must be a string",
        ),
        (
            json!({"model": "m", "messages": [{"role": "system", "content": "x", "images": ["AA"]}]}),
            "`messages[0].images` are only supported in user messages",
        ),
        (
            json!({"model": "m", "messages": [], "tools": [{"type": "web_search"}]}),
            "`tools[0]`: tools of type `web_search` are not supported, only `function`",
        ),
        (
            json!({"model": "m", "messages": [], "format": "yaml"}),
            "`format` must be \"json\" or a JSON schema object",
        ),
        (
            json!({"model": "m", "messages": [], "options": {"temperature": "hot"}}),
            "`options.temperature` must be a number",
        ),
        (
            json!({"model": "m", "messages": [], "stream": "no"}),
            "`stream` must be a boolean",
        ),
        (
            json!({"model": "m", "messages": [], "logprobs": true}),
            "`logprobs`: logprobs are not supported",
        ),
        (
            json!({"model": "m", "messages": [], "frobnicate": 1}),
            "`frobnicate` is not supported by this router's /api/chat",
        ),
    ];
    for (request, message) in cases {
        assert_eq!(chat(request.clone()), Err(message.to_string()), "{request}");
    }
}

#[test]
fn generate_builds_system_and_user_messages() {
    let up = generate(json!({"model": "m", "prompt": "why?", "system": "be brief",
        "images": ["/9j/4AAQ"], "suffix": "", "raw": false, "template": "", "context": [],
        "options": {"num_predict": 5}}))
    .unwrap();
    assert_eq!(
        up,
        json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "why?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
        ], "max_tokens": 5, "stream": true, "stream_options": {"include_usage": true}})
    );
    let cases = [
        (json!({"model": "m"}), "`prompt` is required"),
        (
            json!({"model": "m", "prompt": "x", "suffix": "end"}),
            "`suffix`: fill-in-the-middle is not supported",
        ),
        (
            json!({"model": "m", "prompt": "x", "raw": true}),
            "`raw`: raw prompts are not supported",
        ),
        (
            json!({"model": "m", "prompt": "x", "template": "{{ .Prompt }}"}),
            "`template`: prompt templates are not supported",
        ),
        (
            json!({"model": "m", "prompt": "x", "context": [1, 2]}),
            "`context`: context from an earlier answer is not supported; use /api/chat",
        ),
        (
            json!({"model": "m", "prompt": "x", "width": 512}),
            "`width`: image generation is not supported",
        ),
    ];
    for (request, message) in cases {
        assert_eq!(
            generate(request.clone()),
            Err(message.to_string()),
            "{request}"
        );
    }
}
