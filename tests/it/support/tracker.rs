//! A tracker on a real loopback listener (port 0) with a clock the test moves by hand,
//! `lobstah tracker start` as a child process, and signed announcements to feed them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            Default::default(),
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
        link: None,
    };
    SignedAnnouncement::sign(a, who).expect("sign an announcement")
}

/// A signed announcement carrying a field this build does not know, signed over the
/// object as sent (as a newer peer would).
pub fn announcement_with_extra(who: &Identity, at: u64) -> Value {
    let mut body = announcement(who, at, 300).to_value()["announcement"].clone();
    body["gpu"] = json!({"name": "M2 Max", "tflops": 13.6});
    let signature = who.sign(&canonical_json(&body).expect("canonical JSON"));
    json!({"announcement": body, "signature": signature.to_hex()})
}

/// Asserts a tracker refusal: status, `type`, `reason`, and a human message beside it.
pub fn assert_refused(
    status: StatusCode,
    body: &Value,
    want: StatusCode,
    kind: &str,
    reason: &str,
) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert_eq!(body["error"]["reason"], reason, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "a message beside the reason: {body}");
}

/// `lobstah tracker start` as a child process, its address read from the line it prints.
pub struct TrackerProcess {
    pub child: Child,
    pub url: String,
}

impl TrackerProcess {
    /// Starts the built binary with `args` after `tracker start` (pass `--port 0`).
    pub fn spawn(home: &Path, args: &[&str]) -> TrackerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lobstah"))
            .args(["tracker", "start"])
            .args(args)
            .env("LOBSTAH_HOME", home)
            .env("NO_PROXY", "127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lobstah tracker");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        let read = BufReader::new(stdout).read_line(&mut first);
        let url = match first.trim().strip_prefix("tracker listening on ") {
            Some(url) if read.is_ok() => url.to_string(),
            _ => {
                let _ = child.kill();
                panic!("unexpected first line {first:?} ({read:?})");
            }
        };
        TrackerProcess { child, url }
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits up to 30 s for the exit code.
    pub fn wait(mut self) -> Option<i32> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < until, "lobstah tracker did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TrackerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
