//! Stream chunks relayed as text. An OpenAI-compatible engine already speaks the chunks
//! the worker sends on, so the translator reads only the members it meters (`usage`,
//! `choices`, `error`) and passes the rest on as the engine wrote it, instead of building
//! a `Value` of every chunk and serializing it again (that round trip was ~15% of a
//! streamed request through the chain under callgrind).

use std::borrow::Cow;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer as _};
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
        // Only JSON's own whitespace: `str::trim` would also take Unicode spaces that the
        // general path's parser refuses.
        let text = data.trim_matches([' ', '\t', '\n', '\r']);
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

/// What metering reads from a chunk's `choices` (see `generated_chars` in `stream`).
pub(super) struct Choices {
    pub count: usize,
    /// Characters of generated text in the choices' deltas.
    pub chars: usize,
    /// Whether any choice has a non-null finish reason.
    pub finished: bool,
}

/// The chunk's `choices`, read as the few fields metering needs: `Some(None)` when it has
/// none, `None` when the general path must take the chunk (a `choices` that is not an
/// array, a choice that is not an object, content that is not a string, a repeated
/// field).
pub(super) fn read_choices(chunk: &RawChunk<'_>) -> Option<Option<Choices>> {
    let Some(raw) = chunk.get("choices") else {
        return Some(None);
    };
    if !raw.get().starts_with('[') {
        return None;
    }
    let choices: Vec<Choice> = serde_json::from_str(raw.get()).ok()?;
    Some(Some(Choices {
        count: choices.len(),
        chars: choices.iter().map(Choice::generated_chars).sum(),
        finished: choices.iter().any(|c| c.finish_reason.is_some()),
    }))
}

/// One element of `choices`, as far as metering reads it (see `generated_chars`): a
/// `null` finish reason reads as none.
#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

impl Choice<'_> {
    /// What `generated_chars_in` counts for this choice's `delta`.
    fn generated_chars(&self) -> usize {
        let Some(delta) = &self.delta else {
            return 0;
        };
        let content = delta.content.as_ref().map_or(0, |c| c.chars().count());
        let arguments: usize = delta
            .tool_calls
            .iter()
            .flatten()
            .map(|call| {
                call.function
                    .as_ref()
                    .and_then(|f| f.arguments.as_ref())
                    .map_or(0, |a| a.chars().count())
            })
            .sum();
        content + arguments
    }
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
            // Caught by the `sse_stream` fuzz target: not JSON whitespace around it.
            "\u{a0}{}",
            "{}\u{2028}",
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
