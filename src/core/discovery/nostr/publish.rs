//! Publishing to relays: a long-lived client that announces this worker, replaces the
//! announcement at each heartbeat, withdraws it with a NIP-09 deletion, and optionally
//! publishes receipts. Each relay is asked on its own with its own time limit, so one
//! that is down or slow only shows up as a failure in the report.

use std::time::Duration;

use futures_util::future::join_all;
use nostr_sdk::prelude::{Client, Event, EventId, Keys, Relay, RelayUrl, Timestamp};
use tokio::sync::Mutex;

use super::event::{announcement_event, deletion_event, receipt_event};
use super::{NostrError, PublishReport, RelayFailure, npub, parse_relays};
use crate::core::protocol::{SignedAnnouncement, SignedReceipt};

/// How long `connect` waits for the relays to open before giving up on the slow ones.
pub(super) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one relay may take to answer `OK` to an event.
const SEND_TIMEOUT: Duration = Duration::from_secs(8);

/// What was last published, so a heartbeat replaces it and `withdraw` deletes it.
#[derive(Default)]
struct Published {
    event: Option<EventId>,
    /// The newest `created_at` used, by publish or withdraw.
    created_at: Option<Timestamp>,
}

/// A connection to a set of relays, signing with this node's Nostr key.
pub struct NostrPublisher {
    client: Client,
    keys: Keys,
    // Held across the send so publish and withdraw are ordered as called.
    state: Mutex<Published>,
}

impl NostrPublisher {
    /// Connects to `relays`, waiting at most `DEFAULT_CONNECT_TIMEOUT`.
    pub async fn connect(keys: Keys, relays: &[String]) -> Result<Self, NostrError> {
        Self::connect_with_timeout(keys, relays, DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Connects to `relays`, all at once, each within `timeout`. Succeeds when at least
    /// one relay is open; the others are retried in the background by nostr-sdk (with
    /// backoff) and reported as not connected until they are.
    pub async fn connect_with_timeout(
        keys: Keys,
        relays: &[String],
        timeout: Duration,
    ) -> Result<Self, NostrError> {
        let urls = parse_relays(relays)?;
        let client = Client::builder().signer(keys.clone()).build();
        for url in urls {
            client
                .add_relay(url)
                .await
                .map_err(|e| NostrError::Client(e.to_string()))?;
        }
        let output = client.try_connect(timeout).await;
        if output.success.is_empty() {
            let mut reasons: Vec<String> = output
                .failed
                .iter()
                .map(|(url, e)| format!("{url}: {e}"))
                .collect();
            reasons.sort();
            client.shutdown().await;
            return Err(NostrError::NoRelayReachable(reasons));
        }
        for (url, e) in &output.failed {
            tracing::warn!(relay = %url, error = %e, "Nostr relay unreachable; retrying in the background");
        }
        // try_connect leaves a failed relay terminated; connect() starts its retry task.
        client.connect().await;
        Ok(NostrPublisher {
            client,
            keys,
            state: Mutex::new(Published::default()),
        })
    }

    /// The Nostr public key events are signed with, as `npub1…`.
    pub fn npub(&self) -> String {
        npub(&self.keys)
    }

    /// Publishes `signed`, replacing the previous announcement at every relay. The event
    /// is dated from `announcedAt`, moved past the previous event if needed: relays keep
    /// the newest replaceable event by `created_at` (seconds), so two announcements within
    /// one second would otherwise leave the relay free to keep the older.
    pub async fn publish(&self, signed: &SignedAnnouncement) -> Result<PublishReport, NostrError> {
        let mut state = self.state.lock().await;
        let wanted = Timestamp::from_secs(signed.announcement().announced_at / 1000);
        let created_at = match state.created_at {
            Some(last) if wanted <= last => last + Duration::from_secs(1),
            _ => wanted,
        };
        let event = announcement_event(signed, &self.keys, created_at)?;
        let report = self.send(&event).await;
        state.created_at = Some(created_at);
        if report.accepted.is_empty() {
            return Err(NostrError::NotAccepted(report));
        }
        state.event = Some(event.id);
        Ok(report)
    }

    /// Sends the NIP-09 deletion of the last published announcement. On success nothing
    /// is left to withdraw; the next `publish` announces again.
    pub async fn withdraw(&self) -> Result<PublishReport, NostrError> {
        let mut state = self.state.lock().await;
        let target = state.event.ok_or(NostrError::NothingPublished)?;
        // Not older than the announcement, so the `a` coordinate covers it.
        let created_at = match state.created_at {
            Some(last) => last.max(Timestamp::now()),
            None => Timestamp::now(),
        };
        let event = deletion_event(target, &self.keys, created_at)?;
        let report = self.send(&event).await;
        state.created_at = Some(created_at);
        if report.accepted.is_empty() {
            return Err(NostrError::NotAccepted(report));
        }
        state.event = None;
        Ok(report)
    }

    /// Publishes `signed` as a public kind-1474 receipt event, dated `completedAt`. Only
    /// for operators who chose to make their receipts public.
    pub async fn publish_receipt(
        &self,
        signed: &SignedReceipt,
    ) -> Result<PublishReport, NostrError> {
        let created_at = Timestamp::from_secs(signed.receipt().completed_at / 1000);
        let event = receipt_event(signed, &self.keys, created_at)?;
        let report = self.send(&event).await;
        if report.accepted.is_empty() {
            return Err(NostrError::NotAccepted(report));
        }
        Ok(report)
    }

    /// Closes every relay connection and stops the retry tasks. Does not withdraw: call
    /// `withdraw` first when the announcement should disappear.
    pub async fn shutdown(self) {
        self.client.shutdown().await;
    }

    /// Sends `event` to every relay at once. A relay that is not connected is not waited
    /// for (nostr-sdk would queue the event and wait for an `OK` that cannot come).
    async fn send(&self, event: &Event) -> PublishReport {
        let mut failures = Vec::new();
        let mut sends = Vec::new();
        for (url, relay) in self.client.relays().await {
            if relay.is_connected() {
                sends.push(send_one(url, relay, event));
            } else {
                failures.push(RelayFailure {
                    relay: url.to_string(),
                    reason: format!(
                        "not connected ({}); retrying in the background",
                        relay.status()
                    ),
                });
            }
        }
        let mut accepted = Vec::new();
        for (url, result) in join_all(sends).await {
            match result {
                Ok(()) => accepted.push(url.to_string()),
                Err(reason) => failures.push(RelayFailure {
                    relay: url.to_string(),
                    reason,
                }),
            }
        }
        accepted.sort();
        failures.sort_by(|a, b| a.relay.cmp(&b.relay));
        PublishReport {
            event_id: event.id.to_hex(),
            accepted,
            failures,
        }
    }
}

async fn send_one(url: RelayUrl, relay: Relay, event: &Event) -> (RelayUrl, Result<(), String>) {
    let result = match tokio::time::timeout(SEND_TIMEOUT, relay.send_event(event)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("the relay did not accept the event: {e}")),
        Err(_) => Err(format!(
            "no answer to the event within {} s",
            SEND_TIMEOUT.as_secs()
        )),
    };
    (url, result)
}
