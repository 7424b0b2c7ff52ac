//! The local control API: how `lobstah status`, `lobstah receipts --follow` and the
//! console reach a node running as a daemon. It listens on 127.0.0.1 only and wants a
//! random bearer token that the node writes, mode 0600, to `control.token` in its data
//! directory; `node.json` beside it says where the node listens.
//!
//! `server` is the axum side, `client` the `NodeClient` over HTTP, `files` the token and
//! `node.json`, `ledger` the ledger's reads beside a running node, `sse` the event-stream
//! reader, `attach` the console's "use the running
//! node or start one".

mod attach;
pub mod client;
pub mod files;
mod ledger;
pub mod server;
mod sse;

use std::net::SocketAddr;

pub use attach::{Attached, attach_or_start};
pub use client::ControlClient;
pub use files::{NODE_FILE, NodeInfo, TOKEN_FILE};
pub use server::{app, serve};

/// Refused binds and failed serves of the control API.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the control API listens on loopback only; {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr} for the control API: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the control API's listener, refusing anything but a loopback address: the
/// token keeps other local users out, loopback keeps the network out.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ControlError> {
    if !addr.ip().is_loopback() {
        return Err(ControlError::NotLoopback(addr));
    }
    crate::core::net::bind(addr)
        .await
        .map_err(|source| ControlError::Bind { addr, source })
}
