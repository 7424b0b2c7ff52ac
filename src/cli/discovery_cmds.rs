//! Discovery at the command line: `lobstah peers sync <tracker>` (through the running
//! node when there is one, else straight into the peer book) and the advertising a bare
//! `lobstah worker start --announce-to` does.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::via_node;
use crate::core::clock::system_clock;
use crate::core::config::{Config, Overrides};
use crate::core::discovery::announcer::{AnnounceSettings, Announcer};
use crate::core::discovery::{MergeContext, SystemLookup, sync_trackers};
use crate::core::node::NodeCommand;
use crate::core::paths::Paths;
use crate::core::protocol::Identity;
use crate::core::router::peers::normalize_url;
use crate::core::worker::Worker;

/// `lobstah peers sync <tracker-url>`.
pub fn peers_sync(paths: &Paths, tracker: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let tracker = normalize_url(tracker).context("not a tracker URL")?;
    if !as_json
        && let Some(done) = via_node::peers_command(
            paths,
            NodeCommand::SyncTracker {
                url: tracker.clone(),
            },
        )
    {
        return done;
    }
    // The URL policy comes from the same settings the node would use.
    let config = Config::load(paths, &Overrides::default()).context("invalid configuration")?;
    let book = super::serve_cmds::open_book(paths)?;
    let identity = super::serve_cmds::identity_or_create(paths)?;
    super::runtime()?.block_on(async move {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .build()
            .context("cannot build the HTTP client")?;
        let report = sync_trackers(
            &http,
            &book,
            std::slice::from_ref(&tracker),
            &MergeContext {
                me: identity.public(),
                now_ms: system_clock().now_ms(),
                policy: config.discovery.url_policy,
                lookup: &SystemLookup,
            },
        )
        .await;
        let ok = report.sources_answered > 0;
        if as_json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if ok {
            println!("synced from {tracker}: {}", report.summary());
        } else {
            eprintln!("cannot sync from {tracker}: {}", report.summary());
        }
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Announces a bare worker to `settings.trackers` now and every heartbeat until
/// `stop`, then withdraws; the returned task ends once the withdrawal is sent.
pub async fn advertise_worker(
    identity: Identity,
    settings: AnnounceSettings,
    worker: Arc<Worker>,
    stop: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    for tracker in &settings.trackers {
        normalize_url(tracker).with_context(|| format!("--announce-to {tracker:?}"))?;
    }
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .build()
        .context("cannot build the HTTP client")?;
    let announcer = Announcer::new(http, identity, system_clock(), settings);
    let first = announcer.announce(worker.models().await).await;
    if first.ok {
        tracing::info!(detail = %first.detail, url = %announcer.settings().url, "advertising");
    } else {
        tracing::warn!(detail = %first.detail, "first announcement failed; retrying every heartbeat");
    }
    Ok(tokio::spawn(async move {
        let models = || {
            let worker = worker.clone();
            async move { worker.models().await }
        };
        announcer
            .heartbeat(stop, models, |round| {
                tracing::debug!(ok = round.ok, detail = %round.detail, "heartbeat");
            })
            .await;
        let withdrawn = announcer.withdraw().await;
        tracing::info!(detail = %withdrawn.detail, "advertisement withdrawn");
    }))
}
