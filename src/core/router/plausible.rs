//! Plausibility: does a receipt's token count fit what the worker actually delivered?
//!
//! A token always stands for at least one byte of text (byte-level tokenizers split a
//! character into several tokens, never a token into nothing, save a few special ones),
//! so a receipt claiming more output tokens than the answer's text has bytes is a lie.
//! Input is judged more loosely: chat templates and an engine's own system prompt add
//! tokens the request never carried, so only counts far above the request's size are
//! refused. Counted text: message or delta `content` (plain or as parts), `reasoning`,
//! `reasoning_content`, `refusal`, and tool calls' names and arguments.

use std::borrow::Cow;

use serde::Deserialize;

use crate::core::protocol::Receipt;

/// Output tokens allowed beyond the delivered bytes: end-of-turn and other special
/// tokens that print nothing.
pub const OUTPUT_SLACK: u64 = 32;
/// Input tokens allowed beyond twice the request's bytes: templates and system prompts.
pub const INPUT_SLACK: u64 = 4_096;

/// What the router saw of one exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The request body's size.
    pub prompt_bytes: u64,
    /// Bytes of generated text in the answer.
    pub content_bytes: u64,
}

/// Why a receipt's counts cannot be right, or `Ok`.
pub(crate) fn check(receipt: &Receipt, seen: &Delivered) -> Result<(), String> {
    let output_limit = seen.content_bytes.saturating_add(OUTPUT_SLACK);
    if receipt.output_tokens > output_limit {
        return Err(format!(
            "claims {} output tokens but delivered {} bytes of text (at most {output_limit} tokens)",
            receipt.output_tokens, seen.content_bytes
        ));
    }
    let input_limit = seen
        .prompt_bytes
        .saturating_mul(2)
        .saturating_add(INPUT_SLACK);
    if receipt.input_tokens > input_limit {
        return Err(format!(
            "claims {} input tokens for a {}-byte request (at most {input_limit} tokens)",
            receipt.input_tokens, seen.prompt_bytes
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    delta: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<Part<'a>>),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

fn len(s: &Option<Cow<'_, str>>) -> u64 {
    s.as_ref().map_or(0, |s| s.len() as u64)
}

fn message_bytes(m: &Message<'_>) -> u64 {
    let content = match &m.content {
        Some(Content::Text(t)) => t.len() as u64,
        Some(Content::Parts(parts)) => parts.iter().map(|p| len(&p.text)).sum(),
        Some(Content::Other(_)) | None => 0,
    };
    let tools: u64 = m
        .tool_calls
        .iter()
        .flatten()
        .filter_map(|c| c.function.as_ref())
        .map(|f| len(&f.name) + len(&f.arguments))
        .sum();
    content + len(&m.reasoning) + len(&m.reasoning_content) + len(&m.refusal) + tools
}

/// Bytes of generated text in one JSON answer or stream chunk (0 if it is neither).
pub(crate) fn content_bytes(json: &[u8]) -> u64 {
    let Ok(answer) = serde_json::from_slice::<Answer<'_>>(json) else {
        return 0;
    };
    answer
        .choices
        .iter()
        .flat_map(|c| c.message.iter().chain(c.delta.iter()))
        .map(message_bytes)
        .sum()
}

/// Counts the text in an SSE stream as it is forwarded, across chunk boundaries.
#[derive(Debug, Default)]
pub(crate) struct StreamMeter {
    line: Vec<u8>,
    bytes: u64,
}

/// A line longer than this is not a chunk an engine sends; it is counted as nothing.
const MAX_LINE: usize = 1 << 20;

impl StreamMeter {
    pub(crate) fn push(&mut self, mut chunk: &[u8]) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            if self.line.is_empty() {
                self.count(&chunk[..end]);
            } else {
                self.append(&chunk[..end]);
                let line = std::mem::take(&mut self.line);
                self.count(&line);
            }
            chunk = &chunk[end + 1..];
        }
        self.append(chunk);
    }

    fn append(&mut self, part: &[u8]) {
        if self.line.len() + part.len() <= MAX_LINE {
            self.line.extend_from_slice(part);
        }
    }

    fn count(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(data) = line.strip_prefix(b"data:") {
            self.bytes += content_bytes(data.trim_ascii_start());
        }
    }

    /// Text bytes seen in complete lines so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_text_of_whole_answers() {
        let cases: &[(&str, u64)] = &[
            (
                r#"{"choices":[{"message":{"role":"assistant","content":"héllo"}}]}"#,
                6,
            ),
            (
                r#"{"choices":[{"message":{"content":[{"type":"text","text":"ab"},{"type":"image"}]}}]}"#,
                2,
            ),
            (
                r#"{"choices":[{"message":{"content":null,"tool_calls":[{"function":{"name":"f","arguments":"{\"x\":1}"}}]}}]}"#,
                8,
            ),
            (
                r#"{"choices":[{"message":{"content":"a","reasoning_content":"bc","refusal":"d"}},{"message":{"content":"ef"}}]}"#,
                6,
            ),
            (r#"{"choices":[{"message":{"content":"a\u00e9"}}]}"#, 3),
            (r#"{"id":"x","usage":{"completion_tokens":999}}"#, 0),
            ("not json", 0),
            (r#"{"choices":"wrong"}"#, 0),
        ];
        for (json, want) in cases {
            assert_eq!(content_bytes(json.as_bytes()), *want, "{json}");
        }
    }

    #[test]
    fn meters_streams_split_anywhere() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"lo!\"}}]}\r\n\r\n",
            ": a comment\n\n",
            "data: [DONE]\n\n"
        )
        .as_bytes();
        for cut in 0..stream.len() {
            let mut meter = StreamMeter::default();
            meter.push(&stream[..cut]);
            meter.push(&stream[cut..]);
            assert_eq!(meter.bytes(), 6, "cut at {cut}");
        }
    }

    #[test]
    fn judges_counts_against_what_was_delivered() {
        let receipt = |input, output| Receipt {
            version: 1,
            job_id: "j".into(),
            nonce: "0".repeat(32),
            requester_pubkey: crate::core::protocol::Identity::from_seed([1; 32]).public(),
            worker_pubkey: crate::core::protocol::Identity::from_seed([2; 32]).public(),
            model: "m".into(),
            input_tokens: input,
            output_tokens: output,
            started_at: 1,
            completed_at: 2,
        };
        let seen = Delivered {
            prompt_bytes: 100,
            content_bytes: 50,
        };
        let cases = [
            (10, 50, true),
            (10, 50 + OUTPUT_SLACK, true),
            (10, 50 + OUTPUT_SLACK + 1, false),
            (200 + INPUT_SLACK, 1, true),
            (201 + INPUT_SLACK, 1, false),
            (u64::MAX, 1, false),
        ];
        for (input, output, ok) in cases {
            assert_eq!(
                check(&receipt(input, output), &seen).is_ok(),
                ok,
                "{input} {output}"
            );
        }
    }
}
