//! RFC 8785 (JCS) canonical JSON: the exact bytes every signature covers.
//!
//! Delegates to `serde_json_canonicalizer`, which sorts keys by UTF-16 code units and
//! formats numbers and strings the way JavaScript's `JSON.stringify` does.
//!
//! Receipts are flat objects of ASCII keys, strings and small integers, and the crate's
//! general path cost ~55k instructions per receipt (twice per routed request: signed by
//! the worker, checked by the router). [`canonical_object`] writes such flat objects
//! directly and hands anything else to the crate; a property test holds the two to the
//! same bytes.

use std::io::Write as _;

use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::{MAX_SAFE_INTEGER, ProtocolError};

/// The canonical UTF-8 bytes of `value` (a `Value`, or a `Map` without wrapping it in one).
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ProtocolError> {
    serde_json_canonicalizer::to_vec(value)
        .map_err(|e| ProtocolError::malformed("object", format!("cannot canonicalize: {e}")))
}

/// The canonical bytes of an object: the same as [`canonical_json`], faster for flat ones.
pub fn canonical_object(object: &Map<String, Value>) -> Result<Vec<u8>, ProtocolError> {
    match flat_canonical(object) {
        Some(bytes) => Ok(bytes),
        None => canonical_json(object),
    }
}

/// Canonical bytes of an object whose keys are ASCII and whose values are strings,
/// booleans, null or integers JavaScript holds exactly; `None` for any other object.
///
/// For these the rules are short: ASCII keys sort by bytes exactly as by UTF-16 units;
/// an integer up to 2^53 - 1 prints as its decimal digits, as `Number.prototype.toString`
/// does; and serde_json escapes strings as `JSON.stringify` does (`\"`, `\\`, `\b \f \n
/// \r \t`, other controls as lowercase `\u00xx`, nothing else).
fn flat_canonical(object: &Map<String, Value>) -> Option<Vec<u8>> {
    let mut entries: Vec<(&str, &Value)> = Vec::with_capacity(object.len());
    let mut size = 2;
    for (key, value) in object {
        let flat = match value {
            Value::Null | Value::Bool(_) => true,
            Value::String(s) => {
                size += s.len() + 2;
                true
            }
            Value::Number(n) => safe_integer(n).is_some(),
            Value::Array(_) | Value::Object(_) => false,
        };
        if !flat || !key.is_ascii() {
            return None;
        }
        size += key.len() + 24;
        entries.push((key, value));
    }
    // Keys of a map are unique, so the order is total.
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(size);
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key).ok()?;
        out.push(b':');
        match value {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::String(s) => serde_json::to_writer(&mut out, s).ok()?,
            Value::Number(n) => write!(out, "{}", safe_integer(n)?).ok()?,
            Value::Array(_) | Value::Object(_) => return None,
        }
    }
    out.push(b'}');
    Some(out)
}

/// The number as an integer when it is one JavaScript represents exactly.
fn safe_integer(n: &Number) -> Option<i64> {
    let i = n.as_i64()?;
    (i.unsigned_abs() <= MAX_SAFE_INTEGER).then_some(i)
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

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    /// Which objects take the direct path, and that it writes what the crate writes.
    #[test]
    fn flat_objects_table() {
        let safe = MAX_SAFE_INTEGER;
        let cases = [
            (json!({}), true),
            (
                json!({"b": "x", "a": 1, "C": null, "_": true, "0": false}),
                true,
            ),
            (
                json!({"s": "é\u{1F600}\u{7f}\u{2028}\n\"\\\u{0007}\u{001f}/<>&"}),
                true,
            ),
            (json!({"max": safe, "min": -(safe as i64), "zero": 0}), true),
            (json!({"big": safe + 1}), false),
            (json!({"neg": -(safe as i64) - 1}), false),
            (json!({"huge": u64::MAX}), false),
            (json!({"f": 1.0}), false),
            (json!({"f": 0.5}), false),
            (json!({"é": 1}), false),
            (json!({"a": []}), false),
            (json!({"a": {}}), false),
        ];
        for (v, flat) in cases {
            let m = object(v.clone());
            assert_eq!(flat_canonical(&m).is_some(), flat, "{v}");
            assert_eq!(
                canonical_object(&m).unwrap(),
                serde_json_canonicalizer::to_vec(&v).unwrap(),
                "{v}"
            );
        }
    }
}
