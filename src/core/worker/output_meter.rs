//! The backstop for an engine that ignores the output limit it was sent: the worker
//! counts the chunks of a streamed answer and ends the stream itself once they pass the
//! request's allowance, with the final chunk a limit would have produced
//! (`finish_reason: "length"`), so the requester never receives, nor is billed for,
//! more than it reserved.

use axum::body::Bytes;
use serde_json::{Value, json};

use super::reserve::Grant;
use crate::core::engine::{EngineError, StreamEvent, Usage};

/// Counts a stream's output against its allowance, a chunk with output counting as one
/// token (servers that pack several tokens in a chunk are cut later, never sooner,
/// and billed no more than the allowance anyway).
#[derive(Debug)]
pub(super) struct OutputMeter {
    grant: Grant,
    tokens: u64,
}

impl OutputMeter {
    pub(super) fn new(grant: Grant) -> Self {
        OutputMeter { grant, tokens: 0 }
    }

    /// Counts one event of the engine's stream; true when it carries output past the
    /// allowance, so the stream must end before it. Chunks without output (the role,
    /// the finish reason, usage) always pass.
    pub(super) fn overflows(&mut self, event: &Result<StreamEvent, EngineError>) -> bool {
        let output = match event {
            Ok(StreamEvent::Chunk(chunk)) => carries_output(chunk),
            // A chunk we cannot read is counted: the engine must not get round the
            // meter by being malformed.
            Ok(StreamEvent::ChunkText(text)) => {
                serde_json::from_str::<Value>(text).map_or(true, |chunk| carries_output(&chunk))
            }
            Ok(StreamEvent::Usage(_)) | Err(_) => false,
        };
        if output {
            self.tokens += 1;
        }
        output && self.tokens > self.grant.output
    }

    /// What a cut stream is billed: the whole allowance was produced (at least a token
    /// a chunk), and the prompt as the worker estimated it (the engine never said).
    pub(super) fn cut_usage(&self) -> Usage {
        Usage {
            input_tokens: self.grant.prompt,
            output_tokens: self.grant.output,
            estimated: true,
        }
    }
}

/// The chunk that ends an answer cut at its allowance, as an SSE frame.
pub(super) fn length_chunk(model: &str) -> Bytes {
    let chunk = json!({"id": "chatcmpl-lobstah-allowance", "object": "chat.completion.chunk",
        "created": 0, "model": model,
        "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "length"}]});
    Bytes::from(format!("data: {chunk}\n\n"))
}

/// Whether a chunk's delta holds any output: text, reasoning, a refusal or a tool call
/// (anything but the role).
fn carries_output(chunk: &Value) -> bool {
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return false;
    };
    choices
        .iter()
        .filter_map(|c| c.get("delta").and_then(Value::as_object))
        .flat_map(|delta| delta.iter())
        .any(|(key, value)| key != "role" && !value.is_null() && value.as_str() != Some(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(delta: Value, finish: Option<&str>) -> Result<StreamEvent, EngineError> {
        Ok(StreamEvent::ChunkText(
            json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string(),
        ))
    }

    #[test]
    fn a_stream_is_cut_at_the_first_output_past_its_allowance() {
        let mut meter = OutputMeter::new(Grant {
            prompt: 9,
            output: 2,
        });
        let events = [
            (
                chunk(json!({"role": "assistant", "content": ""}), None),
                false,
            ),
            (chunk(json!({"content": "a"}), None), false),
            (
                Ok(StreamEvent::Chunk(
                    json!({"choices": [{"delta": {"tool_calls": [{}]}}]}),
                )),
                false,
            ),
            (chunk(json!({}), Some("length")), false),
            (
                Ok(StreamEvent::Chunk(json!({"choices": [], "usage": {}}))),
                false,
            ),
            (chunk(json!({"content": "c"}), None), true),
            (Ok(StreamEvent::ChunkText("{not json".into())), true),
            (Ok(StreamEvent::Usage(Usage::default())), false),
        ];
        for (i, (event, cut)) in events.iter().enumerate() {
            assert_eq!(meter.overflows(event), *cut, "event {i}");
        }
        assert_eq!(
            meter.cut_usage(),
            Usage {
                input_tokens: 9,
                output_tokens: 2,
                estimated: true
            }
        );
        let frame = length_chunk("m");
        let text = std::str::from_utf8(&frame).unwrap();
        let value: Value = serde_json::from_str(text.trim().trim_start_matches("data: ")).unwrap();
        assert_eq!(value["choices"][0]["finish_reason"], "length");
    }
}
