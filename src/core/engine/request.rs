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
    /// The most output tokens the worker lets the engine produce for this request (its
    /// reserved allowance); `None` leaves the client's own limit, if any, alone. Kept
    /// apart from `body` so an engine with a default of its own (the synthetic one) can
    /// tell a client's limit from the worker's ceiling.
    pub output_cap: Option<u64>,
}

/// The OpenAI fields that bound an answer's length, newest first.
const OUTPUT_LIMIT_FIELDS: [&str; 2] = ["max_completion_tokens", "max_tokens"];

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
            output_cap: None,
        })
    }

    /// The output limit the client named, if any. Any non-negative number counts
    /// (a float is cut down, an absurd one saturates); a negative one (`-1`, "as long
    /// as the model likes" to some clients), `null` or a non-number names none.
    pub fn requested_output(&self) -> Option<u64> {
        OUTPUT_LIMIT_FIELDS.iter().find_map(|field| {
            let value = self.body.get(*field)?;
            if let Some(n) = value.as_u64() {
                return Some(n);
            }
            // Saturating cast: 1e30 is u64::MAX, which the cap then lowers.
            value
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        })
    }

    /// The most output tokens the engine may produce: the client's limit lowered to
    /// the worker's cap, or the cap when the client named none.
    pub fn output_limit(&self) -> Option<u64> {
        match (self.requested_output(), self.output_cap) {
            (Some(asked), Some(cap)) => Some(asked.min(cap)),
            (asked, None) => asked,
            (None, cap) => cap,
        }
    }

    /// The body an engine that reads OpenAI's limit fields is sent: with the worker's
    /// cap set, every limit field present carries the effective limit (and `max_tokens`
    /// is added when there is none: the field every OpenAI-compatible server reads).
    /// Whatever the client wrote there (a string, `-1`) is replaced, so the engine is
    /// always bounded.
    pub fn body_for_engine(&self) -> Map<String, Value> {
        let mut body = self.body.clone();
        let (Some(_), Some(limit)) = (self.output_cap, self.output_limit()) else {
            return body;
        };
        let mut written = false;
        for field in OUTPUT_LIMIT_FIELDS {
            if let Some(value) = body.get_mut(field) {
                *value = Value::from(limit);
                written = true;
            }
        }
        if !written {
            body.insert("max_tokens".into(), Value::from(limit));
        }
        body
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

    #[test]
    fn output_limits_table() {
        // (extra fields, worker cap, requested, effective, fields sent to the engine)
        type Case = (
            &'static str,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            &'static str,
        );
        let cases: [Case; 9] = [
            ("", None, None, None, "{}"),
            ("", Some(4096), None, Some(4096), r#"{"max_tokens":4096}"#),
            (
                r#","max_tokens":18446744073709551615"#,
                Some(4096),
                Some(u64::MAX),
                Some(4096),
                r#"{"max_tokens":4096}"#,
            ),
            (
                r#","max_tokens":1e30"#,
                Some(100),
                Some(u64::MAX),
                Some(100),
                r#"{"max_tokens":100}"#,
            ),
            (
                r#","max_tokens":12.7"#,
                Some(100),
                Some(12),
                Some(12),
                r#"{"max_tokens":12}"#,
            ),
            (
                r#","max_tokens":-1"#,
                Some(100),
                None,
                Some(100),
                r#"{"max_tokens":100}"#,
            ),
            (
                r#","max_tokens":"lots""#,
                Some(100),
                None,
                Some(100),
                r#"{"max_tokens":100}"#,
            ),
            (
                r#","max_completion_tokens":50,"max_tokens":9000"#,
                Some(100),
                Some(50),
                Some(50),
                r#"{"max_completion_tokens":50,"max_tokens":50}"#,
            ),
            (
                r#","max_tokens":7"#,
                None,
                Some(7),
                Some(7),
                r#"{"max_tokens":7}"#,
            ),
        ];
        for (extra, cap, requested, effective, sent) in cases {
            let text = format!(r#"{{"model":"m","messages":[{{}}]{extra}}}"#);
            let mut r = ChatRequest::parse(text.as_bytes()).unwrap();
            r.output_cap = cap;
            assert_eq!(r.requested_output(), requested, "{text}");
            assert_eq!(r.output_limit(), effective, "{text}");
            let body = r.body_for_engine();
            let limits: Map<String, Value> = body
                .into_iter()
                .filter(|(k, _)| OUTPUT_LIMIT_FIELDS.contains(&k.as_str()))
                .collect();
            let want: Value = serde_json::from_str(sent).unwrap();
            if cap.is_some() {
                assert_eq!(Value::Object(limits), want, "{text}");
            } else {
                assert_eq!(
                    r.body_for_engine(),
                    r.body,
                    "untouched without a cap: {text}"
                );
            }
        }
    }
}
