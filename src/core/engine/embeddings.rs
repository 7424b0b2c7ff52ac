//! Embeddings as lobstah sees them: the OpenAI `/v1/embeddings` request (the body passes
//! through whole; only what routing, billing and the engines need is read) and the
//! OpenAI list the worker answers with, floats or base64 as the client asked.
//!
//! The official OpenAI SDKs ask for base64 unless told otherwise (it is a quarter the
//! size of the JSON numbers), so engines that return floats (Ollama, the synthetic
//! engine) are answered in whichever encoding the client named.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::Usage;

/// An embeddings request whose fields were checked. `body` keeps every field.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    pub body: Map<String, Value>,
    pub model: String,
    /// The texts to embed, in order (a single string is a list of one).
    pub inputs: Vec<String>,
    pub dimensions: Option<u32>,
    pub base64: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbeddingsRequestError {
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("missing required field \"model\" (a non-empty string)")]
    MissingModel,
    #[error(
        "field \"input\" must be a string or a non-empty array of strings \
         (token arrays are not supported: send the text)"
    )]
    BadInput,
    #[error("field \"encoding_format\" must be \"float\" or \"base64\"")]
    BadEncoding,
    #[error("field \"dimensions\" must be a positive integer")]
    BadDimensions,
}

/// A whole embeddings answer: an OpenAI list object and the tokens it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsResponse {
    pub body: Value,
    pub usage: Usage,
}

impl EmbeddingsRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, EmbeddingsRequestError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| EmbeddingsRequestError::InvalidJson(e.to_string()))?;
        let Value::Object(body) = value else {
            return Err(EmbeddingsRequestError::NotAnObject);
        };
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
            _ => return Err(EmbeddingsRequestError::MissingModel),
        };
        let inputs = match body.get("input") {
            Some(Value::String(text)) => vec![text.clone()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(EmbeddingsRequestError::BadInput)?,
            _ => return Err(EmbeddingsRequestError::BadInput),
        };
        let base64 = match body.get("encoding_format") {
            None | Some(Value::Null) => false,
            Some(Value::String(f)) if f == "float" => false,
            Some(Value::String(f)) if f == "base64" => true,
            Some(_) => return Err(EmbeddingsRequestError::BadEncoding),
        };
        let dimensions = match body.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|d| (1..=65_536).contains(d))
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or(EmbeddingsRequestError::BadDimensions)?,
            ),
        };
        Ok(EmbeddingsRequest {
            body,
            model,
            inputs,
            dimensions,
            base64,
        })
    }

    /// Characters of input, for estimating tokens when an engine reports none.
    pub fn input_chars(&self) -> usize {
        self.inputs.iter().map(|t| t.chars().count()).sum()
    }
}

/// The OpenAI list object for `vectors`, in the encoding the request asked for.
pub fn openai_list(request: &EmbeddingsRequest, vectors: &[Vec<f32>], input_tokens: u64) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if request.base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::Array(vector.iter().map(|&x| float_json(x)).collect())
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens},
    })
}

/// `x` as the shortest decimal that reads back as the same f32: going through f64 as is
/// would print the f32's binary noise (`0.28459852933883667` for `0.28459853`), a third
/// more bytes for nothing.
fn float_json(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// The prompt tokens an OpenAI embeddings answer reports.
pub fn reported_tokens(answer: &Value) -> Option<u64> {
    answer
        .pointer("/usage/prompt_tokens")
        .and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = |body: &str| EmbeddingsRequest::parse(body.as_bytes());
        let one = ok(r#"{"model":"m","input":"hi"}"#).unwrap();
        assert_eq!(
            (one.inputs.clone(), one.base64, one.dimensions),
            (vec!["hi".to_string()], false, None)
        );
        let many = ok(r#"{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":8,"user":"u"}"#).unwrap();
        assert_eq!(many.inputs, vec!["a", "b"]);
        assert!(many.base64);
        assert_eq!(many.dimensions, Some(8));
        assert_eq!(many.body["user"], "u", "unknown fields are kept");
        let cases = [
            ("[]", EmbeddingsRequestError::NotAnObject),
            (r#"{"input":"x"}"#, EmbeddingsRequestError::MissingModel),
            (
                r#"{"model":" ","input":"x"}"#,
                EmbeddingsRequestError::MissingModel,
            ),
            (r#"{"model":"m"}"#, EmbeddingsRequestError::BadInput),
            (
                r#"{"model":"m","input":[]}"#,
                EmbeddingsRequestError::BadInput,
            ),
            (
                r#"{"model":"m","input":[1,2,3]}"#,
                EmbeddingsRequestError::BadInput,
            ),
            (
                r#"{"model":"m","input":"x","encoding_format":"int8"}"#,
                EmbeddingsRequestError::BadEncoding,
            ),
            (
                r#"{"model":"m","input":"x","dimensions":0}"#,
                EmbeddingsRequestError::BadDimensions,
            ),
            (
                r#"{"model":"m","input":"x","dimensions":-3}"#,
                EmbeddingsRequestError::BadDimensions,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(ok(body).unwrap_err(), want, "{body}");
        }
        assert!(matches!(
            ok("{"),
            Err(EmbeddingsRequestError::InvalidJson(_))
        ));
    }

    #[test]
    fn list_in_both_encodings() {
        let mut request = EmbeddingsRequest::parse(br#"{"model":"m","input":["a","b"]}"#).unwrap();
        let vectors = vec![vec![1.0, -0.5], vec![0.25, 0.0]];
        let floats = openai_list(&request, &vectors, 7);
        let noisy = openai_list(&request, &[vec![0.284_598_53_f32]], 1);
        assert_eq!(noisy["data"][0]["embedding"].to_string(), "[0.28459853]");
        assert_eq!(floats["data"][1]["embedding"], json!([0.25, 0.0]));
        assert_eq!(floats["data"][1]["index"], 1);
        assert_eq!(floats["usage"]["prompt_tokens"], 7);
        request.base64 = true;
        let packed = openai_list(&request, &vectors, 7);
        let text = packed["data"][0]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        let back: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(back, vectors[0]);
    }
}
