//! Syncing peers from discovery sources on request (`s` in the console, `peers sync`)
//! and, when the operator sets `discovery.sync_every_secs`, on a timer.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::commands::fail;
use super::handle::Core;
use super::types::CommandOutcome;
use crate::core::discovery::{MergeContext, SystemLookup, sync_trackers};

impl Core {
    /// Pulls every configured tracker's peers into the book (see `discovery::merge`).
    pub(super) async fn sync_peers(self: &Arc<Self>) -> CommandOutcome {
        let trackers = self.config.trackers.clone();
        if trackers.is_empty() {
            return fail(
                "no trackers configured: set discovery.trackers in config.toml (or LOBSTAH_TRACKERS), or add peers by hand",
            );
        }
        self.sync_from(&trackers).await
    }

    /// Syncs from `trackers` (configured or not) and says what changed.
    pub(super) async fn sync_from(self: &Arc<Self>, trackers: &[String]) -> CommandOutcome {
        let now = self.clock.now_ms();
        let report = sync_trackers(
            &self.http,
            self.router.book(),
            trackers,
            &MergeContext {
                me: self.me(),
                now_ms: now,
                policy: self.config.discovery.url_policy,
                lookup: &SystemLookup,
            },
        )
        .await;
        let mut message = format!(
            "synced from {} of {} trackers: {}",
            report.sources_answered,
            trackers.len(),
            report.summary()
        );
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
