//! The engine adapters against the testkit's fake engines over real HTTP on 127.0.0.1,
//! and the synthetic engine. Every network step is bounded by a timeout.

mod errors;
mod ollama;
mod openai;
mod synthetic;

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use lobstah::core::engine::{ChatRequest, ChatStream, EngineError, StreamEvent, Usage};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `f`, failing the test if it takes longer than `LIMIT`.
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.expect("timed out")
}

pub fn request(body: Value) -> ChatRequest {
    ChatRequest::from_value(body).unwrap()
}

/// Everything a stream yielded, in order.
#[derive(Debug, Default)]
pub struct Collected {
    pub chunks: Vec<Value>,
    pub usage: Option<Usage>,
    pub error: Option<EngineError>,
}

impl Collected {
    /// The concatenated `delta.content` of all chunks.
    pub fn text(&self) -> String {
        self.chunks
            .iter()
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
            })
            .collect()
    }

    /// Chunks with an empty `choices` array (the usage-only chunk).
    pub fn usage_chunks(&self) -> Vec<&Value> {
        self.chunks
            .iter()
            .filter(|c| c["choices"].as_array().is_some_and(|a| a.is_empty()))
            .collect()
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.chunks.iter().rev().find_map(|c| {
            c.pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
        })
    }
}

/// Drains a stream, checking that the usage event (if any) is the last item.
pub async fn collect(mut stream: ChatStream) -> Collected {
    let mut out = Collected::default();
    while let Some(item) = within(stream.next()).await {
        assert!(
            out.usage.is_none(),
            "nothing may follow the usage event: {item:?}"
        );
        assert!(out.error.is_none(), "nothing may follow an error: {item:?}");
        match item {
            Ok(StreamEvent::Chunk(c)) => out.chunks.push(c),
            Ok(StreamEvent::ChunkText(t)) => out
                .chunks
                .push(serde_json::from_str(&t).expect("a relayed chunk is one JSON object")),
            Ok(StreamEvent::Usage(u)) => out.usage = Some(u),
            Err(e) => out.error = Some(e),
        }
    }
    out
}
