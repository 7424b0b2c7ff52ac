//! Advertising: off until the operator turns it on. When on and trackers are
//! configured, a signed announcement goes to each every TTL/2 and the last result is
//! kept; turning it off (or shutting down) withdraws it with a signed unannounce. With
//! no trackers configured nothing is ever published, and the operator is told so.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::commands::{Reach, fail, ok, reach};
use super::handle::Core;
use super::tracker;
use super::types::{CommandOutcome, CoreEvent, HeartbeatResult};
use crate::core::protocol::{Announcement, PROTOCOL_VERSION, SignedAnnouncement};

/// The heartbeat task while advertising is on.
#[derive(Default)]
pub(super) struct Advertiser {
    heartbeat: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Advertiser {
    async fn stop(&mut self) {
        if let Some((token, task)) = self.heartbeat.take() {
            token.cancel();
            // Let an announcement in flight land first, so the withdrawal comes after it.
            let _ = task.await;
        }
    }
}

impl Core {
    fn advertising_on(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .advertising
            .on
    }

    fn set_on(&self, on: bool) {
        self.update(|state| {
            state.advertising.on = on;
            ((), vec![CoreEvent::AdvertisingChanged { on }])
        });
    }

    fn record(&self, result: HeartbeatResult) {
        self.update(|state| {
            state.advertising.last_heartbeat = Some(result.clone());
            ((), vec![CoreEvent::Heartbeat { result }])
        });
    }

    fn announce_url(&self) -> String {
        self.config
            .advertise
            .url
            .clone()
            .unwrap_or_else(|| self.urls.worker.clone())
    }

    fn heartbeat_period(&self) -> Duration {
        Duration::from_secs((self.config.advertise.ttl_secs / 2).max(1))
    }

    pub async fn set_advertising(self: &Arc<Self>, on: bool) -> CommandOutcome {
        let mut advertiser = self.advertiser.lock().await;
        if on == self.advertising_on() {
            return ok(format!(
                "advertising is already {}",
                if on { "on" } else { "off" }
            ));
        }
        let trackers = self.config.trackers.len();
        if !on {
            advertiser.stop().await;
            self.set_on(false);
            if trackers == 0 {
                return ok("advertising off");
            }
            let result = self.withdraw_all().await;
            let message = format!("advertising off; {}", result.detail);
            let outcome_ok = result.ok;
            self.record(result);
            return CommandOutcome {
                ok: outcome_ok,
                message,
            };
        }
        self.set_on(true);
        if trackers == 0 {
            return ok(
                "advertising on, but no trackers are configured (discovery.trackers), so nothing is published",
            );
        }
        let url = self.announce_url();
        let first = self.announce_all().await;
        let mut message = format!(
            "advertising on: announcing {url} every {} s; {}",
            self.heartbeat_period().as_secs(),
            first.detail
        );
        if reach(&url) == Reach::Loopback {
            message.push_str(
                "; note: that address is on this machine only, set advertise.url to one peers can reach",
            );
        }
        let first_ok = first.ok;
        self.record(first);
        advertiser.heartbeat = Some(self.spawn_heartbeat());
        if first_ok { ok(message) } else { fail(message) }
    }

    fn spawn_heartbeat(self: &Arc<Self>) -> (CancellationToken, JoinHandle<()>) {
        let token = CancellationToken::new();
        let stop = token.clone();
        let core = Arc::downgrade(self);
        let period = self.heartbeat_period();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(period) => {}
                }
                let Some(core) = core.upgrade() else { break };
                let result = core.announce_all().await;
                if !result.ok {
                    tracing::warn!(detail = %result.detail, "announcement failed");
                }
                core.record(result);
            }
        });
        (token, task)
    }

    async fn announce_all(&self) -> HeartbeatResult {
        let now = self.clock.now_ms();
        let announcement = Announcement {
            version: PROTOCOL_VERSION,
            pubkey: self.me(),
            url: self.announce_url(),
            label: self.config.advertise.label.clone(),
            models: self.worker.models().await,
            tier: self.config.worker.tier,
            ttl_seconds: self.config.advertise.ttl_secs,
            announced_at: now,
        };
        let signed = match SignedAnnouncement::sign(announcement, &self.identity) {
            Ok(s) => s,
            Err(e) => {
                return HeartbeatResult {
                    at_ms: now,
                    ok: false,
                    detail: format!("cannot sign the announcement: {e}"),
                };
            }
        };
        let results = futures_util::future::join_all(
            self.config
                .trackers
                .iter()
                .map(|t| tracker::announce(&self.http, t, &signed)),
        )
        .await;
        summarize(now, "announced to", results)
    }

    async fn withdraw_all(&self) -> HeartbeatResult {
        let now = self.clock.now_ms();
        let results = futures_util::future::join_all(
            self.config
                .trackers
                .iter()
                .map(|t| tracker::unannounce(&self.http, t, &self.identity, now)),
        )
        .await;
        summarize(now, "withdrawn from", results)
    }

    /// At shutdown: stop the heartbeat and withdraw, if advertising.
    pub async fn withdraw_for_shutdown(&self) {
        let mut advertiser = self.advertiser.lock().await;
        advertiser.stop().await;
        if !self.advertising_on() {
            return;
        }
        self.set_on(false);
        if self.config.trackers.is_empty() {
            return;
        }
        let result = self.withdraw_all().await;
        tracing::info!(detail = %result.detail, "advertisement withdrawn");
        self.record(result);
    }
}

fn summarize<T>(
    at_ms: u64,
    verb: &str,
    results: Vec<Result<T, tracker::TrackerError>>,
) -> HeartbeatResult {
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
    HeartbeatResult {
        at_ms,
        ok: errors.is_empty(),
        detail,
    }
}
