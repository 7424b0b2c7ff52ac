//! `POST /api/generate` → an OpenAI chat request: `system` becomes a system message and
//! `prompt` (with its `images`) the user message. What only a raw completion engine can
//! do (`suffix` for fill-in-the-middle, `raw`, a `template`, a `context` of tokens from
//! an earlier answer) is refused rather than dropped.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::answer::{Answer, Shape};
use super::request::{self, get};
use crate::core::api_error::ApiError;
use crate::core::router::dialects::{Dialect, Upstream};

/// Fields read. `keep_alive`, `think`, `truncate` and `shift` are accepted and ignored,
/// as for `/api/chat`; the image-generation fields (`width`, `height`, `steps`) and the
/// rest are refused unless empty.
const KNOWN: [&str; 20] = [
    "model",
    "prompt",
    "system",
    "images",
    "format",
    "options",
    "stream",
    "keep_alive",
    "think",
    "truncate",
    "shift",
    "suffix",
    "raw",
    "template",
    "context",
    "logprobs",
    "top_logprobs",
    "width",
    "height",
    "steps",
];

/// Refused unless empty, false or 0, with why.
const REFUSED: [(&str, &str); 9] = [
    ("suffix", "fill-in-the-middle is not supported"),
    ("raw", "raw prompts are not supported"),
    ("template", "prompt templates are not supported"),
    (
        "context",
        "context from an earlier answer is not supported; use /api/chat",
    ),
    ("logprobs", "logprobs are not supported"),
    ("top_logprobs", "logprobs are not supported"),
    ("width", "image generation is not supported"),
    ("height", "image generation is not supported"),
    ("steps", "image generation is not supported"),
];

/// One `/api/generate` request and its answer.
pub(crate) struct Generate {
    answer: Answer,
}

impl Generate {
    pub(crate) fn new(now_ms: u64) -> Self {
        Generate {
            answer: Answer::new(Shape::Generate, now_ms),
        }
    }
}

impl Dialect for Generate {
    fn upstream(&self) -> Upstream {
        Upstream::Chat
    }

    fn stream_content_type(&self) -> &'static str {
        super::NDJSON
    }

    fn to_upstream(&mut self, request: Value) -> Result<Value, ApiError> {
        request::check_fields(&request, &KNOWN, "/api/generate")?;
        for (key, why) in REFUSED {
            request::refuse_unless_empty(&request, key, why)?;
        }
        let model = request::model(&request)?;
        let prompt = match get(&request, "prompt") {
            Some(Value::String(p)) if !p.is_empty() => p.as_str(),
            Some(Value::String(_)) | None => {
                // Ollama loads the model on an empty prompt; there is nothing to load here.
                return Err(ApiError::bad_request("`prompt` is required"));
            }
            Some(_) => return Err(ApiError::bad_request("`prompt` must be a string")),
        };
        let mut messages = Vec::new();
        match get(&request, "system") {
            Some(Value::String(s)) if !s.is_empty() => {
                messages.push(json!({ "role": "system", "content": s }));
            }
            Some(Value::String(_)) | None => {}
            Some(_) => return Err(ApiError::bad_request("`system` must be a string")),
        }
        let content = request::user_content(prompt, get(&request, "images"), "")?;
        messages.push(json!({ "role": "user", "content": content }));
        let mut chat = Map::new();
        chat.insert("model".into(), Value::String(model.clone()));
        chat.insert("messages".into(), Value::Array(messages));
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
