//! Syncing peers from discovery sources (trackers, Nostr relays) on request (`s` in the
//! console, `peers sync`, `peers discover`) and, when the operator sets
//! `discovery.sync_every_secs`, on a timer.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::commands::fail;
use super::handle::Core;
use super::types::CommandOutcome;
use crate::core::discovery::{MergeContext, SyncReport, SystemLookup, sync_nostr, sync_trackers};

impl Core {
    /// Pulls peers from every configured tracker and, when asked, the Nostr relays.
    pub(super) async fn sync_peers(self: &Arc<Self>) -> CommandOutcome {
        let trackers = self.config.trackers.clone();
        let nostr = self.config.discovery.discover_via_nostr;
        if trackers.is_empty() && !nostr {
            return fail(
                "nowhere to sync from: set discovery.trackers (or LOBSTAH_TRACKERS) or discovery.discover_via_nostr in config.toml, or add peers by hand",
            );
        }
        let mut outcomes = Vec::new();
        if !trackers.is_empty() {
            outcomes.push(self.sync_from(&trackers).await);
        }
        if nostr {
            outcomes.push(self.discover_nostr(&[]).await);
        }
        CommandOutcome {
            ok: outcomes.iter().any(|o| o.ok),
            message: outcomes
                .into_iter()
                .map(|o| o.message)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    fn merge_context(&self) -> MergeContext<'static> {
        MergeContext {
            me: self.me(),
            now_ms: self.clock.now_ms(),
            policy: self.config.discovery.url_policy,
            lookup: &SystemLookup,
            links: self.router.link_endpoint().is_some(),
        }
    }

    /// Syncs from `trackers` (configured or not) and says what changed.
    pub(super) async fn sync_from(self: &Arc<Self>, trackers: &[String]) -> CommandOutcome {
        let report = sync_trackers(
            &self.http,
            self.router.book(),
            trackers,
            &self.merge_context(),
        )
        .await;
        let head = format!(
            "synced from {} of {} trackers",
            report.sources_answered,
            trackers.len()
        );
        self.after_sync(head, &report)
    }

    /// Reads the Nostr relays (`relays`, or the configured ones when empty).
    pub(super) async fn discover_nostr(self: &Arc<Self>, relays: &[String]) -> CommandOutcome {
        let relays = if relays.is_empty() {
            &self.config.discovery.nostr_relays[..]
        } else {
            relays
        };
        let report = sync_nostr(self.router.book(), relays, &self.merge_context()).await;
        let head = format!(
            "discovered on {} of {} Nostr relays",
            report.sources_answered,
            relays.len()
        );
        self.after_sync(head, &report)
    }

    fn after_sync(self: &Arc<Self>, head: String, report: &SyncReport) -> CommandOutcome {
        // Nothing answered: the counts are all zero, the reasons are the news.
        let mut message = if report.sources_answered == 0 && !report.failures.is_empty() {
            format!("{head}: {}", report.failures.join("; "))
        } else {
            format!("{head}: {}", report.summary())
        };
        if report.changed()
            && let Err(e) = self.peers_changed()
        {
            message.push_str(&format!("; the router could not reload its peers: {e}"));
        }
        CommandOutcome {
            ok: report.sources_answered > 0,
            message,
        }
    }
}

/// Syncs every `period` until `stop`; the first sync waits one period, since the node
/// has just read its book.
pub(super) fn spawn_periodic_sync(core: Weak<Core>, period: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(period) => {}
            }
            let Some(core) = core.upgrade() else { break };
            let outcome = core.sync_peers().await;
            if outcome.ok {
                tracing::info!(message = %outcome.message, "periodic peer sync");
            } else {
                tracing::warn!(message = %outcome.message, "periodic peer sync failed");
            }
        }
    });
}
