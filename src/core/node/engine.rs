//! The engine a node's worker serves, built from the `[engine]` settings.

use std::sync::Arc;

use crate::core::config::{EngineKind, EngineSettings};
use crate::core::engine::{
    Engine, OllamaEngine, OpenAiEngine, SyntheticConfig, SyntheticEngine, ollama_default_url,
};

/// A built engine and the URL it talks to (none for the synthetic engine).
pub struct EngineSetup {
    pub engine: Arc<dyn Engine>,
    pub url: Option<String>,
}

/// Builds the configured engine; `api_key` is sent to an OpenAI-compatible engine.
pub fn build_engine(
    settings: &EngineSettings,
    api_key: Option<String>,
) -> Result<EngineSetup, String> {
    Ok(match settings.kind {
        EngineKind::Ollama => {
            let url = settings.url.clone().unwrap_or_else(ollama_default_url);
            let engine = OllamaEngine::new(&url).map_err(|e| e.to_string())?;
            EngineSetup {
                engine: Arc::new(engine),
                url: Some(url),
            }
        }
        EngineKind::Openai => {
            let Some(url) = settings.url.clone() else {
                return Err(
                    "the openai engine needs engine.url (e.g. http://127.0.0.1:8080 for llama.cpp's server)"
                        .into(),
                );
            };
            let engine = OpenAiEngine::new(&url, api_key).map_err(|e| e.to_string())?;
            EngineSetup {
                engine: Arc::new(engine),
                url: Some(url),
            }
        }
        EngineKind::Synthetic => EngineSetup {
            engine: Arc::new(SyntheticEngine::new(SyntheticConfig {
                models: settings.synthetic_models.clone(),
                tokens_per_second: settings.synthetic_rate,
            })),
            url: None,
        },
    })
}
