//! Discovery at the command line: `lobstah peers sync <tracker>` and `lobstah peers
//! discover` (through the running node when there is one, else straight into the peer
//! book). (`worker start --announce-to` advertises through the node, like the console.)

use std::process::ExitCode;

use anyhow::Context;

use super::via_node;
use crate::core::clock::system_clock;
use crate::core::config::{Config, Overrides};
use crate::core::discovery::{MergeContext, SyncReport, SystemLookup, sync_nostr, sync_trackers};
use crate::core::node::NodeCommand;
use crate::core::paths::Paths;
use crate::core::peers::{PeerBook, normalize_url};
use crate::core::protocol::Identity;

/// `lobstah peers sync <tracker-url>`.
pub(super) fn peers_sync(paths: &Paths, tracker: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let tracker = normalize_url(tracker).context("not a tracker URL")?;
    if !as_json
        && let Some(done) = via_node::node_command(
            paths,
            NodeCommand::SyncTracker {
                url: tracker.clone(),
            },
        )
    {
        return done;
    }
    let offline = Offline::open(paths)?;
    super::runtime()?.block_on(async move {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .build()
            .context("cannot build the HTTP client")?;
        let report = sync_trackers(
            &http,
            &offline.book,
            std::slice::from_ref(&tracker),
            &offline.context(),
        )
        .await;
        print_report(&report, &tracker, as_json)
    })
}

/// `lobstah peers discover [--nostr-relay URL]…`.
pub(super) fn peers_discover(
    paths: &Paths,
    relays: Vec<String>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    if !as_json
        && let Some(done) = via_node::node_command(
            paths,
            NodeCommand::DiscoverNostr {
                relays: relays.clone(),
            },
        )
    {
        return done;
    }
    let offline = Offline::open(paths)?;
    let relays = if relays.is_empty() {
        offline.config.discovery.nostr_relays.clone()
    } else {
        relays
    };
    super::runtime()?.block_on(async move {
        let report = sync_nostr(&offline.book, &relays, &offline.context()).await;
        print_report(&report, &format!("{} Nostr relays", relays.len()), as_json)
    })
}

/// What a sync needs when no node runs: the settings the node would use (the URL
/// policy), the peer book, and this node's key (its own announcement is not a peer).
struct Offline {
    config: Config,
    book: PeerBook,
    identity: Identity,
}

impl Offline {
    fn open(paths: &Paths) -> anyhow::Result<Self> {
        Ok(Offline {
            config: Config::load(paths, &Overrides::default()).context("invalid configuration")?,
            book: super::peers_cmds::open_book(paths)?,
            identity: super::serve_cmds::identity_or_create(paths)?,
        })
    }

    fn context(&self) -> MergeContext<'static> {
        MergeContext {
            me: self.identity.public(),
            now_ms: system_clock().now_ms(),
            policy: self.config.discovery.url_policy,
            lookup: &SystemLookup,
            links: self.config.links.enabled,
        }
    }
}

fn print_report(report: &SyncReport, from: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let ok = report.sources_answered > 0;
    if as_json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if ok {
        println!("synced from {from}: {}", report.summary());
    } else {
        eprintln!("cannot sync from {from}: {}", report.summary());
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
