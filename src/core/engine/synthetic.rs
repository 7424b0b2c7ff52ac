//! The synthetic engine: no model, deterministic filler text, for demos and benchmarks.
//! It is named "synthetic" everywhere it shows (kind, default model,
//! `system_fingerprint`) so nobody mistakes its output for inference. The same messages
//! always give the same words; the rate is real (tokio time), or unbounded at 0.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::estimate::{estimate_tokens, prompt_words};
use super::shape::{Meta, usage_json};
use super::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Engine,
    EngineError, StreamEvent, Usage, openai_list,
};

/// The model name the synthetic engine serves by default.
pub const SYNTHETIC_MODEL: &str = "synthetic";
const FINGERPRINT: &str = "lobstah-synthetic";
const DEFAULT_TOKENS: u64 = 64;
/// Upper bound on one answer, so a request for a billion tokens cannot pin a core.
const MAX_TOKENS: u64 = 32_768;

#[rustfmt::skip]
const WORDS: [&str; 32] = [
    "the", "lobster", "routes", "tokens", "across", "a", "quiet", "reef", "of", "peers",
    "while", "each", "worker", "signs", "its", "receipt", "and", "ledgers", "balance", "in",
    "harbor", "tide", "synthetic", "text", "flows", "steady", "over", "shells", "nodes",
    "share", "compute", "freely",
];

#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Model names served; a request for another model is a 404.
    pub models: Vec<String>,
    /// Output pace; 0 (or anything not positive and finite) means as fast as possible.
    pub tokens_per_second: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            models: vec![SYNTHETIC_MODEL.to_string()],
            tokens_per_second: 0.0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyntheticEngine {
    config: SyntheticConfig,
}

impl SyntheticEngine {
    pub fn new(config: SyntheticConfig) -> Self {
        SyntheticEngine { config }
    }

    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    fn period(&self) -> Option<Duration> {
        let rate = self.config.tokens_per_second;
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        Duration::try_from_secs_f64(1.0 / rate)
            .ok()
            .filter(|d| !d.is_zero())
    }

    fn plan(&self, request: &ChatRequest) -> Result<Plan, EngineError> {
        if !self.config.models.contains(&request.model) {
            return Err(EngineError::Status {
                status: 404,
                body: format!(
                    "model {:?} is not served by the synthetic engine",
                    request.model
                ),
            });
        }
        let limit = request.requested_output();
        // The worker's cap lowers our own default too; it never raises it.
        let tokens = limit
            .unwrap_or(DEFAULT_TOKENS)
            .min(request.output_cap.unwrap_or(u64::MAX))
            .min(MAX_TOKENS);
        let truncated = limit.is_some() || tokens < DEFAULT_TOKENS;
        Ok(Plan {
            meta: Meta::new(&request.model),
            words: Words::new(seed(&request.body)),
            tokens,
            // Stopping at a limit is a truncation; at our default it is not.
            finish: if truncated { "length" } else { "stop" },
            input_tokens: prompt_words(&request.body),
        })
    }
}

struct Plan {
    meta: Meta,
    words: Words,
    tokens: u64,
    finish: &'static str,
    input_tokens: u64,
}

impl Plan {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.input_tokens,
            output_tokens: self.tokens,
            estimated: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        fingerprinted(self.meta.chunk(&self.meta.model, delta, finish))
    }
}

/// Marks a chunk as the synthetic engine's, like a real server's build fingerprint.
fn fingerprinted(mut chunk: Value) -> Value {
    if let Value::Object(fields) = &mut chunk {
        fields.insert(
            "system_fingerprint".into(),
            Value::String(FINGERPRINT.into()),
        );
    }
    chunk
}

/// FNV-1a over the messages' JSON: stable across Rust versions and platforms, unlike
/// the std hasher, so the same prompt gives the same text everywhere.
fn seed(body: &Map<String, Value>) -> u64 {
    let bytes = body
        .get("messages")
        .map(|m| m.to_string())
        .unwrap_or_default();
    bytes.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64 over the word list.
struct Words(u64);

impl Words {
    fn new(seed: u64) -> Self {
        Words(seed)
    }

    fn next_word(&mut self) -> &'static str {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        WORDS[(z % WORDS.len() as u64) as usize]
    }

    /// Token `i` of the text: words after the first carry their leading space.
    fn token(&mut self, i: u64) -> String {
        let word = self.next_word();
        if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        }
    }
}

impl SyntheticEngine {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, EngineError> {
        let mut plan = self.plan(&request)?;
        if let Some(period) = self.period() {
            tokio::time::sleep(period.saturating_mul(plan.tokens.min(u64::from(u32::MAX)) as u32))
                .await;
        }
        let text: String = (0..plan.tokens).map(|i| plan.words.token(i)).collect();
        let usage = plan.usage();
        let body = json!({
            "id": plan.meta.id, "object": "chat.completion", "created": plan.meta.created,
            "model": plan.meta.model, "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": plan.finish}],
            "usage": usage_json(&usage),
        });
        Ok(ChatResponse { body, usage })
    }

    fn stream(&self, request: &ChatRequest) -> Result<ChatStream, EngineError> {
        let plan = self.plan(request)?;
        let wants_usage = request.wants_stream_usage();
        let period = self.period();
        let start = Instant::now();
        let stream = stream::unfold((plan, Step::Token(0)), move |(mut plan, step)| async move {
            let (event, next) = match step {
                Step::Token(i) => {
                    if let Some(p) = period.filter(|_| i < plan.tokens) {
                        // Deadlines from the start, so scheduling delays do not add up.
                        let nth = u32::try_from(i + 1).unwrap_or(u32::MAX);
                        tokio::time::sleep_until(start + p.saturating_mul(nth)).await;
                    }
                    let mut delta = Map::new();
                    if i == 0 {
                        delta.insert("role".into(), json!("assistant"));
                    }
                    // With max_tokens 0 the one chunk carries the role and no text.
                    let content = if i < plan.tokens {
                        plan.words.token(i)
                    } else {
                        String::new()
                    };
                    delta.insert("content".into(), Value::String(content));
                    let next = if i + 1 < plan.tokens {
                        Step::Token(i + 1)
                    } else {
                        Step::Finish
                    };
                    (plan.chunk(Value::Object(delta), None), next)
                }
                Step::Finish => {
                    let next = if wants_usage {
                        Step::UsageChunk
                    } else {
                        Step::Usage
                    };
                    (plan.chunk(json!({}), Some(plan.finish)), next)
                }
                Step::UsageChunk => {
                    let chunk = plan.meta.usage_chunk(&plan.meta.model, &plan.usage());
                    (fingerprinted(chunk), Step::Usage)
                }
                Step::Usage => {
                    return Some((Ok(StreamEvent::Usage(plan.usage())), (plan, Step::Done)));
                }
                Step::Done => return None,
            };
            Some((Ok(StreamEvent::Chunk(event)), (plan, next)))
        });
        Ok(stream.boxed())
    }
}

/// Where a synthetic stream is: token chunks, the finishing chunk, the usage chunk (if
/// the client asked), the usage event.
#[derive(Debug, Clone, Copy)]
enum Step {
    Token(u64),
    Finish,
    UsageChunk,
    Usage,
    Done,
}

impl Engine for SyntheticEngine {
    fn kind(&self) -> &'static str {
        "synthetic"
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        futures_util::future::ready(Ok(self.config.models.clone())).boxed()
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, EngineError>> {
        self.complete(request).boxed()
    }

    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatStream, EngineError>> {
        futures_util::future::ready(self.stream(&request)).boxed()
    }

    fn serves_embeddings(&self) -> bool {
        true
    }

    fn embed(
        &self,
        request: EmbeddingsRequest,
    ) -> BoxFuture<'_, Result<EmbeddingsResponse, EngineError>> {
        futures_util::future::ready(self.embeddings(&request)).boxed()
    }
}

/// Length of a synthetic embedding when the request names no `dimensions`.
const SYNTHETIC_DIMENSIONS: u32 = 64;

impl SyntheticEngine {
    /// Vectors that are a pure function of the model and each text, of unit length, so
    /// tests and benchmarks can check an answer against a second request.
    fn embeddings(&self, request: &EmbeddingsRequest) -> Result<EmbeddingsResponse, EngineError> {
        if !self.config.models.contains(&request.model) {
            return Err(EngineError::Status {
                status: 404,
                body: format!("model {:?} not found", request.model),
            });
        }
        let dims = request.dimensions.unwrap_or(SYNTHETIC_DIMENSIONS);
        let vectors: Vec<Vec<f32>> = request
            .inputs
            .iter()
            .map(|text| synthetic_vector(&request.model, text, dims))
            .collect();
        let input_tokens = request
            .inputs
            .iter()
            .map(|t| estimate_tokens(t.chars().count()).max(1))
            .sum();
        let usage = Usage {
            input_tokens,
            output_tokens: 0,
            estimated: false,
        };
        Ok(EmbeddingsResponse {
            body: openai_list(request, &vectors, input_tokens),
            usage,
        })
    }
}

fn synthetic_vector(model: &str, text: &str, dims: u32) -> Vec<f32> {
    use sha2::{Digest, Sha256};
    let mut raw = Vec::with_capacity(dims as usize);
    let mut block = 0u32;
    while raw.len() < dims as usize {
        let digest = Sha256::new()
            .chain_update(model.as_bytes())
            .chain_update([0])
            .chain_update(text.as_bytes())
            .chain_update(block.to_le_bytes())
            .finalize();
        for pair in digest.chunks(2) {
            if raw.len() == dims as usize {
                break;
            }
            let n = u16::from_le_bytes([pair[0], pair[1]]);
            raw.push(f32::from(n) / 32_767.5 - 1.0);
        }
        block += 1;
    }
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    raw.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let engine = SyntheticEngine::default();
        let request = |body: &str| EmbeddingsRequest::parse(body.as_bytes()).unwrap();
        let ask = |body: &str| engine.embeddings(&request(body)).unwrap();
        let a = ask(r#"{"model":"synthetic","input":["cat","dog"]}"#);
        let again = ask(r#"{"model":"synthetic","input":"cat"}"#);
        assert_eq!(
            a.body["data"][0]["embedding"],
            again.body["data"][0]["embedding"]
        );
        assert_ne!(
            a.body["data"][0]["embedding"],
            a.body["data"][1]["embedding"]
        );
        let v: Vec<f64> = serde_json::from_value(a.body["data"][0]["embedding"].clone()).unwrap();
        assert_eq!(v.len(), SYNTHETIC_DIMENSIONS as usize);
        let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
        assert_eq!((a.usage.input_tokens, a.usage.output_tokens), (2, 0));
        let short = ask(r#"{"model":"synthetic","input":"x","dimensions":5}"#);
        assert_eq!(
            short.body["data"][0]["embedding"].as_array().unwrap().len(),
            5
        );
        let missing = engine.embeddings(&request(r#"{"model":"nope","input":"x"}"#));
        assert!(matches!(
            missing,
            Err(EngineError::Status { status: 404, .. })
        ));
    }

    #[test]
    fn words_are_a_pure_function_of_the_seed() {
        let text = |seed| {
            let mut w = Words::new(seed);
            (0..8).map(|i| w.token(i)).collect::<String>()
        };
        assert_eq!(text(42), text(42));
        assert_ne!(text(42), text(43));
        assert!(!text(42).starts_with(' '));
        assert_eq!(text(42).split(' ').count(), 8);
    }

    #[test]
    fn seed_depends_on_messages_only() {
        let a = serde_json::json!({"model":"a","messages":[{"role":"user","content":"hi"}]});
        let b =
            serde_json::json!({"model":"b","messages":[{"role":"user","content":"hi"}],"seed":1});
        let c = serde_json::json!({"model":"a","messages":[{"role":"user","content":"ho"}]});
        let s = |v: Value| seed(v.as_object().unwrap());
        assert_eq!(s(a.clone()), s(b));
        assert_ne!(s(a), s(c));
    }

    #[test]
    fn pace_is_ignored_unless_positive_and_finite() {
        let engine = |r| {
            SyntheticEngine::new(SyntheticConfig {
                tokens_per_second: r,
                ..Default::default()
            })
        };
        assert_eq!(engine(0.0).period(), None);
        assert_eq!(engine(-3.0).period(), None);
        assert_eq!(engine(f64::NAN).period(), None);
        assert_eq!(engine(f64::INFINITY).period(), None);
        assert_eq!(engine(1e300).period(), None);
        assert_eq!(engine(4.0).period(), Some(Duration::from_millis(250)));
    }
}
