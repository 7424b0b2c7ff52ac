//! Ollama `/api/chat` answers → OpenAI `chat.completion` objects and
//! `chat.completion.chunk` streams. Pure: the translators see JSON values and lines.

use serde_json::{Map, Value, json};

use crate::core::engine::estimate::estimate_tokens;
use crate::core::engine::http::LineTranslator;
use crate::core::engine::shape::{Meta, usage_json};
use crate::core::engine::{EngineError, StreamEvent, Usage};

/// Usage from a final Ollama object. Ollama leaves `prompt_eval_count` out when the
/// whole prompt came from its cache, so a missing count is estimated, not taken as 0.
pub(crate) fn usage(done: &Value, prompt_chars: usize, output_chars: usize) -> Usage {
    let count = |key: &str| done.get(key).and_then(Value::as_u64);
    let input = count("prompt_eval_count");
    let output = count("eval_count");
    Usage {
        input_tokens: input.unwrap_or_else(|| estimate_tokens(prompt_chars)),
        output_tokens: output.unwrap_or_else(|| estimate_tokens(output_chars)),
        estimated: input.is_none() || output.is_none(),
    }
}

fn error_of(v: &Value) -> Option<String> {
    match v.get("error")? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Ollama tool calls → OpenAI's, ids invented where Ollama gives none, arguments
/// serialised to the JSON string OpenAI clients expect. `first_index` numbers them
/// across a stream.
fn tool_calls(calls: &[Value], first_index: usize, with_index: bool) -> Vec<Value> {
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let arguments = match call.pointer("/function/arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "{}".to_string(),
            };
            let id = match call.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24]),
            };
            let mut out = Map::new();
            if with_index {
                out.insert("index".into(), json!(first_index + i));
            }
            out.insert("id".into(), Value::String(id));
            out.insert("type".into(), Value::String("function".into()));
            out.insert(
                "function".into(),
                json!({"name": name, "arguments": arguments}),
            );
            Value::Object(out)
        })
        .collect()
}

fn finish_reason(done: &Value, saw_tool_calls: bool) -> &'static str {
    if saw_tool_calls {
        "tool_calls"
    } else if done.get("done_reason").and_then(Value::as_str) == Some("length") {
        "length"
    } else {
        "stop"
    }
}

fn model_of<'a>(v: &'a Value, meta: &'a Meta) -> &'a str {
    v.get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(&meta.model)
}

/// A whole Ollama answer as a `chat.completion`, with its usage.
pub(crate) fn completion(
    v: &Value,
    meta: &Meta,
    prompt_chars: usize,
) -> Result<(Value, Usage), EngineError> {
    if let Some(e) = error_of(v) {
        return Err(EngineError::Protocol(format!("engine error: {e}")));
    }
    let Some(message) = v.get("message").filter(|m| m.is_object()) else {
        return Err(EngineError::Protocol(
            "Ollama answer has no \"message\" object".into(),
        ));
    };
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let calls = match message.get("tool_calls") {
        Some(Value::Array(calls)) if !calls.is_empty() => tool_calls(calls, 0, false),
        _ => Vec::new(),
    };
    let mut msg = Map::new();
    msg.insert("role".into(), Value::String("assistant".into()));
    // OpenAI clients test for `content is None` on a pure tool-call turn.
    let content_value = if content.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(content.into())
    };
    msg.insert("content".into(), content_value);
    let saw_calls = !calls.is_empty();
    if saw_calls {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    let usage = usage(v, prompt_chars, content.chars().count());
    let body = json!({
        "id": meta.id, "object": "chat.completion", "created": meta.created,
        "model": model_of(v, meta),
        "choices": [{"index": 0, "message": msg, "finish_reason": finish_reason(v, saw_calls)}],
        "usage": usage_json(&usage),
    });
    Ok((body, usage))
}

/// NDJSON lines of a streamed Ollama answer → `chat.completion.chunk` events.
pub(crate) struct ChunkTranslator {
    meta: Meta,
    wants_usage: bool,
    prompt_chars: usize,
    output_chars: usize,
    role_sent: bool,
    tool_calls_sent: usize,
    done: bool,
}

impl ChunkTranslator {
    pub(crate) fn new(meta: Meta, wants_usage: bool, prompt_chars: usize) -> Self {
        ChunkTranslator {
            meta,
            wants_usage,
            prompt_chars,
            output_chars: 0,
            role_sent: false,
            tool_calls_sent: 0,
            done: false,
        }
    }

    fn chunk(&self, model: &str, delta: Value, finish: Option<&str>) -> Value {
        self.meta.chunk(model, delta, finish)
    }

    fn delta(&mut self) -> Map<String, Value> {
        let mut delta = Map::new();
        if !self.role_sent {
            self.role_sent = true;
            delta.insert("role".into(), Value::String("assistant".into()));
        }
        delta
    }
}

impl LineTranslator for ChunkTranslator {
    fn line(&mut self, line: &[u8]) -> Result<Vec<StreamEvent>, EngineError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_slice(line)
            .map_err(|e| EngineError::Protocol(format!("stream line is not JSON: {e}")))?;
        if let Some(e) = error_of(&v) {
            return Err(EngineError::Protocol(format!(
                "engine error mid-stream: {e}"
            )));
        }
        let model = model_of(&v, &self.meta).to_string();
        let message = v.get("message");
        let content = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let done = v.get("done").and_then(Value::as_bool).unwrap_or(false);
        let mut events = Vec::new();
        // The first chunk carries the role even when it has no text, as OpenAI's does.
        if !content.is_empty() || (!self.role_sent && !done) {
            self.output_chars += content.chars().count();
            let mut delta = self.delta();
            delta.insert("content".into(), Value::String(content.into()));
            events.push(StreamEvent::Chunk(self.chunk(
                &model,
                Value::Object(delta),
                None,
            )));
        }
        if let Some(Value::Array(calls)) = message.and_then(|m| m.get("tool_calls"))
            && !calls.is_empty()
        {
            let mut delta = self.delta();
            delta.insert(
                "tool_calls".into(),
                Value::Array(tool_calls(calls, self.tool_calls_sent, true)),
            );
            self.tool_calls_sent += calls.len();
            events.push(StreamEvent::Chunk(self.chunk(
                &model,
                Value::Object(delta),
                None,
            )));
        }
        if done {
            self.done = true;
            let finish = finish_reason(&v, self.tool_calls_sent > 0);
            events.push(StreamEvent::Chunk(self.chunk(
                &model,
                json!({}),
                Some(finish),
            )));
            let usage = usage(&v, self.prompt_chars, self.output_chars);
            if self.wants_usage {
                events.push(StreamEvent::Chunk(self.meta.usage_chunk(&model, &usage)));
            }
            events.push(StreamEvent::Usage(usage));
        }
        Ok(events)
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        Err(EngineError::Unreachable(
            "engine closed the stream before its final (done) line".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            id: "chatcmpl-x".into(),
            created: 1,
            model: "m".into(),
        }
    }

    #[test]
    fn whole_answer_with_text() {
        let v = json!({"model":"m:latest","message":{"role":"assistant","content":"Hi there"},
            "done":true,"done_reason":"length","prompt_eval_count":5,"eval_count":2});
        let (body, usage) = completion(&v, &meta(), 0).unwrap();
        assert_eq!(
            usage,
            Usage {
                input_tokens: 5,
                output_tokens: 2,
                estimated: false
            }
        );
        assert_eq!(body["model"], "m:latest");
        assert_eq!(
            body["choices"][0]["message"],
            json!({"role":"assistant","content":"Hi there"})
        );
        assert_eq!(body["choices"][0]["finish_reason"], "length");
        assert_eq!(body["usage"]["total_tokens"], 7);
    }

    #[test]
    fn whole_answer_with_tool_call_and_cached_prompt() {
        let v = json!({"message":{"role":"assistant","content":"",
            "tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},"done":true,"eval_count":3});
        let (body, usage) = completion(&v, &meta(), 40).unwrap();
        let call = &body["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(
            call["function"],
            json!({"name":"f","arguments":"{\"a\":1}"})
        );
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert!(body["choices"][0]["message"]["content"].is_null());
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            usage,
            Usage {
                input_tokens: 10,
                output_tokens: 3,
                estimated: true
            }
        );
    }

    #[test]
    fn error_and_shapeless_answers() {
        assert!(
            matches!(completion(&json!({"error":"boom"}), &meta(), 0), Err(EngineError::Protocol(e)) if e.contains("boom"))
        );
        assert!(completion(&json!({"done":true}), &meta(), 0).is_err());
    }

    fn run(lines: &[&str], wants_usage: bool) -> Vec<StreamEvent> {
        let mut t = ChunkTranslator::new(meta(), wants_usage, 0);
        let mut out = Vec::new();
        for l in lines {
            out.extend(t.line(l.as_bytes()).unwrap());
        }
        assert!(t.finished());
        out
    }

    fn deltas(events: &[StreamEvent]) -> Vec<Value> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Chunk(c) => Some(
                    c["choices"]
                        .get(0)
                        .map(|c| c["delta"].clone())
                        .unwrap_or(Value::Null),
                ),
                StreamEvent::ChunkText(_) | StreamEvent::Usage(_) => None,
            })
            .collect()
    }

    #[test]
    fn stream_of_text() {
        let events = run(
            &[
                r#"{"message":{"role":"assistant","content":"Hel"},"done":false}"#,
                "",
                r#"{"message":{"role":"assistant","content":"lo"},"done":false}"#,
                r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":4,"eval_count":2}"#,
            ],
            true,
        );
        assert_eq!(
            deltas(&events),
            [
                json!({"role":"assistant","content":"Hel"}),
                json!({"content":"lo"}),
                json!({}),
                Value::Null
            ]
        );
        let StreamEvent::Chunk(usage_chunk) = &events[3] else {
            panic!()
        };
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 4);
        assert_eq!(
            events[4],
            StreamEvent::Usage(Usage {
                input_tokens: 4,
                output_tokens: 2,
                estimated: false
            })
        );
    }

    #[test]
    fn stream_with_tool_calls() {
        let events = run(
            &[
                r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]},"done":false}"#,
                r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":1,"eval_count":1}"#,
            ],
            false,
        );
        let d = deltas(&events);
        assert_eq!(d[0], json!({"role":"assistant","content":""}));
        assert_eq!(d[1]["tool_calls"][0]["index"], 0);
        assert_eq!(
            d[1]["tool_calls"][0]["function"],
            json!({"name":"f","arguments":"{}"})
        );
        let StreamEvent::Chunk(last) = &events[2] else {
            panic!()
        };
        assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
        assert!(matches!(events[3], StreamEvent::Usage(_)));
    }

    #[test]
    fn stream_errors() {
        let mut t = ChunkTranslator::new(meta(), false, 0);
        assert!(matches!(t.line(b"not json"), Err(EngineError::Protocol(_))));
        assert!(
            matches!(t.line(br#"{"error":"out of memory"}"#), Err(EngineError::Protocol(e)) if e.contains("out of memory"))
        );
        assert!(matches!(t.end(), Err(EngineError::Unreachable(_))));
    }
}
