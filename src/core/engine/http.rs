//! HTTP plumbing the engine adapters share: the client, base-URL normalisation, mapping
//! transport failures and error answers onto `EngineError`, bounded body reads, and the
//! driver that turns a streamed body into a `ChatStream` through a line translator.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};

use super::lines::{LineSplitter, MAX_LINE};
use super::{ChatStream, EngineError, EngineSetupError, StreamEvent};
use crate::core::describe;

/// Largest non-streamed answer accepted from an engine.
const MAX_BODY: usize = 32 << 20;
/// How much of an error answer is read, and how much of it is kept in the error.
const MAX_ERROR_BODY: usize = 64 << 10;
const ERROR_BODY_CHARS: usize = 300;
/// Bounds on reading past the end of a streamed answer (see `Drive::drain`).
const DRAIN_BYTES: usize = 64 << 10;
const DRAIN_TIME: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence allowed between two reads. Generous, because an engine loading a large model
/// from a slow disk says nothing for minutes before the first token.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// The HTTP client for an engine at `base` (already normalised).
pub(crate) fn build_client(base: &str) -> Result<reqwest::Client, EngineSetupError> {
    // An engine URL may be https; rustls needs a process-wide provider chosen once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("lobstah/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT);
    // reqwest sends even loopback traffic through HTTP_PROXY; an operator who set one
    // for the internet would find their local engine unreachable. Go (and so the
    // ollama CLI) skips the proxy for loopback too.
    if is_loopback(base) {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| EngineSetupError::Client(describe::with_causes(&e)))
}

fn is_loopback(base: &str) -> bool {
    let Some(url) = reqwest::Url::parse(base).ok() else {
        return false;
    };
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `http://` added when there is no scheme, trailing slashes removed; the result is a
/// prefix endpoint paths are appended to.
pub(crate) fn normalize_base(url: &str) -> Result<String, EngineSetupError> {
    let trimmed = url.trim();
    let bad = |reason: &str| EngineSetupError::BadUrl {
        url: url.to_string(),
        reason: reason.into(),
    };
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let parsed = reqwest::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a base URL has no query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// A transport failure: the engine could not be reached, or the connection broke.
pub(crate) fn transport_error(e: &reqwest::Error) -> EngineError {
    EngineError::Unreachable(describe::with_causes(e))
}

pub(crate) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, EngineError> {
    request.send().await.map_err(|e| transport_error(&e))
}

/// The whole body, refusing more than `limit` bytes.
async fn read_limited(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, EngineError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(EngineError::Protocol(format!(
                "engine answer larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A successful answer's JSON body.
pub(crate) async fn read_json(
    mut response: reqwest::Response,
) -> Result<serde_json::Value, EngineError> {
    let body = read_limited(&mut response, MAX_BODY).await?;
    serde_json::from_slice(&body).map_err(|e| {
        EngineError::Protocol(format!(
            "answer is not JSON ({e}): {}",
            trim_body(&lossy(&body))
        ))
    })
}

/// `Ok(response)` for a 2xx; otherwise `EngineError::Status` with the body, shortened
/// by `message` (which may pull the human part out of an engine's error JSON).
pub(crate) async fn check_status(
    mut response: reqwest::Response,
    message: fn(&str) -> String,
) -> Result<reqwest::Response, EngineError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = match read_limited(&mut response, MAX_ERROR_BODY).await {
        Ok(bytes) => message(&lossy(&bytes)),
        Err(e) => format!("(body unreadable: {e})"),
    };
    Err(EngineError::Status {
        status: status.as_u16(),
        body: trim_body(&body),
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whitespace trimmed and cut to a few hundred characters, for error messages and logs.
pub(crate) fn trim_body(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body.to_string(),
    }
}

/// Turns the lines of a streamed body into stream events.
pub(crate) trait LineTranslator: Send + 'static {
    /// Events for one line (complete, without its newline).
    fn line(&mut self, line: &[u8]) -> Result<Vec<StreamEvent>, EngineError>;
    /// True once the answer is complete; the rest of the body is not read.
    fn finished(&self) -> bool;
    /// Events when the body ended; an error if the answer was not complete.
    fn end(&mut self) -> Result<Vec<StreamEvent>, EngineError>;
}

struct Drive<T> {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    splitter: LineSplitter,
    translator: T,
    pending: VecDeque<Result<StreamEvent, EngineError>>,
    over: bool,
}

impl<T: LineTranslator> Drive<T> {
    fn take(&mut self, result: Result<Vec<StreamEvent>, EngineError>) {
        match result {
            Ok(events) => self.pending.extend(events.into_iter().map(Ok)),
            Err(e) => {
                self.pending.push_back(Err(e));
                self.over = true;
            }
        }
    }

    /// Reads what follows the end of the answer (normally just the end of the chunked
    /// body) so the connection goes back to the pool instead of being closed; bounded,
    /// so an engine that holds the stream open cannot hold the caller.
    async fn drain(&mut self) {
        let body = &mut self.body;
        let read = async {
            let mut left = DRAIN_BYTES;
            while let Some(Ok(bytes)) = body.next().await {
                left = match left.checked_sub(bytes.len()) {
                    Some(left) => left,
                    None => return,
                };
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, read).await;
    }

    /// Feeds the translator until it has something to say or the body is over.
    async fn advance(&mut self) {
        while self.pending.is_empty() && !self.over {
            if self.translator.finished() {
                self.over = true;
                self.drain().await;
                return;
            }
            match self.splitter.next_line() {
                Ok(Some(line)) => {
                    let events = self.translator.line(&line);
                    self.take(events);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    self.take(Err(e));
                    return;
                }
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.splitter.push(&bytes),
                Some(Err(e)) => self.take(Err(EngineError::Unreachable(format!(
                    "connection broke mid-stream: {}",
                    describe::with_causes(&e)
                )))),
                None => {
                    if let Some(rest) = self.splitter.take_rest() {
                        let events = self.translator.line(&rest);
                        self.take(events);
                    }
                    if !self.over && !self.translator.finished() {
                        let events = self.translator.end();
                        self.take(events);
                    }
                    self.over = true;
                }
            }
        }
    }
}

/// The stream of events a translator makes of a response body. It ends after the first
/// error, and stops reading once the translator has seen the end of the answer.
pub(crate) fn drive<T: LineTranslator>(response: reqwest::Response, translator: T) -> ChatStream {
    let state = Drive {
        body: response.bytes_stream().boxed(),
        splitter: LineSplitter::new(MAX_LINE),
        translator,
        pending: VecDeque::new(),
        over: false,
    };
    stream::unfold(state, |mut state| async move {
        state.advance().await;
        let item = state.pending.pop_front()?;
        Some((item, state))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        let ok = |u: &str| normalize_base(u).unwrap();
        assert_eq!(ok("127.0.0.1:11434"), "http://127.0.0.1:11434");
        assert_eq!(ok("http://localhost:8080/"), "http://localhost:8080");
        assert_eq!(ok(" https://h/proxy/v1// "), "https://h/proxy/v1");
        assert!(normalize_base("").is_err());
        assert!(normalize_base("ftp://h").is_err());
        assert!(normalize_base("http://h/?q=1").is_err());
        assert!(normalize_base("http://").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for base in [
            "http://127.0.0.1:1",
            "http://127.1.2.3",
            "http://[::1]:8",
            "http://LocalHost:9",
        ] {
            assert!(is_loopback(base), "{base}");
        }
        for base in ["http://10.0.0.2", "http://gpu-box:11434", "http://[::2]"] {
            assert!(!is_loopback(base), "{base}");
        }
    }

    #[test]
    fn error_bodies_are_trimmed() {
        assert_eq!(trim_body("  short \n"), "short");
        let long = "é".repeat(1000);
        let t = trim_body(&long);
        assert_eq!(t.chars().count(), ERROR_BODY_CHARS + 1);
        assert!(t.ends_with('…'));
    }
}
