//! The tracker: a deliberately dumb registry of signed announcements with a TTL, served
//! over HTTP for `lobstah tracker start`.
//!
//! It believes nothing it cannot check: every announcement and withdrawal is verified
//! against its own key, and everything it holds is bounded (body size, entries, bytes
//! listed, TTL, requests per client, clients tracked), so a stranger on the internet can
//! slow it down but not make it grow.

mod rate_limit;
mod registry;
mod server;
#[cfg(test)]
mod tests;
mod unannounce;

pub use rate_limit::{Limited, RateLimit, RateLimiter};
pub use registry::{Accepted, Change, Refusal, Registry, RegistryLimits};
pub use server::{TrackerState, router, serve};
pub use unannounce::{UNANNOUNCE_SKEW_MS, Unannounce};

/// The tracker's default port.
pub const DEFAULT_PORT: u16 = 17476;
/// An announcement is ~300–600 bytes; 64 KiB leaves room for a worker with hundreds of
/// models and refuses anything that is not an announcement.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_PEERS: usize = 10_000;
/// Workers heartbeat every TTL/2 with a default TTL of 5 minutes; an hour is plenty, and
/// bounds how long a worker that died without withdrawing stays listed.
pub const DEFAULT_MAX_TTL_SECONDS: u64 = 3600;
/// Nodes refuse a `/peers` answer over 4 MiB; the registry stays under it with room for
/// the envelope, so a few huge announcements cannot make the list unreadable to all.
pub const DEFAULT_MAX_LISTED_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;
/// A node makes about one request a minute (heartbeat, sync); 60/min with a burst of 20
/// leaves room for a few nodes behind one NAT and for scripts, and stops floods.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 60;
pub const DEFAULT_RATE_BURST: u32 = 20;
pub const DEFAULT_MAX_TRACKED_IPS: usize = 10_000;

/// Every bound the tracker enforces. `Default` is what `lobstah tracker start` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Largest request body; larger is 413.
    pub max_body_bytes: usize,
    /// Most live entries; a new key beyond it is 503 `registry-full` (updates always fit).
    pub max_peers: usize,
    /// Longer TTLs are clamped to this, and the answer's `ttlSeconds` says so.
    pub max_ttl_seconds: u64,
    /// Sum of the held announcements' JSON sizes; beyond it, 503 `registry-full`.
    pub max_listed_bytes: usize,
    /// Sustained requests per minute per client address (IPv6: per /64); 0 = no limit.
    pub rate_per_minute: u32,
    /// Requests a quiet client may make at once.
    pub rate_burst: u32,
    /// Client addresses the limiter tracks at most.
    pub max_tracked_ips: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_peers: DEFAULT_MAX_PEERS,
            max_ttl_seconds: DEFAULT_MAX_TTL_SECONDS,
            max_listed_bytes: DEFAULT_MAX_LISTED_BYTES,
            rate_per_minute: DEFAULT_RATE_PER_MINUTE,
            rate_burst: DEFAULT_RATE_BURST,
            max_tracked_ips: DEFAULT_MAX_TRACKED_IPS,
        }
    }
}

impl TrackerConfig {
    pub fn registry_limits(&self) -> RegistryLimits {
        RegistryLimits {
            max_peers: self.max_peers,
            max_ttl_seconds: self.max_ttl_seconds,
            max_listed_bytes: self.max_listed_bytes,
        }
    }

    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            per_minute: self.rate_per_minute,
            burst: self.rate_burst,
            max_clients: self.max_tracked_ips,
        }
    }
}
