//! `POST /api/chat` → an OpenAI chat request. Messages keep their roles; images become
//! data-URL parts; an assistant's tool calls (arguments as objects) become OpenAI tool
//! calls (arguments as JSON text, ids invented when absent), and a `tool` message is
//! tied to the call it answers by `tool_call_id`, or else by `tool_name`: the first
//! call of that name not yet answered. Ollama's tools are already OpenAI's shape.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::answer::{Answer, Shape};
use super::request::{self, get};
use crate::core::api_error::ApiError;
use crate::core::router::dialects::{Dialect, Upstream};

/// Fields read. `keep_alive` (how long Ollama keeps a model loaded), `think` (whether a
/// thinking model shows its thinking: an answer's reasoning is passed on as `thinking`
/// when the engine gives it, whatever was asked), `truncate` and `shift` (context
/// overflow, the engine's business) are accepted and ignored.
const KNOWN: [&str; 12] = [
    "model",
    "messages",
    "tools",
    "format",
    "options",
    "stream",
    "keep_alive",
    "think",
    "truncate",
    "shift",
    "logprobs",
    "top_logprobs",
];

/// One `/api/chat` request and its answer.
pub(crate) struct Chat {
    answer: Answer,
}

impl Chat {
    pub(crate) fn new(now_ms: u64) -> Self {
        Chat {
            answer: Answer::new(Shape::Chat, now_ms),
        }
    }
}

impl Dialect for Chat {
    fn upstream(&self) -> Upstream {
        Upstream::Chat
    }

    fn stream_content_type(&self) -> &'static str {
        super::NDJSON
    }

    fn to_upstream(&mut self, request: Value) -> Result<Value, ApiError> {
        request::check_fields(&request, &KNOWN, "/api/chat")?;
        request::refuse_unless_empty(&request, "logprobs", "logprobs are not supported")?;
        request::refuse_unless_empty(&request, "top_logprobs", "logprobs are not supported")?;
        let model = request::model(&request)?;
        let mut chat = Map::new();
        chat.insert("model".into(), Value::String(model.clone()));
        chat.insert("messages".into(), Value::Array(messages(&request)?));
        match get(&request, "tools") {
            None => {}
            // The client library always sends `tools`, often empty; some engines refuse
            // an empty list, so none is sent.
            Some(Value::Array(tools)) if tools.is_empty() => {}
            Some(Value::Array(tools)) => {
                chat.insert("tools".into(), Value::Array(check_tools(tools)?));
            }
            Some(_) => return Err(ApiError::bad_request("`tools` must be an array")),
        }
        request::format(&request, &mut chat)?;
        request::options(&request, &mut chat)?;
        request::stream(&request, &mut chat)?;
        self.answer.model = model;
        Ok(Value::Object(chat))
    }

    fn whole(&mut self, answer: Value) -> Value {
        self.answer.whole(&answer)
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        self.answer.chunk(chunk, out);
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.answer.finish(out);
    }

    fn stream_error(&mut self, error: &Value, out: &mut Vec<Bytes>) {
        self.answer.stream_error(error, out);
    }

    fn error_body(&self, _status: StatusCode, error: &Value) -> Value {
        super::error_body(error)
    }
}

fn messages(request: &Value) -> Result<Vec<Value>, ApiError> {
    let messages = match get(request, "messages") {
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err(ApiError::bad_request("`messages` must be an array")),
        None => return Err(ApiError::bad_request("`messages` is required")),
    };
    let mut out = Vec::with_capacity(messages.len());
    // Calls made and not yet answered, (id, name), oldest first.
    let mut unanswered: Vec<(String, String)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}].");
        let bad = |what: &str| ApiError::bad_request(format!("`{at}{what}"));
        if !message.is_object() {
            return Err(ApiError::bad_request(format!(
                "`messages[{i}]` must be an object"
            )));
        }
        let text = match get(message, "content") {
            None => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(bad("content` must be a string")),
        };
        let role = match get(message, "role").and_then(Value::as_str) {
            Some(role @ ("system" | "user" | "assistant" | "tool")) => role,
            _ => return Err(bad("role` must be system, user, assistant or tool")),
        };
        let images = get(message, "images").filter(|v| v.as_array().is_none_or(|a| !a.is_empty()));
        if role != "user" && images.is_some() {
            return Err(bad("images` are only supported in user messages"));
        }
        let mut translated = json!({ "role": role, "content": text });
        match role {
            "user" => translated["content"] = request::user_content(text, images, &at)?,
            "assistant" => {
                let calls = tool_calls(get(message, "tool_calls"), &at)?;
                if !calls.is_empty() {
                    for call in &calls {
                        let id = call["id"].as_str().unwrap_or_default().to_string();
                        let name = call["function"]["name"].as_str().unwrap_or_default();
                        unanswered.push((id, name.to_string()));
                    }
                    if text.is_empty() {
                        translated["content"] = Value::Null;
                    }
                    translated["tool_calls"] = Value::Array(calls);
                }
            }
            "tool" => {
                let by_id = get(message, "tool_call_id").and_then(Value::as_str);
                let name = get(message, "tool_name").and_then(Value::as_str);
                let found = match (by_id, name) {
                    (Some(id), _) => unanswered.iter().position(|(i, _)| i == id),
                    (None, Some(name)) => unanswered.iter().position(|(_, n)| n == name),
                    (None, None) => (!unanswered.is_empty()).then_some(0),
                };
                let id = match (found, by_id) {
                    (Some(pos), _) => unanswered.remove(pos).0,
                    (None, Some(id)) => id.to_string(),
                    (None, None) => format!("call_{}", uuid::Uuid::new_v4().simple()),
                };
                translated["tool_call_id"] = Value::String(id);
            }
            _ => {}
        }
        out.push(translated);
    }
    Ok(out)
}

/// Ollama tool calls (arguments as an object) → OpenAI's (arguments as JSON text).
fn tool_calls(calls: Option<&Value>, at: &str) -> Result<Vec<Value>, ApiError> {
    let Some(calls) = calls else {
        return Ok(Vec::new());
    };
    let Some(calls) = calls.as_array() else {
        return Err(ApiError::bad_request(format!(
            "`{at}tool_calls` must be an array"
        )));
    };
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        let Some(name) = call.pointer("/function/name").and_then(Value::as_str) else {
            return Err(ApiError::bad_request(format!(
                "`{at}tool_calls[].function.name` is required"
            )));
        };
        let arguments = match call.pointer("/function/arguments") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::String(text)) => text.clone(),
            Some(object) => object.to_string(),
        };
        let id = match call.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => format!("call_{}", uuid::Uuid::new_v4().simple()),
        };
        out.push(json!({
            "id": id,
            "type": "function",
            "function": { "name": name, "arguments": arguments },
        }));
    }
    Ok(out)
}

/// Tools pass as they are (Ollama's are OpenAI's), once checked to be function tools.
fn check_tools(tools: &[Value]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            None | Some("function") => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "`tools[{i}]`: tools of type `{other}` are not supported, only `function`"
                )));
            }
        }
        if tool
            .pointer("/function/name")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(ApiError::bad_request(format!(
                "`tools[{i}].function.name` is required"
            )));
        }
        let mut tool = tool.clone();
        tool["type"] = json!("function");
        out.push(tool);
    }
    Ok(out)
}
