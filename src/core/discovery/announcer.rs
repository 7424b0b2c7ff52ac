//! The announcing side of discovery: sign an announcement of this worker and send it to
//! every tracker (and, when asked, publish it on Nostr relays); withdraw it with a signed
//! unannounce (and a NIP-09 deletion). Both the node (which adds the
//! on/off switch and shows results) and a bare `lobstah worker start --announce-to` use
//! it. Nothing here runs unless an operator asked for it.

use std::time::Duration;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use super::nostr::{NostrError, NostrPublisher};
use super::tracker_client::{self, TrackerError};
use crate::core::clock::SharedClock;
use crate::core::links::LinkEndpoint;
use crate::core::protocol::{Announcement, Identity, PROTOCOL_VERSION, SignedAnnouncement, Tier};

/// What is announced, apart from the models (asked of the engine each time).
#[derive(Debug, Clone)]
pub struct AnnounceSettings {
    pub trackers: Vec<String>,
    /// The URL peers should dial.
    pub url: String,
    pub label: Option<String>,
    pub tier: Tier,
    pub ttl_secs: u64,
}

impl AnnounceSettings {
    /// Heartbeats every half TTL, so one lost heartbeat never lets the entry expire.
    pub fn heartbeat_period(&self) -> Duration {
        Duration::from_secs((self.ttl_secs / 2).max(1))
    }
}

/// How one round went, in a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundResult {
    pub at_ms: u64,
    pub ok: bool,
    pub detail: String,
}

pub struct Announcer {
    http: reqwest::Client,
    identity: Identity,
    clock: SharedClock,
    settings: AnnounceSettings,
    nostr: Option<NostrPublisher>,
    link: Option<LinkEndpoint>,
}

impl Announcer {
    pub fn new(
        http: reqwest::Client,
        identity: Identity,
        clock: SharedClock,
        settings: AnnounceSettings,
    ) -> Self {
        Announcer {
            http,
            identity,
            clock,
            settings,
            nostr: None,
            link: None,
        }
    }

    /// Also announces how to reach this worker by key over `link`, as it knows that
    /// at each heartbeat (its public address can change).
    pub fn with_link(mut self, link: LinkEndpoint) -> Self {
        self.link = Some(link);
        self
    }

    /// Also publishes on the relays `publisher` is connected to.
    pub fn with_nostr(mut self, publisher: NostrPublisher) -> Self {
        self.nostr = Some(publisher);
        self
    }

    /// Disconnects from the relays (it does not withdraw: call `withdraw` first).
    pub async fn close(self) {
        if let Some(nostr) = self.nostr {
            nostr.shutdown().await;
        }
    }

    pub fn settings(&self) -> &AnnounceSettings {
        &self.settings
    }

    /// Signs a fresh announcement listing `models`.
    pub fn sign(&self, models: Vec<String>) -> Result<SignedAnnouncement, String> {
        let announcement = Announcement {
            version: PROTOCOL_VERSION,
            pubkey: self.identity.public(),
            url: self.settings.url.clone(),
            label: self.settings.label.clone(),
            models,
            tier: self.settings.tier,
            ttl_seconds: self.settings.ttl_secs,
            announced_at: self.clock.now_ms(),
            link: self.link.as_ref().map(LinkEndpoint::dial),
        };
        SignedAnnouncement::sign(announcement, &self.identity)
            .map_err(|e| format!("cannot sign the announcement: {e}"))
    }

    /// Announces to every tracker and relay at once.
    pub async fn announce(&self, models: Vec<String>) -> RoundResult {
        let now = self.clock.now_ms();
        let signed = match self.sign(models) {
            Ok(s) => s,
            Err(detail) => {
                return RoundResult {
                    at_ms: now,
                    ok: false,
                    detail,
                };
            }
        };
        let trackers = join_all(
            self.settings
                .trackers
                .iter()
                .map(|t| tracker_client::announce(&self.http, t, &signed)),
        );
        let relays = async {
            match &self.nostr {
                Some(nostr) => Some(nostr.publish(&signed).await),
                None => None,
            }
        };
        let (trackers, relays) = tokio::join!(trackers, relays);
        combine(
            summarize(now, "announced to", trackers),
            relays,
            "Nostr announcement",
        )
    }

    /// Withdraws from every tracker and relay at once.
    pub async fn withdraw(&self) -> RoundResult {
        let now = self.clock.now_ms();
        let trackers = join_all(
            self.settings
                .trackers
                .iter()
                .map(|t| tracker_client::unannounce(&self.http, t, &self.identity, now)),
        );
        let relays = async {
            match &self.nostr {
                Some(nostr) => Some(nostr.withdraw().await),
                None => None,
            }
        };
        let (trackers, relays) = tokio::join!(trackers, relays);
        combine(
            summarize(now, "withdrawn from", trackers),
            relays,
            "Nostr deletion",
        )
    }

    /// Announces every heartbeat period until `stop`, asking `models` each time so the
    /// announcement lists what the engine has now; `on_round` sees every result.
    pub async fn heartbeat<M, F>(
        &self,
        stop: CancellationToken,
        models: M,
        mut on_round: impl FnMut(RoundResult),
    ) where
        M: Fn() -> F,
        F: Future<Output = Vec<String>>,
    {
        let period = self.settings.heartbeat_period();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(period) => {}
            }
            let result = self.announce(models().await).await;
            if !result.ok {
                tracing::warn!(detail = %result.detail, "announcement failed");
            }
            on_round(result);
        }
    }
}

/// Adds the relays' part to the trackers' sentence; with no trackers, it is the sentence.
fn combine(
    trackers: RoundResult,
    relays: Option<Result<super::nostr::PublishReport, NostrError>>,
    what: &str,
) -> RoundResult {
    let Some(relays) = relays else {
        return trackers;
    };
    let (ok, part) = match relays {
        // Relays are redundant by design: one that accepted is a published announcement.
        Ok(report) => (report.accepted_count() > 0, format!("{what}: {report}")),
        Err(e) => (false, format!("{what}: {e}")),
    };
    if trackers.detail.ends_with(" 0 of 0 trackers") {
        return RoundResult {
            at_ms: trackers.at_ms,
            ok,
            detail: part,
        };
    }
    RoundResult {
        at_ms: trackers.at_ms,
        ok: trackers.ok && ok,
        detail: format!("{}; {part}", trackers.detail),
    }
}

fn summarize<T>(at_ms: u64, verb: &str, results: Vec<Result<T, TrackerError>>) -> RoundResult {
    let total = results.len();
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    let mut detail = format!("{verb} {} of {total} trackers", total - errors.len());
    for e in &errors {
        detail.push_str("; ");
        detail.push_str(e);
    }
    RoundResult {
        at_ms,
        ok: errors.is_empty(),
        detail,
    }
}
