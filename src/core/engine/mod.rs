//! Inference engines behind one trait: Ollama (native API), any OpenAI-compatible server,
//! and the synthetic engine for demos and benchmarks. Every engine speaks OpenAI
//! `chat.completion` / `chat.completion.chunk` objects to the worker.

mod embeddings;
pub mod estimate;
mod http;
pub(crate) mod lines;
mod ollama;
mod openai;
mod request;
mod shape;
mod synthetic;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;

pub use embeddings::{
    EmbeddingsRequest, EmbeddingsRequestError, EmbeddingsResponse, openai_list, reported_tokens,
};
pub use ollama::{OllamaEngine, ollama_default_url, ollama_url_from};
pub use openai::OpenAiEngine;
pub use request::{ChatRequest, RequestError};
pub use synthetic::{SYNTHETIC_MODEL, SyntheticConfig, SyntheticEngine};

// The stream translators and the Ollama request translation, for `crate::fuzzing`.
#[cfg(feature = "test-utils")]
pub(crate) use http::LineTranslator;
#[cfg(feature = "test-utils")]
pub(crate) use ollama::{ChunkTranslator as OllamaChunkTranslator, to_ollama};
#[cfg(feature = "test-utils")]
pub(crate) use openai::{EstimateWarning, SseTranslator};
#[cfg(feature = "test-utils")]
pub(crate) use shape::Meta;

/// Token counts for one request. `estimated` is set when the engine reported none and
/// the worker had to count for itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub estimated: bool,
}

/// A whole (non-streaming) answer: an OpenAI `chat.completion` object and its usage.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub body: Value,
    pub usage: Usage,
}

/// One item of a streamed answer. `Chunk`s are OpenAI `chat.completion.chunk` objects in
/// the order the client must see them; exactly one `Usage` comes last.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Chunk(Value),
    /// A chunk as the JSON text of one object, on one line: what an engine that already
    /// speaks OpenAI chunks relays without rebuilding them.
    ChunkText(String),
    Usage(Usage),
}

pub type ChatStream = BoxStream<'static, Result<StreamEvent, EngineError>>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// Could not connect, or the connection broke.
    #[error("engine unreachable: {0}")]
    Unreachable(String),
    /// The engine answered with an error status; `body` is what it said (trimmed).
    #[error("engine answered {status}: {body}")]
    Status { status: u16, body: String },
    /// The engine answered something that is not its documented wire format.
    #[error("engine spoke an unexpected format: {0}")]
    Protocol(String),
}

/// Why an engine adapter could not be built from its configuration.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineSetupError {
    #[error("invalid engine URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("the engine API key cannot be sent as an HTTP header")]
    BadApiKey,
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

impl EngineError {
    /// Whether the failure is the request's fault (a 4xx), not the engine's.
    pub fn is_client_error(&self) -> bool {
        matches!(self, EngineError::Status { status, .. } if (400..500).contains(status))
    }
}

/// An inference backend. Implementations must be cheap to share across requests.
pub trait Engine: Send + Sync + 'static {
    /// `ollama`, `openai` or `synthetic`.
    fn kind(&self) -> &'static str;

    /// Model names the engine can serve now.
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>>;

    /// A whole answer for a request with `stream` false.
    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, EngineError>>;

    /// A streamed answer. The returned future resolves once the engine has accepted the
    /// request (status line received), so a refusal is an `Err` here, not in the stream.
    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatStream, EngineError>>;

    /// Whether [`Engine::embed`] is served: the worker lists `embeddings` in its
    /// capabilities only then, so routers do not send it embeddings otherwise.
    fn serves_embeddings(&self) -> bool {
        false
    }

    /// Embeddings for each input, in order.
    fn embed(
        &self,
        request: EmbeddingsRequest,
    ) -> BoxFuture<'_, Result<EmbeddingsResponse, EngineError>> {
        let _ = request;
        futures_util::future::ready(Err(EngineError::Status {
            status: 404,
            body: format!("the {} engine does not serve embeddings", self.kind()),
        }))
        .boxed()
    }
}
