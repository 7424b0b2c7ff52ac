//! A node's link endpoint: an iroh endpoint whose secret key is the node's identity
//! seed, so its endpoint id is its lobstah key. Nothing here contacts a server the user
//! did not name: no address lookup, and relays only those configured.

use std::net::SocketAddr;

use iroh::endpoint::presets;
use iroh::{Endpoint, EndpointAddr, RelayConfig, RelayMap, RelayMode, RelayUrl, SecretKey};
use iroh_relay::RelayQuicConfig;
use iroh_relay::tls::CaTlsConfig;
use rustls::pki_types::CertificateDer;

use super::ALPN;
use crate::core::protocol::{Identity, LinkDial, MAX_ANNOUNCED_ADDRS, PublicKey};

/// Where a link endpoint listens and which relays it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// The UDP address to bind (port 0: any).
    pub bind: SocketAddr,
    /// Relay URLs to keep a home on and dial through; empty: direct addresses only.
    pub relays: Vec<String>,
    /// Certificates trusted, beside the public roots, for relays' address discovery
    /// (a self-hosted relay's own, from `lobstah relay start`).
    pub relay_roots: Vec<CertificateDer<'static>>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            relays: Vec::new(),
            relay_roots: Vec::new(),
        }
    }
}

/// Why a link endpoint could not start or dial.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("relay URL {url:?} is not valid: {reason}")]
    RelayUrl { url: String, reason: String },
    #[error("cannot bind the link endpoint on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot reach peer {peer} over its link: {reason}")]
    Connect { peer: String, reason: String },
}

/// Where a relay answers address discovery: a plain-HTTP relay (a self-hosted one,
/// `lobstah relay start`) on UDP at its URL's port number; an HTTPS relay on iroh's
/// usual port.
fn relay_config(url: &RelayUrl) -> RelayConfig {
    let quic_port = match url.scheme() {
        "http" => url.port_or_known_default(),
        _ => None,
    }
    .unwrap_or(iroh_relay::defaults::DEFAULT_RELAY_QUIC_PORT);
    RelayConfig::new(url.clone(), Some(RelayQuicConfig::new(quic_port)))
}

/// The iroh endpoint id of a lobstah key (the same 32 bytes).
pub fn endpoint_id(key: &PublicKey) -> Option<iroh::EndpointId> {
    iroh::EndpointId::from_bytes(key.as_bytes()).ok()
}

/// The lobstah key of an iroh endpoint id.
pub fn public_key_of(id: &iroh::EndpointId) -> PublicKey {
    PublicKey::from_bytes(*id.as_bytes())
}

/// A bound link endpoint; cheap to clone.
#[derive(Debug, Clone)]
pub struct LinkEndpoint {
    endpoint: Endpoint,
    relays: Vec<RelayUrl>,
}

impl LinkEndpoint {
    pub async fn bind(identity: &Identity, config: &LinkConfig) -> Result<Self, LinkError> {
        let relays = config
            .relays
            .iter()
            .map(|url| {
                url.parse::<RelayUrl>().map_err(|e| LinkError::RelayUrl {
                    url: url.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let relay_mode = if relays.is_empty() {
            RelayMode::Disabled
        } else {
            RelayMode::Custom(relays.iter().map(relay_config).collect::<RelayMap>())
        };
        let bind_error = |reason: String| LinkError::Bind {
            addr: config.bind,
            reason,
        };
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::from_bytes(&identity.seed()))
            .alpns(vec![ALPN.to_vec()])
            .relay_mode(relay_mode)
            .ca_tls_config(CaTlsConfig::embedded().with_extra_roots(config.relay_roots.clone()))
            .clear_ip_transports()
            .bind_addr(config.bind)
            .map_err(|e| bind_error(e.to_string()))?
            .bind()
            .await
            .map_err(|e| bind_error(e.to_string()))?;
        Ok(LinkEndpoint { endpoint, relays })
    }

    pub fn key(&self) -> PublicKey {
        public_key_of(&self.endpoint.id())
    }

    /// The addresses this endpoint can be dialled at, as far as it knows them now.
    pub fn addr(&self) -> EndpointAddr {
        let mut addr = EndpointAddr::new(self.endpoint.id());
        for socket in self.endpoint.bound_sockets() {
            addr = addr.with_ip_addr(socket);
        }
        for relay in &self.relays {
            addr = addr.with_relay_url(relay.clone());
        }
        addr
    }

    /// What an announcement says about reaching this endpoint: the relays it keeps a
    /// home on (as configured) and the direct addresses it knows now (its interfaces',
    /// and its public one once a relay's address discovery told it).
    pub fn dial(&self) -> LinkDial {
        let known = self.endpoint.addr();
        LinkDial {
            relays: self.relays.iter().map(|r| r.to_string()).collect(),
            addrs: known
                .ip_addrs()
                .filter(|a| !a.ip().is_unspecified())
                .take(MAX_ANNOUNCED_ADDRS)
                .map(|a| a.to_string())
                .collect(),
        }
    }

    /// The UDP sockets bound, for tests and `status`.
    pub fn bound_sockets(&self) -> Vec<SocketAddr> {
        self.endpoint.bound_sockets()
    }

    pub(super) fn inner(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Connects to `peer` at `addrs`, through the relays this endpoint knows and
    /// `peer_relays` (the ones it announced; ones that do not parse are skipped).
    pub async fn connect(
        &self,
        peer: &PublicKey,
        addrs: &[SocketAddr],
        peer_relays: &[String],
    ) -> Result<iroh::endpoint::Connection, LinkError> {
        let fail = |reason: String| LinkError::Connect {
            peer: peer.short(),
            reason,
        };
        let id = endpoint_id(peer).ok_or_else(|| fail("not a valid Ed25519 key".into()))?;
        let mut target = EndpointAddr::new(id);
        for addr in addrs {
            target = target.with_ip_addr(*addr);
        }
        for relay in &self.relays {
            target = target.with_relay_url(relay.clone());
        }
        for relay in peer_relays
            .iter()
            .filter_map(|r| r.parse::<RelayUrl>().ok())
        {
            target = target.with_relay_url(relay);
        }
        self.endpoint
            .connect(target, ALPN)
            .await
            .map_err(|e| fail(e.to_string()))
    }

    /// Waits for the next link made to this endpoint and returns the key its handshake
    /// proved, leaving the link to close; None when the endpoint closed or the handshake
    /// failed. For checks of reachability (`serve_links` is what serves).
    pub async fn accept_one(&self) -> Option<PublicKey> {
        let incoming = self.endpoint.accept().await?;
        let connection = incoming.accept().ok()?.await.ok()?;
        Some(public_key_of(&connection.remote_id()))
    }

    pub async fn close(&self) {
        self.endpoint.close().await;
    }
}
