//! Ollama's own API as its clients (the `ollama` Python and JS libraries, Ollama-only
//! front-ends) speak it: `/api/chat` ([`Chat`]), `/api/generate` ([`Generate`]),
//! `/api/embed` ([`Embed`]) and the older `/api/embeddings` ([`LegacyEmbeddings`]).
//! Chat and generate become OpenAI chat requests (`request.rs` holds what both share:
//! options, format, images, stream) and their answers Ollama's objects or NDJSON lines
//! (`answer.rs`); the embeddings kinds become OpenAI embeddings requests (`embed.rs`).
//!
//! Ollama streams unless told not to: `stream` absent means true. Errors are Ollama's
//! `{"error": "<message>"}`, with the status the router chose.

mod answer;
mod chat;
mod embed;
mod generate;
mod request;
#[cfg(test)]
mod tests_answer;
#[cfg(test)]
mod tests_request;

pub(crate) use chat::Chat;
pub(crate) use embed::{Embed, LegacyEmbeddings};
pub(crate) use generate::Generate;

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::error_message;

/// The MIME type of an NDJSON stream, as Ollama sends it.
const NDJSON: &str = "application/x-ndjson";

/// Ollama's error body: only the message.
fn error_body(error: &Value) -> Value {
    json!({ "error": error_message(error) })
}

/// `created_at` as Ollama writes it: RFC 3339 in UTC.
fn created_at(now_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(now_ms)).to_string()
}
