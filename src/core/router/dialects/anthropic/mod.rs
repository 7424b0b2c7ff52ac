//! Anthropic's Messages API, `POST /v1/messages`, as the official SDKs speak it: the
//! request becomes an OpenAI chat request (`request.rs`), the whole answer becomes a
//! `message` here, and a streamed answer becomes Anthropic's event sequence
//! (`stream.rs`). Errors take Anthropic's `{"type":"error","error":{…}}` shape.
//!
//! This module owns the mapping of the two APIs' vocabularies: stop reasons, error types,
//! tool calls (OpenAI's JSON text ↔ Anthropic's `input` object).

mod content;
mod request;
mod stream;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Dialect, Upstream, error_kind, error_message, sse};
use crate::core::api_error::ApiError;

/// One `/v1/messages` request and its answer.
pub(crate) struct Messages {
    /// The answer's id, `msg_…`, the same in every stream event.
    id: String,
    /// The model the client asked for: Anthropic answers name it, not the engine's tag.
    model: String,
    stream: stream::Events,
}

impl Messages {
    /// `now_ms` is unused: Anthropic answers carry no timestamp.
    pub(crate) fn new(_now_ms: u64) -> Self {
        Messages {
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            model: String::new(),
            stream: stream::Events::default(),
        }
    }
}

impl Dialect for Messages {
    fn upstream(&self) -> Upstream {
        Upstream::Chat
    }

    fn to_upstream(&mut self, request: Value) -> Result<Value, ApiError> {
        let (body, model) = request::translate(request)?;
        self.model = model;
        Ok(body)
    }

    fn whole(&mut self, answer: Value) -> Value {
        let message = answer.pointer("/choices/0/message");
        let mut content = Vec::new();
        let text = message.map(message_text).unwrap_or_default();
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        let calls = message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for call in calls {
            let function = call.get("function");
            let field = |name| function.and_then(|f| f.get(name));
            content.push(json!({
                "type": "tool_use",
                "id": call.get("id").and_then(Value::as_str).map_or_else(tool_id, String::from),
                "name": field("name").and_then(Value::as_str).unwrap_or_default(),
                "input": tool_input(field("arguments")),
            }));
        }
        let finish = answer
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str);
        let usage = |name| {
            answer
                .pointer(&format!("/usage/{name}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason(finish, !calls.is_empty()),
            "stop_sequence": null,
            "usage": {
                "input_tokens": usage("prompt_tokens"),
                "output_tokens": usage("completion_tokens"),
            },
        })
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        self.stream.chunk(&self.id, &self.model, chunk, out);
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.stream.finish(&self.id, &self.model, out);
    }

    fn stream_error(&mut self, error: &Value, out: &mut Vec<Bytes>) {
        // The stream's status is already 200, so the kind is read off the OpenAI type.
        let kind = kind_of_type(&error_kind(error));
        if self.stream.fail() {
            out.push(sse(Some("error"), &error_json(kind, &error_message(error))));
        }
    }

    fn error_body(&self, status: StatusCode, error: &Value) -> Value {
        error_json(kind_of_status(status), &error_message(error))
    }
}

fn error_json(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Anthropic's error type for an HTTP status (the SDKs pick their exception by status;
/// the type is what a caller logs or matches).
fn kind_of_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        s if (400..500).contains(&s) => "invalid_request_error",
        _ => "api_error",
    }
}

/// Anthropic's error type for an OpenAI (or lobstah) error type seen mid-stream.
fn kind_of_type(kind: &str) -> &'static str {
    if kind.contains("invalid_request") {
        "invalid_request_error"
    } else if kind.contains("not_found") {
        "not_found_error"
    } else if kind.contains("rate_limit") {
        "rate_limit_error"
    } else if ["overloaded", "unavailable", "queue_full", "no_capable_peer"]
        .iter()
        .any(|k| kind.contains(k))
    {
        "overloaded_error"
    } else {
        "api_error"
    }
}

/// OpenAI's finish reason → Anthropic's stop reason. Some engines say `stop` although
/// they called a tool; Anthropic clients loop on `tool_use`, so the calls decide.
fn stop_reason(finish: Option<&str>, called_tools: bool) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("content_filter") => "refusal",
        Some("tool_calls" | "function_call") => "tool_use",
        _ if called_tools => "tool_use",
        _ => "end_turn",
    }
}

/// The text of an OpenAI answer message: a string, or (some engines) text parts.
fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// OpenAI tool-call arguments (JSON text, or an object from lenient engines) → an
/// Anthropic `input`, which must be an object: text that is not one becomes `{}`.
fn tool_input(arguments: Option<&Value>) -> Value {
    let parsed = match arguments {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    if parsed.is_object() {
        parsed
    } else {
        json!({})
    }
}

/// A tool-use id for an engine's call that came without one.
fn tool_id() -> String {
    format!("toolu_{}", uuid::Uuid::new_v4().simple())
}
