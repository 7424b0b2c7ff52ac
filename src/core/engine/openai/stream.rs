//! SSE lines of an OpenAI-compatible stream → stream events. The adapter forces
//! `include_usage` on the wire to meter the answer; this translator hides the
//! usage-only chunk again from a client that did not ask for it.

use std::sync::Arc;

use serde_json::Value;

use crate::core::engine::estimate::{WarnOnce, estimated_usage};
use crate::core::engine::http::LineTranslator;
use crate::core::engine::lines::{SseDecoder, SseItem};
use crate::core::engine::{EngineError, StreamEvent, Usage};

use super::relay::{RawChunk, is_null, read_choices};

/// `usage.prompt_tokens` / `usage.completion_tokens` of an OpenAI object, if both are there.
pub(crate) fn usage_of(v: &Value) -> Option<Usage> {
    usage_in(v.get("usage")?)
}

/// The counts in a `usage` object, if both are there.
fn usage_in(u: &Value) -> Option<Usage> {
    Some(Usage {
        input_tokens: u.get("prompt_tokens")?.as_u64()?,
        output_tokens: u.get("completion_tokens")?.as_u64()?,
        estimated: false,
    })
}

/// The human part of an OpenAI-style error object (`{"error":{"message":…}}` or
/// `{"error":"…"}`).
pub(crate) fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error").filter(|e| !e.is_null())?;
    Some(
        match e.get("message").and_then(Value::as_str).or(e.as_str()) {
            Some(m) => m.to_string(),
            None => e.to_string(),
        },
    )
}

/// Characters of generated text in a chunk's deltas (or a completion's messages, with
/// `field` = "message"), for estimating usage an engine did not report.
pub(crate) fn generated_chars(v: &Value, field: &str) -> usize {
    v.get("choices")
        .map_or(0, |choices| generated_chars_in(choices, field))
}

/// [`generated_chars`] given the `choices` member itself.
fn generated_chars_in(choices: &Value, field: &str) -> usize {
    let Value::Array(choices) = choices else {
        return 0;
    };
    let mut chars = 0;
    for choice in choices {
        let Some(part) = choice.get(field) else {
            continue;
        };
        if let Some(Value::String(text)) = part.get("content") {
            chars += text.chars().count();
        }
        if let Some(Value::Array(calls)) = part.get("tool_calls") {
            for call in calls {
                if let Some(Value::String(args)) = call.pointer("/function/arguments") {
                    chars += args.chars().count();
                }
            }
        }
    }
    chars
}

/// Logged once per engine instance when usage has to be estimated.
pub(crate) struct EstimateWarning {
    pub flag: Arc<WarnOnce>,
    pub engine: String,
}

impl EstimateWarning {
    pub(crate) fn note(&self, usage: &Usage) {
        if usage.estimated && self.flag.first() {
            tracing::warn!(
                engine = %self.engine,
                "engine reported no token usage; estimating ~4 chars per token (receipts marked estimated)"
            );
        }
    }
}

pub(crate) struct SseTranslator {
    sse: SseDecoder,
    wants_usage: bool,
    usage: Option<Usage>,
    prompt_chars: usize,
    output_chars: usize,
    saw_finish: bool,
    /// Whether any text line / any SSE event arrived, to tell a cut-off stream from a
    /// body that was never an event stream.
    saw_line: bool,
    saw_event: bool,
    done: bool,
    warning: EstimateWarning,
}

impl SseTranslator {
    pub(crate) fn new(wants_usage: bool, prompt_chars: usize, warning: EstimateWarning) -> Self {
        SseTranslator {
            sse: SseDecoder::default(),
            wants_usage,
            usage: None,
            prompt_chars,
            output_chars: 0,
            saw_finish: false,
            saw_line: false,
            saw_event: false,
            done: false,
            warning,
        }
    }

    fn final_usage(&self) -> StreamEvent {
        let usage = self
            .usage
            .unwrap_or_else(|| estimated_usage(self.prompt_chars, self.output_chars));
        self.warning.note(&usage);
        StreamEvent::Usage(usage)
    }

    fn item(&mut self, item: SseItem) -> Result<Vec<StreamEvent>, EngineError> {
        let SseItem::Event { event, data } = item else {
            return Ok(Vec::new());
        };
        self.saw_event = true;
        if event.as_deref() == Some("error") {
            return Err(EngineError::Protocol(format!(
                "engine error mid-stream: {data}"
            )));
        }
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(vec![self.final_usage()]);
        }
        if let Some(events) = self.relay(&data) {
            return Ok(events);
        }
        let chunk: Value = serde_json::from_str(&data).map_err(|e| {
            EngineError::Protocol(format!("stream event is not JSON ({e}): {}", short(&data)))
        })?;
        if !chunk.is_object() {
            return Err(EngineError::Protocol(format!(
                "stream event is not a JSON object: {}",
                short(&data)
            )));
        }
        if let Some(message) = error_message(&chunk) {
            return Err(EngineError::Protocol(format!(
                "engine error mid-stream: {message}"
            )));
        }
        if let Some(usage) = usage_of(&chunk) {
            self.usage = Some(usage);
        }
        self.output_chars += generated_chars(&chunk, "delta");
        let choices = chunk.get("choices").and_then(Value::as_array);
        if let Some(choices) = choices {
            self.saw_finish |= choices
                .iter()
                .any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()));
        }
        let usage_only = choices.is_some_and(|c| c.is_empty())
            && chunk.get("usage").is_some_and(Value::is_object);
        if self.wants_usage {
            return Ok(vec![StreamEvent::Chunk(chunk)]);
        }
        if usage_only {
            return Ok(Vec::new());
        }
        // With include_usage on, OpenAI puts `"usage": null` on every chunk; a client
        // that did not ask gets chunks as it would have without our forcing it.
        let mut chunk = chunk;
        if let Value::Object(fields) = &mut chunk {
            fields.shift_remove("usage");
        }
        Ok(vec![StreamEvent::Chunk(chunk)])
    }
}

impl SseTranslator {
    /// The usual chunk, read without building it: the same bookkeeping and the same
    /// decisions as the general path in `item`, with the chunk passed on as text. `None`
    /// sends the chunk down the general path (not an object, repeated keys, a line break,
    /// an error member, members that do not parse).
    fn relay(&mut self, data: &str) -> Option<Vec<StreamEvent>> {
        let chunk = RawChunk::parse(data)?;
        if chunk.get("error").is_some_and(|e| !is_null(e)) {
            return None;
        }
        let usage: Option<Value> = match chunk.get("usage") {
            Some(raw) => Some(serde_json::from_str(raw.get()).ok()?),
            None => None,
        };
        let choices = read_choices(&chunk)?;
        if let Some(counts) = usage.as_ref().and_then(usage_in) {
            self.usage = Some(counts);
        }
        if let Some(choices) = &choices {
            self.output_chars += choices.chars;
            self.saw_finish |= choices.finished;
        }
        let usage_only = choices.as_ref().is_some_and(|c| c.count == 0)
            && usage.as_ref().is_some_and(Value::is_object);
        if self.wants_usage {
            return Some(vec![StreamEvent::ChunkText(chunk.text())]);
        }
        if usage_only {
            return Some(Vec::new());
        }
        // As in `item`: the `"usage": null` our forcing put on every chunk goes.
        Some(vec![StreamEvent::ChunkText(chunk.text_without("usage"))])
    }
}

fn short(text: &str) -> String {
    crate::core::engine::http::trim_body(text)
}

impl LineTranslator for SseTranslator {
    fn line(&mut self, line: &[u8]) -> Result<Vec<StreamEvent>, EngineError> {
        self.saw_line |= !line.is_empty();
        match self.sse.line(line)? {
            Some(item) => self.item(item),
            None => Ok(Vec::new()),
        }
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = match self.sse.finish() {
            Some(item) => self.item(item)?,
            None => Vec::new(),
        };
        if self.done {
            return Ok(events);
        }
        // Some servers close after the finishing chunk without `[DONE]`; the answer is
        // whole. Without a finish_reason it was cut off.
        if self.saw_finish {
            self.done = true;
            events.push(self.final_usage());
            return Ok(events);
        }
        Err(EngineError::Unreachable(
            "engine closed the stream before it finished".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translator(wants_usage: bool) -> SseTranslator {
        let warning = EstimateWarning {
            flag: Arc::default(),
            engine: "test".into(),
        };
        SseTranslator::new(wants_usage, 8, warning)
    }

    fn feed(t: &mut SseTranslator, text: &str) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        for line in text.split('\n') {
            out.extend(t.line(line.as_bytes()).unwrap());
        }
        out
    }

    const STREAM: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n\
        data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
        data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n\
        data: [DONE]\n\n";

    #[test]
    fn usage_chunk_hidden_unless_asked() {
        for wants in [false, true] {
            let mut t = translator(wants);
            let events = feed(&mut t, STREAM);
            assert!(t.finished());
            let chunks: Vec<Value> = events
                .iter()
                .filter_map(|e| match e {
                    StreamEvent::Chunk(c) => Some(c.clone()),
                    StreamEvent::ChunkText(t) => Some(serde_json::from_str(t).unwrap()),
                    StreamEvent::Usage(_) => None,
                })
                .collect();
            assert_eq!(chunks.len(), if wants { 3 } else { 2 });
            assert_eq!(chunks.iter().all(|c| c.get("usage").is_some()), wants);
            let usage = Usage {
                input_tokens: 3,
                output_tokens: 1,
                estimated: false,
            };
            assert_eq!(events.last(), Some(&StreamEvent::Usage(usage)));
        }
    }

    /// The relay (compact chunks) and the general path (the same chunks with line breaks,
    /// which the relay refuses) decide alike: the same chunks out, as JSON values, and
    /// the same usage, measured or estimated.
    #[test]
    fn relay_and_general_path_agree() {
        let chunks = [
            json!({"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}),
            json!({"id":"a","choices":[{"index":0,"delta":{"content":"é \"x\"\n"}}],"usage":null}),
            json!({"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":1}"}}]}}]}),
            json!({"id":"a","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null,"error":null}),
            json!({"id":"a","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}),
            json!({"id":"a","choices":[],"usage":{"prompt_tokens":5}}),
            json!({"choices":[{"delta":{"content":"no usage member"}}]}),
            json!({"object":"keep-alive"}),
            json!({"choices":[{"delta":{"content":null},"finish_reason":null}],"usage":null}),
            json!({"choices":[{"delta":{"content":[{"type":"text","text":"hi"}]}}]}),
            json!({"choices":[{"delta":{"tool_calls":[{"function":null},{"index":1},{"function":{"arguments":7}}]}}]}),
            json!({"choices":[1, null, {"delta":null}, {"delta":{"content":"ok"}}]}),
            json!({"choices":null,"usage":null}),
            json!({"choices":{"0":{}},"usage":null}),
            json!({"choices":[{"finish_reason":1}]}),
        ];
        for wants in [false, true] {
            for last in 1..=chunks.len() {
                let run = |pretty: bool| {
                    let mut t = translator(wants);
                    let mut out = Vec::new();
                    for c in &chunks[..last] {
                        let data = if pretty {
                            serde_json::to_string_pretty(c).unwrap()
                        } else {
                            c.to_string()
                        };
                        let events = t.item(SseItem::Event { event: None, data }).unwrap();
                        out.extend(events.into_iter().map(|e| match e {
                            // Compact chunks the relay does not take come this way too.
                            StreamEvent::Chunk(c) => c,
                            StreamEvent::ChunkText(text) => {
                                assert!(!pretty && !text.contains('\n'));
                                serde_json::from_str(&text).unwrap()
                            }
                            StreamEvent::Usage(_) => unreachable!(),
                        }));
                    }
                    let done = t.item(SseItem::Event {
                        event: None,
                        data: "[DONE]".into(),
                    });
                    (out, done.unwrap(), t.saw_finish)
                };
                assert_eq!(run(false), run(true), "wants {wants}, {last} chunks");
            }
        }
        // The usual chunks do take the relay.
        let mut t = translator(false);
        for c in &chunks[..4] {
            let events = t
                .item(SseItem::Event {
                    event: None,
                    data: c.to_string(),
                })
                .unwrap();
            assert!(matches!(events[..], [StreamEvent::ChunkText(_)]), "{c}");
        }
    }

    /// A repeated field: the last one counts, as when parsing into a `Value`.
    #[test]
    fn repeated_fields_in_a_choice() {
        let mut t = translator(false);
        let data = r#"{"choices":[{"delta":{"content":"a","content":"bbb"}}]}"#;
        t.item(SseItem::Event {
            event: None,
            data: data.into(),
        })
        .unwrap();
        assert_eq!(t.output_chars, 3);
    }

    #[test]
    fn missing_usage_is_estimated() {
        let mut t = translator(false);
        let events = feed(&mut t, &STREAM.replace("\"prompt_tokens\":3,", ""));
        let usage = Usage {
            input_tokens: 2,
            output_tokens: 1,
            estimated: true,
        };
        assert_eq!(events.last(), Some(&StreamEvent::Usage(usage)));
    }

    #[test]
    fn end_without_done() {
        let mut t = translator(false);
        feed(
            &mut t,
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n",
        );
        assert!(matches!(t.end(), Err(EngineError::Unreachable(_))));
        let mut t = translator(false);
        feed(
            &mut t,
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}",
        );
        assert!(matches!(t.end().unwrap().last(), Some(StreamEvent::Usage(u)) if u.estimated));
    }

    #[test]
    fn garbage_and_errors() {
        let mut t = translator(false);
        assert!(matches!(
            t.item(SseItem::Event {
                event: None,
                data: "{nope".into()
            }),
            Err(EngineError::Protocol(_))
        ));
        let err = t.item(SseItem::Event {
            event: None,
            data: json!({"error":{"message":"oom"}}).to_string(),
        });
        assert!(matches!(err, Err(EngineError::Protocol(m)) if m.contains("oom")));
        assert!(
            t.item(SseItem::Comment("keep-alive".into()))
                .unwrap()
                .is_empty()
        );
    }
}
