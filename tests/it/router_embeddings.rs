//! Embeddings through the router: only peers whose capacity lists `embeddings` are
//! offered them (an engine without embeddings, like the existing network's workers, is
//! passed over), the answer is billed on input tokens alone, and with no capable peer
//! the client is told so, while chat still reaches every peer.

use crate::support;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{
    ChatRequest, ChatResponse, ChatStream, Engine, EngineError, SyntheticConfig, SyntheticEngine,
};
use lobstah::core::protocol::Identity;
use lobstah::core::protocol::wire::SERVED_BY_HEADER;
use serde_json::{Value, json};

/// The synthetic engine with its embeddings hidden: a chat-only engine.
struct ChatOnly(SyntheticEngine);

impl Engine for ChatOnly {
    fn kind(&self) -> &'static str {
        "chat-only"
    }
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        self.0.list_models()
    }
    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, EngineError>> {
        self.0.chat(request)
    }
    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatStream, EngineError>> {
        self.0.chat_stream(request)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_go_only_to_peers_that_serve_them() {
    let clock = Arc::new(SystemClock);
    let chat_only = support::start_worker(
        Identity::from_seed([51; 32]),
        Arc::new(ChatOnly(SyntheticEngine::new(SyntheticConfig::default()))),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    let both = support::start_worker(
        Identity::from_seed([52; 32]),
        Arc::new(SyntheticEngine::new(SyntheticConfig::default())),
        support::memory_db(),
        clock.clone(),
    )
    .await;
    let router = support::start_router(
        Identity::from_seed([50; 32]),
        support::memory_db(),
        &[
            (chat_only.pubkey, chat_only.url.clone()),
            (both.pubkey, both.url.clone()),
        ],
        clock,
        |_| {},
    )
    .await;
    let http = reqwest::Client::new();
    let post = |path: &'static str, body: Value| {
        let (http, url) = (http.clone(), format!("{}{path}", router.url));
        async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            let served_by = response
                .headers()
                .get(SERVED_BY_HEADER)
                .map(|v| v.to_str().unwrap().to_string());
            let status = response.status().as_u16();
            (status, served_by, response.json::<Value>().await.unwrap())
        }
    };
    let embed = json!({"model": "synthetic", "input": ["one", "two"]});
    let chat = json!({"model": "synthetic", "messages": [{"role": "user", "content": "hi"}]});
    let mut chat_servers = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (status, by, body) = post("/v1/embeddings", embed.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            by,
            Some(both.pubkey.to_string()),
            "embeddings never go to the chat-only peer"
        );
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        let (status, by, body) = post("/v1/chat/completions", chat.clone()).await;
        assert_eq!(status, 200, "{body}");
        chat_servers.insert(by.unwrap());
    }
    assert_eq!(chat_servers.len(), 2, "chat still reaches both peers");

    // The embeddings receipts bill input only.
    router.service.flush_ledger().await;
    let receipts = router.ledger.newest(100).unwrap();
    let embedded: Vec<_> = receipts
        .iter()
        .map(|r| r.receipt.receipt())
        .filter(|r| r.worker_pubkey == both.pubkey && r.output_tokens == 0)
        .collect();
    assert!(
        embedded.len() >= 6,
        "{} embeddings receipts",
        embedded.len()
    );
    assert!(
        embedded.iter().all(|r| r.input_tokens == 2),
        "one token per short input"
    );

    // With the capable peer gone, the client hears why.
    both.shutdown.cancel();
    drop(both);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    router.service.refresh_capacity(true).await;
    let (status, _, body) = post("/v1/embeddings", embed).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "no_capable_peer", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("embeddings"), "{message}");
    let (status, _, body) = post(
        "/v1/embeddings",
        json!({"model": "synthetic", "input": [1, 2]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token arrays"),
        "{body}"
    );
    router.stop().await;
}
