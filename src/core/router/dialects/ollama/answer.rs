//! A chat answer → Ollama's, for `/api/chat` (text in `message.content`) and
//! `/api/generate` (text in `response`). Whole: one object with `done: true`, the
//! `done_reason`, token counts and durations (ns, measured from the request's start).
//! Streamed: one NDJSON line per text delta, tool calls on a line of their own once
//! complete (Ollama sends them whole, so their argument fragments are gathered), then
//! the closing `done: true` line with the counts. An engine's reasoning text is passed
//! on as `thinking`, where Ollama puts it.

use std::time::Instant;

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::core::router::dialects::{error_message, ndjson};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Chat,
    Generate,
}

pub(super) struct Answer {
    shape: Shape,
    /// The model the client named: Ollama answers with it.
    pub(super) model: String,
    created_at: String,
    started: Instant,
    first_token: Option<Instant>,
    calls: Vec<Call>,
    finish: Option<String>,
    usage: Option<Value>,
    /// After the closing line or an error nothing more is sent.
    ended: bool,
}

/// A streamed tool call, gathered by its `index`.
struct Call {
    index: u64,
    id: String,
    name: String,
    arguments: String,
}

impl Answer {
    pub(super) fn new(shape: Shape, now_ms: u64) -> Self {
        Answer {
            shape,
            model: String::new(),
            created_at: super::created_at(now_ms),
            started: Instant::now(),
            first_token: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
            ended: false,
        }
    }

    /// A line (or the whole answer) holding `text`, before its closing fields.
    fn line(&self, text: &str, thinking: Option<&str>, done: bool) -> Value {
        let mut line = json!({ "model": self.model, "created_at": self.created_at });
        match self.shape {
            Shape::Chat => {
                let mut message = json!({ "role": "assistant", "content": text });
                if let Some(thinking) = thinking {
                    message["thinking"] = json!(thinking);
                }
                line["message"] = message;
            }
            Shape::Generate => {
                line["response"] = json!(text);
                if let Some(thinking) = thinking {
                    line["thinking"] = json!(thinking);
                }
            }
        }
        line["done"] = json!(done);
        line
    }

    /// The closing fields: why it stopped, the counts, the durations.
    fn close(&self, line: &mut Value, finish: Option<&str>, usage: Option<&Value>) {
        let count = |key: &str| usage.and_then(|u| u.get(key)).and_then(Value::as_u64);
        let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let total = nanos(self.started.elapsed());
        let prompt = self
            .first_token
            .map_or(0, |t| nanos(t.duration_since(self.started)));
        line["done_reason"] = json!(if finish == Some("length") {
            "length"
        } else {
            "stop"
        });
        line["total_duration"] = json!(total);
        line["load_duration"] = json!(0);
        line["prompt_eval_count"] = json!(count("prompt_tokens").unwrap_or(0));
        line["prompt_eval_duration"] = json!(prompt);
        line["eval_count"] = json!(count("completion_tokens").unwrap_or(0));
        line["eval_duration"] = json!(total.saturating_sub(prompt));
    }

    pub(super) fn whole(&mut self, answer: &Value) -> Value {
        let choice = answer.pointer("/choices/0");
        let message = choice.and_then(|c| c.get("message"));
        let text = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut line = self.line(text, message.and_then(reasoning), true);
        if self.shape == Shape::Chat {
            let calls: Vec<Value> = message
                .and_then(|m| m.get("tool_calls"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, call)| {
                    let text = |p: &str| call.pointer(p).and_then(Value::as_str).unwrap_or("");
                    ollama_call(
                        i as u64,
                        text("/id"),
                        text("/function/name"),
                        text("/function/arguments"),
                    )
                })
                .collect();
            if !calls.is_empty() {
                line["message"]["tool_calls"] = Value::Array(calls);
            }
        }
        let finish = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str);
        self.close(&mut line, finish, answer.get("usage"));
        line
    }

    pub(super) fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta");
        let text = delta.and_then(|d| d.get("content")).and_then(Value::as_str);
        let thinking = delta.and_then(reasoning).filter(|t| !t.is_empty());
        if text.is_some_and(|t| !t.is_empty()) || thinking.is_some() {
            self.first_token.get_or_insert_with(Instant::now);
            out.push(ndjson(&self.line(text.unwrap_or(""), thinking, false)));
        }
        let fragments = delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array);
        for fragment in fragments.into_iter().flatten() {
            self.first_token.get_or_insert_with(Instant::now);
            self.gather(fragment);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(reason.to_string());
            // The calls are complete: they go now, the counts wait for the usage chunk.
            self.flush_calls(out);
        }
    }

    pub(super) fn finish(&mut self, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.flush_calls(out);
        let mut line = self.line("", None, true);
        self.close(&mut line, self.finish.as_deref(), self.usage.as_ref());
        out.push(ndjson(&line));
        self.ended = true;
    }

    /// One `{"error": …}` line, which the client library raises, and nothing after.
    pub(super) fn stream_error(&mut self, error: &Value, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        out.push(ndjson(&json!({ "error": error_message(error) })));
        self.ended = true;
    }

    fn gather(&mut self, fragment: &Value) {
        let text = |p: &str| fragment.pointer(p).and_then(Value::as_str).unwrap_or("");
        let index = fragment
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| self.calls.last().map_or(0, |c| c.index));
        let pos = match self.calls.iter().position(|c| c.index == index) {
            Some(pos) => pos,
            None => {
                self.calls.push(Call {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos];
        if call.id.is_empty() {
            call.id = text("/id").to_string();
        }
        if call.name.is_empty() {
            call.name = text("/function/name").to_string();
        }
        call.arguments.push_str(text("/function/arguments"));
    }

    /// The gathered calls on one line. `/api/generate` has no tools, so none come.
    fn flush_calls(&mut self, out: &mut Vec<Bytes>) {
        if self.calls.is_empty() || self.shape != Shape::Chat {
            return;
        }
        let calls: Vec<Value> = self
            .calls
            .drain(..)
            .map(|c| ollama_call(c.index, &c.id, &c.name, &c.arguments))
            .collect();
        let mut line = self.line("", None, false);
        line["message"]["tool_calls"] = Value::Array(calls);
        out.push(ndjson(&line));
    }
}

/// An engine's reasoning text: `reasoning_content` (DeepSeek, vLLM, llama.cpp) or
/// `reasoning` (Ollama's own OpenAI endpoint).
fn reasoning(message: &Value) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|key| message.get(*key).and_then(Value::as_str))
}

/// A tool call as Ollama writes it: arguments as an object. Text that does not parse
/// to an object becomes `{}`, since the client library reads a mapping.
fn ollama_call(index: u64, id: &str, name: &str, arguments: &str) -> Value {
    let arguments = match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({}),
    };
    let id = if id.is_empty() {
        format!("call_{}", uuid::Uuid::new_v4().simple())
    } else {
        id.to_string()
    };
    json!({
        "id": id,
        "function": { "index": index, "name": name, "arguments": arguments },
    })
}
