//! What `POST /v1/jobs` accepts: an OpenAI chat request that is not streamed, plus an
//! optional `metadata` object of short strings (OpenAI's limits: 16 pairs, keys up to 64
//! characters, values up to 512). The metadata belongs to the job, not to the engine, so
//! it is taken out of the request the engine sees.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::core::engine::{ChatRequest, RequestError};

pub const MAX_METADATA_PAIRS: usize = 16;
pub const MAX_METADATA_KEY_CHARS: usize = 64;
pub const MAX_METADATA_VALUE_CHARS: usize = 512;

/// A checked job submission.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSubmission {
    /// The chat request without `metadata`, `stream` false.
    pub request: ChatRequest,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmissionError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(
        "a job is not streamed: leave \"stream\" out (or false) and poll GET /v1/jobs/{{id}} for the result"
    )]
    Streaming,
    #[error("\"metadata\" must be an object of strings: {0}")]
    Metadata(String),
}

impl JobSubmission {
    pub fn parse(bytes: &[u8]) -> Result<Self, SubmissionError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, SubmissionError> {
        let Value::Object(mut body) = value else {
            return Err(RequestError::NotAnObject.into());
        };
        let metadata = metadata(body.remove("metadata"))?;
        let request = ChatRequest::from_value(Value::Object(body))?;
        if request.stream {
            return Err(SubmissionError::Streaming);
        }
        Ok(JobSubmission { request, metadata })
    }
}

fn metadata(value: Option<Value>) -> Result<BTreeMap<String, String>, SubmissionError> {
    let bad = |why: String| Err(SubmissionError::Metadata(why));
    let object = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(object)) => object,
        Some(_) => return bad("it is not an object".into()),
    };
    if object.len() > MAX_METADATA_PAIRS {
        return bad(format!(
            "{} pairs, at most {MAX_METADATA_PAIRS}",
            object.len()
        ));
    }
    let mut out = BTreeMap::new();
    for (key, value) in object {
        let Value::String(value) = value else {
            return bad(format!("the value of {key:?} is not a string"));
        };
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_METADATA_KEY_CHARS {
            return bad(format!(
                "key {key:?} must have 1 to {MAX_METADATA_KEY_CHARS} characters"
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            return bad(format!(
                "the value of {key:?} is longer than {MAX_METADATA_VALUE_CHARS} characters"
            ));
        }
        out.insert(key, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(extra: Value) -> Value {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        body
    }

    #[test]
    fn metadata_leaves_the_request_and_the_rest_passes_through() {
        let s = JobSubmission::from_value(chat(
            json!({"metadata": {"batch": "7", "ü": "x"}, "seed": 3, "stream": false}),
        ))
        .unwrap();
        assert_eq!(s.metadata.get("batch").map(String::as_str), Some("7"));
        assert!(!s.request.body.contains_key("metadata"));
        assert_eq!(s.request.body["seed"], 3);
        assert!(!s.request.stream);
        let plain = JobSubmission::from_value(chat(json!({"metadata": null}))).unwrap();
        assert!(plain.metadata.is_empty());
    }

    #[test]
    fn refusal_table() {
        let long_key = "k".repeat(MAX_METADATA_KEY_CHARS + 1);
        let long_value = "v".repeat(MAX_METADATA_VALUE_CHARS + 1);
        let many: serde_json::Map<String, Value> = (0..=MAX_METADATA_PAIRS)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        let edge_key = "é".repeat(MAX_METADATA_KEY_CHARS);
        let cases: Vec<(Value, &str)> = vec![
            (chat(json!({"stream": true})), "not streamed"),
            (chat(json!({"metadata": "x"})), "not an object"),
            (chat(json!({"metadata": {"n": 1}})), "not a string"),
            (chat(json!({"metadata": {"": "x"}})), "1 to 64"),
            (chat(json!({"metadata": {long_key: "x"}})), "1 to 64"),
            (
                chat(json!({"metadata": {"k": long_value}})),
                "longer than 512",
            ),
            (chat(json!({"metadata": many})), "at most 16"),
            (json!({"messages": [{}]}), "\"model\""),
            (json!([1]), "JSON object"),
        ];
        for (body, needle) in cases {
            let err = JobSubmission::from_value(body.clone())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
        // Limits count characters, not bytes.
        JobSubmission::from_value(chat(json!({"metadata": {edge_key: "x"}}))).unwrap();
        assert!(matches!(
            JobSubmission::parse(b"{"),
            Err(SubmissionError::Request(RequestError::InvalidJson(_)))
        ));
    }
}
