//! OpenAI's legacy completions API, `POST /v1/completions`: one prompt becomes a user
//! message of a chat request, and the chat answer, whole or streamed, becomes
//! `text_completion` objects. Errors keep OpenAI's shape, which this API shares.
//!
//! What chat cannot do is refused with a 400 rather than faked: several prompts, token
//! arrays, `n`/`best_of` above 1, `echo`, `logprobs` and `suffix`.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{Dialect, Upstream, sse};
use crate::core::api_error::ApiError;

/// One `/v1/completions` request and its answer.
pub(crate) struct Completions {
    id: String,
    /// Unix seconds, the `created` of the answer and every chunk.
    created: u64,
    /// The model asked for, named when the answer does not say.
    model: String,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    wants_usage: bool,
    usage: Option<Value>,
    over: bool,
}

impl Completions {
    pub(crate) fn new(now_ms: u64) -> Self {
        Completions {
            id: format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
            created: now_ms / 1000,
            model: String::new(),
            wants_usage: false,
            usage: None,
            over: false,
        }
    }

    fn object(&self, model: &str, choices: Value) -> Value {
        json!({
            "id": self.id, "object": "text_completion", "created": self.created,
            "model": model, "choices": choices,
        })
    }

    fn model_of<'a>(&'a self, answer: &'a Value) -> &'a str {
        answer
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(&self.model)
    }
}

/// Fields copied to the chat request as they are, with the JSON type each must have.
const COPIED: &[(&str, Kind)] = &[
    ("max_tokens", Kind::Count),
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("presence_penalty", Kind::Number),
    ("frequency_penalty", Kind::Number),
    ("seed", Kind::Integer),
    ("logit_bias", Kind::Object),
    ("user", Kind::String),
];

#[derive(Clone, Copy)]
enum Kind {
    Count,
    Integer,
    Number,
    Object,
    String,
}

impl Kind {
    fn check(self, v: &Value) -> Option<&'static str> {
        let (ok, name) = match self {
            Kind::Count => (v.is_u64(), "a non-negative integer"),
            Kind::Integer => (v.is_i64() || v.is_u64(), "an integer"),
            Kind::Number => (v.is_number(), "a number"),
            Kind::Object => (v.is_object(), "an object"),
            Kind::String => (v.is_string(), "a string"),
        };
        (!ok).then_some(name)
    }
}

impl Dialect for Completions {
    fn upstream(&self) -> Upstream {
        Upstream::Chat
    }

    fn to_upstream(&mut self, request: Value) -> Result<Value, ApiError> {
        let Value::Object(req) = request else {
            return Err(bad("the body must be a JSON object"));
        };
        self.model = match req.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            Some(_) => return Err(bad("`model` must be a non-empty string")),
            None => return Err(bad("`model` is required")),
        };
        let prompt = prompt_of(req.get("prompt"))?;
        refuse_unsupported(&req)?;
        let mut out = Map::new();
        for (key, value) in &req {
            let value_of_api = ["model", "prompt", "stream", "stream_options", "stop"]
                .contains(&key.as_str())
                || COPIED.iter().any(|(name, _)| name == key)
                || ["n", "best_of", "echo", "logprobs", "suffix"].contains(&key.as_str());
            if value_of_api || value.is_null() {
                continue;
            }
            // Not this API's: an engine extension (`top_k`, `min_p`, `repetition_penalty`…)
            // that OpenAI-compatible engines read in chat requests too. Passed on whole.
            out.insert(key.clone(), value.clone());
        }
        out.insert("model".into(), Value::String(self.model.clone()));
        out.insert(
            "messages".into(),
            json!([{"role": "user", "content": prompt}]),
        );
        for (key, kind) in COPIED {
            if let Some(v) = req.get(*key).filter(|v| !v.is_null()) {
                if let Some(wanted) = kind.check(v) {
                    return Err(bad(format!("`{key}` must be {wanted}")));
                }
                out.insert((*key).into(), v.clone());
            }
        }
        if let Some(stop) = req.get("stop").filter(|v| !v.is_null()) {
            let ok = stop.is_string()
                || stop
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string));
            if !ok {
                return Err(bad("`stop` must be a string or an array of strings"));
            }
            out.insert("stop".into(), stop.clone());
        }
        let stream = match req.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("`stream` must be a boolean")),
        };
        out.insert("stream".into(), stream.into());
        let mut options = match req.get("stream_options") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => return Err(bad("`stream_options` must be an object")),
        };
        if stream {
            self.wants_usage = options.get("include_usage").and_then(Value::as_bool) == Some(true);
            // Always asked of the network, so the stream's tokens are known either way.
            options.insert("include_usage".into(), true.into());
            out.insert("stream_options".into(), Value::Object(options));
        }
        Ok(Value::Object(out))
    }

    fn whole(&mut self, answer: Value) -> Value {
        let choice = answer.pointer("/choices/0");
        let text = choice
            .and_then(|c| c.pointer("/message/content"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let finish = finish_reason(choice.and_then(|c| c.get("finish_reason")));
        let mut body = self.object(
            self.model_of(&answer),
            json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]),
        );
        body["usage"] = usage_of(answer.get("usage"));
        body
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        if self.over {
            return;
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            // Sent on its own chunk in `finish`, as OpenAI does, wherever it came.
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let text = choice
            .pointer("/delta/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let finish = choice.get("finish_reason").filter(|f| !f.is_null());
        if text.is_empty() && finish.is_none() {
            return;
        }
        let finish = finish.map_or(Value::Null, |f| finish_reason(Some(f)).into());
        let frame = self.object(
            self.model_of(chunk),
            json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]),
        );
        out.push(sse(None, &frame));
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        if std::mem::replace(&mut self.over, true) {
            return;
        }
        if self.wants_usage {
            let mut frame = self.object(&self.model, json!([]));
            frame["usage"] = usage_of(self.usage.as_ref());
            out.push(sse(None, &frame));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }

    fn stream_error(&mut self, error: &Value, out: &mut Vec<Bytes>) {
        // OpenAI's SDKs raise on an `error` event; the stream ends there.
        if !std::mem::replace(&mut self.over, true) {
            out.push(sse(None, error));
        }
    }

    fn error_body(&self, _status: StatusCode, error: &Value) -> Value {
        if error.get("error").is_some_and(Value::is_object) {
            error.clone()
        } else {
            json!({"error": {"type": "api_error", "message": super::error_message(error)}})
        }
    }
}

/// The one prompt: a string, or an array of exactly one string.
fn prompt_of(prompt: Option<&Value>) -> Result<String, ApiError> {
    match prompt {
        Some(Value::String(p)) => Ok(p.clone()),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(p)] => Ok(p.clone()),
            [] => Err(bad("`prompt` must not be empty")),
            items if items.iter().all(Value::is_string) => Err(bad(
                "`prompt`: several prompts in one request are not supported; send one each",
            )),
            _ => Err(bad(
                "`prompt`: token arrays are not supported; send the prompt as text",
            )),
        },
        Some(_) => Err(bad("`prompt` must be a string")),
        None => Err(bad("`prompt` is required")),
    }
}

/// The fields a chat request cannot honour.
fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), ApiError> {
    let get = |key| req.get(key).filter(|v: &&Value| !v.is_null());
    for key in ["n", "best_of"] {
        if let Some(v) = get(key) {
            match v.as_u64() {
                Some(0 | 1) => {}
                Some(_) => return Err(bad(format!("`{key}` above 1 is not supported"))),
                None => return Err(bad(format!("`{key}` must be an integer"))),
            }
        }
    }
    match get("echo") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => return Err(bad("`echo` is not supported")),
        Some(_) => return Err(bad("`echo` must be a boolean")),
    }
    if get("logprobs").is_some() {
        return Err(bad("`logprobs` is not supported"));
    }
    match get("suffix") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(_) => return Err(bad("`suffix` (insertion) is not supported")),
    }
    if req.contains_key("messages") {
        return Err(bad(
            "`messages` belongs to /v1/chat/completions, not /v1/completions",
        ));
    }
    Ok(())
}

/// A chat finish reason → one of this API's (`stop`, `length`, `content_filter`).
fn finish_reason(finish: Option<&Value>) -> &'static str {
    match finish.and_then(Value::as_str) {
        Some("length") => "length",
        Some("content_filter") => "content_filter",
        _ => "stop",
    }
}

/// The usage object, with zeros for what the answer did not report.
fn usage_of(usage: Option<&Value>) -> Value {
    let tokens = |name| {
        usage
            .and_then(|u| u.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let (prompt, completion) = (tokens("prompt_tokens"), tokens("completion_tokens"));
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

#[cfg(test)]
mod tests;
