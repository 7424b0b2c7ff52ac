//! Request translation of `/v1/responses`: input items, instructions, tools, formats,
//! and the fields refused.

use serde_json::{Value, json};

use super::Responses;
use crate::core::router::dialects::Dialect;

fn translate(request: Value) -> Result<Value, String> {
    Responses::new(1_700_000_000_000)
        .to_upstream(request)
        .map_err(|e| e.message)
}

#[test]
fn a_string_input_is_one_user_message_and_instructions_come_first() {
    let chat = translate(json!({
        "model": "m", "input": "hi", "instructions": "be brief",
        "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9, "user": "u1",
        "metadata": {"a": "b"}, "store": true,
    }))
    .unwrap();
    assert_eq!(
        chat,
        json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
            ],
            "stream": false, "max_tokens": 50, "temperature": 0.2, "top_p": 0.9, "user": "u1",
        })
    );
}

#[test]
fn items_become_messages_with_tool_calls_and_tool_results() {
    let chat = translate(json!({
        "model": "m", "stream": true,
        "input": [
            {"role": "developer", "content": "rules"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "what is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            ]},
            {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "let me look", "annotations": []}]},
            {"type": "function_call", "call_id": "call_1", "name": "look", "arguments": "{\"x\":1}"},
            {"type": "function_call", "call_id": "call_2", "name": "look", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a cat"},
            {"type": "function_call_output", "call_id": "call_2",
             "output": [{"type": "input_text", "text": "a dog"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "call_3", "name": "look", "arguments": "{}"},
        ],
    }))
    .unwrap();
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "system", "content": "rules"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            ]},
            {"role": "assistant", "content": "let me look", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "look", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "tool", "tool_call_id": "call_2", "content": "a dog"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_3", "type": "function", "function": {"name": "look", "arguments": "{}"}},
            ]},
        ])
    );
}

#[test]
fn function_tools_choice_and_formats_are_translated() {
    let chat = translate(json!({
        "model": "m", "input": "hi",
        "tools": [{"type": "function", "name": "get_weather", "description": "w",
                   "parameters": {"type": "object", "properties": {}}, "strict": true}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": false,
        "text": {"format": {"type": "json_schema", "name": "out", "strict": true,
                            "schema": {"type": "object"}}, "verbosity": "low"},
        "reasoning": {"effort": "low", "summary": "auto"},
    }))
    .unwrap();
    assert_eq!(
        chat["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "w",
                "parameters": {"type": "object", "properties": {}}, "strict": true}}])
    );
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(chat["parallel_tool_calls"], false);
    assert_eq!(
        chat["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(chat["verbosity"], "low");
    assert_eq!(chat["reasoning_effort"], "low");

    let chat = translate(
        json!({"model": "m", "input": "hi", "tool_choice": "required",
        "text": {"format": {"type": "json_object"}}}),
    )
    .unwrap();
    assert_eq!(chat["tool_choice"], "required");
    assert_eq!(chat["response_format"], json!({"type": "json_object"}));
    assert!(chat.get("parallel_tool_calls").is_none());

    let chat =
        translate(json!({"model": "m", "input": "hi", "text": {"format": {"type": "text"}}}))
            .unwrap();
    assert!(chat.get("response_format").is_none());
}

#[test]
fn what_cannot_be_served_is_refused_naming_the_field() {
    let cases = [
        (json!({"input": "hi"}), "`model` is required"),
        (
            json!({"model": 3, "input": "hi"}),
            "`model` must be a non-empty string",
        ),
        (json!({"model": "m"}), "`input` is required"),
        (
            json!({"model": "m", "input": []}),
            "`input` must not be empty",
        ),
        (
            json!({"model": "m", "input": 5}),
            "`input` must be a string or an array",
        ),
        (
            json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}),
            "`previous_response_id`: stateless: send the whole input",
        ),
        (
            json!({"model": "m", "input": "hi", "conversation": "conv_1"}),
            "`conversation`: stateless: send the whole input",
        ),
        (
            json!({"model": "m", "input": "hi", "background": true}),
            "`background`: background responses are not supported",
        ),
        (
            json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}),
            "`tools[0]`: tools of type `web_search` are not supported, only `function`",
        ),
        (
            json!({"model": "m", "input": "hi", "tool_choice": {"type": "web_search_preview"}}),
            "`tool_choice` must be auto, none, required or {\"type\":\"function\",\"name\":…}",
        ),
        (
            json!({"model": "m", "input": "hi", "max_output_tokens": "9"}),
            "`max_output_tokens` must be a positive integer",
        ),
        (
            json!({"model": "m", "input": "hi", "temperature": "hot"}),
            "`temperature` must be a number",
        ),
        (
            json!({"model": "m", "input": "hi", "stream": "yes"}),
            "`stream` must be a boolean",
        ),
        (
            json!({"model": "m", "input": "hi", "frobnicate": 1}),
            "`frobnicate` is not supported by this router's /v1/responses",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}),
            "`input[0]`: stateless: send the whole input, not references",
        ),
        (
            json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
            "`input[0]`: `role` must be user, assistant, system or developer",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "`input[0]`: content parts of type `input_file` are not supported",
        ),
        (
            json!({"model": "m", "input": [{"role": "system", "content": [{"type": "input_image", "image_url": "u"}]}]}),
            "`input[0]`: images are only supported in user messages",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
            "`input[0]`: a function_call needs `call_id` and `name` strings",
        ),
        (
            json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema"}}}),
            "`text.format.schema` must be an object",
        ),
    ];
    for (request, message) in cases {
        assert_eq!(
            translate(request.clone()),
            Err(message.to_string()),
            "{request}"
        );
    }
}

#[test]
fn harmless_nulls_and_falses_pass() {
    let chat = translate(json!({
        "model": "m", "input": "hi", "previous_response_id": null, "background": false,
        "top_logprobs": 0, "include": ["reasoning.encrypted_content"], "truncation": "auto",
        "instructions": null, "tools": [],
    }))
    .unwrap();
    assert_eq!(chat["messages"], json!([{"role": "user", "content": "hi"}]));
    assert!(chat.get("tools").is_none());
}
