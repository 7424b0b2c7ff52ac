//! The node's effective settings: flags > environment (`LOBSTAH_*`) > `config.toml` (in
//! the config directory) > defaults. Every value remembers where it came from, so
//! `lobstah config show` can say why the node listens where it does.
//!
//! `keys` lists every setting once (name, environment variable, help); `layers` reads
//! the file, the environment and the flags into raw values; this file turns them into
//! typed settings.

mod connections;
mod keys;
mod layers;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use connections::ConnectionKeys;
pub use connections::ConnectionSettings;

use crate::core::discovery::UrlPolicy;
use crate::core::net::BrowserPolicy;
use crate::core::paths::Paths;
use crate::core::protocol::{PublicKey, Tier};
use crate::core::worker::AccessPolicy;

pub use keys::{KEYS, Key};
pub use layers::{Layers, Overrides, Raw};

use parse::*;

/// The name of the config file in the config directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env { var: String },
    Flag { flag: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env { var } => write!(f, "env {var}"),
            Source::Flag { flag } => write!(f, "flag {flag}"),
        }
    }
}

/// One effective setting as `config show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub key: &'static str,
    pub value: Value,
    pub source: Source,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not valid TOML: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{line}: unknown setting `{key}` (`lobstah config show` lists them all)")]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
    },
    #[error("`{key}` from {origin}: {message}")]
    Invalid {
        key: &'static str,
        origin: Source,
        message: String,
    },
}

/// Which engine the worker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    Ollama,
    Openai,
    Synthetic,
}

impl EngineKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EngineKind::Ollama => "ollama",
            EngineKind::Openai => "openai",
            EngineKind::Synthetic => "synthetic",
        }
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ollama" => Ok(EngineKind::Ollama),
            "openai" => Ok(EngineKind::Openai),
            "synthetic" => Ok(EngineKind::Synthetic),
            other => Err(format!(
                "unknown engine {other:?}: expected ollama, openai or synthetic"
            )),
        }
    }
}

/// How `--headless` writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}: expected text or json"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouterSettings {
    pub host: IpAddr,
    pub port: u16,
    pub exclude_after: u32,
    pub exclude_for_secs: u64,
    pub first_byte_timeout_secs: u64,
    pub stream_idle_timeout_secs: u64,
    pub connections: ConnectionSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSettings {
    pub host: IpAddr,
    pub port: u16,
    pub concurrency: usize,
    pub max_queue: usize,
    pub max_jobs: usize,
    pub stream_idle_timeout_secs: u64,
    pub max_output_tokens: u64,
    pub connections: ConnectionSettings,
    pub tier: Tier,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    pub kind: EngineKind,
    /// `None`: the engine's default (Ollama: OLLAMA_HOST or http://127.0.0.1:11434).
    pub url: Option<String>,
    pub synthetic_rate: f64,
    pub synthetic_models: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdvertiseSettings {
    /// Whether the node advertises from the start. Off unless the operator says so.
    pub enabled: bool,
    /// The URL announced; `None`: the worker's own address.
    pub url: Option<String>,
    pub label: Option<String>,
    /// Publish on the Nostr relays as well as to the trackers.
    pub publish_via_nostr: bool,
    pub ttl_secs: u64,
}

/// The peer-link endpoint (see `links`): off unless asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    pub enabled: bool,
    /// UDP port on all interfaces; 0: any.
    pub port: u16,
    pub relays: Vec<String>,
    /// PEM certificates trusted for relays' address discovery (self-hosted relays').
    pub relay_certs: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverySettings {
    pub nostr_relays: Vec<String>,
    /// Sync from the relays as well as the trackers.
    pub discover_via_nostr: bool,
    /// 0: sync only when asked.
    pub sync_every_secs: u64,
    /// Which discovered peer addresses the router may dial.
    pub url_policy: UrlPolicy,
}

fn default_relays() -> Vec<String> {
    crate::core::discovery::nostr::DEFAULT_RELAYS
        .iter()
        .map(|r| r.to_string())
        .collect()
}

/// The effective configuration of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub router: RouterSettings,
    pub worker: WorkerSettings,
    pub engine: EngineSettings,
    /// The control API's port; it always listens on 127.0.0.1.
    pub control_port: u16,
    pub advertise: AdvertiseSettings,
    /// Who the worker serves, and how much.
    pub access: AccessPolicy,
    /// Trackers announcements go to and peers are synced from (may be empty).
    pub trackers: Vec<String>,
    pub discovery: DiscoverySettings,
    /// Which web pages may use the node's servers (router, worker, control API).
    pub browser: BrowserPolicy,
    pub log_format: LogFormat,
    pub shutdown_grace_secs: u64,
    /// The ledger database's cache, in MiB: what the node's memory holds of the file.
    pub ledger_cache_mib: u64,
    pub links: LinkSettings,
    entries: Vec<Entry>,
}

impl Config {
    /// Reads `config.toml` from `paths`' config directory (if present), the process
    /// environment and `flags`.
    pub fn load(paths: &Paths, flags: &Overrides) -> Result<Self, ConfigError> {
        let layers = Layers::read(&config_file(paths), |var| std::env::var(var).ok(), flags)?;
        Self::resolve(&layers)
    }

    /// Every setting at its default.
    pub fn defaults() -> Self {
        // Defaults are valid by construction; the unit tests hold that true.
        Self::resolve(&Layers::default()).unwrap_or_else(|e| panic!("bad default setting: {e}"))
    }

    /// Builds the typed settings from raw layers, highest precedence first.
    pub fn resolve(layers: &Layers) -> Result<Self, ConfigError> {
        let mut r = Resolver {
            layers,
            entries: Vec::new(),
        };
        let config = Config {
            router: RouterSettings {
                host: r.get("router.host", loopback(), parse_ip)?,
                port: r.get("router.port", 17475, parse_int)?,
                exclude_after: r.get("router.exclude_after", 2, parse_positive)?,
                exclude_for_secs: r.get("router.exclude_for_secs", 30, parse_int)?,
                first_byte_timeout_secs: r.get(
                    "router.first_byte_timeout_secs",
                    120,
                    parse_positive,
                )?,
                stream_idle_timeout_secs: r.get(
                    "router.stream_idle_timeout_secs",
                    crate::core::router::DEFAULT_STREAM_IDLE_TIMEOUT.as_secs(),
                    parse_positive,
                )?,
                connections: connections::read(
                    &mut r,
                    ConnectionKeys {
                        max_connections: "router.max_connections",
                        per_address: "router.max_connections_per_address",
                        head_timeout_secs: "router.head_timeout_secs",
                    },
                )?,
            },
            worker: WorkerSettings {
                host: r.get("worker.host", loopback(), parse_ip)?,
                port: r.get("worker.port", 17474, parse_int)?,
                concurrency: r.get("worker.concurrency", 4, parse_positive)?,
                max_queue: r.get("worker.max_queue", 64, parse_int)?,
                max_jobs: r.get(
                    "worker.max_jobs",
                    crate::core::worker::DEFAULT_MAX_QUEUED_JOBS,
                    parse_int,
                )?,
                stream_idle_timeout_secs: r.get(
                    "worker.stream_idle_timeout_secs",
                    crate::core::worker::DEFAULT_STREAM_IDLE_TIMEOUT.as_secs(),
                    parse_positive,
                )?,
                max_output_tokens: r.get(
                    "worker.max_output_tokens",
                    crate::core::worker::DEFAULT_MAX_OUTPUT_TOKENS,
                    parse_positive,
                )?,
                connections: connections::read(
                    &mut r,
                    ConnectionKeys {
                        max_connections: "worker.max_connections",
                        per_address: "worker.max_connections_per_address",
                        head_timeout_secs: "worker.head_timeout_secs",
                    },
                )?,
                tier: r.get("worker.tier", Tier::Interactive, parse_text)?,
            },
            engine: EngineSettings {
                kind: r.get("engine.kind", EngineKind::Ollama, parse_text)?,
                url: r.get("engine.url", None, parse_optional_url)?,
                synthetic_rate: r.get("engine.synthetic_rate", 50.0, parse_rate)?,
                synthetic_models: r.get(
                    "engine.synthetic_models",
                    vec!["synthetic".into()],
                    parse_models,
                )?,
            },
            access: {
                let d = AccessPolicy::default();
                AccessPolicy {
                    require_signed: r.get("access.require_signed", false, parse_bool)?,
                    serve_only: r.get("access.serve_only", Vec::new(), parse_pubkeys)?,
                    trusted: r.get("access.trusted", Vec::new(), parse_pubkeys)?,
                    max_unconfirmed_tokens: r.get(
                        "access.max_unconfirmed_tokens",
                        d.max_unconfirmed_tokens,
                        parse_int,
                    )?,
                    per_requester_concurrency: r.get(
                        "access.per_requester_concurrency",
                        d.per_requester_concurrency,
                        parse_int,
                    )?,
                    per_requester_per_minute: r.get(
                        "access.per_requester_per_minute",
                        d.per_requester_per_minute,
                        parse_int,
                    )?,
                    anonymous_tokens_per_hour: r.get(
                        "access.anonymous_tokens_per_hour",
                        d.anonymous_tokens_per_hour,
                        parse_int,
                    )?,
                    ..d
                }
            },
            control_port: r.get("control.port", 17477, parse_int)?,
            advertise: AdvertiseSettings {
                enabled: r.get("advertise.enabled", false, parse_bool)?,
                url: r.get("advertise.url", None, parse_optional_url)?,
                label: r.get("advertise.label", None, parse_optional_text)?,
                publish_via_nostr: r.get("advertise.publish_via_nostr", false, parse_bool)?,
                // Trackers hold an entry at most an hour; a longer TTL would heartbeat
                // too rarely to stay listed.
                ttl_secs: r.get("advertise.ttl_secs", 300, |raw| {
                    parse_positive(raw).and_then(|secs: u64| match secs {
                        0..=3600 => Ok(secs),
                        _ => Err(format!(
                            "{secs} is over the 3600 s trackers keep an announcement"
                        )),
                    })
                })?,
            },
            trackers: r.get("discovery.trackers", Vec::new(), parse_urls)?,
            discovery: DiscoverySettings {
                nostr_relays: r.get(
                    "discovery.nostr_relays",
                    default_relays(),
                    parse_relay_urls,
                )?,
                discover_via_nostr: r.get("discovery.discover_via_nostr", false, parse_bool)?,
                sync_every_secs: r.get("discovery.sync_every_secs", 0, parse_int)?,
                url_policy: UrlPolicy {
                    block_private: r.get("discovery.block_private_addrs", false, parse_bool)?,
                    allow_local: r.get("discovery.allow_local_peers", false, parse_bool)?,
                },
            },
            browser: BrowserPolicy {
                allowed_origins: r.get("browser.allowed_origins", Vec::new(), parse_origins)?,
                allowed_hosts: r.get("browser.allowed_hosts", Vec::new(), parse_hosts)?,
            },
            log_format: r.get("log.format", LogFormat::Text, parse_text)?,
            shutdown_grace_secs: r.get("node.shutdown_grace_secs", 10, parse_int)?,
            ledger_cache_mib: r.get(
                "node.ledger_cache_mib",
                crate::core::store::DEFAULT_CACHE_MIB,
                parse_positive,
            )?,
            links: LinkSettings {
                enabled: r.get("links.enabled", false, parse_bool)?,
                port: r.get("links.port", 0, parse_int)?,
                relays: r.get("links.relays", Vec::new(), parse_urls)?,
                relay_certs: r
                    .get("links.relay_certs", Vec::new(), parse_list)?
                    .into_iter()
                    .map(PathBuf::from)
                    .collect(),
            },
            entries: Vec::new(),
        };
        Ok(Config {
            entries: r.entries,
            ..config
        })
    }

    /// Every setting with its value and source, in `KEYS` order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Where one setting came from.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.source)
    }
}

/// The config file in `paths`' config directory.
pub fn config_file(paths: &Paths) -> PathBuf {
    paths.config_dir().join(CONFIG_FILE)
}

fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// Picks each key's value from the highest layer that has it and records the entry.
struct Resolver<'a> {
    layers: &'a Layers,
    entries: Vec<Entry>,
}

impl Resolver<'_> {
    fn get<T: ShowValue>(
        &mut self,
        key: &'static str,
        default: T,
        parse: impl Fn(&Raw) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        debug_assert!(KEYS.iter().any(|k| k.name == key), "{key} is not in KEYS");
        let (value, source) = match self.layers.get(key) {
            Some((raw, source)) => match parse(raw) {
                Ok(v) => (v, source.clone()),
                Err(message) => {
                    return Err(ConfigError::Invalid {
                        key,
                        origin: source.clone(),
                        message,
                    });
                }
            },
            None => (default, Source::Default),
        };
        self.entries.push(Entry {
            key,
            value: value.show(),
            source,
        });
        Ok(value)
    }
}

/// How a setting's value is shown by `config show`.
trait ShowValue {
    fn show(&self) -> Value;
}

macro_rules! show_as_json {
    ($($t:ty),*) => {$(
        impl ShowValue for $t {
            fn show(&self) -> Value { serde_json::json!(self) }
        }
    )*};
}
show_as_json!(u16, u32, u64, usize, f64, bool, Vec<String>, Option<String>);

macro_rules! show_as_text {
    ($($t:ty),*) => {$(
        impl ShowValue for $t {
            fn show(&self) -> Value { Value::String(self.to_string()) }
        }
    )*};
}
show_as_text!(IpAddr, Tier);

impl ShowValue for Vec<PublicKey> {
    fn show(&self) -> Value {
        serde_json::json!(self.iter().map(ToString::to_string).collect::<Vec<_>>())
    }
}

impl ShowValue for EngineKind {
    fn show(&self) -> Value {
        Value::String(self.as_str().into())
    }
}

impl ShowValue for LogFormat {
    fn show(&self) -> Value {
        serde_json::json!(self)
    }
}
