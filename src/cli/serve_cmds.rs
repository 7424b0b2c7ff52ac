//! `lobstah worker start` and `lobstah router start`: the node with one role.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::core::config::{self, Config, Overrides};
use crate::core::discovery::nostr::DEFAULT_RELAYS;
use crate::core::keystore;
use crate::core::node::{Node, NodeHandle, Roles};
use crate::core::paths::Paths;
use crate::core::peers::normalize_url;
use crate::core::protocol::{Identity, Tier};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    Ollama,
    Openai,
    Synthetic,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The engine to serve.
    #[arg(long, value_enum, default_value_t = EngineKind::Ollama, env = "LOBSTAH_ENGINE")]
    pub engine: EngineKind,
    /// Engine URL (default: OLLAMA_HOST or http://127.0.0.1:11434 for ollama; required for openai).
    #[arg(long, env = "LOBSTAH_ENGINE_URL")]
    pub engine_url: Option<String>,
    /// Address to listen on. Anything but loopback exposes your engine to the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the line printed at start says which).
    #[arg(long, default_value_t = 17474)]
    pub port: u16,
    /// Requests run on the engine at once; more wait in line.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Requests allowed to wait; beyond this the worker answers 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub max_queue: usize,
    /// Async jobs allowed to wait in the job queue; beyond this a submission gets 503.
    #[arg(long, default_value_t = crate::core::worker::DEFAULT_MAX_QUEUED_JOBS)]
    pub max_jobs: usize,
    /// The longest answer given, in tokens: a larger max_tokens is lowered to it, and a
    /// request naming none gets it; requests reserve this much credit before they run.
    #[arg(long, default_value_t = crate::core::worker::DEFAULT_MAX_OUTPUT_TOKENS)]
    pub max_output_tokens: u64,
    /// Seconds the engine may go silent mid-answer before the stream is cut.
    #[arg(long, default_value_t = crate::core::worker::DEFAULT_STREAM_IDLE_TIMEOUT.as_secs())]
    pub stream_idle_timeout: u64,
    #[command(flatten)]
    pub connections: super::connection_flags::ConnectionFlags,
    /// interactive (chat, answered now) or batch (preferred for async jobs).
    #[arg(long, default_value = "interactive")]
    pub tier: Tier,
    /// Synthetic engine only: tokens per second per request (0 = as fast as possible).
    #[arg(long, default_value_t = 50.0)]
    pub synthetic_rate: f64,
    /// Synthetic engine only: model names to offer.
    #[arg(long, value_delimiter = ',', default_value = "synthetic")]
    pub synthetic_models: Vec<String>,
    /// Announce this worker to a tracker (repeatable); nothing is announced without it.
    #[arg(long = "announce-to", value_name = "URL")]
    pub announce_to: Vec<String>,
    /// The URL announced (default: the address listened on; set one peers can reach).
    #[arg(long, value_name = "URL")]
    pub announce_url: Option<String>,
    /// The label announced beside the URL.
    #[arg(long, value_name = "TEXT")]
    pub announce_label: Option<String>,
    /// Publish the announcement on Nostr relays too (a NIP-09 deletion on shutdown).
    #[arg(long)]
    pub publish_via_nostr: bool,
    /// A Nostr relay to publish on (repeatable; default: well-known public relays).
    #[arg(long = "nostr-relay", value_name = "URL")]
    pub nostr_relays: Vec<String>,
    /// Announcement lifetime in seconds; heartbeats go every half of it.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(2..=86_400))]
    pub announce_ttl: u64,
    #[command(flatten)]
    pub access: super::access_flags::AccessFlags,
    #[command(flatten)]
    pub browser: super::access_flags::BrowserFlags,
    #[command(flatten)]
    pub links: super::link_flags::LinkFlags,
    /// Control API port on 127.0.0.1 (0, the default, picks a free one; `node.json` in
    /// the home says which, so `lobstah status`, `balance` and the rest find it).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub control_port: u16,
}

#[derive(Debug, Args)]
pub struct RouterArgs {
    /// Address to listen on. Anything but loopback lets others spend your credits.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one); the OpenAI base URL is http://HOST:PORT/v1.
    #[arg(long, default_value_t = 17475)]
    pub port: u16,
    /// Consecutive failures that exclude a peer.
    #[arg(long, default_value_t = 2)]
    pub exclude_after: u32,
    /// Seconds an excluded peer stays out.
    #[arg(long, default_value_t = 30)]
    pub exclude_for: u64,
    /// Seconds a peer may take to start answering before the router tries the next.
    #[arg(long, default_value_t = 120)]
    pub first_byte_timeout: u64,
    /// Seconds a peer's stream may go silent mid-answer before it is cut.
    #[arg(long, default_value_t = crate::core::router::DEFAULT_STREAM_IDLE_TIMEOUT.as_secs())]
    pub stream_idle_timeout: u64,
    #[command(flatten)]
    pub connections: super::connection_flags::ConnectionFlags,
    #[command(flatten)]
    pub browser: super::access_flags::BrowserFlags,
    #[command(flatten)]
    pub links: super::link_flags::LinkFlags,
    /// Control API port on 127.0.0.1 (0, the default, picks a free one; `node.json` in
    /// the home says which, so `lobstah status`, `balance` and the rest find it).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub control_port: u16,
}

/// The identity, created on first start so `worker start` works on a fresh machine.
pub(super) fn identity_or_create(paths: &Paths) -> anyhow::Result<Identity> {
    let path = paths.identity_file();
    match keystore::load_identity(&path) {
        Ok(id) => Ok(id),
        Err(keystore::KeystoreError::Missing(_)) => {
            let id = keystore::create_identity(&path, false)?;
            tracing::info!(pubkey = %id.public(), path = %path.display(), "created a new identity");
            Ok(id)
        }
        Err(e) => Err(e).context("cannot load this node's identity"),
    }
}

/// Which web pages may call a server: `--allowed-origins` and `--allowed-hosts`, else
/// the environment and config.toml.
pub(super) fn browser_policy(
    paths: &Paths,
    flags: &super::access_flags::BrowserFlags,
) -> anyhow::Result<crate::core::net::BrowserPolicy> {
    let mut overrides = crate::core::config::Overrides::default();
    flags.apply(&mut overrides);
    Ok(crate::core::config::Config::load(paths, &overrides)
        .context("invalid configuration")?
        .browser)
}

pub(super) async fn bind(host: &str, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .with_context(|| format!("--host {host:?} is not an IP address"))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the {what} listens beyond loopback: anyone who can reach this address can use it");
    }
    crate::core::net::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what}"))
}

pub(super) fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: finishing in-flight requests");
        t.cancel();
    });
    token
}

/// `worker start` and `router start` are the node with one role: the same wiring, the
/// control API (on a free loopback port unless `--control-port` says) and `node.json`,
/// so every command works beside them. Settings come from config.toml and the
/// environment, with the flags on top (their defaults included, as always).
fn role_config(
    paths: &Paths,
    access: Option<&super::access_flags::AccessFlags>,
    browser: &super::access_flags::BrowserFlags,
    links: &super::link_flags::LinkFlags,
    advertise: bool,
) -> anyhow::Result<Config> {
    let mut overrides = Overrides::default();
    if let Some(access) = access {
        access.apply(&mut overrides);
    }
    browser.apply(&mut overrides);
    links.apply(&mut overrides);
    if advertise {
        overrides.set("advertise.enabled", "--announce-to", "true");
    }
    Config::load(paths, &overrides).context("invalid configuration")
}

fn parse_host(host: &str) -> anyhow::Result<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("--host {host:?} is not an IP address"))
}

/// Serves until SIGINT or SIGTERM, then stops gracefully and lets go of the database.
async fn until_signal(node: NodeHandle) -> anyhow::Result<ExitCode> {
    shutdown_on_signals().cancelled().await;
    node.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn worker_start(paths: &Paths, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let advertise = !args.announce_to.is_empty() || args.publish_via_nostr;
    let mut config = role_config(
        paths,
        Some(&args.access),
        &args.browser,
        &args.links,
        advertise,
    )?;
    config.worker.host = parse_host(&args.host)?;
    config.worker.port = args.port;
    config.worker.tier = args.tier;
    config.worker.concurrency = args.concurrency;
    config.worker.max_queue = args.max_queue;
    config.worker.max_jobs = args.max_jobs;
    config.worker.max_output_tokens = args.max_output_tokens.max(1);
    config.worker.stream_idle_timeout_secs = args.stream_idle_timeout.max(1);
    config.worker.connections = args.connections.settings();
    config.control_port = args.control_port;
    config.engine.kind = match args.engine {
        EngineKind::Ollama => config::EngineKind::Ollama,
        EngineKind::Openai => config::EngineKind::Openai,
        EngineKind::Synthetic => config::EngineKind::Synthetic,
    };
    if args.engine == EngineKind::Openai && args.engine_url.is_none() {
        bail!(
            "--engine openai needs --engine-url (e.g. http://127.0.0.1:8080 for llama.cpp's server)"
        );
    }
    config.engine.url = args.engine_url;
    config.engine.synthetic_rate = args.synthetic_rate;
    config.engine.synthetic_models = args.synthetic_models;
    // What is announced, and where: the flags only, as ever (config.toml's trackers are
    // the router's to sync from).
    config.trackers = args
        .announce_to
        .iter()
        .map(|t| normalize_url(t).with_context(|| format!("--announce-to {t:?}")))
        .collect::<anyhow::Result<_>>()?;
    config.advertise.url = match &args.announce_url {
        Some(url) => Some(normalize_url(url).context("--announce-url")?),
        None => None,
    };
    config.advertise.label = args.announce_label;
    config.advertise.ttl_secs = args.announce_ttl;
    config.advertise.publish_via_nostr = args.publish_via_nostr;
    if args.publish_via_nostr {
        config.discovery.nostr_relays = if args.nostr_relays.is_empty() {
            DEFAULT_RELAYS.iter().map(|r| r.to_string()).collect()
        } else {
            args.nostr_relays
        };
    }
    let node = Node::start_with(
        config,
        paths.clone(),
        super::node_cmds::node_deps(Roles::WORKER),
    )
    .await?;
    let kind = node.snapshot_now().engine.kind;
    if let Some(worker) = node.worker()
        && worker.models().await.is_empty()
    {
        // Serving goes on (the engine may still be loading) and the list is asked for
        // again on every capacity probe; the operator should know why peers see nothing.
        tracing::warn!(
            engine = kind,
            "the engine lists no models (is it running at the URL given?); serving anyway, and peers see no model until it answers"
        );
    }
    println!(
        "worker {} listening on {} ({kind} engine)",
        node.pubkey(),
        node.worker_url()
    );
    until_signal(node).await
}

pub(super) async fn router_start(paths: &Paths, args: RouterArgs) -> anyhow::Result<ExitCode> {
    let mut config = role_config(paths, None, &args.browser, &args.links, false)?;
    config.router.host = parse_host(&args.host)?;
    config.router.port = args.port;
    config.router.exclude_after = args.exclude_after.max(1);
    config.router.exclude_for_secs = args.exclude_for;
    config.router.first_byte_timeout_secs = args.first_byte_timeout.max(1);
    config.router.stream_idle_timeout_secs = args.stream_idle_timeout.max(1);
    config.router.connections = args.connections.settings();
    config.control_port = args.control_port;
    let node = Node::start_with(
        config,
        paths.clone(),
        super::node_cmds::node_deps(Roles::ROUTER),
    )
    .await?;
    if node.router().peer_list().is_empty() {
        tracing::warn!("no peers yet: add one with `lobstah peers add <pubkey> <url>`");
    }
    let url = node.router_url();
    println!(
        "router {} listening on {url} (OpenAI base URL: {url}/v1)",
        node.pubkey()
    );
    until_signal(node).await
}
