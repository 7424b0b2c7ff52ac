//! The commands front ends send: add or remove a peer, sync peers from the trackers
//! (advertising lives in `advertise`). Each answers with a sentence for the operator.

use std::net::IpAddr;
use std::sync::Arc;

use super::handle::Core;
use super::types::{CommandOutcome, CoreEvent, NodeCommand};
use crate::core::peers::{AddOutcome, PeerSource};
use crate::core::protocol::PublicKey;

pub(super) fn ok(message: impl Into<String>) -> CommandOutcome {
    CommandOutcome {
        ok: true,
        message: message.into(),
    }
}

pub(super) fn fail(message: impl Into<String>) -> CommandOutcome {
    CommandOutcome {
        ok: false,
        message: message.into(),
    }
}

/// Where a URL points, for the warnings a manual peer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    Loopback,
    Local,
    Elsewhere,
}

pub(super) fn reach(url: &str) -> Reach {
    let Ok(parsed) = url::Url::parse(url) else {
        return Reach::Elsewhere;
    };
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain("localhost")) => return Reach::Loopback,
        Some(url::Host::Domain(d)) if d.ends_with(".local") || d.ends_with(".lan") => {
            return Reach::Local;
        }
        _ => return Reach::Elsewhere,
    };
    if ip.is_loopback() || ip.is_unspecified() {
        return Reach::Loopback;
    }
    let local = match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    };
    if local {
        Reach::Local
    } else {
        Reach::Elsewhere
    }
}

impl Core {
    pub(super) async fn command(self: &Arc<Self>, command: NodeCommand) -> CommandOutcome {
        match command {
            NodeCommand::AddPeer { pubkey, url, label } => {
                self.add_peer(&pubkey, &url, label.as_deref())
            }
            NodeCommand::AddLinkedPeer {
                pubkey,
                url,
                label,
                addrs,
            } => self.add_linked_peer(&pubkey, url.as_deref(), label.as_deref(), &addrs),
            NodeCommand::RemovePeer { pubkey } => self.remove_peer(&pubkey),
            NodeCommand::SetAdvertising { on } => self.switch_advertising(on).await,
            NodeCommand::SyncPeers => self.sync_peers().await,
            NodeCommand::DiscoverNostr { relays } => self.discover_nostr(&relays).await,
            NodeCommand::SyncTracker { url } => match crate::core::peers::normalize_url(&url) {
                Ok(url) => self.sync_from(&[url]).await,
                Err(e) => fail(format!("cannot sync from that tracker: {e}")),
            },
        }
    }

    /// The router re-reads the book and asks new peers for their capacity in the
    /// background; the monitor publishes what it learns.
    pub(super) fn peers_changed(self: &Arc<Self>) -> Result<(), String> {
        self.router.reload_peers().map_err(|e| e.to_string())?;
        self.publish(CoreEvent::PeersChanged);
        let router = self.router.clone();
        tokio::spawn(async move { router.refresh_capacity(false).await });
        Ok(())
    }

    fn add_linked_peer(
        self: &Arc<Self>,
        pubkey: &str,
        url: Option<&str>,
        label: Option<&str>,
        addrs: &[String],
    ) -> CommandOutcome {
        let pubkey = match PublicKey::parse(pubkey.trim()) {
            Ok(pk) => pk,
            Err(e) => return fail(e.to_string()),
        };
        let mut parsed = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match addr.trim().parse::<std::net::SocketAddr>() {
                Ok(a) => parsed.push(a),
                Err(_) => return fail(format!("{addr:?} is not an IP:PORT address")),
            }
        }
        let now = self.clock.now_ms();
        let book = self.router.book();
        let added = url
            .map(|url| book.add(pubkey, url, label, PeerSource::Manual, now))
            .transpose()
            .and_then(|_| book.add_linked(pubkey, &parsed, label, PeerSource::Manual, now));
        if let Err(e) = added {
            return fail(e.to_string());
        }
        let message = format!("linked peer {} at {}", pubkey.short(), addrs.join(" "));
        if let Err(e) = self.peers_changed() {
            return fail(format!(
                "{message}, but the router could not reload its peers: {e}"
            ));
        }
        if self.router.link_endpoint().is_none() {
            return ok(format!(
                "{message}; note: peer links are off on this node (links.enabled), so it cannot reach it yet"
            ));
        }
        ok(message)
    }

    fn add_peer(self: &Arc<Self>, pubkey: &str, url: &str, label: Option<&str>) -> CommandOutcome {
        let pubkey = match PublicKey::parse(pubkey.trim()) {
            Ok(pk) => pk,
            Err(e) => return fail(e.to_string()),
        };
        let now = self.clock.now_ms();
        let outcome = match self
            .router
            .book()
            .add(pubkey, url, label, PeerSource::Manual, now)
        {
            Ok(o) => o,
            Err(e) => return fail(e.to_string()),
        };
        let url = self
            .router
            .book()
            .get(&pubkey)
            .ok()
            .flatten()
            .map_or_else(|| url.trim().to_string(), |p| p.url);
        let mut message = match outcome {
            AddOutcome::Added => format!("added peer {} at {url}", pubkey.short()),
            AddOutcome::Updated => format!("updated peer {} at {url}", pubkey.short()),
            AddOutcome::Unchanged => {
                return ok(format!(
                    "peer {} at {url} is already in the book",
                    pubkey.short()
                ));
            }
        };
        if let Err(e) = self.peers_changed() {
            return fail(format!(
                "{message}, but the router could not reload its peers: {e}"
            ));
        }
        if pubkey == self.me() {
            message.push_str(" (this node's own identity: the router will use its own worker)");
        }
        match reach(&url) {
            Reach::Loopback => message.push_str("; note: the address is on this machine"),
            Reach::Local => message.push_str("; note: the address is on the local network"),
            Reach::Elsewhere => {}
        }
        ok(message)
    }

    fn remove_peer(self: &Arc<Self>, pubkey: &str) -> CommandOutcome {
        let pubkey = match PublicKey::parse(pubkey.trim()) {
            Ok(pk) => pk,
            Err(e) => return fail(e.to_string()),
        };
        match self.router.book().remove(&pubkey) {
            Ok(true) => match self.peers_changed() {
                Ok(()) => ok(format!("removed peer {}", pubkey.short())),
                Err(e) => fail(format!(
                    "removed peer {}, but the router could not reload: {e}",
                    pubkey.short()
                )),
            },
            Ok(false) => fail(format!("no peer {} in the peer book", pubkey.short())),
            Err(e) => fail(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_table() {
        let cases = [
            ("http://127.0.0.1:1", Reach::Loopback),
            ("http://localhost:1", Reach::Loopback),
            ("http://[::1]:1", Reach::Loopback),
            ("http://0.0.0.0:1", Reach::Loopback),
            ("http://192.168.1.4:1", Reach::Local),
            ("http://10.0.0.1", Reach::Local),
            ("http://[fd00::1]", Reach::Local),
            ("http://my-mac.local:17474", Reach::Local),
            ("http://203.0.113.9", Reach::Elsewhere),
            ("https://worker.example", Reach::Elsewhere),
        ];
        for (url, want) in cases {
            assert_eq!(reach(url), want, "{url}");
        }
    }
}
