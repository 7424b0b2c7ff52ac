//! What every lobstah HTTP server shares to stay up when fed garbage, held by slow
//! peers or flooded: who gets a connection slot (`admission`), the accepted connection
//! (`listener`), request head and body limits (`guard`), the HTTP/1 connection driver
//! that applies them (`serve`), the timeouts a stream relay needs (`relay`), what a web
//! page in the user's browser may do with a listener (`browser`), and the metrics of
//! it all (`stats`), and binding with a deep accept backlog (`bind`).
//!
//! The limits, and why each default:
//! - `max_connections` (1,024): connections open at once. When all are taken, a new
//!   one takes the slot of the oldest that has not yet sent a whole request head (see
//!   `admission`); if there is none, it waits in the kernel's accept backlog instead of
//!   costing memory and a task. Servers raise the process's open-file limit to fit
//!   their bounds (`fd_limit`).
//! - `max_connections_per_address` (256): connections open at once from one client
//!   address (IPv6 by /64); one more is answered 503 and closed. A router keeps one
//!   connection per request in flight to a worker, and a worker admits 4 + 64 at once
//!   by default, so 256 leaves a busy router room while a single flooding address can
//!   take at most a quarter of the slots.
//! - `head_timeout` (10 s): a new connection that has not sent a whole request head
//!   by then is closed. A head is a few hundred bytes, one packet; ten seconds covers
//!   a very slow link, while a client opening connections it never uses holds each
//!   slot for ten seconds, not thirty.
//! - `max_header_bytes` (16 KiB): request line and headers; beyond, 431 in OpenAI's
//!   shape. No lobstah client sends more than a few hundred bytes; 16 KiB is what
//!   common proxies allow. Four times that, hyper refuses the head before it is parsed.
//! - `header_read_timeout` (30 s): how long a kept-alive connection may sit idle, or
//!   take over a later request's head, before it is closed. Our clients keep idle
//!   connections for less (`CLIENT_POOL_IDLE`), so they never reuse one being closed.
//! - `body_read_timeout` (30 s): a body that has not fully arrived by then is answered
//!   408 and its connection closed; at the default 4 MiB body limit that still allows
//!   a client at 140 KB/s.
//! - `client_stall_timeout` (30 s): a streamed answer whose client has taken nothing
//!   for this long is abandoned and the engine slot behind it freed.
//! - `write_stall_timeout` (60 s): the same for any answer at the socket, a backstop
//!   for whole (non-streamed) answers; longer than the relay's bound so that one acts
//!   first on streams, with its accounting.

mod admission;
mod bind;
mod browser;
pub mod fd_limit;
mod guard;
mod listener;
pub mod relay;
mod serve;
mod stats;

use std::time::Duration;

pub use admission::{AddressKey, Admission, Standing};
pub use bind::{ACCEPT_BACKLOG, bind};
pub use browser::{BrowserPolicy, normalize_host, normalize_origin};
pub use guard::header_bytes;
pub use listener::{Limited, set_nodelay};
pub use serve::{serve, with_guard};
pub use stats::ConnectionStats;

/// How long our HTTP clients keep an idle connection to a peer: under the 30 s a
/// server here keeps one (`header_read_timeout`), so a request never goes out on a
/// connection the peer is closing at that moment (which would count against it).
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(20);

/// Default bound on connections served at once, per server.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default bound on connections open at once from one client address, per server.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// Default time a new connection has to send its first request head.
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What a new connection must show to keep its slot when the server is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitOn {
    /// A whole request head: the rule for public servers.
    RequestHead,
    /// What a handler vouches for (`Standing::prove`): the control API's token.
    Vouched,
}

/// Bounds on what one client may cost a server. See the module documentation for the
/// defaults and the reasons for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once; see the module documentation for who waits.
    pub max_connections: usize,
    /// Connections served at once from one client address (IPv6: its /64).
    pub max_connections_per_address: usize,
    /// Time a new connection has to prove itself (`admit_on`) before it is closed.
    pub head_timeout: Duration,
    /// What proves a connection.
    pub admit_on: AdmitOn,
    /// Request line plus headers, in bytes; beyond, 431.
    pub max_header_bytes: usize,
    /// How long an idle kept-alive connection stays open, and the time to receive the
    /// head of each request after the first.
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
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            head_timeout: DEFAULT_HEAD_TIMEOUT,
            admit_on: AdmitOn::RequestHead,
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
