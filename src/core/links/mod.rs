//! Peer links: encrypted QUIC connections between nodes, dialled by key (iroh). A node's
//! link endpoint uses its lobstah identity as its key, so the TLS 1.3 handshake proves
//! who is on the other end and a request needs no signature of its own to name its
//! requester. The worker serves its HTTP API over links (`serve`); the router reaches a
//! linked peer through a local socket that carries HTTP onto the link (`bridge`), so
//! every request path it has over TCP works over a link unchanged.

#[cfg(unix)]
mod bridge;
mod endpoint;
mod relay;
mod serve;

#[cfg(unix)]
pub use bridge::{Bridge, BridgeError};
pub use endpoint::{LinkConfig, LinkEndpoint, LinkError, endpoint_id, public_key_of};
pub use relay::{RelayCertificate, RelayError, RelaySettings, RunningRelay};
pub use serve::serve_links;

use std::time::Duration;

use axum::extract::Extension;

use crate::core::protocol::PublicKey;

/// The protocol spoken on a link: HTTP/1.1, one request after another on each stream.
pub const ALPN: &[u8] = b"lobstah/http/1";

/// Set on a request that came over a peer link: the key the link's handshake proved.
/// Only the link server inserts it; a TCP request can never carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPeer(pub PublicKey);

/// The proved key of a request's link, if it came over one.
pub fn linked(link: Option<Extension<LinkPeer>>) -> Option<PublicKey> {
    link.map(|Extension(LinkPeer(key))| key)
}

/// How a link to a peer is carried right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRoute {
    /// UDP straight between the two nodes (on one network, or after hole punching).
    Direct,
    /// Through a relay, until (if ever) hole punching succeeds.
    Relayed,
}

impl LinkRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRoute::Direct => "direct",
            LinkRoute::Relayed => "relayed",
        }
    }
}

/// The path a peer's link takes and its round-trip time, as QUIC measures it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkPath {
    pub route: LinkRoute,
    pub rtt: Duration,
}
