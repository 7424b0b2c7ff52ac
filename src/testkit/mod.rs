//! Fake inference engines for tests and benchmarks: real HTTP servers on 127.0.0.1
//! (port 0) speaking the engines' real wire formats, so the adapters, the worker and the
//! router are exercised over sockets without a model.
//!
//! - [`FakeOllama`]: `GET /api/tags`, `POST /api/chat` (NDJSON stream or one JSON).
//! - [`FakeOpenAi`]: `GET /v1/models`, `POST /v1/chat/completions` (SSE or one JSON).
//!
//! Both take a [`FakeConfig`] (models, reply text, pacing, failure modes, tool-call
//! replies), record the chat request bodies they receive, and stop on
//! [`FakeOllama::stop`] / [`FakeOpenAi::stop`] or when dropped.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use lobstah::testkit::{FakeConfig, FakeOpenAi, Failure};
//! let fake = FakeOpenAi::start_with(FakeConfig::default().with_reply("hi there")).await?;
//! let url = fake.url(); // "http://127.0.0.1:PORT" (append /v1 or not: adapters accept both)
//! let broken = FakeOpenAi::start_with(FakeConfig::default().with_failure(Failure::HangUp)).await?;
//! # Ok(()) }
//! ```

mod embeddings;
mod ollama;
mod openai;
mod server;

use std::time::Duration;

use serde_json::{Value, json};

pub use embeddings::fake_vector;
pub use ollama::FakeOllama;
pub use openai::FakeOpenAi;
pub use server::{FakeServer, RecordedRequest};

/// `completion_tokens` the fakes report for a tool-call reply.
pub const TOOL_CALL_TOKENS: u64 = 8;

/// How a fake misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Failure {
    /// Answer normally.
    #[default]
    None,
    /// Answer 500 with the engine's error JSON.
    Status500,
    /// Answer 200 with a body that is not the wire format (not JSON, broken SSE/NDJSON).
    Garbage,
    /// Start answering, then drop the connection: after half the stream's chunks (at
    /// least one), or half a non-streamed body.
    HangUp,
    /// Start answering, then say nothing more while holding the connection open: after
    /// half the stream's chunks (at least one), or half a non-streamed body.
    Stall,
}

/// What a fake serves and how. Build with `FakeConfig::default()` and the `with_*`
/// methods.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Model names listed and accepted; another model gets the engine's 404.
    pub models: Vec<String>,
    /// The reply, split into word tokens (one per stream chunk, spaces leading).
    pub reply: String,
    /// Pause before each stream chunk after the first (not applied to whole answers).
    pub chunk_delay: Duration,
    pub failure: Failure,
    /// When the request carries tools, reply with one call to the first tool.
    pub tool_calls: bool,
    /// The arguments of that tool call.
    pub tool_arguments: Value,
    /// Report token counts (OpenAI `usage`, Ollama `prompt_eval_count`/`eval_count`).
    pub report_usage: bool,
    /// Re-cut the streamed bytes into writes of this many bytes, ignoring message
    /// boundaries (lines split across writes, several lines per write).
    pub write_size: Option<usize>,
    /// Keep the chat requests received (turn off for long benchmarks).
    pub record: bool,
    /// Answer in full whatever `max_tokens` says, like an engine without a limit.
    pub ignore_max_tokens: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            models: vec!["fake-model".to_string()],
            reply: "Hello from the fake engine.".to_string(),
            chunk_delay: Duration::ZERO,
            failure: Failure::None,
            tool_calls: false,
            tool_arguments: json!({"city": "Paris"}),
            report_usage: true,
            write_size: None,
            record: true,
            ignore_max_tokens: false,
        }
    }
}

impl FakeConfig {
    /// Models listed by the models endpoint and accepted by chat.
    pub fn with_models<S: Into<String>>(mut self, models: impl IntoIterator<Item = S>) -> Self {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// The reply text (tokens are its words).
    pub fn with_reply(mut self, reply: impl Into<String>) -> Self {
        self.reply = reply.into();
        self
    }

    /// Pause between streamed chunks.
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Misbehave as `failure` on chat requests.
    pub fn with_failure(mut self, failure: Failure) -> Self {
        self.failure = failure;
        self
    }

    /// Reply with a tool call (arguments `args`) whenever the request has tools.
    pub fn with_tool_calls(mut self, args: Value) -> Self {
        self.tool_calls = true;
        self.tool_arguments = args;
        self
    }

    /// Never report token counts.
    pub fn without_usage(mut self) -> Self {
        self.report_usage = false;
        self
    }

    /// Cut streamed bytes into writes of `bytes` bytes (at least 1).
    pub fn with_write_size(mut self, bytes: usize) -> Self {
        self.write_size = Some(bytes.max(1));
        self
    }

    /// Answer in full whatever the request's `max_tokens` says.
    pub fn ignoring_max_tokens(mut self) -> Self {
        self.ignore_max_tokens = true;
        self
    }

    /// Count chat requests but keep no bodies (for long benchmarks).
    pub fn without_recording(mut self) -> Self {
        self.record = false;
        self
    }

    /// The reply's tokens as the fakes stream them.
    pub fn reply_tokens(&self) -> Vec<String> {
        self.reply
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    w.to_string()
                } else {
                    format!(" {w}")
                }
            })
            .collect()
    }
}

/// What a fake answers to one chat request.
pub(crate) enum Reply {
    Text {
        tokens: Vec<String>,
        finish: &'static str,
    },
    ToolCall {
        name: String,
        arguments: Value,
    },
}

impl Reply {
    /// `limit` is the request's max tokens (already read from the engine's field).
    pub(crate) fn plan(config: &FakeConfig, request: &Value, limit: Option<u64>) -> Reply {
        let first_tool = request
            .pointer("/tools/0/function/name")
            .and_then(Value::as_str);
        if let (true, Some(name)) = (config.tool_calls, first_tool) {
            return Reply::ToolCall {
                name: name.to_string(),
                arguments: config.tool_arguments.clone(),
            };
        }
        let mut tokens = config.reply_tokens();
        let mut finish = "stop";
        if let Some(limit) = limit.and_then(|l| usize::try_from(l).ok())
            && limit < tokens.len()
        {
            tokens.truncate(limit);
            finish = "length";
        }
        Reply::Text { tokens, finish }
    }

    pub(crate) fn completion_tokens(&self) -> u64 {
        match self {
            Reply::Text { tokens, .. } => tokens.len() as u64,
            Reply::ToolCall { .. } => TOOL_CALL_TOKENS,
        }
    }
}

/// Whitespace-separated words in a request's messages: the fakes' `prompt_tokens`.
pub fn prompt_words(request: &Value) -> u64 {
    request
        .as_object()
        .map(crate::core::engine::estimate::prompt_words)
        .unwrap_or(0)
}

/// A URL on 127.0.0.1 where nothing listens (a port bound and released), for
/// connection-refused tests.
pub fn unused_local_url() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}"))
}
