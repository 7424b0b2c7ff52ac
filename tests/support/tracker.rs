//! A tracker on a real loopback listener (port 0) with a clock the test moves by hand,
//! and signed announcements to feed it.

use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::ManualClock;
use lobstah::core::protocol::{Announcement, Identity, SignedAnnouncement, Tier, canonical_json};
use lobstah::core::tracker::{self, TrackerConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A fixed "now" for tracker tests, in Unix ms.
pub const T0: u64 = 1_700_000_000_000;

pub struct TestTracker {
    pub url: String,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The default bounds with rate limiting off, for tests about something else (every
/// test client shares 127.0.0.1).
pub fn unlimited() -> TrackerConfig {
    TrackerConfig {
        rate_per_minute: 0,
        ..TrackerConfig::default()
    }
}

impl TestTracker {
    pub async fn start(config: TrackerConfig) -> TestTracker {
        let (listener, addr) = super::listener().await;
        let clock = ManualClock::new(T0);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(tracker::serve(
            listener,
            config,
            Arc::new(clock.clone()),
            shutdown.clone().cancelled_owned(),
        ));
        TestTracker {
            url: format!("http://{addr}"),
            clock,
            http: super::client(),
            shutdown,
            task,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let joined = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the tracker stops within 10 s");
        joined.expect("tracker task").expect("tracker serve");
    }

    pub fn now(&self) -> u64 {
        lobstah::core::clock::Clock::now_ms(&self.clock)
    }

    /// POSTs raw bytes; returns the status, the Retry-After header and the JSON body
    /// (Null if the body is not JSON).
    pub async fn post_bytes(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Option<String>, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST to the tracker");
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.expect("tracker answer");
        (
            status,
            retry_after,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let (status, _, value) = self.post_bytes(path, body.to_string().into_bytes()).await;
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET from the tracker");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The `/peers` list, asserting its envelope.
    pub async fn peers(&self) -> Vec<Value> {
        let (status, body) = self.get("/peers").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["version"], 1, "{body}");
        let peers = body["peers"].as_array().expect("a peers list").clone();
        assert_eq!(body["count"], json!(peers.len()), "{body}");
        peers
    }
}

pub fn announcement(who: &Identity, at: u64, ttl_seconds: u64) -> SignedAnnouncement {
    announcement_for(who, "http://127.0.0.1:17474", at, ttl_seconds)
}

pub fn announcement_for(
    who: &Identity,
    url: &str,
    at: u64,
    ttl_seconds: u64,
) -> SignedAnnouncement {
    let a = Announcement {
        version: 1,
        pubkey: who.public(),
        url: url.into(),
        label: Some("test".into()),
        models: vec!["llama3.1:8b".into()],
        tier: Tier::Batch,
        ttl_seconds,
        announced_at: at,
    };
    SignedAnnouncement::sign(a, who).expect("sign an announcement")
}

/// A signed announcement carrying a field this build does not know, signed over the
/// object as sent (as a newer peer would).
pub fn announcement_with_extra(who: &Identity, at: u64) -> Value {
    let mut body = announcement(who, at, 300).to_value()["announcement"].clone();
    body["gpu"] = json!({"name": "M2 Max", "vramGb": 32});
    let signature = who.sign(&canonical_json(&body).expect("canonical JSON"));
    json!({"announcement": body, "signature": signature.to_hex()})
}
