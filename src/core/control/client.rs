//! `ControlClient`: the `NodeClient` of a node running elsewhere on this machine, over
//! its control API. Found through `node.json` and `control.token` in the data directory.

use std::path::Path;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::files::{self, NodeInfo};
use super::ledger;
use super::sse::SseReader;
use crate::core::describe;
use crate::core::ledger::{Balance, VerifyReport};
use crate::core::node::{
    ClientError, CommandOutcome, EventStream, NodeClient, NodeCommand, Snapshot,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands may wait on trackers (a few seconds each, in parallel).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct ControlClient {
    base: String,
    token: String,
    http: reqwest::Client,
    info: Option<NodeInfo>,
}

impl ControlClient {
    /// A client for the control API at `base_url` (`http://127.0.0.1:PORT`).
    pub fn new(base_url: &str, token: &str) -> Result<Self, ClientError> {
        // reqwest panics building a client with no TLS provider installed; installing
        // twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // Loopback only: a proxy from the environment must not see the token.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Unreachable(format!("cannot build an HTTP client: {e}")))?;
        Ok(ControlClient {
            base: base_url.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            http,
            info: None,
        })
    }

    /// The node running on `data_dir`, from its `node.json` and `control.token`.
    pub fn discover(data_dir: &Path) -> Result<Self, ClientError> {
        let Some(info) = files::read_node_info(data_dir) else {
            return Err(ClientError::Unreachable(format!(
                "no lobstah node is running on {} (no {}); start one with `lobstah --headless`",
                data_dir.display(),
                files::NODE_FILE
            )));
        };
        let token = files::read_token(data_dir).map_err(|e| {
            ClientError::Refused(format!(
                "cannot read the control token {}: {e}",
                files::token_file(data_dir).display()
            ))
        })?;
        let mut client = ControlClient::new(&info.control_url, &token)?;
        client.info = Some(info);
        Ok(client)
    }

    /// What `node.json` said, when found by `discover`.
    pub fn info(&self) -> Option<&NodeInfo> {
        self.info.as_ref()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        let mut message = format!("{}: {}", self.base, describe::transport(e));
        if let Some(info) = &self.info {
            message.push_str(&format!(
                " (node.json names pid {}; if that process is gone, the file is stale)",
                info.pid
            ));
        }
        ClientError::Unreachable(message)
    }

    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or(text);
        Err(if status == StatusCode::UNAUTHORIZED {
            ClientError::Refused(format!("the control token was not accepted: {message}"))
        } else {
            ClientError::Refused(format!("HTTP {}: {message}", status.as_u16()))
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let response = self.check(response).await?;
        response
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    async fn get_snapshot(&self) -> Result<Snapshot, ClientError> {
        let response = self
            .http
            .get(format!("{}/v1/snapshot", self.base))
            .bearer_auth(&self.token)
            .timeout(SNAPSHOT_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        self.json(response).await
    }

    async fn post_command(&self, command: NodeCommand) -> Result<CommandOutcome, ClientError> {
        let response = self
            .http
            .post(format!("{}/v1/commands", self.base))
            .bearer_auth(&self.token)
            .timeout(COMMAND_TIMEOUT)
            .json(&command)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        self.json(response).await
    }

    async fn open_events(&self, after: Option<u64>) -> Result<EventStream, ClientError> {
        let mut request = self
            .http
            .get(format!("{}/v1/events", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(after) = after {
            request = request.header("last-event-id", after.to_string());
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let response = self.check(response).await?;
        let state = (
            response.bytes_stream(),
            SseReader::default(),
            std::collections::VecDeque::new(),
        );
        // The stream ends when the connection does; callers resume with the last seq.
        let stream =
            futures_util::stream::unfold(state, |(mut bytes, mut reader, mut ready)| async move {
                loop {
                    if let Some(item) = ready.pop_front() {
                        return Some((item, (bytes, reader, ready)));
                    }
                    if reader.is_broken() {
                        return None;
                    }
                    match bytes.next().await {
                        Some(Ok(chunk)) => ready.extend(reader.push(&chunk)),
                        Some(Err(_)) | None => return None,
                    }
                }
            });
        Ok(stream.boxed())
    }

    /// Every identity's balance, as `Ledger::balances` gives it.
    pub async fn balances(&self) -> Result<Vec<Balance>, ClientError> {
        let response = self.ledger_get(ledger::BALANCES_PATH).await?;
        self.json(response).await
    }

    /// The node's own `ledger verify` (it reads the whole log: no timeout).
    pub async fn verify_ledger(&self) -> Result<VerifyReport, ClientError> {
        let response = self.ledger_get(ledger::VERIFY_PATH).await?;
        self.json(response).await
    }

    /// Writes every receipt, one JSON line each, to `out` as the node streams them. A
    /// transfer that ends early is an error, never a short export.
    pub async fn export_ledger(&self, out: &mut impl std::io::Write) -> Result<(), ClientError> {
        let response = self.ledger_get(ledger::EXPORT_PATH).await?;
        let response = self.check(response).await?;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| ClientError::Protocol(format!("the export stopped part-way: {e}")))?;
            out.write_all(&chunk)
                .map_err(|e| ClientError::Protocol(format!("cannot write the export: {e}")))?;
        }
        out.flush()
            .map_err(|e| ClientError::Protocol(format!("cannot write the export: {e}")))
    }

    async fn ledger_get(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))
    }
}

impl NodeClient for ControlClient {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, ClientError>> {
        self.get_snapshot().boxed()
    }

    fn subscribe(&self, after: Option<u64>) -> BoxFuture<'_, Result<EventStream, ClientError>> {
        self.open_events(after).boxed()
    }

    fn command(&self, command: NodeCommand) -> BoxFuture<'_, Result<CommandOutcome, ClientError>> {
        self.post_command(command).boxed()
    }
}
