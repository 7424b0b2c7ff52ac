//! `lobstah tracker start`: runs the discovery tracker in the foreground until SIGINT or
//! SIGTERM. It has no identity and no database; everything it holds is in memory and
//! expires with the announcements' TTLs.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::core::clock::system_clock;
use crate::core::tracker::{self, TrackerConfig};

use super::access_flags::BrowserFlags;
use super::serve_cmds::{bind, browser_policy, shutdown_on_signals};
use crate::core::paths::Paths;

#[derive(Debug, Args)]
pub struct TrackerArgs {
    /// Address to listen on. A tracker is useful to others only beyond loopback
    /// (e.g. 0.0.0.0), but it holds nothing secret: only signed, public announcements.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed on start).
    #[arg(long, default_value_t = tracker::DEFAULT_PORT)]
    pub port: u16,
    /// Most peers held at once; new keys beyond it get 503 (updates always fit).
    #[arg(long, default_value_t = tracker::DEFAULT_MAX_PEERS)]
    pub max_peers: usize,
    /// Requests per minute per client address (IPv6: per /64); 0 turns the limit off.
    #[arg(long, default_value_t = tracker::DEFAULT_RATE_PER_MINUTE)]
    pub rate_per_minute: u32,
    /// Requests a quiet client may make at once.
    #[arg(long, default_value_t = tracker::DEFAULT_RATE_BURST)]
    pub rate_burst: u32,
    /// Longest TTL honoured, in seconds; longer announcements are held this long.
    #[arg(long, default_value_t = tracker::DEFAULT_MAX_TTL_SECONDS)]
    pub max_ttl: u64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = tracker::DEFAULT_MAX_BODY_BYTES)]
    pub max_body: usize,
    #[command(flatten)]
    pub browser: BrowserFlags,
}

impl TrackerArgs {
    fn config(&self) -> TrackerConfig {
        TrackerConfig {
            max_peers: self.max_peers,
            rate_per_minute: self.rate_per_minute,
            rate_burst: self.rate_burst,
            max_ttl_seconds: self.max_ttl,
            max_body_bytes: self.max_body,
            ..TrackerConfig::default()
        }
    }
}

pub(super) async fn tracker_start(paths: &Paths, args: TrackerArgs) -> anyhow::Result<ExitCode> {
    let config = args.config();
    let browser = browser_policy(paths, &args.browser)?;
    let listener = bind(&args.host, args.port, "tracker").await?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        max_peers = config.max_peers,
        rate_per_minute = config.rate_per_minute,
        rate_burst = config.rate_burst,
        max_ttl_seconds = config.max_ttl_seconds,
        max_body_bytes = config.max_body_bytes,
        "tracker serving"
    );
    // Scripts and tests wait for this exact line to learn the address (port 0).
    let mut out = std::io::stdout().lock();
    writeln!(out, "tracker listening on http://{addr}")
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    drop(out);
    let shutdown = shutdown_on_signals();
    tracker::serve(
        listener,
        config,
        browser,
        system_clock(),
        shutdown.cancelled_owned(),
    )
    .await
    .with_context(|| format!("the tracker on {addr} stopped"))?;
    tracing::info!("tracker stopped");
    Ok(ExitCode::SUCCESS)
}
