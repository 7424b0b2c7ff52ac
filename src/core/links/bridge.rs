//! The router's way onto a link: for each linked peer, a Unix socket in a directory only
//! this user can open, whose connections are carried onto new streams of one link to
//! that peer. An HTTP client pointed at the socket reaches the peer's link server, so
//! forwarding, confirmations, reconciliation and jobs use the same client code over a
//! link as over TCP. A Unix socket, not a loopback port: no web page and no other user
//! can reach it to speak with this node's key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::{LinkEndpoint, LinkError, LinkPath, LinkRoute};
use crate::core::protocol::PublicKey;

/// Why a bridge could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot prepare the link socket directory {dir}: {source}")]
    Directory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on the link socket {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Local sockets onto links, one per peer.
pub struct Bridge {
    link: LinkEndpoint,
    dir: PathBuf,
    dial_timeout: Duration,
    peers: Mutex<HashMap<PublicKey, Bridged>>,
}

struct Bridged {
    socket: PathBuf,
    addrs: Vec<SocketAddr>,
    relays: Vec<String>,
    task: JoinHandle<()>,
    client: reqwest::Client,
    link_state: Arc<tokio::sync::Mutex<LinkState>>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let peers = self.peers.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, bridged) in peers.drain() {
            bridged.task.abort();
            let _ = std::fs::remove_file(&bridged.socket);
        }
    }
}

impl Bridge {
    /// Sockets go in `dir`, which is created (or tightened) to be this user's only.
    /// A dial that has not completed within `dial_timeout` fails, as a TCP connect
    /// would, so the router's failover moves on instead of waiting out QUIC's idle
    /// timeout on a peer that is gone.
    pub fn new(
        link: LinkEndpoint,
        dir: &Path,
        dial_timeout: Duration,
    ) -> Result<Self, BridgeError> {
        let fail = |source| BridgeError::Directory {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
        Ok(Bridge {
            link,
            dir: dir.to_path_buf(),
            dial_timeout,
            peers: Mutex::new(HashMap::new()),
        })
    }

    pub fn link(&self) -> &LinkEndpoint {
        &self.link
    }

    /// An HTTP client whose every connection goes to `peer` over its link, dialled at
    /// `addrs` (and the endpoint's relays and `relays`, the ones the peer announced). The socket and its client (from `builder`)
    /// are made on first use and again when the addresses change; otherwise reused, so
    /// the client's connection pool lasts.
    pub fn client(
        &self,
        peer: &PublicKey,
        addrs: &[SocketAddr],
        relays: &[String],
        builder: impl FnOnce() -> reqwest::ClientBuilder,
    ) -> Result<reqwest::Client, String> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bridged) = peers.get(peer)
            && bridged.addrs == addrs
            && bridged.relays == relays
            && !bridged.task.is_finished()
        {
            return Ok(bridged.client.clone());
        }
        if let Some(old) = peers.remove(peer) {
            old.task.abort();
        }
        let socket = self.dir.join(format!("{}.sock", &peer.to_string()[4..20]));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).map_err(|source| {
            BridgeError::Listen {
                path: socket.clone(),
                source,
            }
            .to_string()
        })?;
        let client = builder()
            .unix_socket(socket.clone())
            .build()
            .map_err(|e| e.to_string())?;
        let link_state = Arc::new(tokio::sync::Mutex::new(LinkState::Idle));
        let carrier = Carrier {
            link: self.link.clone(),
            peer: *peer,
            addrs: addrs.to_vec(),
            relays: relays.to_vec(),
            dial_timeout: self.dial_timeout,
            link_state: link_state.clone(),
        };
        let task = tokio::spawn(carrier.run(listener));
        peers.insert(
            *peer,
            Bridged {
                socket,
                addrs: addrs.to_vec(),
                relays: relays.to_vec(),
                task,
                client: client.clone(),
                link_state,
            },
        );
        Ok(client)
    }

    /// Ends the way onto `peer`'s link: its socket is removed and no new stream is
    /// carried (streams already carried finish). For a peer that left the book or is no
    /// longer reached by link; a later `client` for it starts afresh.
    pub fn forget(&self, peer: &PublicKey) {
        let removed = self
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
        if let Some(bridged) = removed {
            bridged.task.abort();
            let _ = std::fs::remove_file(&bridged.socket);
        }
    }

    /// Whether the last dial of `peer`'s link failed less than `within` ago (a dial under
    /// way counts as not failed).
    pub fn failed_within(&self, peer: &PublicKey, within: Duration) -> bool {
        self.read_state(
            peer,
            |state| matches!(state, LinkState::Failed(at, _) if at.elapsed() < within),
        )
        .unwrap_or(false)
    }

    /// `read` on the state of `peer`'s link; None when there is no bridge to it or a
    /// dial holds the state right now (readers never wait for a dial).
    fn read_state<T>(&self, peer: &PublicKey, read: impl FnOnce(&LinkState) -> T) -> Option<T> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let state = peers.get(peer)?.link_state.try_lock().ok()?;
        Some(read(&state))
    }

    /// The selected path of the open link to `peer`; None when there is no open link
    /// (never dialled, failed, closed, or being dialled right now).
    pub fn path(&self, peer: &PublicKey) -> Option<LinkPath> {
        self.read_state(peer, |state| {
            let LinkState::Up(connection) = state else {
                return None;
            };
            if connection.close_reason().is_some() {
                return None;
            }
            let paths = connection.paths();
            let selected = paths.iter().find(|p| p.is_selected())?;
            Some(LinkPath {
                route: if selected.is_relay() {
                    LinkRoute::Relayed
                } else {
                    LinkRoute::Direct
                },
                rtt: selected.rtt(),
            })
        })
        .flatten()
    }
}

/// Carries each local connection onto a new stream of the one link to a peer, dialling
/// the link when there is none or it has closed.
#[derive(Clone)]
struct Carrier {
    link: LinkEndpoint,
    peer: PublicKey,
    addrs: Vec<SocketAddr>,
    relays: Vec<String>,
    dial_timeout: Duration,
    link_state: Arc<tokio::sync::Mutex<LinkState>>,
}

/// The one link to a peer, or why there is none.
enum LinkState {
    Idle,
    Up(iroh::endpoint::Connection),
    /// The last dial failed then; streams arriving soon after fail at once rather than
    /// each waiting out a dial of its own.
    Failed(Instant, String),
}

/// How long a failed dial answers for the streams that follow it.
const FAILED_DIAL_HOLD: Duration = Duration::from_secs(1);

impl Carrier {
    async fn run(self, listener: UnixListener) {
        loop {
            let Ok((local, _)) = listener.accept().await else {
                break;
            };
            let carrier = self.clone();
            tokio::spawn(async move {
                if let Err(e) = carrier.carry(local).await {
                    tracing::debug!(peer = %carrier.peer.short(), error = %e, "link stream failed");
                }
            });
        }
    }

    async fn connection(&self) -> Result<iroh::endpoint::Connection, String> {
        let mut state = self.link_state.lock().await;
        match &*state {
            LinkState::Up(c) if c.close_reason().is_none() => return Ok(c.clone()),
            LinkState::Failed(at, reason) if at.elapsed() < FAILED_DIAL_HOLD => {
                return Err(reason.clone());
            }
            _ => {}
        }
        let dialled = tokio::time::timeout(
            self.dial_timeout,
            self.link.connect(&self.peer, &self.addrs, &self.relays),
        )
        .await;
        let result = match dialled {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(LinkError::Connect {
                peer: self.peer.short(),
                reason: format!("no answer within {:?}", self.dial_timeout),
            }
            .to_string()),
        };
        *state = match &result {
            Ok(c) => LinkState::Up(c.clone()),
            Err(reason) => LinkState::Failed(Instant::now(), reason.clone()),
        };
        result
    }

    async fn carry(&self, mut local: UnixStream) -> Result<(), String> {
        let connection = self.connection().await?;
        let (send, recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
        let mut remote = tokio::io::join(recv, send);
        tokio::io::copy_bidirectional(&mut local, &mut remote)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
