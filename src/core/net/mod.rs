//! What every lobstah HTTP server shares to stay up when fed garbage or held by slow
//! peers: a bound on open connections (`listener`), request head and body limits
//! (`guard`), the HTTP/1 connection driver that applies them (`serve`), and the
//! timeouts a stream relay needs (`relay`), and what a web page in the user's browser
//! may do with a listener (`browser`).
//!
//! The limits, and why each default:
//! - `max_connections` (1,024): one permit per open connection; beyond, new connections
//!   wait in the kernel's accept backlog instead of costing memory and a task each.
//!   Servers raise the process's open-file limit to fit their bounds (`fd_limit`).
//! - `max_header_bytes` (16 KiB): request line and headers; beyond, 431 in OpenAI's
//!   shape. No lobstah client sends more than a few hundred bytes; 16 KiB is what
//!   common proxies allow. Four times that, hyper refuses the head before it is parsed.
//! - `header_read_timeout` (30 s): a client that does not finish its headers in time
//!   (or leaves a kept-alive connection idle that long) is disconnected.
//! - `body_read_timeout` (30 s): a body that has not fully arrived by then is answered
//!   408 and its connection closed; at the default 4 MiB body limit that still allows
//!   a client at 140 KB/s.
//! - `client_stall_timeout` (30 s): a streamed answer whose client has taken nothing
//!   for this long is abandoned and the engine slot behind it freed.
//! - `write_stall_timeout` (60 s): the same for any answer at the socket, a backstop
//!   for whole (non-streamed) answers; longer than the relay's bound so that one acts
//!   first on streams, with its accounting.

mod browser;
pub mod fd_limit;
mod guard;
mod listener;
pub mod relay;
mod serve;

use std::time::Duration;

pub use browser::{BrowserPolicy, normalize_host, normalize_origin};
pub use guard::header_bytes;
pub use listener::{ConnectionLimit, Limited, set_nodelay};
pub use serve::serve;

/// How long our HTTP clients keep an idle connection to a peer: under the 30 s a
/// server here keeps one (`header_read_timeout`), so a request never goes out on a
/// connection the peer is closing at that moment (which would count against it).
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(20);

/// Default bound on connections served at once, per server.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Bounds on what one client may cost a server. See the module documentation for the
/// defaults and the reasons for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Request line plus headers, in bytes; beyond, 431.
    pub max_header_bytes: usize,
    /// Time to receive a request's headers; also how long an idle kept-alive
    /// connection stays open.
    pub header_read_timeout: Duration,
    /// Time to receive a whole request body; beyond, 408.
    pub body_read_timeout: Duration,
    /// How long a streamed answer may wait for its client to make room before the
    /// stream is dropped (and the engine slot behind it freed).
    pub client_stall_timeout: Duration,
    /// How long a write to a client's socket may make no progress before the
    /// connection is dropped.
    pub write_stall_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            client_stall_timeout: Duration::from_secs(30),
            write_stall_timeout: Duration::from_secs(60),
        }
    }
}

impl ServerLimits {
    /// Where hyper itself refuses a request head (a bare 431, connection closed): well
    /// above `max_header_bytes`, so a head over the limit normally gets the JSON 431,
    /// but bounded, so a client cannot make a connection buffer without end.
    pub fn hard_header_bytes(&self) -> usize {
        self.max_header_bytes.saturating_mul(4).max(8 * 1024)
    }
}
