//! Every setting, once: its dotted name (the `[section] key` in config.toml), its
//! environment variable and a line of help. The resolver and `config show` follow this
//! order; a name not listed here is an unknown key.

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// `section.key`, as written in config.toml.
    pub name: &'static str,
    pub env: &'static str,
    pub help: &'static str,
}

const fn key(name: &'static str, env: &'static str, help: &'static str) -> Key {
    Key { name, env, help }
}

pub const KEYS: &[Key] = &[
    key(
        "router.host",
        "LOBSTAH_ROUTER_HOST",
        "address the router listens on",
    ),
    key(
        "router.port",
        "LOBSTAH_ROUTER_PORT",
        "router port (OpenAI base URL http://host:port/v1)",
    ),
    key(
        "router.exclude_after",
        "LOBSTAH_ROUTER_EXCLUDE_AFTER",
        "consecutive failures that exclude a peer",
    ),
    key(
        "router.exclude_for_secs",
        "LOBSTAH_ROUTER_EXCLUDE_FOR_SECS",
        "seconds an excluded peer stays out",
    ),
    key(
        "router.first_byte_timeout_secs",
        "LOBSTAH_ROUTER_FIRST_BYTE_TIMEOUT_SECS",
        "seconds a peer may take to start answering",
    ),
    key(
        "router.stream_idle_timeout_secs",
        "LOBSTAH_ROUTER_STREAM_IDLE_TIMEOUT_SECS",
        "seconds a peer's stream may go silent mid-answer before it is cut",
    ),
    key(
        "router.max_connections",
        "LOBSTAH_ROUTER_MAX_CONNECTIONS",
        "connections the router serves at once; when full, one still silent gives way",
    ),
    key(
        "router.max_connections_per_address",
        "LOBSTAH_ROUTER_MAX_CONNECTIONS_PER_ADDRESS",
        "connections one client address (IPv6: its /64) may hold open; beyond, 503",
    ),
    key(
        "router.head_timeout_secs",
        "LOBSTAH_ROUTER_HEAD_TIMEOUT_SECS",
        "seconds a new connection has to send its first request head",
    ),
    key(
        "worker.host",
        "LOBSTAH_WORKER_HOST",
        "address the worker listens on (beyond loopback exposes the engine)",
    ),
    key("worker.port", "LOBSTAH_WORKER_PORT", "worker port"),
    key(
        "worker.concurrency",
        "LOBSTAH_WORKER_CONCURRENCY",
        "requests on the engine at once",
    ),
    key(
        "worker.max_queue",
        "LOBSTAH_WORKER_MAX_QUEUE",
        "requests that may wait; beyond, 503",
    ),
    key(
        "worker.max_jobs",
        "LOBSTAH_WORKER_MAX_JOBS",
        "async jobs that may wait; beyond, 503",
    ),
    key(
        "worker.stream_idle_timeout_secs",
        "LOBSTAH_WORKER_STREAM_IDLE_TIMEOUT_SECS",
        "seconds the engine may go silent mid-answer before the stream is cut",
    ),
    key(
        "worker.max_output_tokens",
        "LOBSTAH_WORKER_MAX_OUTPUT_TOKENS",
        "the longest answer given, in tokens; a larger max_tokens is lowered to it",
    ),
    key(
        "worker.max_connections",
        "LOBSTAH_WORKER_MAX_CONNECTIONS",
        "connections the worker serves at once; when full, one still silent gives way",
    ),
    key(
        "worker.max_connections_per_address",
        "LOBSTAH_WORKER_MAX_CONNECTIONS_PER_ADDRESS",
        "connections one client address (IPv6: its /64) may hold open; beyond, 503",
    ),
    key(
        "worker.head_timeout_secs",
        "LOBSTAH_WORKER_HEAD_TIMEOUT_SECS",
        "seconds a new connection has to send its first request head",
    ),
    key(
        "worker.tier",
        "LOBSTAH_WORKER_TIER",
        "interactive, batch or best-effort",
    ),
    key(
        "engine.kind",
        "LOBSTAH_ENGINE",
        "ollama, openai or synthetic",
    ),
    key(
        "engine.url",
        "LOBSTAH_ENGINE_URL",
        "engine URL (ollama: OLLAMA_HOST or http://127.0.0.1:11434)",
    ),
    key(
        "engine.synthetic_rate",
        "LOBSTAH_ENGINE_SYNTHETIC_RATE",
        "synthetic engine: tokens per second (0 = unbounded)",
    ),
    key(
        "engine.synthetic_models",
        "LOBSTAH_ENGINE_SYNTHETIC_MODELS",
        "synthetic engine: model names",
    ),
    key(
        "access.require_signed",
        "LOBSTAH_REQUIRE_SIGNED",
        "refuse unsigned requests (older routers) instead of serving them a small anonymous quota",
    ),
    key(
        "access.serve_only",
        "LOBSTAH_SERVE_ONLY",
        "serve only these requester keys (friends); empty: anyone",
    ),
    key(
        "access.trusted",
        "LOBSTAH_TRUSTED",
        "requester keys served without credit checks (your own machines)",
    ),
    key(
        "access.max_unconfirmed_tokens",
        "LOBSTAH_MAX_UNCONFIRMED_TOKENS",
        "tokens a requester may leave unconfirmed here before it is refused (0: no cap)",
    ),
    key(
        "access.per_requester_concurrency",
        "LOBSTAH_PER_REQUESTER_CONCURRENCY",
        "requests one requester may have in flight here (0: no limit)",
    ),
    key(
        "access.per_requester_per_minute",
        "LOBSTAH_PER_REQUESTER_PER_MINUTE",
        "requests one requester may start per minute (0: no limit)",
    ),
    key(
        "access.anonymous_tokens_per_hour",
        "LOBSTAH_ANONYMOUS_TOKENS_PER_HOUR",
        "tokens all unsigned requests together may use per hour (0: refuse them)",
    ),
    key(
        "control.port",
        "LOBSTAH_CONTROL_PORT",
        "control API port (always 127.0.0.1)",
    ),
    key(
        "advertise.enabled",
        "LOBSTAH_ADVERTISE",
        "advertise this worker from the start (off unless you say so)",
    ),
    key(
        "advertise.url",
        "LOBSTAH_ADVERTISE_URL",
        "URL announced to trackers (default: the worker's address)",
    ),
    key(
        "advertise.label",
        "LOBSTAH_ADVERTISE_LABEL",
        "label announced with the URL",
    ),
    key(
        "advertise.publish_via_nostr",
        "LOBSTAH_PUBLISH_VIA_NOSTR",
        "when advertising, publish the announcement on the Nostr relays too",
    ),
    key(
        "advertise.ttl_secs",
        "LOBSTAH_ADVERTISE_TTL_SECS",
        "announcement lifetime; heartbeats every half of it",
    ),
    key(
        "discovery.trackers",
        "LOBSTAH_TRACKERS",
        "tracker URLs to announce to and sync peers from",
    ),
    key(
        "discovery.nostr_relays",
        "LOBSTAH_NOSTR_RELAYS",
        "Nostr relays to publish to and discover from (ws:// or wss://)",
    ),
    key(
        "discovery.discover_via_nostr",
        "LOBSTAH_DISCOVER_VIA_NOSTR",
        "sync peers from the Nostr relays too (off unless you say so)",
    ),
    key(
        "discovery.sync_every_secs",
        "LOBSTAH_SYNC_EVERY_SECS",
        "sync peers from the trackers every N seconds (0: only when asked)",
    ),
    key(
        "discovery.block_private_addrs",
        "LOBSTAH_BLOCK_PRIVATE_ADDRS",
        "refuse discovered peers on private networks too (RFC 1918, ULA, CGNAT)",
    ),
    key(
        "discovery.allow_local_peers",
        "LOBSTAH_ALLOW_LOCAL_PEERS",
        "accept discovered peers on loopback and private addresses (a grid on one machine)",
    ),
    key(
        "browser.allowed_origins",
        "LOBSTAH_ALLOWED_ORIGINS",
        "web origins (http://localhost:3000) whose pages may use the local servers; * for any",
    ),
    key(
        "browser.allowed_hosts",
        "LOBSTAH_ALLOWED_HOSTS",
        "Host names loopback servers answer to beside localhost and loopback addresses",
    ),
    key(
        "log.format",
        "LOBSTAH_LOG_FORMAT",
        "text or json (headless logs on stderr)",
    ),
    key(
        "node.shutdown_grace_secs",
        "LOBSTAH_SHUTDOWN_GRACE_SECS",
        "seconds in-flight requests get to finish on shutdown",
    ),
    key(
        "node.ledger_cache_mib",
        "LOBSTAH_LEDGER_CACHE_MIB",
        "MiB of memory the ledger database may cache (its file is read from disk past that)",
    ),
    key(
        "links.enabled",
        "LOBSTAH_LINKS",
        "open an encrypted peer-link endpoint (iroh, UDP) keyed by this node's identity",
    ),
    key(
        "links.port",
        "LOBSTAH_LINKS_PORT",
        "UDP port of the peer-link endpoint (0: any free port)",
    ),
    key(
        "links.relays",
        "LOBSTAH_LINKS_RELAYS",
        "relay URLs the peer-link endpoint uses (none: direct addresses only)",
    ),
    key(
        "links.relay_certs",
        "LOBSTAH_LINKS_RELAY_CERTS",
        "PEM files of self-hosted relays' certificates, trusted for address discovery",
    ),
];

/// The key named `name`, if it exists.
pub(super) fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}
