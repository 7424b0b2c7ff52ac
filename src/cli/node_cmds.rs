//! `lobstah --headless`, `lobstah status` and `lobstah config show`: the node run
//! without a UI, its state read back through the control API, and its settings.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use super::status_view;
use crate::core::config::{self, Config, KEYS, Overrides};
use crate::core::control::ControlClient;
use crate::core::node::{Node, NodeClient, NodeDeps, Roles};
use crate::core::paths::Paths;

/// Node settings on the command line; they beat the environment and config.toml.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeFlags {
    /// Router address (default 127.0.0.1).
    #[arg(long, value_name = "IP")]
    pub router_host: Option<String>,
    /// Router port (default 17475; 0 picks a free one).
    #[arg(long, value_name = "PORT")]
    pub router_port: Option<String>,
    /// Worker address (default 127.0.0.1; anything else exposes your engine).
    #[arg(long, value_name = "IP")]
    pub worker_host: Option<String>,
    /// Worker port (default 17474).
    #[arg(long, value_name = "PORT")]
    pub worker_port: Option<String>,
    /// Control API port on 127.0.0.1 (default 17477).
    #[arg(long, value_name = "PORT")]
    pub control_port: Option<String>,
    /// Engine: ollama, openai or synthetic.
    #[arg(long = "engine", value_name = "KIND")]
    pub engine_kind: Option<String>,
    /// The engine's base URL (default for ollama: OLLAMA_HOST or http://127.0.0.1:11434).
    #[arg(long, value_name = "URL")]
    pub engine_url: Option<String>,
    /// Synthetic engine: tokens per second (0 = as fast as possible).
    #[arg(long, value_name = "RATE")]
    pub synthetic_rate: Option<String>,
    /// Requests on the engine at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<String>,
    /// Requests that may wait for the engine; beyond, 503.
    #[arg(long, value_name = "N")]
    pub max_queue: Option<String>,
    /// Async jobs that may wait in the worker's job queue; beyond, 503.
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<String>,
    /// The longest answer the worker gives, in tokens; a larger max_tokens is lowered to it.
    #[arg(long, value_name = "N")]
    pub max_output_tokens: Option<String>,
    /// interactive, batch or best-effort.
    #[arg(long, value_name = "TIER")]
    pub tier: Option<String>,
    /// Advertise this worker to the trackers from the start (off unless given).
    #[arg(long)]
    pub advertise: bool,
    /// A tracker to announce to and sync peers from (repeatable).
    #[arg(long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Advertise to this tracker from the start (repeatable): --tracker plus --advertise.
    #[arg(long = "announce-to", value_name = "URL")]
    pub announce_to: Vec<String>,
    /// The URL announced (default: the worker's address; set it to one peers can reach).
    #[arg(long, value_name = "URL")]
    pub announce_url: Option<String>,
    /// The label announced beside the URL.
    #[arg(long, value_name = "TEXT")]
    pub announce_label: Option<String>,
    /// Sync peers from the trackers every SECS seconds (default: only when asked).
    #[arg(long, value_name = "SECS")]
    pub sync_every: Option<String>,
    /// When advertising, publish the announcement on Nostr relays too.
    #[arg(long)]
    pub publish_via_nostr: bool,
    /// Sync peers from Nostr relays too.
    #[arg(long)]
    pub discover_via_nostr: bool,
    /// A Nostr relay to publish to and discover from (repeatable; default: well-known
    /// public relays).
    #[arg(long = "nostr-relay", value_name = "URL")]
    pub nostr_relays: Vec<String>,
    /// Refuse discovered peers on private networks too (RFC 1918, ULA, CGNAT).
    #[arg(long)]
    pub block_private_addrs: bool,
    /// Accept discovered peers on loopback and private addresses (a grid on one machine).
    #[arg(long)]
    pub allow_local_peers: bool,
    /// Log format of --headless: text or json.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    #[command(flatten)]
    pub access: super::access_flags::AccessFlags,
    #[command(flatten)]
    pub browser: super::access_flags::BrowserFlags,
    #[command(flatten)]
    pub links: super::link_flags::LinkFlags,
}

impl NodeFlags {
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        let text = [
            ("router.host", "--router-host", &self.router_host),
            ("router.port", "--router-port", &self.router_port),
            ("worker.host", "--worker-host", &self.worker_host),
            ("worker.port", "--worker-port", &self.worker_port),
            ("control.port", "--control-port", &self.control_port),
            ("engine.kind", "--engine", &self.engine_kind),
            ("engine.url", "--engine-url", &self.engine_url),
            (
                "engine.synthetic_rate",
                "--synthetic-rate",
                &self.synthetic_rate,
            ),
            ("worker.concurrency", "--concurrency", &self.concurrency),
            ("worker.max_queue", "--max-queue", &self.max_queue),
            ("worker.max_jobs", "--max-jobs", &self.max_jobs),
            (
                "worker.max_output_tokens",
                "--max-output-tokens",
                &self.max_output_tokens,
            ),
            ("worker.tier", "--tier", &self.tier),
            ("advertise.url", "--announce-url", &self.announce_url),
            ("advertise.label", "--announce-label", &self.announce_label),
            (
                "discovery.sync_every_secs",
                "--sync-every",
                &self.sync_every,
            ),
            ("log.format", "--log-format", &self.log_format),
        ];
        for (key, flag, value) in text {
            if let Some(v) = value {
                o.set(key, flag, v);
            }
        }
        let switches = [
            (self.advertise, "advertise.enabled", "--advertise"),
            (
                !self.announce_to.is_empty(),
                "advertise.enabled",
                "--announce-to",
            ),
            (
                self.publish_via_nostr,
                "advertise.publish_via_nostr",
                "--publish-via-nostr",
            ),
            (
                self.discover_via_nostr,
                "discovery.discover_via_nostr",
                "--discover-via-nostr",
            ),
            (
                self.block_private_addrs,
                "discovery.block_private_addrs",
                "--block-private-addrs",
            ),
            (
                self.allow_local_peers,
                "discovery.allow_local_peers",
                "--allow-local-peers",
            ),
        ];
        for (given, key, flag) in switches {
            if given {
                o.set(key, flag, "true");
            }
        }
        if !self.nostr_relays.is_empty() {
            o.set(
                "discovery.nostr_relays",
                "--nostr-relay",
                self.nostr_relays.join(","),
            );
        }
        let trackers: Vec<&str> = self
            .trackers
            .iter()
            .chain(&self.announce_to)
            .map(String::as_str)
            .collect();
        if !trackers.is_empty() {
            let flag = if self.announce_to.is_empty() {
                "--tracker"
            } else if self.trackers.is_empty() {
                "--announce-to"
            } else {
                "--tracker and --announce-to"
            };
            o.set("discovery.trackers", flag, trackers.join(","));
        }
        self.access.apply(&mut o);
        self.browser.apply(&mut o);
        self.links.apply(&mut o);
        o
    }
}

/// How every command that runs a node starts it: with `roles`, and the engine's API key
/// from `LOBSTAH_ENGINE_API_KEY` (sent to an OpenAI-compatible engine as its bearer).
pub(super) fn node_deps(roles: Roles) -> NodeDeps {
    NodeDeps {
        engine_api_key: std::env::var("LOBSTAH_ENGINE_API_KEY").ok(),
        roles,
        ..NodeDeps::default()
    }
}

fn load_config(paths: &Paths, flags: &NodeFlags) -> anyhow::Result<Config> {
    Config::load(paths, &flags.overrides()).context("invalid configuration")
}

pub(super) fn headless(paths: &Paths, flags: &NodeFlags) -> anyhow::Result<ExitCode> {
    let config = load_config(paths, flags)?;
    super::init_logging(config.log_format);
    super::runtime()?.block_on(async move {
        // Handlers first: a signal during start-up still means a graceful stop.
        let mut signals = Signals::new()?;
        let node = Node::start_with(config, paths.clone(), node_deps(Roles::BOTH))
            .await
            .context("cannot start the node")?;
        signals.next().await;
        tokio::spawn(async move {
            signals.next().await;
            eprintln!("second signal: stopping at once");
            std::process::exit(130);
        });
        node.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGINT and (on Unix) SIGTERM.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?,
        })
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(super) async fn status(paths: &Paths, as_json: bool) -> anyhow::Result<ExitCode> {
    let client = ControlClient::discover(paths.data_dir())?;
    let snapshot = client
        .snapshot()
        .await
        .context("cannot get the node's status")?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&snapshot)?);
    } else {
        print!(
            "{}",
            status_view::render(&snapshot, client.info().map(|i| i.pid))
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn config_show(
    paths: &Paths,
    flags: &NodeFlags,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let config = load_config(paths, flags)?;
    let file = config::config_file(paths);
    let exists = file.exists();
    if as_json {
        let out = json!({
            "configFile": file,
            "configFileExists": exists,
            "settings": config.entries(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "config file: {}{}",
        file.display(),
        if exists { "" } else { " (not present)" }
    );
    println!();
    println!("{:<32} {:<28} source", "setting", "value");
    for entry in config.entries() {
        let value = match &entry.value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".to_string(),
            serde_json::Value::Array(items) if items.is_empty() => "[]".to_string(),
            other => other.to_string(),
        };
        println!("{:<32} {:<28} {}", entry.key, value, entry.source);
    }
    println!();
    println!("environment variables:");
    for key in KEYS {
        println!("  {:<40} {}", key.env, key.help);
    }
    Ok(ExitCode::SUCCESS)
}

/// `lobstah advertise on|off` with no node running: keeps the switch for the next start.
pub(super) fn advertise_next_start(paths: &Paths, on: bool) -> anyhow::Result<ExitCode> {
    crate::core::node::save_advertising(paths.data_dir(), on)
        .context("cannot save the advertising switch")?;
    println!(
        "no node is running on this home; advertising will be {} when it starts",
        if on { "on" } else { "off" }
    );
    Ok(ExitCode::SUCCESS)
}
