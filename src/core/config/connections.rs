//! The connection settings the router and the worker each have: how many connections
//! they serve at once, how many of those one client address may hold, and how long a
//! new connection has to send its first request head (see `net` for the defaults'
//! reasons).

use std::time::Duration;

use super::parse::parse_positive;
use super::{ConfigError, Resolver};
use crate::core::net::{self, ServerLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub head_timeout_secs: u64,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_connections: net::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: net::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            head_timeout_secs: net::DEFAULT_HEAD_TIMEOUT.as_secs(),
        }
    }
}

impl ConnectionSettings {
    /// `limits` with these settings in place.
    pub fn apply(&self, limits: ServerLimits) -> ServerLimits {
        ServerLimits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            head_timeout: Duration::from_secs(self.head_timeout_secs),
            ..limits
        }
    }
}

/// The keys of one server's connection settings, in the order of the fields.
pub(super) struct ConnectionKeys {
    pub max_connections: &'static str,
    pub per_address: &'static str,
    pub head_timeout_secs: &'static str,
}

pub(super) fn read(
    r: &mut Resolver<'_>,
    keys: ConnectionKeys,
) -> Result<ConnectionSettings, ConfigError> {
    let default = ConnectionSettings::default();
    Ok(ConnectionSettings {
        max_connections: r.get(
            keys.max_connections,
            default.max_connections,
            parse_positive,
        )?,
        max_connections_per_address: r.get(
            keys.per_address,
            default.max_connections_per_address,
            parse_positive,
        )?,
        head_timeout_secs: r.get(
            keys.head_timeout_secs,
            default.head_timeout_secs,
            parse_positive,
        )?,
    })
}
