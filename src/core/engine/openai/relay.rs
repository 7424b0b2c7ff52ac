//! Stream chunks relayed as text. An OpenAI-compatible engine already speaks the chunks
//! the worker sends on, so the translator reads only the members it meters (`usage`,
//! `choices`, `error`) and passes the rest on as the engine wrote it, instead of building
//! a `Value` of every chunk and serializing it again (that round trip was ~15% of a
//! streamed request through the chain under callgrind).

use serde::Deserializer as _;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

/// A chunk's top-level members, each value kept as the engine wrote it.
pub(super) struct RawChunk<'a> {
    text: &'a str,
    members: Vec<(String, &'a RawValue)>,
}

impl<'a> RawChunk<'a> {
    /// `None` unless `data` is one JSON object with distinct keys and no line break (a
    /// chunk goes out as a single SSE `data:` line); the caller then takes the general
    /// path, which handles every other case as it always has.
    pub(super) fn parse(data: &'a str) -> Option<Self> {
        let text = data.trim();
        if text.contains(['\n', '\r']) {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let members = de.deserialize_map(Members).ok()?;
        de.end().ok()?;
        let distinct = members
            .iter()
            .enumerate()
            .all(|(i, (k, _))| members[..i].iter().all(|(other, _)| other != k));
        distinct.then_some(RawChunk { text, members })
    }

    /// The member `key`, as written.
    pub(super) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The chunk as written.
    pub(super) fn text(&self) -> String {
        self.text.to_string()
    }

    /// The chunk as written, or without the member `key` when it has one.
    pub(super) fn text_without(&self, key: &str) -> String {
        if self.get(key).is_none() {
            return self.text.to_string();
        }
        let mut out = String::with_capacity(self.text.len());
        out.push('{');
        for (k, v) in self.members.iter().filter(|(k, _)| k != key) {
            if out.len() > 1 {
                out.push(',');
            }
            // Escaped exactly as serializing a `Value` escapes its keys.
            out.push_str(&serde_json::to_string(k).unwrap_or_default());
            out.push(':');
            out.push_str(v.get());
        }
        out.push('}');
        out
    }
}

/// Whether a member's text is JSON `null`.
pub(super) fn is_null(value: &RawValue) -> bool {
    value.get().trim() == "null"
}

struct Members;

impl<'de> Visitor<'de> for Members {
    type Value = Vec<(String, &'de RawValue)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
            members.push(member);
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    /// Taking a member out of the text gives the object the `Value` path gives.
    #[test]
    fn removing_a_member_table() {
        let cases = [
            r#"{"id":"c","choices":[{"delta":{"content":"é\"\n"}}],"usage":null}"#,
            r#"{"usage":{"prompt_tokens":1},"id":"c"}"#,
            r#" {"a" : 1 , "usage" : null , "b\"\u00e9" : [1, 2.5, {"c": null}]} "#,
            r#"{"usage":null}"#,
            r#"{"id":"c"}"#,
            "{}",
        ];
        for case in cases {
            let chunk = RawChunk::parse(case).unwrap();
            let mut want: Map<String, Value> = serde_json::from_str(case).unwrap();
            want.shift_remove("usage");
            let got: Map<String, Value> =
                serde_json::from_str(&chunk.text_without("usage")).unwrap();
            assert_eq!(got, want, "{case}");
            assert!(!chunk.text_without("usage").contains('\n'));
        }
        let plain = r#"{"id":"c","n":1}"#;
        assert_eq!(RawChunk::parse(plain).unwrap().text_without("usage"), plain);
    }

    #[test]
    fn refuses_what_the_general_path_must_take() {
        for case in [
            "[1]",
            "\"text\"",
            "{\"a\":1,\n\"b\":2}",
            r#"{"a":1,"a":2}"#,
            r#"{"a":1} {"b":2}"#,
            "{nope",
            "",
        ] {
            assert!(RawChunk::parse(case).is_none(), "{case:?}");
        }
        let chunk = RawChunk::parse(r#"{"error":null,"usage": null ,"x":0}"#).unwrap();
        assert!(chunk.get("error").is_some_and(is_null));
        assert!(chunk.get("usage").is_some_and(is_null));
        assert!(!chunk.get("x").is_some_and(is_null));
        assert!(chunk.get("missing").is_none());
    }
}
