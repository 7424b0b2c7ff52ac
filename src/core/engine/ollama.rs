//! The Ollama adapter, over Ollama's native API (`/api/tags`, `/api/chat`): OpenAI
//! requests are translated on the way in (`request`), answers and NDJSON streams on the
//! way out (`response`), so the worker sees OpenAI objects from every engine.

mod request;
mod response;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::Value;

use super::estimate::{WarnOnce, estimated_usage, prompt_chars};
use super::http::{build_client, check_status, drive, normalize_base, read_json, send};
use super::shape::Meta;
use super::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Engine,
    EngineError, EngineSetupError, Usage, openai_list,
};
#[cfg(feature = "test-utils")]
pub(crate) use request::to_ollama;
pub(crate) use response::ChunkTranslator;

const DEFAULT_PORT: u16 = 11434;

/// The Ollama URL from `OLLAMA_HOST`, as the `ollama` CLI resolves it; see
/// [`ollama_url_from`].
pub fn ollama_default_url() -> String {
    ollama_url_from(std::env::var("OLLAMA_HOST").ok().as_deref())
}

/// Resolves an `OLLAMA_HOST` value: unset or empty → `http://127.0.0.1:11434`;
/// `host`, `host:port` or `[v6]:port` without a scheme → `http://`, port 11434 unless
/// given; a full URL is kept (its scheme's default port applies). An unspecified bind
/// address (`0.0.0.0`, `::`) is what people set so Ollama listens everywhere; a client
/// cannot connect to it portably, so it becomes 127.0.0.1.
pub fn ollama_url_from(host: Option<&str>) -> String {
    let host = host.map(str::trim).unwrap_or_default();
    if host.is_empty() {
        return format!("http://127.0.0.1:{DEFAULT_PORT}");
    }
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (scheme, rest),
        None => ("http", host),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (mut hostname, port) = split_host_port(authority);
    if matches!(hostname.as_str(), "" | "0.0.0.0" | "::" | "[::]") {
        hostname = "127.0.0.1".into();
    }
    let port = match (port, host.contains("://")) {
        (Some(p), _) => format!(":{p}"),
        (None, false) => format!(":{DEFAULT_PORT}"),
        (None, true) => String::new(),
    };
    format!("{scheme}://{hostname}{port}{}", path.trim_end_matches('/'))
}

/// `host[:port]`, with IPv6 literals bracketed in the result.
fn split_host_port(authority: &str) -> (String, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (
                format!("[{ip}]"),
                tail.strip_prefix(':').filter(|p| !p.is_empty()),
            ),
            None => (authority.to_string(), None),
        };
    }
    match authority.matches(':').count() {
        0 => (authority.to_string(), None),
        1 => match authority.split_once(':') {
            Some((h, p)) if !p.is_empty() => (h.to_string(), Some(p)),
            Some((h, _)) => (h.to_string(), None),
            None => (authority.to_string(), None),
        },
        // A bare IPv6 literal: no port can be told apart from it.
        _ => (format!("[{authority}]"), None),
    }
}

/// An Ollama server reached over its native API.
pub struct OllamaEngine {
    base: String,
    client: reqwest::Client,
    estimate_warning: WarnOnce,
}

impl OllamaEngine {
    /// An adapter for the Ollama server at `base_url` (`http://host:port`, scheme
    /// optional). Nothing is contacted until the first call.
    pub fn new(base_url: &str) -> Result<Self, EngineSetupError> {
        let base = normalize_base(base_url)?;
        Ok(OllamaEngine {
            client: build_client(&base)?,
            base,
            estimate_warning: WarnOnce::default(),
        })
    }

    /// An adapter for the server `OLLAMA_HOST` names (see [`ollama_default_url`]).
    pub fn from_env() -> Result<Self, EngineSetupError> {
        Self::new(&ollama_default_url())
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn post_chat(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::Response, EngineError> {
        // The worker's cap reaches Ollama as `options.num_predict`.
        let body = request::to_ollama(&request.body_for_engine(), &request.model, stream)?;
        let response = send(
            self.client
                .post(format!("{}/api/chat", self.base))
                .json(&body),
        )
        .await?;
        check_status(response, ollama_error_message).await
    }

    fn note_estimate(&self, usage: &Usage) {
        if usage.estimated && self.estimate_warning.first() {
            tracing::warn!(
                engine = %self.base,
                "Ollama reported no token counts (prompt cache hit or old version); estimating ~4 chars per token"
            );
        }
    }

    async fn models(&self) -> Result<Vec<String>, EngineError> {
        let response = send(self.client.get(format!("{}/api/tags", self.base))).await?;
        let tags = read_json(check_status(response, ollama_error_message).await?).await?;
        let Some(Value::Array(models)) = tags.get("models") else {
            return Err(EngineError::Protocol(
                "/api/tags answer has no \"models\" array".into(),
            ));
        };
        Ok(models
            .iter()
            .filter_map(|m| m.get("name").and_then(Value::as_str))
            .map(String::from)
            .collect())
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, EngineError> {
        let response = self.post_chat(&request, false).await?;
        let answer = read_json(response).await?;
        let meta = Meta::new(&request.model);
        let (body, usage) = response::completion(&answer, &meta, prompt_chars(&request.body))?;
        self.note_estimate(&usage);
        Ok(ChatResponse { body, usage })
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, EngineError> {
        let response = self.post_chat(&request, true).await?;
        let translator = ChunkTranslator::new(
            Meta::new(&request.model),
            request.wants_stream_usage(),
            prompt_chars(&request.body),
        );
        Ok(drive(response, translator))
    }
}

impl OllamaEngine {
    /// Over Ollama's native `/api/embed`, which returns floats and the prompt's tokens.
    async fn embeddings(
        &self,
        request: EmbeddingsRequest,
    ) -> Result<EmbeddingsResponse, EngineError> {
        let mut body = serde_json::json!({"model": request.model, "input": request.inputs});
        if let (Some(dims), Some(object)) = (request.dimensions, body.as_object_mut()) {
            object.insert("dimensions".into(), dims.into());
        }
        let response = send(
            self.client
                .post(format!("{}/api/embed", self.base))
                .json(&body),
        )
        .await?;
        let answer = read_json(check_status(response, ollama_error_message).await?).await?;
        let vectors: Vec<Vec<f32>> = answer
            .get("embeddings")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .filter(|v: &Vec<Vec<f32>>| v.len() == request.inputs.len())
            .ok_or_else(|| {
                EngineError::Protocol(
                    "/api/embed answer has no \"embeddings\" array, one per input".into(),
                )
            })?;
        let usage = match answer.get("prompt_eval_count").and_then(Value::as_u64) {
            Some(tokens) => Usage {
                input_tokens: tokens,
                output_tokens: 0,
                estimated: false,
            },
            None => estimated_usage(request.input_chars(), 0),
        };
        self.note_estimate(&usage);
        Ok(EmbeddingsResponse {
            body: openai_list(&request, &vectors, usage.input_tokens),
            usage,
        })
    }
}

/// Ollama's error answers are `{"error":"…"}`; keep the message, not the JSON.
fn ollama_error_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(o)) => match o.get("error") {
            Some(Value::String(s)) => s.clone(),
            _ => body.to_string(),
        },
        _ => body.to_string(),
    }
}

impl Engine for OllamaEngine {
    fn kind(&self) -> &'static str {
        "ollama"
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        self.models().boxed()
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, EngineError>> {
        self.complete(request).boxed()
    }

    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatStream, EngineError>> {
        self.stream(request).boxed()
    }

    fn serves_embeddings(&self) -> bool {
        true
    }

    fn embed(
        &self,
        request: EmbeddingsRequest,
    ) -> BoxFuture<'_, Result<EmbeddingsResponse, EngineError>> {
        self.embeddings(request).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_host_forms() {
        let cases = [
            (None, "http://127.0.0.1:11434"),
            (Some(""), "http://127.0.0.1:11434"),
            (Some("0.0.0.0"), "http://127.0.0.1:11434"),
            (Some("0.0.0.0:8080"), "http://127.0.0.1:8080"),
            (Some("gpu-box"), "http://gpu-box:11434"),
            (Some("gpu-box:80"), "http://gpu-box:80"),
            (Some("[::1]:9000"), "http://[::1]:9000"),
            (Some("::1"), "http://[::1]:11434"),
            (Some("http://gpu-box"), "http://gpu-box"),
            (
                Some("https://ollama.example/proxy/"),
                "https://ollama.example/proxy",
            ),
            (Some("http://127.0.0.1:11435"), "http://127.0.0.1:11435"),
        ];
        for (input, want) in cases {
            assert_eq!(ollama_url_from(input), want, "{input:?}");
        }
    }

    #[test]
    fn error_messages_are_unwrapped() {
        assert_eq!(
            ollama_error_message(r#"{"error":"model \"x\" not found"}"#),
            "model \"x\" not found"
        );
        assert_eq!(ollama_error_message("plain text"), "plain text");
    }
}
