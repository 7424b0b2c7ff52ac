//! Token counts when an engine reports none. The heuristic is the usual one for English
//! text with BPE tokenizers: about four characters per token, rounded up, never less
//! than one token per side (a request always costs something). Estimated usage is
//! flagged (`Usage::estimated`) so receipts and the ledger can tell it apart.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};

use super::Usage;

/// Characters per token assumed by [`estimate_tokens`].
pub const CHARS_PER_TOKEN: usize = 4;

/// Tokens for `chars` characters of text: `ceil(chars / 4)`, at least 1.
pub fn estimate_tokens(chars: usize) -> u64 {
    (chars.div_ceil(CHARS_PER_TOKEN) as u64).max(1)
}

/// Estimated usage from the prompt's and the answer's character counts.
pub fn estimated_usage(prompt_chars: usize, output_chars: usize) -> Usage {
    Usage {
        input_tokens: estimate_tokens(prompt_chars),
        output_tokens: estimate_tokens(output_chars),
        estimated: true,
    }
}

/// Calls `f` with every piece of text in the request's messages: string contents, text
/// parts of multi-part contents, and the arguments of assistant tool calls.
pub fn for_each_prompt_text(body: &Map<String, Value>, mut f: impl FnMut(&str)) {
    let Some(Value::Array(messages)) = body.get("messages") else {
        return;
    };
    for message in messages {
        match message.get("content") {
            Some(Value::String(text)) => f(text),
            Some(Value::Array(parts)) => {
                for part in parts {
                    if let Some(Value::String(text)) = part.get("text") {
                        f(text);
                    }
                }
            }
            _ => {}
        }
        if let Some(Value::Array(calls)) = message.get("tool_calls") {
            for call in calls {
                if let Some(Value::String(args)) = call.pointer("/function/arguments") {
                    f(args);
                }
            }
        }
    }
}

/// Characters of text in the request's messages.
pub fn prompt_chars(body: &Map<String, Value>) -> usize {
    let mut chars = 0;
    for_each_prompt_text(body, |t| chars += t.chars().count());
    chars
}

/// Whitespace-separated words in the request's messages (the synthetic engine's and the
/// test fakes' notion of input tokens: cheap, deterministic, easy to assert).
pub fn prompt_words(body: &Map<String, Value>) -> u64 {
    let mut words = 0u64;
    for_each_prompt_text(body, |t| words += t.split_whitespace().count() as u64);
    words
}

/// A flag that is true exactly once, so an engine that never reports usage logs one
/// warning per engine instance instead of one per request.
#[derive(Debug, Default)]
pub(crate) struct WarnOnce(AtomicBool);

impl WarnOnce {
    pub(crate) fn first(&self) -> bool {
        !self.0.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn four_chars_per_token_rounded_up_at_least_one() {
        assert_eq!(estimate_tokens(0), 1);
        assert_eq!(estimate_tokens(1), 1);
        assert_eq!(estimate_tokens(4), 1);
        assert_eq!(estimate_tokens(5), 2);
        assert_eq!(estimate_tokens(400), 100);
    }

    #[test]
    fn prompt_text_covers_strings_parts_and_tool_arguments() {
        let b = body(json!({"messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"two words"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\": 1}"}}]},
        ]}));
        assert_eq!(prompt_chars(&b), 8 + 9 + 8);
        assert_eq!(prompt_words(&b), 2 + 2 + 2);
    }

    #[test]
    fn warn_once_fires_once() {
        let w = WarnOnce::default();
        assert!(w.first());
        assert!(!w.first());
    }
}
