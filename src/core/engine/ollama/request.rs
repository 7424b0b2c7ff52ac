//! OpenAI chat request → Ollama `/api/chat` request. Pure functions.
//!
//! What cannot be expressed for Ollama (an image by remote URL, audio parts, tool-call
//! arguments that are not a JSON object) is refused as a 400 rather than dropped, so the
//! client learns its request was not served as written.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::core::engine::EngineError;

fn bad_request(message: impl Into<String>) -> EngineError {
    EngineError::Status {
        status: 400,
        body: message.into(),
    }
}

/// The Ollama body for `body` (an OpenAI chat request), streamed or not.
pub(crate) fn to_ollama(
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<Value, EngineError> {
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    out.insert("messages".into(), Value::Array(messages(body)?));
    out.insert("stream".into(), Value::Bool(stream));
    if let Some(tools @ Value::Array(list)) = body.get("tools")
        && !list.is_empty()
    {
        // Ollama accepts OpenAI-style {"type":"function","function":{…}} definitions.
        out.insert("tools".into(), tools.clone());
    }
    if let Some(format) = format(body)? {
        out.insert("format".into(), format);
    }
    let options = options(body);
    if !options.is_empty() {
        out.insert("options".into(), Value::Object(options));
    }
    Ok(Value::Object(out))
}

fn messages(body: &Map<String, Value>) -> Result<Vec<Value>, EngineError> {
    let Some(Value::Array(list)) = body.get("messages") else {
        return Err(bad_request("\"messages\" must be an array"));
    };
    // Ollama ties a tool result to its tool by name; OpenAI by call id.
    let mut tool_names: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let converted =
            message(m, &tool_names).map_err(|e| bad_request(format!("messages[{i}]: {e}")))?;
        if let Some(Value::Array(calls)) = m.get("tool_calls") {
            for call in calls {
                if let (Some(Value::String(id)), Some(Value::String(name))) =
                    (call.get("id"), call.pointer("/function/name"))
                {
                    tool_names.insert(id, name);
                }
            }
        }
        out.push(converted);
    }
    Ok(out)
}

fn message(m: &Value, tool_names: &HashMap<&str, &str>) -> Result<Value, String> {
    let Some(Value::String(role)) = m.get("role") else {
        return Err("missing \"role\"".into());
    };
    let mut out = Map::new();
    out.insert("role".into(), Value::String(role.clone()));
    let mut images = Vec::new();
    let content = match m.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => content_parts(parts, &mut images)?,
        Some(_) => return Err("\"content\" must be a string or an array of parts".into()),
    };
    out.insert("content".into(), Value::String(content));
    if !images.is_empty() {
        out.insert("images".into(), Value::Array(images));
    }
    if let Some(Value::Array(calls)) = m.get("tool_calls") {
        let calls = calls.iter().map(tool_call).collect::<Result<Vec<_>, _>>()?;
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if role == "tool" {
        let id = m.get("tool_call_id").and_then(Value::as_str);
        if let Some(id) = id {
            out.insert("tool_call_id".into(), Value::String(id.to_string()));
        }
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| id.and_then(|id| tool_names.get(id).copied()));
        if let Some(name) = name {
            out.insert("tool_name".into(), Value::String(name.to_string()));
        }
    }
    Ok(Value::Object(out))
}

/// Text parts joined by newlines (so words of adjacent parts do not run together);
/// images, which must be inline `data:` URLs, collected as base64.
fn content_parts(parts: &[Value], images: &mut Vec<Value>) -> Result<String, String> {
    let mut texts: Vec<&str> = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => match part.get("text") {
                Some(Value::String(t)) => texts.push(t),
                _ => return Err("a text part needs a string \"text\"".into()),
            },
            Some("image_url") => {
                let url = match part.get("image_url") {
                    Some(Value::String(u)) => u.as_str(),
                    Some(obj) => obj.get("url").and_then(Value::as_str).unwrap_or_default(),
                    None => "",
                };
                images.push(Value::String(data_url_base64(url)?.to_string()));
            }
            Some(other) => {
                return Err(format!(
                    "content part type {other:?} is not supported by Ollama"
                ));
            }
            None => return Err("a content part needs a \"type\"".into()),
        }
    }
    Ok(texts.join("\n"))
}

/// The base64 payload of a `data:<mime>;base64,<payload>` URL. A worker does not fetch
/// remote URLs on a stranger's behalf.
fn data_url_base64(url: &str) -> Result<&str, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or("images must be inline data: URLs (base64); remote image URLs are not fetched")?;
    match rest.split_once(',') {
        Some((meta, payload)) if meta.ends_with(";base64") && !payload.is_empty() => Ok(payload),
        _ => Err("image data: URL must be base64-encoded".into()),
    }
}

/// OpenAI tool call (arguments as a JSON string) → Ollama's (arguments as an object).
fn tool_call(call: &Value) -> Result<Value, String> {
    let Some(Value::String(name)) = call.pointer("/function/name") else {
        return Err("a tool call needs \"function.name\"".into());
    };
    let arguments = match call.pointer("/function/arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Err(format!(
                    "arguments of tool call {name:?} are not a JSON object"
                ));
            }
        },
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(format!(
                "arguments of tool call {name:?} are not a JSON object"
            ));
        }
    };
    let mut out = Map::new();
    if let Some(id @ Value::String(_)) = call.get("id") {
        out.insert("id".into(), id.clone());
    }
    out.insert(
        "function".into(),
        json!({"name": name, "arguments": arguments}),
    );
    Ok(Value::Object(out))
}

fn format(body: &Map<String, Value>) -> Result<Option<Value>, EngineError> {
    let Some(rf) = body.get("response_format") else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("json_object") => Ok(Some(Value::String("json".into()))),
        Some("json_schema") => match rf.pointer("/json_schema/schema") {
            Some(schema @ Value::Object(_)) => Ok(Some(schema.clone())),
            _ => Err(bad_request(
                "response_format json_schema needs a json_schema.schema object",
            )),
        },
        _ => Ok(None),
    }
}

/// Sampling options. Values are passed as given, so Ollama (not us) refuses a wrong type
/// with its own 400.
fn options(body: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let present = |key: &str| body.get(key).filter(|v| !v.is_null());
    for key in [
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "seed",
        "frequency_penalty",
        "presence_penalty",
    ] {
        if let Some(v) = present(key) {
            out.insert(key.into(), v.clone());
        }
    }
    match present("stop") {
        Some(Value::String(s)) => {
            out.insert("stop".into(), json!([s]));
        }
        Some(v) => {
            out.insert("stop".into(), v.clone());
        }
        None => {}
    }
    if let Some(n) = present("max_completion_tokens").or_else(|| present("max_tokens")) {
        out.insert("num_predict".into(), n.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(v: Value) -> Result<Value, EngineError> {
        let Value::Object(body) = v else {
            unreachable!()
        };
        to_ollama(&body, "m", false)
    }

    #[test]
    fn plain_messages_and_options() {
        let got = translate(json!({
            "model": "m", "messages": [{"role":"user","content":"hi","name":"bob"}],
            "temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": "END",
            "max_tokens": 10, "max_completion_tokens": 20,
            "frequency_penalty": 0.5, "presence_penalty": -0.5, "user": "x"
        }))
        .unwrap();
        assert_eq!(
            got,
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,
                "options":{"temperature":0.2,"top_p":0.9,"seed":7,"frequency_penalty":0.5,
                "presence_penalty":-0.5,"stop":["END"],"num_predict":20}})
        );
    }

    #[test]
    fn parts_images_and_tool_round_trip() {
        let got = translate(json!({"model":"m","messages":[
            {"role":"user","content":[{"type":"text","text":"what is"},{"type":"text","text":"this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                "function":{"name":"look","arguments":"{\"q\":\"cat\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"a cat"}
        ],"tools":[{"type":"function","function":{"name":"look","parameters":{"type":"object"}}}],
        "tool_choice":"auto"}))
        .unwrap();
        assert_eq!(
            got["messages"],
            json!([
                {"role":"user","content":"what is\nthis?","images":["iVBOR"]},
                {"role":"assistant","content":"","tool_calls":[{"id":"call_1",
                    "function":{"name":"look","arguments":{"q":"cat"}}}]},
                {"role":"tool","content":"a cat","tool_call_id":"call_1","tool_name":"look"}
            ])
        );
        assert_eq!(got["tools"][0]["function"]["name"], "look");
        assert!(got.get("tool_choice").is_none());
    }

    #[test]
    fn response_formats() {
        let m = json!([{"role":"user","content":"x"}]);
        let f = |rf: Value| translate(json!({"model":"m","messages":m,"response_format":rf}));
        assert_eq!(f(json!({"type":"json_object"})).unwrap()["format"], "json");
        let schema = json!({"type":"object","properties":{"a":{"type":"string"}}});
        let got =
            f(json!({"type":"json_schema","json_schema":{"name":"s","schema":schema}})).unwrap();
        assert_eq!(got["format"], schema);
        assert!(f(json!({"type":"text"})).unwrap().get("format").is_none());
        assert!(
            f(json!({"type":"json_schema"}))
                .unwrap_err()
                .is_client_error()
        );
    }

    #[test]
    fn untranslatable_requests_are_client_errors() {
        let cases = [
            json!([{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]),
            json!([{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,raw"}}]}]),
            json!([{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]),
            json!([{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"[1]"}}]}]),
            json!([{"content":"no role"}]),
            json!([{"role":"user","content":7}]),
        ];
        for messages in cases {
            let err = translate(json!({"model":"m","messages":messages})).unwrap_err();
            assert!(err.is_client_error(), "{messages}: {err:?}");
        }
    }

    #[test]
    fn empty_tool_arguments_become_an_empty_object() {
        let got = translate(
            json!({"model":"m","messages":[{"role":"assistant","content":"",
            "tool_calls":[{"function":{"name":"now","arguments":""}}]}]}),
        )
        .unwrap();
        assert_eq!(
            got["messages"][0]["tool_calls"][0]["function"]["arguments"],
            json!({})
        );
    }
}
