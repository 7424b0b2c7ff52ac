//! An Anthropic Messages request → the OpenAI chat request the network carries.
//!
//! Every top-level field is either mapped, ignored because it cannot change the answer
//! (listed in [`IGNORED`]), or refused with a 400 naming it, so nothing a client relies
//! on is dropped silently. Unknown fields are refused too, as Anthropic's API does.

use serde_json::{Map, Value, json};

use super::content::{str_field, text_of, translate_turn};
use crate::core::api_error::ApiError;

/// Fields accepted and dropped: none changes what the model writes.
const IGNORED: &[&str] = &[
    // Prompt caching is a cost and latency feature of Anthropic's servers.
    "cache_control",
    // Where and how fast Anthropic serves; on this network the router picks the peer.
    "service_tier",
    "speed",
    "inference_geo",
    // Account attribution.
    "user_profile_id",
    "workspace_id",
    // The code-execution container; server tools are refused, so it is never used.
    "container",
    "diagnostics",
];

/// The OpenAI chat request and the model the client asked for.
pub(super) fn translate(request: Value) -> Result<(Value, String), ApiError> {
    let Value::Object(req) = request else {
        return Err(bad("the body must be a JSON object"));
    };
    for key in req.keys() {
        refuse_unknown(key)?;
    }
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => return Err(bad("`model` must be a non-empty string")),
        None => return Err(bad("`model` is required")),
    };
    let max_tokens = match req.get("max_tokens") {
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad("`max_tokens` must be an integer of at least 1"))?,
        None => return Err(bad("`max_tokens` is required")),
    };
    let mut messages = Vec::new();
    if let Some(system) = req.get("system").filter(|s| !s.is_null()) {
        let text = text_of(system, "system")?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let turns = match req.get("messages") {
        Some(Value::Array(turns)) if !turns.is_empty() => turns,
        Some(_) => return Err(bad("`messages` must be a non-empty array")),
        None => return Err(bad("`messages` is required")),
    };
    for (i, turn) in turns.iter().enumerate() {
        translate_turn(turn, i, &mut messages)?;
    }
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.clone()));
    out.insert("messages".into(), Value::Array(messages));
    out.insert("max_tokens".into(), max_tokens.into());
    for key in ["temperature", "top_p"] {
        if let Some(v) = req.get(key) {
            if !v.is_number() {
                return Err(bad(format!("`{key}` must be a number")));
            }
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(v) = req.get("top_k") {
        // Not OpenAI's, but vLLM, llama.cpp, Ollama's and most compatible engines take it.
        let k = v
            .as_u64()
            .ok_or_else(|| bad("`top_k` must be an integer"))?;
        out.insert("top_k".into(), k.into());
    }
    if let Some(v) = req.get("stop_sequences") {
        let all_strings = v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if !all_strings {
            return Err(bad("`stop_sequences` must be an array of strings"));
        }
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            out.insert("stop".into(), v.clone());
        }
    }
    if let Some(tools) = req.get("tools") {
        out.insert("tools".into(), translate_tools(tools)?);
    }
    if let Some(choice) = req.get("tool_choice") {
        translate_tool_choice(choice, &mut out)?;
    }
    let stream = match req.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("`stream` must be a boolean")),
    };
    out.insert("stream".into(), stream.into());
    if stream {
        // So the last chunk reports the tokens that `message_delta.usage` carries.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    match req.get("metadata") {
        None | Some(Value::Null) => {}
        // Only `user_id` has an OpenAI twin; Anthropic defines no other key.
        Some(Value::Object(m)) => match m.get("user_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(user)) => {
                out.insert("user".into(), Value::String(user.clone()));
            }
            Some(_) => return Err(bad("`metadata.user_id` must be a string")),
        },
        Some(_) => return Err(bad("`metadata` must be an object")),
    }
    if let Some(config) = req.get("output_config") {
        translate_output_config(config, &mut out)?;
    }
    if let Some(thinking) = req.get("thinking") {
        // `disabled` asks for what happens anyway; anything else asks for thinking blocks.
        if thinking.get("type").and_then(Value::as_str) != Some("disabled") {
            return Err(bad(
                "extended thinking (`thinking`) is not supported by this router",
            ));
        }
    }
    Ok((Value::Object(out), model))
}

fn refuse_unknown(key: &str) -> Result<(), ApiError> {
    const MAPPED: &[&str] = &[
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "stream",
        "metadata",
        "output_config",
        "thinking",
    ];
    if MAPPED.contains(&key) || IGNORED.contains(&key) {
        Ok(())
    } else {
        Err(bad(format!("`{key}` is not supported by this router")))
    }
}

fn translate_tools(tools: &Value) -> Result<Value, ApiError> {
    let tools = tools
        .as_array()
        .ok_or_else(|| bad("`tools` must be an array"))?;
    let mut out = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        match tool.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            // Server tools (web search, code execution…) run on Anthropic's side.
            Some(other) => {
                return Err(bad(format!(
                    "`{at}`: the tool type `{other}` is not supported"
                )));
            }
        }
        let schema = match tool.get("input_schema") {
            Some(s @ Value::Object(_)) => s.clone(),
            _ => return Err(bad(format!("`{at}.input_schema` must be an object"))),
        };
        let mut function = json!({"name": str_field(tool, "name", &at)?, "parameters": schema});
        if let Some(d) = tool.get("description") {
            let d = d
                .as_str()
                .ok_or_else(|| bad(format!("`{at}.description` must be a string")))?;
            function["description"] = Value::String(d.into());
        }
        if let Some(strict) = tool.get("strict") {
            function["strict"] = strict.clone();
        }
        if let Value::Object(fields) = tool {
            // `cache_control` and `eager_input_streaming` do not change the call.
            let known = [
                "type",
                "name",
                "description",
                "input_schema",
                "strict",
                "cache_control",
                "eager_input_streaming",
            ];
            if let Some(key) = fields.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(bad(format!("`{at}.{key}` is not supported by this router")));
            }
        }
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(Value::Array(out))
}

fn translate_tool_choice(choice: &Value, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = str_field(choice, "name", "tool_choice")?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => return Err(bad("`tool_choice.type` must be auto, any, tool or none")),
    };
    out.insert("tool_choice".into(), mapped);
    match choice.get("disable_parallel_tool_use") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(disable)) => {
            out.insert("parallel_tool_calls".into(), (!disable).into());
        }
        Some(_) => {
            return Err(bad(
                "`tool_choice.disable_parallel_tool_use` must be a boolean",
            ));
        }
    }
    Ok(())
}

/// Structured output (`output_config.format`) → OpenAI's `response_format`.
fn translate_output_config(config: &Value, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Value::Object(config) = config else {
        return Err(bad("`output_config` must be an object"));
    };
    for (key, value) in config {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("format", format) => {
                let schema = match (
                    format.get("type").and_then(Value::as_str),
                    format.get("schema"),
                ) {
                    (Some("json_schema"), Some(s @ Value::Object(_))) => s.clone(),
                    _ => {
                        return Err(bad(
                            "`output_config.format` must be {type: json_schema, schema: {…}}",
                        ));
                    }
                };
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema",
                        "json_schema": {"name": "output", "schema": schema, "strict": true}}),
                );
            }
            _ => {
                return Err(bad(format!(
                    "`output_config.{key}` is not supported by this router"
                )));
            }
        }
    }
    Ok(())
}

pub(super) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}
