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

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens})
}
