//! The connection flags `lobstah worker start` and `lobstah router start` share: the
//! bounds that keep one client (or a flood from one address) from holding the server.

use clap::Args;

use crate::core::config::ConnectionSettings;
use crate::core::net;

#[derive(Debug, Clone, Args)]
pub struct ConnectionFlags {
    /// Connections served at once. When all are taken, the oldest one that has not yet
    /// sent a request gives way to a newcomer; if none, newcomers wait to be accepted.
    #[arg(long, default_value_t = net::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections one client address (IPv6: its /64) may hold open; one more gets 503.
    #[arg(long, value_name = "N", default_value_t = net::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: usize,
    /// Seconds a new connection has to send its first request head before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = net::DEFAULT_HEAD_TIMEOUT.as_secs())]
    pub head_timeout: u64,
}

impl ConnectionFlags {
    /// The flags as the server's connection settings (the node raises the open-file
    /// limit to fit them when it starts).
    pub fn settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            max_connections: self.max_connections.max(1),
            max_connections_per_address: self.max_connections_per_address.max(1),
            head_timeout_secs: self.head_timeout.max(1),
        }
    }
}
