//! The `input` of a Responses request → chat messages: message items keep their role
//! (`developer` becomes `system`, which every engine knows), a `function_call` joins the
//! assistant turn before it as a tool call, a `function_call_output` becomes a `tool`
//! message. Content parts become chat parts; what chat cannot carry (files, audio,
//! references to stored items) is refused.

use serde_json::{Value, json};

use crate::core::api_error::ApiError;

/// One `input` item, appended to `messages`.
pub(super) fn push_item(messages: &mut Vec<Value>, item: &Value, i: usize) -> Result<(), ApiError> {
    let bad = |what: &str| ApiError::bad_request(format!("`input[{i}]`: {what}"));
    if !item.is_object() {
        return Err(bad("an item must be an object"));
    }
    let text_of = |key: &str| item.get(key).and_then(Value::as_str);
    let kind = match text_of("type") {
        Some(kind) => kind,
        None if item.get("role").is_some() => "message",
        None => return Err(bad("`type` is required")),
    };
    match kind {
        "message" => {
            let role = match text_of("role") {
                Some(role @ ("user" | "assistant" | "system")) => role,
                // Most engines behind the network know only `system`.
                Some("developer") => "system",
                _ => return Err(bad("`role` must be user, assistant, system or developer")),
            };
            let content = content(item.get("content"), role == "user", &bad)?;
            messages.push(json!({ "role": role, "content": content }));
        }
        "function_call" => {
            let (Some(call_id), Some(name)) = (text_of("call_id"), text_of("name")) else {
                return Err(bad("a function_call needs `call_id` and `name` strings"));
            };
            let arguments = match item.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => "{}".to_string(),
                Some(other) => other.to_string(),
            };
            let call = json!({
                "id": call_id,
                "type": "function",
                "function": { "name": name, "arguments": arguments },
            });
            // A call joins the assistant turn just before it (its text, or the calls
            // made alongside it), as one chat message holds both.
            match messages.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    if let Some(calls) = last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                        calls.push(call);
                    } else {
                        last["tool_calls"] = json!([call]);
                    }
                }
                _ => messages.push(json!({
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [call],
                })),
            }
        }
        "function_call_output" => {
            let Some(call_id) = text_of("call_id") else {
                return Err(bad("a function_call_output needs a `call_id` string"));
            };
            let content = content(item.get("output"), false, &bad)?;
            messages.push(json!({ "role": "tool", "tool_call_id": call_id, "content": content }));
        }
        // Reasoning a model gave in an earlier turn: a chat request cannot carry it back,
        // and the model reasons afresh, so it is left out.
        "reasoning" => {}
        "item_reference" => return Err(bad("stateless: send the whole input, not references")),
        other => return Err(bad(&format!("items of type `{other}` are not supported"))),
    }
    Ok(())
}

/// A message's content: a string stays one; parts become chat parts (a single text part a
/// string). Images only in user messages, as chat completions has it.
fn content(
    content: Option<&Value>,
    images: bool,
    bad: &dyn Fn(&str) -> ApiError,
) -> Result<Value, ApiError> {
    let parts = match content {
        Some(Value::String(text)) => return Ok(Value::String(text.clone())),
        Some(Value::Array(parts)) => parts,
        None | Some(Value::Null) => return Ok(Value::String(String::new())),
        Some(_) => return Err(bad("`content` must be a string or an array of parts")),
    };
    let mut out = Vec::new();
    for part in parts {
        let text = |key: &str| part.get(key).and_then(Value::as_str);
        match text("type") {
            Some("input_text" | "output_text" | "text") => match text("text") {
                Some(t) => out.push(json!({ "type": "text", "text": t })),
                None => return Err(bad("a text part needs a `text` string")),
            },
            Some("refusal") => {
                let t = text("refusal").unwrap_or("");
                out.push(json!({ "type": "text", "text": t }));
            }
            Some("input_image") if images => {
                let Some(url) = text("image_url") else {
                    return Err(bad(
                        "an input_image needs an `image_url` (file ids are not supported)",
                    ));
                };
                let mut image = json!({ "url": url });
                if let Some(detail) = text("detail") {
                    image["detail"] = json!(detail);
                }
                out.push(json!({ "type": "image_url", "image_url": image }));
            }
            Some("input_image") => return Err(bad("images are only supported in user messages")),
            Some(other) => {
                return Err(bad(&format!(
                    "content parts of type `{other}` are not supported"
                )));
            }
            None => return Err(bad("a content part needs a `type`")),
        }
    }
    match out.as_slice() {
        [] => Ok(Value::String(String::new())),
        [only] if only["type"] == "text" => Ok(only["text"].clone()),
        _ => Ok(Value::Array(out)),
    }
}
