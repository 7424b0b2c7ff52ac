//! The tracker HTTP API, client side: `POST /announce` a signed announcement,
//! `POST /unannounce` to withdraw it, `GET /peers` to learn others. Peers from a tracker
//! are believed only after their signature and freshness check out.

use std::time::Duration;

use serde_json::{Value, json};

use crate::core::protocol::{Identity, SignedAnnouncement, unannounce_message};

/// How long one tracker may take to answer.
pub const TRACKER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest `/peers` answer read; a tracker is dumb but not trusted.
const MAX_PEERS_BODY: usize = 4 << 20;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TrackerError {
    #[error("{tracker}: {reason}")]
    Unreachable { tracker: String, reason: String },
    #[error("{tracker} refused: {reason}")]
    Refused { tracker: String, reason: String },
    #[error("{tracker} answered something that is not the tracker API: {reason}")]
    Protocol { tracker: String, reason: String },
}

/// What one tracker's `/peers` held.
#[derive(Debug, Clone, Default)]
pub struct TrackerPeers {
    /// Verified and fresh.
    pub fresh: Vec<SignedAnnouncement>,
    /// Why each other entry was ignored.
    pub refused: Vec<String>,
}

fn unreachable(tracker: &str, e: &reqwest::Error) -> TrackerError {
    TrackerError::Unreachable {
        tracker: tracker.to_string(),
        reason: crate::core::describe::transport(e),
    }
}

async fn post(
    client: &reqwest::Client,
    tracker: &str,
    path: &str,
    body: Value,
) -> Result<Value, TrackerError> {
    let response = client
        .post(format!("{tracker}{path}"))
        .timeout(TRACKER_TIMEOUT)
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(tracker, &e))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| unreachable(tracker, &e))?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let reason = value
            .pointer("/error/reason")
            .or_else(|| value.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        return Err(TrackerError::Refused {
            tracker: tracker.to_string(),
            reason,
        });
    }
    Ok(value)
}

/// Announces to one tracker; returns how many peers it says it holds, if it says.
pub async fn announce(
    client: &reqwest::Client,
    tracker: &str,
    signed: &SignedAnnouncement,
) -> Result<Option<u64>, TrackerError> {
    let answer = post(client, tracker, "/announce", signed.to_value()).await?;
    if answer.get("ok").and_then(Value::as_bool) != Some(true) {
        return Err(TrackerError::Protocol {
            tracker: tracker.to_string(),
            reason: "no \"ok\": true in the answer".into(),
        });
    }
    Ok(answer.get("registeredCount").and_then(Value::as_u64))
}

/// Withdraws our announcement from one tracker.
pub async fn unannounce(
    client: &reqwest::Client,
    tracker: &str,
    identity: &Identity,
    now_ms: u64,
) -> Result<(), TrackerError> {
    let pubkey = identity.public();
    let signature = identity.sign(unannounce_message(&pubkey, now_ms).as_bytes());
    post(
        client,
        tracker,
        "/unannounce",
        json!({"pubkey": pubkey.to_string(), "timestamp": now_ms, "signature": signature.to_hex()}),
    )
    .await
    .map(|_| ())
}

/// The live peers one tracker lists, each checked as received.
pub async fn fetch_peers(
    client: &reqwest::Client,
    tracker: &str,
    now_ms: u64,
) -> Result<TrackerPeers, TrackerError> {
    let items = fetch_items(client, tracker).await?;
    let mut out = TrackerPeers::default();
    for item in items {
        let checked = SignedAnnouncement::from_value(item).and_then(|a| {
            a.verify_signature()?;
            a.check_fresh(now_ms)?;
            Ok(a)
        });
        match checked {
            Ok(a) => out.fresh.push(a),
            Err(e) => out.refused.push(e.to_string()),
        }
    }
    Ok(out)
}

/// The entries of one tracker's `/peers`, unchecked: the caller verifies each.
pub async fn fetch_items(
    client: &reqwest::Client,
    tracker: &str,
) -> Result<Vec<Value>, TrackerError> {
    let response = client
        .get(format!("{tracker}/peers"))
        .timeout(TRACKER_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreachable(tracker, &e))?;
    if !response.status().is_success() {
        return Err(TrackerError::Refused {
            tracker: tracker.to_string(),
            reason: format!("/peers answered HTTP {}", response.status().as_u16()),
        });
    }
    let protocol = |reason: String| TrackerError::Protocol {
        tracker: tracker.to_string(),
        reason,
    };
    if response
        .content_length()
        .is_some_and(|n| n as usize > MAX_PEERS_BODY)
    {
        return Err(protocol("the peer list is too large".into()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unreachable(tracker, &e))?;
    if bytes.len() > MAX_PEERS_BODY {
        return Err(protocol("the peer list is too large".into()));
    }
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|e| protocol(format!("not JSON: {e}")))?;
    match value.get_mut("peers").map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(protocol("no \"peers\" list".into())),
    }
}
