//! Failure mapping for both HTTP adapters: error statuses, garbage, refused
//! connections and hang-ups mid-answer.

use lobstah::core::engine::{Engine, EngineError, OllamaEngine, OpenAiEngine};
use lobstah::testkit::{Failure, FakeConfig, FakeOllama, FakeOpenAi, unused_local_url};
use serde_json::json;

use super::{collect, request, within};

/// Both adapters, each in front of a fake configured with `failure`. The fakes are
/// returned so they live as long as the engines.
async fn engines(failure: Failure) -> (Vec<Box<dyn Engine>>, FakeOllama, FakeOpenAi) {
    let config = FakeConfig::default().with_failure(failure);
    let ollama = within(FakeOllama::start_with(config.clone()))
        .await
        .unwrap();
    let openai = within(FakeOpenAi::start_with(config)).await.unwrap();
    let engines: Vec<Box<dyn Engine>> = vec![
        Box::new(OllamaEngine::new(ollama.url()).unwrap()),
        Box::new(OpenAiEngine::new(openai.url(), None).unwrap()),
    ];
    (engines, ollama, openai)
}

fn hello(stream: bool) -> lobstah::core::engine::ChatRequest {
    request(
        json!({"model": "fake-model", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}),
    )
}

#[tokio::test]
async fn status_500_is_a_status_error_with_the_message() {
    let (engines, _o, _a) = engines(Failure::Status500).await;
    for e in &engines {
        let err = within(e.chat(hello(false))).await.unwrap_err();
        match &err {
            EngineError::Status { status: 500, body } => {
                assert!(body.contains("fake engine failure"), "{body}")
            }
            other => panic!("{}: {other:?}", e.kind()),
        }
        assert!(!err.is_client_error());
        let err = within(e.chat_stream(hello(true))).await.err().unwrap();
        assert!(
            matches!(err, EngineError::Status { status: 500, .. }),
            "{}: {err:?}",
            e.kind()
        );
    }
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let (engines, _o, _a) = engines(Failure::Garbage).await;
    for e in &engines {
        let err = within(e.chat(hello(false))).await.unwrap_err();
        assert!(
            matches!(err, EngineError::Protocol(_)),
            "{}: {err:?}",
            e.kind()
        );
        // The status line was fine, so the stream starts and its first item is the error.
        let got = collect(within(e.chat_stream(hello(true))).await.unwrap()).await;
        assert!(
            got.chunks.is_empty() && got.usage.is_none(),
            "{}: {got:?}",
            e.kind()
        );
        assert!(
            matches!(got.error, Some(EngineError::Protocol(_))),
            "{}: {got:?}",
            e.kind()
        );
    }
}

#[tokio::test]
async fn refused_connection_is_unreachable() {
    let url = unused_local_url().unwrap();
    let engines: Vec<Box<dyn Engine>> = vec![
        Box::new(OllamaEngine::new(&url).unwrap()),
        Box::new(OpenAiEngine::new(&url, None).unwrap()),
    ];
    for e in &engines {
        let err = within(e.list_models()).await.unwrap_err();
        assert!(
            matches!(err, EngineError::Unreachable(_)),
            "{}: {err:?}",
            e.kind()
        );
        let err = within(e.chat(hello(false))).await.unwrap_err();
        assert!(
            matches!(err, EngineError::Unreachable(_)),
            "{}: {err:?}",
            e.kind()
        );
        let err = within(e.chat_stream(hello(true))).await.err().unwrap();
        assert!(
            matches!(err, EngineError::Unreachable(_)),
            "{}: {err:?}",
            e.kind()
        );
    }
}

#[tokio::test]
async fn hang_up_mid_stream_is_an_error_item() {
    let config = FakeConfig::default()
        .with_reply("a b c d e f g h")
        .with_failure(Failure::HangUp);
    let ollama = within(FakeOllama::start_with(config.clone()))
        .await
        .unwrap();
    let openai = within(FakeOpenAi::start_with(config)).await.unwrap();
    let engines: Vec<Box<dyn Engine>> = vec![
        Box::new(OllamaEngine::new(ollama.url()).unwrap()),
        Box::new(OpenAiEngine::new(openai.url(), None).unwrap()),
    ];
    for e in &engines {
        let got = collect(within(e.chat_stream(hello(true))).await.unwrap()).await;
        assert!(
            !got.chunks.is_empty(),
            "{}: some chunks came before the hang-up",
            e.kind()
        );
        assert!(
            got.usage.is_none(),
            "{}: an interrupted answer has no usage",
            e.kind()
        );
        assert!(
            matches!(got.error, Some(EngineError::Unreachable(_))),
            "{}: {:?}",
            e.kind(),
            got.error
        );

        let err = within(e.chat(hello(false))).await.unwrap_err();
        assert!(
            matches!(err, EngineError::Unreachable(_)),
            "{}: {err:?}",
            e.kind()
        );
    }
}

#[tokio::test]
async fn stop_shuts_the_fake_down() {
    let fake = within(FakeOpenAi::start()).await.unwrap();
    let engine = OpenAiEngine::new(fake.url(), None).unwrap();
    within(engine.list_models()).await.unwrap();
    within(fake.stop()).await;
    let err = within(engine.list_models()).await.unwrap_err();
    assert!(matches!(err, EngineError::Unreachable(_)), "{err:?}");
}
