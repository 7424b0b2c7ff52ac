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
use super::types::{CommandOutcome, CoreEvent, HeartbeatResult};
use crate::core::discovery::announcer::{AnnounceSettings, Announcer, RoundResult};

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
        self.announcer().settings().heartbeat_period()
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

    fn announcer(&self) -> Announcer {
        Announcer::new(
            self.http.clone(),
            self.identity.clone(),
            self.clock.clone(),
            AnnounceSettings {
                trackers: self.config.trackers.clone(),
                url: self.announce_url(),
                label: self.config.advertise.label.clone(),
                tier: self.config.worker.tier,
                ttl_secs: self.config.advertise.ttl_secs,
            },
        )
    }

    async fn announce_all(&self) -> HeartbeatResult {
        let models = self.worker.models().await;
        heartbeat_result(self.announcer().announce(models).await)
    }

    async fn withdraw_all(&self) -> HeartbeatResult {
        heartbeat_result(self.announcer().withdraw().await)
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

fn heartbeat_result(round: RoundResult) -> HeartbeatResult {
    HeartbeatResult {
        at_ms: round.at_ms,
        ok: round.ok,
        detail: round.detail,
    }
}
