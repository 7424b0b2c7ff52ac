//! Pieces of the OpenAI objects that the translating engines (Ollama, synthetic) build
//! themselves: the identity every chunk of one answer shares, and the usage object.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::Usage;

/// Identity of one answer: the same id, timestamp and model on every chunk.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Meta {
    pub(crate) fn new(model: &str) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Meta {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4()),
            created,
            model: model.to_string(),
        }
    }

    /// A `chat.completion.chunk` with one choice.
    pub(crate) fn chunk(&self, model: &str, delta: Value, finish: Option<&str>) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    /// The usage-only chunk (empty `choices`) a client gets with `include_usage`.
    pub(crate) fn usage_chunk(&self, model: &str, usage: &Usage) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": model, "choices": [], "usage": usage_json(usage)})
    }
}

/// The OpenAI `usage` object. The counts come from the engine, which may report anything:
/// the total saturates rather than overflow.
pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens.saturating_add(u.output_tokens)})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Caught by the `sse_stream` fuzz target: an Ollama final line with a huge
    /// `prompt_eval_count` overflowed the total (a panic with overflow checks on).
    #[test]
    fn usage_total_saturates() {
        let usage = Usage {
            input_tokens: u64::MAX,
            output_tokens: 1,
            estimated: false,
        };
        assert_eq!(usage_json(&usage)["total_tokens"], u64::MAX);
        let usage = Usage {
            input_tokens: 12,
            output_tokens: 34,
            estimated: false,
        };
        assert_eq!(usage_json(&usage)["total_tokens"], 46);
    }
}
