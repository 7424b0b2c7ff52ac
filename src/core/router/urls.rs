//! Parsed peer API URLs (chat completions, embeddings) and the router's own requester header, made once.
//!
//! Handing reqwest a string makes it parse the URL on every request (host, IDNA, path:
//! ~28k instructions under callgrind, 3% of a routed request). Peers' base URLs change
//! rarely, so the parsed `Url` is kept per base URL.

use std::collections::HashMap;
use std::sync::RwLock;

use reqwest::Url;

/// Base URLs kept at most; past this the cache starts over (peer lists are far smaller).
const MAX_URLS: usize = 256;

/// `{base}{path}`, parsed, by base URL and path.
pub(super) struct ChatUrls {
    urls: RwLock<HashMap<(String, &'static str), Url>>,
    capacity: usize,
}

impl ChatUrls {
    pub(super) fn new() -> Self {
        Self::with_capacity(MAX_URLS)
    }

    fn with_capacity(capacity: usize) -> Self {
        ChatUrls {
            urls: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The parsed URL, or `None` when it does not parse (the caller then hands reqwest
    /// the text, so the failure reads exactly as it always did).
    pub(super) fn get(&self, base: &str, path: &'static str) -> Option<Url> {
        let key = (base.to_string(), path);
        if let Some(url) = self
            .urls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Some(url.clone());
        }
        let url = Url::parse(&format!("{base}{path}")).ok()?;
        let mut urls = self.urls.write().unwrap_or_else(|p| p.into_inner());
        if urls.len() >= self.capacity {
            urls.clear();
        }
        urls.insert(key, url.clone());
        Some(url)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.urls.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::wire::{CHAT_PATH, EMBEDDINGS_PATH};

    fn chat_url_text(base: &str) -> String {
        format!("{base}{CHAT_PATH}")
    }

    #[test]
    fn same_url_as_parsing_each_time() {
        let urls = ChatUrls::new();
        for base in [
            "http://127.0.0.1:17474",
            "http://[::1]:9",
            "https://gpu-box.example:443/prefix",
            "http://127.0.0.1:17474",
        ] {
            let want = Url::parse(&chat_url_text(base)).unwrap();
            assert_eq!(urls.get(base, CHAT_PATH), Some(want.clone()), "{base}");
            assert_eq!(urls.get(base, CHAT_PATH), Some(want), "{base}, cached");
        }
        assert_eq!(urls.len(), 3);
        assert_eq!(urls.get("not a url", CHAT_PATH), None);
        assert_eq!(urls.len(), 3, "a failure is not kept");
        let embeddings = urls.get("http://[::1]:9", EMBEDDINGS_PATH).unwrap();
        assert_eq!(embeddings.as_str(), "http://[::1]:9/v1/embeddings");
        assert_eq!(urls.len(), 4, "one entry per path");
    }

    #[test]
    fn stays_within_its_capacity() {
        let urls = ChatUrls::with_capacity(2);
        for port in 1..10 {
            let base = format!("http://127.0.0.1:{port}");
            assert_eq!(
                urls.get(&base, CHAT_PATH),
                Some(Url::parse(&chat_url_text(&base)).unwrap())
            );
            assert!(urls.len() <= 2);
        }
    }
}
