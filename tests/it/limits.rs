//! Limits everywhere: what a client or a peer can cost the router and the worker.
//! `http` covers connections, request heads and bodies; `streams` covers stalled
//! sources and clients that stop reading. Every limit is set to milliseconds through
//! the config fields, every wait is bounded, and each test fails with its limit gone.

use crate::support;

mod http;
mod streams;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{Engine, SyntheticConfig, SyntheticEngine};
use lobstah::core::protocol::Identity;
use lobstah::core::router::RouterConfig;
use lobstah::core::worker::WorkerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any step of these tests may take.
pub const LIMIT: Duration = Duration::from_secs(10);
/// How long "not served" is watched for: far above a loopback round trip.
pub const QUIET: Duration = Duration::from_millis(300);

/// Awaits `f`, failing the test if it takes longer than `LIMIT`.
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(LIMIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

pub fn synthetic() -> Arc<dyn Engine> {
    Arc::new(SyntheticEngine::new(SyntheticConfig {
        models: vec!["m".into()],
        tokens_per_second: 0.0,
    }))
}

/// A worker on the synthetic engine with `configure` applied.
pub async fn worker(configure: impl FnOnce(&mut WorkerConfig)) -> support::TestWorker {
    support::start_worker_with(
        Identity::from_seed([71; 32]),
        synthetic(),
        support::memory_db(),
        Arc::new(SystemClock),
        configure,
    )
    .await
}

/// A router with no peers and `configure` applied (for limits that act before routing).
pub async fn router(configure: impl FnOnce(&mut RouterConfig)) -> support::TestRouter {
    support::start_router(
        Identity::from_seed([72; 32]),
        support::memory_db(),
        &[],
        Arc::new(SystemClock),
        configure,
    )
    .await
}

pub fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

/// The requester header's value, for requests straight to a worker.
pub fn requester() -> String {
    Identity::from_seed([73; 32]).public().to_string()
}

/// A keep-alive `GET path` as raw bytes.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").into_bytes()
}

/// A raw HTTP/1.1 answer: status, headers (lower-cased names) and body.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Reads one answer with a `content-length` body; `None` if the connection closes
/// first. Does not wait longer than the caller lets it.
pub async fn read_answer(stream: &mut TcpStream) -> Option<RawAnswer> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    Some(RawAnswer { status, head, body })
}

/// Whether the server closed the connection (EOF or reset) within `LIMIT`, reading and
/// discarding whatever comes before.
pub async fn closes(stream: &mut TcpStream) -> bool {
    let drain = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(LIMIT, drain).await.unwrap_or(false)
}

/// Connects and sends `bytes`.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    stream.write_all(bytes).await.expect("write");
    stream
}
