//! The OpenAI chat request as lobstah sees it: the whole body passes through untouched;
//! only what routing needs (model, messages, stream) is checked.

use serde_json::{Map, Value};

/// A chat request whose routing fields were checked. `body` is the client's object,
/// every field kept (tools, response_format, seed, fields we do not know…).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub body: Map<String, Value>,
    pub model: String,
    pub stream: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("missing required field \"model\" (a non-empty string)")]
    MissingModel,
    #[error("missing required field \"messages\" (a non-empty array)")]
    MissingMessages,
    #[error("field \"stream\" must be a boolean")]
    BadStream,
}

impl ChatRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, RequestError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, RequestError> {
        let Value::Object(body) = value else {
            return Err(RequestError::NotAnObject);
        };
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
            _ => return Err(RequestError::MissingModel),
        };
        match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => {}
            _ => return Err(RequestError::MissingMessages),
        }
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(RequestError::BadStream),
        };
        Ok(ChatRequest {
            body,
            model,
            stream,
        })
    }

    /// Whether the client asked for a usage chunk at the end of a stream.
    pub fn wants_stream_usage(&self) -> bool {
        self.body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Expected = Result<(&'static str, bool), RequestError>;

    #[test]
    fn validation_table() {
        let cases: [(&str, Expected); 8] = [
            (
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
                Ok(("m", false)),
            ),
            (
                r#"{"model":"m","messages":[{}],"stream":true,"tools":[]}"#,
                Ok(("m", true)),
            ),
            ("{", Err(RequestError::InvalidJson(String::new()))),
            ("[]", Err(RequestError::NotAnObject)),
            (r#"{"messages":[{}]}"#, Err(RequestError::MissingModel)),
            (
                r#"{"model":"  ","messages":[{}]}"#,
                Err(RequestError::MissingModel),
            ),
            (
                r#"{"model":"m","messages":[]}"#,
                Err(RequestError::MissingMessages),
            ),
            (
                r#"{"model":"m","messages":[{}],"stream":"yes"}"#,
                Err(RequestError::BadStream),
            ),
        ];
        for (input, want) in cases {
            let got = ChatRequest::parse(input.as_bytes());
            match (got, want) {
                (Ok(r), Ok((model, stream))) => {
                    assert_eq!((r.model.as_str(), r.stream), (model, stream), "{input}");
                }
                (Err(RequestError::InvalidJson(_)), Err(RequestError::InvalidJson(_))) => {}
                (Err(e), Err(w)) => assert_eq!(e, w, "{input}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_pass_through() {
        let input = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"type":"function"}],"seed":7,"x_future":{"a":1}}"#;
        let r = ChatRequest::parse(input.as_bytes()).unwrap();
        let back: Value = serde_json::from_slice(&r.to_bytes()).unwrap();
        let orig: Value = serde_json::from_str(input).unwrap();
        assert_eq!(back, orig);
    }
}
