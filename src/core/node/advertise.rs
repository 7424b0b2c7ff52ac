//! Advertising: off until the operator turns it on. When on, a signed announcement goes
//! to each configured tracker (and, with `advertise.publish_via_nostr`, to the Nostr
//! relays) every TTL/2, and the last result is kept; turning it off (or shutting down)
//! withdraws it with a signed unannounce and a NIP-09 deletion. With nowhere configured
//! to publish, nothing is ever published, and the operator is told so. The operator's
//! switch is kept for the next start.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::commands::{Reach, fail, ok, reach};
use super::handle::Core;
use super::toggles;
use super::types::{CommandOutcome, CoreEvent, HeartbeatResult};
use crate::core::discovery::announcer::{AnnounceSettings, Announcer, RoundResult};
use crate::core::discovery::nostr::NostrPublisher;
use crate::core::keystore;
use crate::core::paths::Paths;

/// While advertising is on: the announcer (it holds the relay connections and the id
/// of the last Nostr event, which the deletion names) and its heartbeat task.
#[derive(Default)]
pub(super) struct Advertiser {
    announcer: Option<Arc<Announcer>>,
    heartbeat: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Advertiser {
    /// Stops the heartbeat and hands back the announcer, so the caller can withdraw.
    async fn stop(&mut self) -> Option<Arc<Announcer>> {
        if let Some((token, task)) = self.heartbeat.take() {
            token.cancel();
            // Let an announcement in flight land first, so the withdrawal comes after it.
            let _ = task.await;
        }
        self.announcer.take()
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
            .or_else(|| self.urls.worker.clone())
            .unwrap_or_default()
    }

    /// `SetAdvertising` from a front end: switches, and keeps the switch for the next
    /// start (see `toggles`).
    pub(super) async fn switch_advertising(self: &Arc<Self>, on: bool) -> CommandOutcome {
        let outcome = self.set_advertising(on).await;
        // Kept even when the first announcement failed: advertising stays on and retries.
        if self.advertising_on() == on
            && let Err(e) = toggles::save_advertising(&self.data_dir, on)
        {
            tracing::warn!(error = %e, "cannot save the advertising switch; a restart will not keep it");
        }
        outcome
    }

    fn publishes_anywhere(&self) -> bool {
        !self.config.trackers.is_empty() || self.config.advertise.publish_via_nostr
    }

    pub(super) async fn set_advertising(self: &Arc<Self>, on: bool) -> CommandOutcome {
        if on && self.worker.is_none() {
            return fail("this node runs no worker, so there is nothing to advertise");
        }
        let mut advertiser = self.advertiser.lock().await;
        if on == self.advertising_on() {
            return ok(format!(
                "advertising is already {}",
                if on { "on" } else { "off" }
            ));
        }
        if !on {
            let announcer = advertiser.stop().await;
            self.set_on(false);
            let Some(announcer) = announcer else {
                return ok("advertising off");
            };
            let result = self.withdraw(announcer).await;
            let message = format!("advertising off; {}", result.detail);
            let outcome_ok = result.ok;
            self.record(result);
            return CommandOutcome {
                ok: outcome_ok,
                message,
            };
        }
        self.set_on(true);
        if !self.publishes_anywhere() {
            return ok(
                "advertising on, but no trackers (discovery.trackers) or Nostr publishing (advertise.publish_via_nostr) are configured, so nothing is published",
            );
        }
        let announcer = match self.build_announcer().await {
            Ok(a) => Arc::new(a),
            Err(reason) => {
                self.set_on(false);
                return fail(format!("advertising stays off: {reason}"));
            }
        };
        let url = announcer.settings().url.clone();
        let period = announcer.settings().heartbeat_period();
        let first = round(&announcer, self).await;
        let mut message = format!(
            "advertising on: announcing {url} every {} s; {}",
            period.as_secs(),
            first.detail
        );
        if reach(&url) == Reach::Loopback {
            message.push_str(
                "; note: that address is on this machine only, set advertise.url to one peers can reach",
            );
        }
        let first_ok = first.ok;
        self.record(first);
        advertiser.heartbeat = Some(self.spawn_heartbeat(announcer.clone(), period));
        advertiser.announcer = Some(announcer);
        if first_ok { ok(message) } else { fail(message) }
    }

    async fn build_announcer(&self) -> Result<Announcer, String> {
        let announcer = Announcer::new(
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
        );
        let announcer = match self.router.link_endpoint() {
            Some(link) => announcer.with_link(link.clone()),
            None => announcer,
        };
        if !self.config.advertise.publish_via_nostr {
            return Ok(announcer);
        }
        let key_file = Paths::in_dir(&self.data_dir).nostr_key_file();
        let keys = keystore::load_or_create_nostr_keys(&key_file)
            .map_err(|e| format!("cannot load the Nostr key: {e}"))?;
        let publisher = NostrPublisher::connect(keys, &self.config.discovery.nostr_relays)
            .await
            .map_err(|e| format!("cannot reach the Nostr relays: {e}"))?;
        Ok(announcer.with_nostr(publisher))
    }

    fn spawn_heartbeat(
        self: &Arc<Self>,
        announcer: Arc<Announcer>,
        period: Duration,
    ) -> (CancellationToken, JoinHandle<()>) {
        let token = CancellationToken::new();
        let stop = token.clone();
        let core = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(period) => {}
                }
                let Some(core) = core.upgrade() else { break };
                let result = round(&announcer, &core).await;
                if !result.ok {
                    tracing::warn!(detail = %result.detail, "announcement failed");
                }
                core.record(result);
            }
        });
        (token, task)
    }

    async fn withdraw(&self, announcer: Arc<Announcer>) -> HeartbeatResult {
        let result = heartbeat_result(announcer.withdraw().await);
        if let Some(announcer) = Arc::into_inner(announcer) {
            announcer.close().await;
        }
        result
    }

    /// At shutdown: stop the heartbeat and withdraw, if advertising.
    pub(super) async fn withdraw_for_shutdown(&self) {
        let mut advertiser = self.advertiser.lock().await;
        let announcer = advertiser.stop().await;
        if !self.advertising_on() {
            return;
        }
        self.set_on(false);
        let Some(announcer) = announcer else { return };
        let result = self.withdraw(announcer).await;
        tracing::info!(detail = %result.detail, "advertisement withdrawn");
        self.record(result);
    }
}

/// One announcement of what the engine offers now.
async fn round(announcer: &Announcer, core: &Core) -> HeartbeatResult {
    let models = match &core.worker {
        Some(worker) => worker.models().await,
        None => Vec::new(),
    };
    heartbeat_result(announcer.announce(models).await)
}

fn heartbeat_result(round: RoundResult) -> HeartbeatResult {
    HeartbeatResult {
        at_ms: round.at_ms,
        ok: round.ok,
        detail: round.detail,
    }
}
