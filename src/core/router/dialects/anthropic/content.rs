//! The `messages` (and `system`) of an Anthropic request → OpenAI chat messages:
//! text, images, tool calls in assistant turns and tool results in user turns. A block
//! type chat cannot carry (documents, server tool results…) is refused with a 400 naming
//! where it is.

use serde_json::{Value, json};

use super::request::bad;
use crate::core::api_error::ApiError;

/// One Anthropic turn → OpenAI messages: a user turn's tool results become `tool`
/// messages first (they answer the assistant turn before), then its other content.
pub(super) fn translate_turn(turn: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let at = format!("messages[{i}]");
    let role = turn.get("role").and_then(Value::as_str);
    let content = turn
        .get("content")
        .ok_or_else(|| bad(format!("`{at}.content` is required")))?;
    let blocks = match content {
        Value::String(text) => {
            let role = role.filter(|r| ["user", "assistant"].contains(r));
            let role = role.ok_or_else(|| bad(format!("`{at}.role` must be user or assistant")))?;
            out.push(json!({"role": role, "content": text}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => return Err(bad(format!("`{at}.content` must be a string or an array"))),
    };
    match role {
        Some("user") => user_turn(blocks, &at, out),
        Some("assistant") => assistant_turn(blocks, &at, out),
        _ => Err(bad(format!("`{at}.role` must be user or assistant"))),
    }
}

fn user_turn(blocks: &[Value], at: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match block_type(block, &at)? {
            "text" => parts.push(json!({"type": "text", "text": str_field(block, "text", &at)?})),
            "image" => parts.push(image_part(block, &at)?),
            "tool_result" => out.push(tool_result(block, &at)?),
            other => return Err(unsupported_block(other, &at)),
        }
    }
    match parts.as_slice() {
        [] => {}
        // One text block is the common case; a plain string suits every engine.
        [only] if only["type"] == "text" => {
            out.push(json!({"role": "user", "content": only["text"]}));
        }
        _ => out.push(json!({"role": "user", "content": parts})),
    }
    Ok(())
}

fn assistant_turn(blocks: &[Value], at: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match block_type(block, &at)? {
            "text" => text.push_str(str_field(block, "text", &at)?),
            "tool_use" => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": str_field(block, "id", &at)?,
                    "type": "function",
                    "function": {
                        "name": str_field(block, "name", &at)?,
                        "arguments": input.to_string(),
                    },
                }));
            }
            // Earlier turns' reasoning: Anthropic itself drops it from the context.
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported_block(other, &at)),
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        if text.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    out.push(message);
    Ok(())
}

fn image_part(block: &Value, at: &str) -> Result<Value, ApiError> {
    let source = block
        .get("source")
        .ok_or_else(|| bad(format!("`{at}.source` is required")))?;
    let at = format!("{at}.source");
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            str_field(source, "media_type", &at)?,
            str_field(source, "data", &at)?
        ),
        Some("url") => str_field(source, "url", &at)?.to_string(),
        _ => return Err(bad(format!("`{at}.type` must be base64 or url"))),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn tool_result(block: &Value, at: &str) -> Result<Value, ApiError> {
    let id = str_field(block, "tool_use_id", at)?;
    let mut content = match block.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(c) => text_of(c, &format!("{at}.content"))?,
    };
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        // OpenAI tool messages have no error flag; the model must still learn it failed.
        content = format!("Error: {content}");
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": content}))
}

/// A string, or an array of text blocks joined by newlines (`system`, tool results).
pub(super) fn text_of(value: &Value, at: &str) -> Result<String, ApiError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                let at = format!("{at}[{j}]");
                match block_type(block, &at)? {
                    "text" => texts.push(str_field(block, "text", &at)?),
                    other => return Err(unsupported_block(other, &at)),
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(bad(format!(
            "`{at}` must be a string or an array of text blocks"
        ))),
    }
}
fn block_type<'a>(block: &'a Value, at: &str) -> Result<&'a str, ApiError> {
    block
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{at}.type` must be a string")))
}

pub(super) fn str_field<'a>(value: &'a Value, name: &str, at: &str) -> Result<&'a str, ApiError> {
    value
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{at}.{name}` must be a string")))
}

fn unsupported_block(kind: &str, at: &str) -> ApiError {
    bad(format!(
        "`{at}`: the content block type `{kind}` is not supported here"
    ))
}
