//! OpenAI's Responses API (`POST /v1/responses`), stateless, as the official `openai`
//! SDKs speak it. A request's input items become chat messages (`request.rs`); a chat
//! answer becomes a `response` object (here), and a chat stream becomes the Responses
//! event sequence, `response.created` … `response.completed` (`stream.rs`).
//!
//! Stateless: nothing is stored, so `previous_response_id` and `conversation` are
//! refused and every response says `"store": false`. The same `response` object (id,
//! echoed settings, output, usage) is built for a whole answer and for the stream's
//! closing `response.completed`, so both read the same in an SDK.

mod input;
mod request;
mod stream;
#[cfg(test)]
mod tests_request;
#[cfg(test)]
mod tests_stream;

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{Dialect, Upstream, error_kind, error_message};
use crate::core::api_error::ApiError;

/// One `/v1/responses` request and its answer.
pub(crate) struct Responses {
    id: String,
    created_at: u64,
    /// The model the client asked for, named in every response object.
    model: String,
    /// The request's settings a `response` object repeats (instructions, tools, …).
    echo: Map<String, Value>,
    stream: stream::StreamState,
}

impl Responses {
    pub(crate) fn new(now_ms: u64) -> Self {
        Responses {
            id: format!("resp_{}", uuid::Uuid::new_v4().simple()),
            created_at: now_ms / 1000,
            model: String::new(),
            echo: Map::new(),
            stream: stream::StreamState::default(),
        }
    }

    /// The `response` object: `status` is `in_progress`, `completed`, `incomplete` or
    /// `failed`; `finish` is the chat finish reason, which says why it is incomplete.
    fn response_object(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        finish: Option<&str>,
    ) -> Value {
        let incomplete = match finish {
            Some("length") => json!({ "reason": "max_output_tokens" }),
            Some("content_filter") => json!({ "reason": "content_filter" }),
            _ => Value::Null,
        };
        let status = if status == "completed" && !incomplete.is_null() {
            "incomplete"
        } else {
            status
        };
        let mut object = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": incomplete,
            "model": self.model,
            "output": output,
            "usage": usage,
            // Nothing is kept: a later `previous_response_id` naming this is refused.
            "store": false,
            "background": false,
            "previous_response_id": null,
        });
        if status != "in_progress" {
            object["completed_at"] = json!(self.created_at);
        }
        if let Some(fields) = object.as_object_mut() {
            for (key, value) in &self.echo {
                fields.insert(key.clone(), value.clone());
            }
        }
        object
    }
}

/// A new output item id with the given prefix (`msg`, `fc`).
fn item_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// An assistant `message` output item holding one `output_text` part.
fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "status": status,
        "role": "assistant",
        "content": [output_text(text)],
    })
}

fn output_text(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}

/// A `function_call` output item. `arguments` stays the JSON text the model wrote, as
/// the Responses API carries it, even when it does not parse.
fn function_call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({
        "type": "function_call",
        "id": id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    })
}

/// OpenAI chat usage → Responses usage; absent usage counts 0.
fn usage(usage: Option<&Value>) -> Value {
    let count = |pointer: &str| {
        usage
            .and_then(|u| u.pointer(pointer))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let input = count("/prompt_tokens");
    let output = count("/completion_tokens");
    let total = match count("/total_tokens") {
        0 => input + output,
        total => total,
    };
    json!({
        "input_tokens": input,
        "input_tokens_details": {
            "cached_tokens": count("/prompt_tokens_details/cached_tokens"),
        },
        "output_tokens": output,
        "output_tokens_details": {
            "reasoning_tokens": count("/completion_tokens_details/reasoning_tokens"),
        },
        "total_tokens": total,
    })
}

impl Dialect for Responses {
    fn upstream(&self) -> Upstream {
        Upstream::Chat
    }

    fn to_upstream(&mut self, request: Value) -> Result<Value, ApiError> {
        let translated = request::translate(&request)?;
        self.model = translated.model;
        self.echo = translated.echo;
        Ok(translated.chat)
    }

    fn whole(&mut self, answer: Value) -> Value {
        let choice = answer.pointer("/choices/0");
        let message = choice.and_then(|c| c.get("message"));
        let finish = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str);
        let text = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let calls = message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut output = Vec::new();
        // A message item unless the answer is only tool calls, so `output_text` reads
        // "" rather than failing on an answer with nothing in it.
        if !text.is_empty() || calls.is_empty() {
            let status = if matches!(finish, Some("length" | "content_filter")) {
                "incomplete"
            } else {
                "completed"
            };
            output.push(message_item(&item_id("msg"), text, status));
        }
        for call in calls {
            let text_of = |p: &str| call.pointer(p).and_then(Value::as_str).unwrap_or("");
            let call_id = match text_of("/id") {
                "" => item_id("call"),
                id => id.to_string(),
            };
            let arguments = match call.pointer("/function/arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                // An engine that sent an object: it is JSON text the client wants.
                Some(other) => other.to_string(),
            };
            output.push(function_call_item(
                &item_id("fc"),
                &call_id,
                text_of("/function/name"),
                &arguments,
                "completed",
            ));
        }
        let usage = usage(answer.get("usage"));
        self.response_object("completed", output, Some(usage), finish)
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        let mut stream = std::mem::take(&mut self.stream);
        stream.chunk(self, chunk, out);
        self.stream = stream;
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        let mut stream = std::mem::take(&mut self.stream);
        stream.finish(self, out);
        self.stream = stream;
    }

    fn stream_error(&mut self, error: &Value, out: &mut Vec<Bytes>) {
        let mut stream = std::mem::take(&mut self.stream);
        stream.error(self, error, out);
        self.stream = stream;
    }

    fn error_body(&self, status: StatusCode, error: &Value) -> Value {
        // Already OpenAI's shape: pass it on, filling what the SDKs read (`message`,
        // `type`, `param`, `code`) when the router's object lacks them.
        let mut body = match error.get("error") {
            Some(Value::Object(fields)) => fields.clone(),
            _ => Map::new(),
        };
        if !body.get("message").is_some_and(Value::is_string) {
            let message = match error {
                Value::Null => status
                    .canonical_reason()
                    .unwrap_or("the request failed")
                    .to_string(),
                _ => error_message(error),
            };
            body.insert("message".into(), Value::String(message));
        }
        body.entry("type")
            .or_insert_with(|| Value::String(error_kind(error)));
        body.entry("param").or_insert(Value::Null);
        body.entry("code").or_insert(Value::Null);
        json!({ "error": body })
    }
}
