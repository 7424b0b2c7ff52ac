//! RFC 8785 (JCS) canonical JSON: the exact bytes every signature covers.
//!
//! Delegates to `serde_json_canonicalizer`, which sorts keys by UTF-16 code units and
//! formats numbers and strings the way JavaScript's `JSON.stringify` does.

use serde::Serialize;

use super::ProtocolError;

/// The canonical UTF-8 bytes of `value` (a `Value`, or a `Map` without wrapping it in one).
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ProtocolError> {
    serde_json_canonicalizer::to_vec(value)
        .map_err(|e| ProtocolError::malformed("object", format!("cannot canonicalize: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        let v = json!({"b": 1, "a": {"d": [3, {"z": 1, "y": 2}], "c": "x"}});
        let out = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        assert_eq!(out, r#"{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn writes_strings_and_numbers_like_javascript() {
        let v = json!({"s": "é\u{1F600}\n\"\\\u{0007}/", "n": 1e21, "f": 0.1, "i": 12});
        let out = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        assert_eq!(
            out,
            "{\"f\":0.1,\"i\":12,\"n\":1e+21,\"s\":\"é\u{1F600}\\n\\\"\\\\\\u0007/\"}"
        );
    }
}
