//! The adapter for any OpenAI-compatible server (llama.cpp server, vLLM, LM Studio,
//! MLX…). The client's body goes through whole — tools, response_format, fields we do
//! not know — with two exceptions: `stream` is set to match the call, and a streamed
//! request always asks for usage (`stream_options.include_usage`) so the answer can be
//! metered.

mod relay;
mod stream;

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::header::HeaderValue;
use serde_json::{Map, Value, json};

use super::estimate::{WarnOnce, estimated_usage, prompt_chars};
use super::http::{build_client, check_status, drive, normalize_base, read_json, send};
use super::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Engine,
    EngineError, EngineSetupError, Usage, reported_tokens,
};
pub(crate) use stream::{EstimateWarning, SseTranslator};
use stream::{generated_chars, usage_of};

/// An OpenAI-compatible server.
pub struct OpenAiEngine {
    /// Without the `/v1` suffix.
    base: String,
    /// `{base}/v1/chat/completions`, parsed once: reqwest would parse the text on every
    /// request otherwise. `None` if it does not parse (then the text goes, and fails, as
    /// before).
    chat_url: Option<reqwest::Url>,
    client: reqwest::Client,
    authorization: Option<HeaderValue>,
    estimate_warning: Arc<WarnOnce>,
}

/// A base URL with neither a scheme nor a port ("notaurl", "llama") parses as a host
/// name, but is almost always a mistake: OpenAI-compatible servers have no default port.
fn refuse_bare_word(base_url: &str) -> Result<(), EngineSetupError> {
    let trimmed = base_url.trim();
    let host_part = trimmed.split('/').next().unwrap_or_default();
    let has_port = host_part
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if trimmed.contains("://") || has_port {
        return Ok(());
    }
    Err(EngineSetupError::BadUrl {
        url: base_url.to_string(),
        reason: format!(
            "it has no scheme and no port; give the server's address, e.g. http://{host_part}:8080"
        ),
    })
}

impl OpenAiEngine {
    /// An adapter for the server at `base_url`, given with or without its `/v1` suffix
    /// (scheme optional). `api_key` is sent as `Authorization: Bearer …` when set (the
    /// worker reads it from `LOBSTAH_ENGINE_API_KEY`).
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self, EngineSetupError> {
        refuse_bare_word(base_url)?;
        let base = normalize_base(base_url)?;
        let base = base.strip_suffix("/v1").unwrap_or(&base).to_string();
        let authorization = match api_key.filter(|k| !k.is_empty()) {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| EngineSetupError::BadApiKey)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(OpenAiEngine {
            client: build_client(&base)?,
            chat_url: reqwest::Url::parse(&format!("{base}/v1/chat/completions")).ok(),
            base,
            authorization,
            estimate_warning: Arc::default(),
        })
    }

    /// The base URL, without `/v1`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = match (&self.chat_url, path) {
            (Some(url), "chat/completions") => self.client.request(method, url.clone()),
            _ => self
                .client
                .request(method, format!("{}/v1/{path}", self.base)),
        };
        match &self.authorization {
            Some(value) => builder.header(reqwest::header::AUTHORIZATION, value.clone()),
            None => builder,
        }
    }

    fn warning(&self) -> EstimateWarning {
        EstimateWarning {
            flag: self.estimate_warning.clone(),
            engine: self.base.clone(),
        }
    }

    async fn post_chat(&self, body: &Map<String, Value>) -> Result<reqwest::Response, EngineError> {
        let response = send(
            self.request(reqwest::Method::POST, "chat/completions")
                .json(body),
        )
        .await?;
        check_status(response, str::to_string).await
    }

    async fn models(&self) -> Result<Vec<String>, EngineError> {
        let response = send(self.request(reqwest::Method::GET, "models")).await?;
        let list = read_json(check_status(response, str::to_string).await?).await?;
        let Some(Value::Array(data)) = list.get("data") else {
            return Err(EngineError::Protocol(
                "/v1/models answer has no \"data\" array".into(),
            ));
        };
        Ok(data
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str))
            .map(String::from)
            .collect())
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, EngineError> {
        let body = whole_body(outgoing(&request));
        let answer = read_json(self.post_chat(&body).await?).await?;
        if !answer.is_object() {
            return Err(EngineError::Protocol("answer is not a JSON object".into()));
        }
        if let Some(message) = stream::error_message(&answer) {
            return Err(EngineError::Protocol(format!("engine error: {message}")));
        }
        let usage = usage_of(&answer).unwrap_or_else(|| {
            estimated_usage(
                prompt_chars(&request.body),
                generated_chars(&answer, "message"),
            )
        });
        self.warning().note(&usage);
        Ok(ChatResponse {
            body: answer,
            usage,
        })
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, EngineError> {
        let body = streamed_body(outgoing(&request));
        let response = self.post_chat(&body).await?;
        if is_json(&response) {
            // A server that ignores `stream`, or reports an error with a 200.
            let answer = read_json(response).await?;
            let why = stream::error_message(&answer).map_or_else(
                || "a whole JSON answer to a streaming request".to_string(),
                |m| format!("error: {m}"),
            );
            return Err(EngineError::Protocol(format!("engine answered {why}")));
        }
        let translator = SseTranslator::new(
            request.wants_stream_usage(),
            prompt_chars(&request.body),
            self.warning(),
        );
        Ok(drive(response, translator))
    }
}

fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// The client's body, with `model` set to the request's in case the worker chose
/// another name for it (a no-op otherwise: the key keeps its place).
fn outgoing(request: &ChatRequest) -> Map<String, Value> {
    let mut body = request.body_for_engine();
    if body.get("model").and_then(Value::as_str) != Some(request.model.as_str()) {
        body.insert("model".into(), Value::String(request.model.clone()));
    }
    body
}

/// The body for a whole answer. A body that says `stream: true` would get SSE back, so
/// it is switched off, and `stream_options` with it (servers refuse it without stream).
fn whole_body(mut body: Map<String, Value>) -> Map<String, Value> {
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        body.insert("stream".into(), Value::Bool(false));
        body.shift_remove("stream_options");
    }
    body
}

/// The body for a streamed answer: `stream: true` and `include_usage: true`, keeping
/// any other stream options the client set.
fn streamed_body(mut body: Map<String, Value>) -> Map<String, Value> {
    body.insert("stream".into(), Value::Bool(true));
    match body.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            options.insert("include_usage".into(), Value::Bool(true));
        }
        _ => {
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    body
}

impl OpenAiEngine {
    /// Native: the client's body goes to the engine's `/v1/embeddings` whole, in the
    /// encoding the client chose, and the answer comes back as the engine wrote it.
    async fn embeddings(
        &self,
        request: EmbeddingsRequest,
    ) -> Result<EmbeddingsResponse, EngineError> {
        let response = send(
            self.request(reqwest::Method::POST, "embeddings")
                .json(&request.body),
        )
        .await?;
        let answer = read_json(check_status(response, str::to_string).await?).await?;
        let listed = answer.get("data").and_then(Value::as_array).map(Vec::len);
        if listed != Some(request.inputs.len()) {
            return Err(EngineError::Protocol(
                "/v1/embeddings answer has no \"data\" array, one per input".into(),
            ));
        }
        let usage = match reported_tokens(&answer) {
            Some(tokens) => Usage {
                input_tokens: tokens,
                output_tokens: 0,
                estimated: false,
            },
            None => estimated_usage(request.input_chars(), 0),
        };
        self.warning().note(&usage);
        Ok(EmbeddingsResponse {
            body: answer,
            usage,
        })
    }
}

impl Engine for OpenAiEngine {
    fn kind(&self) -> &'static str {
        "openai"
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

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    /// A bare word is refused at set-up; anything with a scheme or a port is taken.
    #[test]
    fn bare_words_are_not_engine_urls() {
        let cases = [
            ("notaurl", false),
            ("llama", false),
            ("localhost", false),
            ("host/v1", false),
            ("host:", false),
            ("host:80a", false),
            ("localhost:8080", true),
            ("127.0.0.1:8080/v1", true),
            ("http://llama", true),
            ("https://api.example.com/v1", true),
        ];
        for (url, ok) in cases {
            let built = OpenAiEngine::new(url, None);
            assert_eq!(built.is_ok(), ok, "{url}");
            if let Err(e) = built {
                assert!(
                    e.to_string().contains("no scheme and no port"),
                    "{url}: {e}"
                );
            }
        }
    }

    #[test]
    fn base_url_with_or_without_v1() {
        for url in [
            "http://h:8080",
            "http://h:8080/",
            "http://h:8080/v1",
            "h:8080/v1/",
        ] {
            assert_eq!(
                OpenAiEngine::new(url, None).unwrap().base_url(),
                "http://h:8080",
                "{url}"
            );
        }
        assert_eq!(
            OpenAiEngine::new("http://h/v1beta", None)
                .unwrap()
                .base_url(),
            "http://h/v1beta"
        );
    }

    #[test]
    fn api_key_must_be_a_header_value() {
        assert!(OpenAiEngine::new("http://h", Some("sk-ok".into())).is_ok());
        assert_eq!(
            OpenAiEngine::new("http://h", Some("bad\nkey".into())).err(),
            Some(EngineSetupError::BadApiKey)
        );
    }

    #[test]
    fn stream_options_forced_and_kept() {
        let b = streamed_body(obj(
            json!({"model":"m","stream_options":{"continuous_usage_stats":true}}),
        ));
        assert_eq!(
            Value::Object(b),
            json!({"model":"m","stream_options":{"continuous_usage_stats":true,
            "include_usage":true},"stream":true})
        );
        let b = streamed_body(obj(
            json!({"model":"m","stream":true,"stream_options":null}),
        ));
        assert_eq!(b["stream_options"], json!({"include_usage":true}));
    }

    #[test]
    fn model_follows_the_request() {
        let mut r = ChatRequest::from_value(json!({"model":"a","messages":[{}],"x":1})).unwrap();
        assert_eq!(
            Value::Object(outgoing(&r)),
            json!({"model":"a","messages":[{}],"x":1})
        );
        r.model = "b".into();
        assert_eq!(
            Value::Object(outgoing(&r)),
            json!({"model":"b","messages":[{}],"x":1})
        );
    }

    #[test]
    fn whole_body_untouched_unless_streaming() {
        let input = json!({"model":"m","tools":[],"x_future":1});
        assert_eq!(Value::Object(whole_body(obj(input.clone()))), input);
        let b = whole_body(obj(
            json!({"model":"m","stream":true,"stream_options":{"include_usage":true}}),
        ));
        assert_eq!(Value::Object(b), json!({"model":"m","stream":false}));
    }
}
