//! A Responses request → the OpenAI chat request the network carries. `input` items
//! become messages (a function call joins the assistant turn before it, its output
//! becomes a `tool` message), `instructions` the first system message, function tools
//! chat tools, `text.format` the `response_format`. What the Responses API holds in
//! server-side state, or tools only OpenAI runs (web search, files…), is refused.

use serde_json::{Map, Value, json};

use super::input::push_item;
use crate::core::api_error::ApiError;

/// The translated request, with what the answer repeats back.
pub(super) struct Translated {
    pub(super) model: String,
    pub(super) chat: Value,
    pub(super) echo: Map<String, Value>,
}

/// Fields copied as they are: chat completions has each under the same name.
const COPIED: [&str; 6] = [
    "temperature",
    "top_p",
    "user",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
];

/// Fields accepted with no effect on the answer: `metadata` and `store` (nothing is
/// stored), `include` (asks for extras such as encrypted reasoning that a chat answer
/// does not have), `truncation` (context overflow is the engine's), `stream_options`
/// (only obfuscation), `prompt_cache_retention` (a cache hint).
const IGNORED: [&str; 6] = [
    "metadata",
    "store",
    "include",
    "truncation",
    "stream_options",
    "prompt_cache_retention",
];

/// Fields that need the state or tools this router does not have: refused unless
/// null, false or 0, so a client is told rather than answered differently.
const REFUSED: [(&str, &str); 6] = [
    ("previous_response_id", "stateless: send the whole input"),
    ("conversation", "stateless: send the whole input"),
    ("background", "background responses are not supported"),
    ("prompt", "stored prompt templates are not supported"),
    ("max_tool_calls", "max_tool_calls is not supported"),
    ("top_logprobs", "logprobs are not supported"),
];

/// Everything else this module reads.
const TRANSLATED: [&str; 10] = [
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "text",
    "stream",
    "reasoning",
];

pub(super) fn translate(request: &Value) -> Result<Translated, ApiError> {
    let Some(fields) = request.as_object() else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    for (key, value) in fields {
        if let Some((_, why)) = REFUSED.iter().find(|(name, _)| name == key) {
            if !matches!(value, Value::Null | Value::Bool(false)) && value.as_u64() != Some(0) {
                return Err(ApiError::bad_request(format!("`{key}`: {why}")));
            }
        } else if !COPIED.contains(&key.as_str())
            && !IGNORED.contains(&key.as_str())
            && !TRANSLATED.contains(&key.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "`{key}` is not supported by this router's /v1/responses"
            )));
        }
    }
    let get = |key: &str| fields.get(key).filter(|v| !v.is_null());
    let model = match get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => return Err(ApiError::bad_request("`model` must be a non-empty string")),
        None => return Err(ApiError::bad_request("`model` is required")),
    };
    let mut chat = Map::new();
    chat.insert("model".into(), Value::String(model.clone()));
    let mut echo = Map::new();

    let mut messages = Vec::new();
    match get("instructions") {
        Some(Value::String(text)) => {
            messages.push(json!({ "role": "system", "content": text }));
            echo.insert("instructions".into(), Value::String(text.clone()));
        }
        Some(_) => return Err(ApiError::bad_request("`instructions` must be a string")),
        None => {
            echo.insert("instructions".into(), Value::Null);
        }
    }
    match get("input") {
        Some(Value::String(text)) => messages.push(json!({ "role": "user", "content": text })),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                push_item(&mut messages, item, i)?;
            }
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "`input` must be a string or an array",
            ));
        }
        None => return Err(ApiError::bad_request("`input` is required")),
    }
    if messages.is_empty() {
        return Err(ApiError::bad_request("`input` must not be empty"));
    }
    chat.insert("messages".into(), Value::Array(messages));

    let stream = match get("stream") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("`stream` must be a boolean")),
        None => false,
    };
    chat.insert("stream".into(), Value::Bool(stream));
    if stream {
        chat.insert("stream_options".into(), json!({ "include_usage": true }));
    }

    let tools = tools(get("tools"))?;
    echo.insert(
        "tools".into(),
        get("tools").cloned().unwrap_or_else(|| json!([])),
    );
    let has_tools = !tools.is_empty();
    if has_tools {
        chat.insert("tools".into(), Value::Array(tools));
    }
    match get("tool_choice") {
        Some(choice) => {
            chat.insert("tool_choice".into(), tool_choice(choice)?);
            echo.insert("tool_choice".into(), choice.clone());
        }
        None => {
            echo.insert("tool_choice".into(), json!("auto"));
        }
    }
    match get("parallel_tool_calls") {
        Some(Value::Bool(b)) => {
            // Chat completions refuses it without tools.
            if has_tools {
                chat.insert("parallel_tool_calls".into(), Value::Bool(*b));
            }
            echo.insert("parallel_tool_calls".into(), Value::Bool(*b));
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "`parallel_tool_calls` must be a boolean",
            ));
        }
        None => {
            echo.insert("parallel_tool_calls".into(), Value::Bool(true));
        }
    }
    match get("max_output_tokens") {
        Some(n) if n.as_u64().is_some_and(|n| n > 0) => {
            chat.insert("max_tokens".into(), n.clone());
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "`max_output_tokens` must be a positive integer",
            ));
        }
        None => {}
    }
    echo.insert(
        "max_output_tokens".into(),
        get("max_output_tokens").cloned().unwrap_or(Value::Null),
    );
    for key in COPIED {
        if let Some(value) = get(key) {
            let numeric = matches!(key, "temperature" | "top_p");
            if (numeric && !value.is_number()) || (!numeric && !value.is_string()) {
                let kind = if numeric { "a number" } else { "a string" };
                return Err(ApiError::bad_request(format!("`{key}` must be {kind}")));
            }
            chat.insert(key.into(), value.clone());
        }
    }
    for key in ["temperature", "top_p", "user"] {
        echo.insert(key.into(), get(key).cloned().unwrap_or(Value::Null));
    }
    echo.insert(
        "metadata".into(),
        get("metadata").cloned().unwrap_or_else(|| json!({})),
    );
    text_config(get("text"), &mut chat, &mut echo)?;
    reasoning(get("reasoning"), &mut chat, &mut echo)?;
    Ok(Translated {
        model,
        chat: Value::Object(chat),
        echo,
    })
}

/// Function tools → chat tools; a tool only OpenAI runs is refused.
fn tools(tools: Option<&Value>) -> Result<Vec<Value>, ApiError> {
    let Some(tools) = tools else {
        return Ok(Vec::new());
    };
    let Some(tools) = tools.as_array() else {
        return Err(ApiError::bad_request("`tools` must be an array"));
    };
    let mut out = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "`tools[{i}]`: tools of type `{other}` are not supported, only `function`"
                )));
            }
            None => {
                return Err(ApiError::bad_request(format!(
                    "`tools[{i}].type` is required"
                )));
            }
        }
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return Err(ApiError::bad_request(format!(
                "`tools[{i}].name` is required"
            )));
        };
        let mut function = json!({ "name": name });
        for key in ["description", "parameters", "strict"] {
            if let Some(value) = tool.get(key).filter(|v| !v.is_null()) {
                function[key] = value.clone();
            }
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(out)
}

fn tool_choice(choice: &Value) -> Result<Value, ApiError> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o.get("name").and_then(Value::as_str) {
                Some(name) => Ok(json!({ "type": "function", "function": { "name": name } })),
                None => Err(ApiError::bad_request("`tool_choice.name` is required")),
            }
        }
        _ => Err(ApiError::bad_request(
            "`tool_choice` must be auto, none, required or {\"type\":\"function\",\"name\":…}",
        )),
    }
}

/// `text.format` → `response_format`; `text.verbosity` is copied, chat has it too.
fn text_config(
    text: Option<&Value>,
    chat: &mut Map<String, Value>,
    echo: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(text) = text else {
        echo.insert("text".into(), json!({ "format": { "type": "text" } }));
        return Ok(());
    };
    if !text.is_object() {
        return Err(ApiError::bad_request("`text` must be an object"));
    }
    echo.insert("text".into(), text.clone());
    if let Some(verbosity) = text.get("verbosity").filter(|v| !v.is_null()) {
        chat.insert("verbosity".into(), verbosity.clone());
    }
    let Some(format) = text.get("format").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let format = match format.get("type").and_then(Value::as_str) {
        Some("text") => return Ok(()),
        Some("json_object") => json!({ "type": "json_object" }),
        Some("json_schema") => {
            let Some(schema) = format.get("schema").filter(|s| s.is_object()) else {
                return Err(ApiError::bad_request(
                    "`text.format.schema` must be an object",
                ));
            };
            let name = format
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("response");
            let mut spec = json!({ "name": name, "schema": schema });
            for key in ["strict", "description"] {
                if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                    spec[key] = value.clone();
                }
            }
            json!({ "type": "json_schema", "json_schema": spec })
        }
        _ => {
            return Err(ApiError::bad_request(
                "`text.format.type` must be text, json_object or json_schema",
            ));
        }
    };
    chat.insert("response_format".into(), format);
    Ok(())
}

/// `reasoning.effort` → `reasoning_effort`. A `summary` is accepted and none is given:
/// chat answers carry no reasoning summary.
fn reasoning(
    reasoning: Option<&Value>,
    chat: &mut Map<String, Value>,
    echo: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(reasoning) = reasoning else {
        echo.insert(
            "reasoning".into(),
            json!({ "effort": null, "summary": null }),
        );
        return Ok(());
    };
    if !reasoning.is_object() {
        return Err(ApiError::bad_request("`reasoning` must be an object"));
    }
    match reasoning.get("effort") {
        Some(Value::String(effort)) => {
            chat.insert("reasoning_effort".into(), Value::String(effort.clone()));
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err(ApiError::bad_request("`reasoning.effort` must be a string")),
    }
    echo.insert("reasoning".into(), reasoning.clone());
    Ok(())
}
