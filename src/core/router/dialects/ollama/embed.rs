//! `POST /api/embed` ([`Embed`]) and the older `POST /api/embeddings`
//! ([`LegacyEmbeddings`]) → an OpenAI embeddings request, and the embeddings list back
//! as Ollama's: `embeddings` in input order (or the one `embedding`). Embeddings do not
//! stream, so the stream methods do nothing.

use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::request::{self, get};
use crate::core::api_error::ApiError;
use crate::core::router::dialects::{Dialect, Upstream};

/// Fields read by `/api/embed`. `truncate` (what to do with an input longer than the
/// context: the engine decides), `options` (runtime settings) and `keep_alive` are
/// accepted and ignored.
const EMBED_FIELDS: [&str; 6] = [
    "model",
    "input",
    "dimensions",
    "truncate",
    "options",
    "keep_alive",
];

/// Fields read by `/api/embeddings`; `options` and `keep_alive` are ignored.
const LEGACY_FIELDS: [&str; 4] = ["model", "prompt", "options", "keep_alive"];

/// One `/api/embed` request and its answer.
pub(crate) struct Embed {
    model: String,
    started: Instant,
}

impl Embed {
    pub(crate) fn new(_now_ms: u64) -> Self {
        Embed {
            model: String::new(),
            started: Instant::now(),
        }
    }
}

impl Dialect for Embed {
    fn upstream(&self) -> Upstream {
        Upstream::Embeddings
    }

    fn to_upstream(&mut self, request: Value) -> Result<Value, ApiError> {
        request::check_fields(&request, &EMBED_FIELDS, "/api/embed")?;
        let model = request::model(&request)?;
        let input = match get(&request, "input") {
            Some(Value::String(s)) => Value::String(s.clone()),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                if items.is_empty() {
                    return Err(ApiError::bad_request("`input` must not be empty"));
                }
                Value::Array(items.clone())
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "`input` must be a string or an array of strings",
                ));
            }
            None => return Err(ApiError::bad_request("`input` is required")),
        };
        let mut upstream = Map::new();
        upstream.insert("model".into(), Value::String(model.clone()));
        upstream.insert("input".into(), input);
        upstream.insert("encoding_format".into(), json!("float"));
        match get(&request, "dimensions") {
            Some(d) if d.as_u64().is_some_and(|d| d > 0) => {
                upstream.insert("dimensions".into(), d.clone());
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "`dimensions` must be a positive integer",
                ));
            }
            None => {}
        }
        self.model = model;
        Ok(Value::Object(upstream))
    }

    fn whole(&mut self, answer: Value) -> Value {
        let nanos = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        json!({
            "model": self.model,
            "embeddings": vectors(&answer),
            "total_duration": nanos,
            "load_duration": 0,
            "prompt_eval_count": answer
                .pointer("/usage/prompt_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    fn chunk(&mut self, _chunk: &Value, _out: &mut Vec<Bytes>) {}

    fn finish(&mut self, _out: &mut Vec<Bytes>) {}

    fn stream_error(&mut self, _error: &Value, _out: &mut Vec<Bytes>) {}

    fn error_body(&self, _status: StatusCode, error: &Value) -> Value {
        super::error_body(error)
    }
}

/// One `/api/embeddings` request (one `prompt`, one `embedding`) and its answer.
pub(crate) struct LegacyEmbeddings;

impl LegacyEmbeddings {
    pub(crate) fn new(_now_ms: u64) -> Self {
        LegacyEmbeddings
    }
}

impl Dialect for LegacyEmbeddings {
    fn upstream(&self) -> Upstream {
        Upstream::Embeddings
    }

    fn to_upstream(&mut self, request: Value) -> Result<Value, ApiError> {
        request::check_fields(&request, &LEGACY_FIELDS, "/api/embeddings")?;
        let model = request::model(&request)?;
        let prompt = match get(&request, "prompt") {
            Some(Value::String(p)) if !p.is_empty() => p.clone(),
            Some(Value::String(_)) | None => {
                return Err(ApiError::bad_request("`prompt` is required"));
            }
            Some(_) => return Err(ApiError::bad_request("`prompt` must be a string")),
        };
        Ok(json!({ "model": model, "input": prompt, "encoding_format": "float" }))
    }

    fn whole(&mut self, answer: Value) -> Value {
        let first = vectors(&answer).into_iter().next();
        json!({ "embedding": first.unwrap_or_else(|| json!([])) })
    }

    fn chunk(&mut self, _chunk: &Value, _out: &mut Vec<Bytes>) {}

    fn finish(&mut self, _out: &mut Vec<Bytes>) {}

    fn stream_error(&mut self, _error: &Value, _out: &mut Vec<Bytes>) {}

    fn error_body(&self, _status: StatusCode, error: &Value) -> Value {
        super::error_body(error)
    }
}

/// The vectors of an OpenAI embeddings list, in `index` order.
fn vectors(answer: &Value) -> Vec<Value> {
    let mut data: Vec<(u64, Value)> = answer
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, item)| {
            let index = item
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64);
            let vector = item
                .get("embedding")
                .filter(|v| v.is_array())
                .cloned()
                .unwrap_or_else(|| json!([]));
            (index, vector)
        })
        .collect();
    data.sort_by_key(|(index, _)| *index);
    data.into_iter().map(|(_, vector)| vector).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Embed, LegacyEmbeddings};
    use crate::core::router::dialects::{Dialect, Upstream};

    fn list() -> Value {
        json!({"object": "list", "model": "e", "data": [
            {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
            {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
        ], "usage": {"prompt_tokens": 6, "total_tokens": 6}})
    }

    #[test]
    fn embed_maps_input_and_orders_the_vectors() {
        let mut d = Embed::new(0);
        assert_eq!(d.upstream(), Upstream::Embeddings);
        let up = d
            .to_upstream(json!({"model": "e", "input": ["a", "b"], "truncate": true,
                "dimensions": 2, "keep_alive": "5m"}))
            .unwrap();
        assert_eq!(
            up,
            json!({"model": "e", "input": ["a", "b"], "encoding_format": "float", "dimensions": 2})
        );
        let r = d.whole(list());
        assert_eq!(r["model"], "e");
        assert_eq!(r["embeddings"], json!([[0.1, 0.2], [0.3, 0.4]]));
        assert_eq!(r["prompt_eval_count"], 6);
        assert!(r["total_duration"].is_u64());
        let up = Embed::new(0)
            .to_upstream(json!({"model": "e", "input": "one"}))
            .unwrap();
        assert_eq!(up["input"], "one");
    }

    #[test]
    fn embed_refuses_bad_input() {
        let cases = [
            (json!({"input": "a"}), "`model` is required"),
            (json!({"model": "e"}), "`input` is required"),
            (
                json!({"model": "e", "input": []}),
                "`input` must not be empty",
            ),
            (
                json!({"model": "e", "input": [1]}),
                "`input` must be a string or an array of strings",
            ),
            (
                json!({"model": "e", "input": "a", "dimensions": -1}),
                "`dimensions` must be a positive integer",
            ),
            (
                json!({"model": "e", "input": "a", "pooling": "x"}),
                "`pooling` is not supported by this router's /api/embed",
            ),
        ];
        for (request, message) in cases {
            let got = Embed::new(0)
                .to_upstream(request.clone())
                .map_err(|e| e.message);
            assert_eq!(got, Err(message.to_string()), "{request}");
        }
    }

    #[test]
    fn legacy_embeddings_take_a_prompt_and_give_one_vector() {
        let mut d = LegacyEmbeddings::new(0);
        let up = d
            .to_upstream(json!({"model": "e", "prompt": "hello"}))
            .unwrap();
        assert_eq!(
            up,
            json!({"model": "e", "input": "hello", "encoding_format": "float"})
        );
        assert_eq!(d.whole(list()), json!({"embedding": [0.1, 0.2]}));
        assert_eq!(d.whole(Value::Null), json!({"embedding": []}));
        let err = LegacyEmbeddings::new(0)
            .to_upstream(json!({"model": "e"}))
            .unwrap_err();
        assert_eq!(err.message, "`prompt` is required");
        let body = d.error_body(
            axum::http::StatusCode::NOT_FOUND,
            &json!({"error": {"type": "model_not_found", "message": "no peer serves e"}}),
        );
        assert_eq!(body, json!({"error": "no peer serves e"}));
    }
}
