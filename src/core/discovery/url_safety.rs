//! The URL safety policy for peers learned from trackers and relays. A discovered URL is
//! somebody else's claim; without this check, one hostile announcement could make the
//! router call the cloud metadata service (169.254.169.254), the operator's loopback
//! services or, when asked, anything on the LAN.
//!
//! The policy is pure: it classifies addresses. Resolution happens twice — once when a
//! peer is booked (`check_url`) and again at every connection through the guarded
//! resolver (see `guarded`), which hands the connector only addresses it has checked, so
//! a name that rebinds to a blocked address between the two is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::guarded::Lookup;

/// What kind of address an IP is, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Public,
    Loopback,
    /// 169.254.0.0/16 (cloud metadata lives here) and fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8 and `::`.
    Unspecified,
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// RFC 1918, carrier-grade NAT (100.64.0.0/10), unique-local fc00::/7 and the old
    /// site-local fec0::/10.
    Private,
}

impl AddressKind {
    pub fn describe(self) -> &'static str {
        match self {
            AddressKind::Public => "a public address",
            AddressKind::Loopback => "a loopback address",
            AddressKind::LinkLocal => "a link-local address",
            AddressKind::Unspecified => "an unspecified address",
            AddressKind::Multicast => "a multicast address",
            AddressKind::Broadcast => "the broadcast address",
            AddressKind::Private => "a private-network address",
        }
    }
}

/// Classifies an address. IPv6 forms that carry an IPv4 address (mapped, compatible,
/// NAT64 and 6to4) are judged by the IPv4 address inside, which is where packets go.
pub fn classify(ip: IpAddr) -> AddressKind {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressKind {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        AddressKind::Loopback
    } else if a == 0 {
        AddressKind::Unspecified
    } else if ip.is_link_local() {
        AddressKind::LinkLocal
    } else if ip.is_broadcast() {
        AddressKind::Broadcast
    } else if ip.is_multicast() {
        AddressKind::Multicast
    } else if ip.is_private() || (a == 100 && (b & 0xc0) == 64) {
        AddressKind::Private
    } else {
        AddressKind::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressKind {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        AddressKind::Loopback
    } else if ip.is_unspecified() {
        AddressKind::Unspecified
    } else if ip.is_multicast() {
        AddressKind::Multicast
    } else if (first & 0xffc0) == 0xfe80 {
        AddressKind::LinkLocal
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfec0 {
        AddressKind::Private
    } else {
        AddressKind::Public
    }
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that do.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    // ::a.b.c.d (deprecated "compatible"), but not :: and ::1 themselves.
    if s[..6].iter().all(|&x| x == 0) && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(tail);
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return Some(tail);
    }
    // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Which discovered addresses the router may dial.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Also refuse private networks (RFC 1918, ULA, CGNAT): for nodes on a LAN whose
    /// neighbours should not be reachable through strangers' announcements.
    pub block_private: bool,
    /// Accept loopback and private addresses: a grid that lives on one machine (tests,
    /// demos). Link-local, unspecified, multicast and broadcast stay refused.
    pub allow_local: bool,
}

/// Why a discovered URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeUrl {
    #[error("{url:?} is not a URL: {reason}")]
    Unparsable { url: String, reason: String },
    #[error("{url:?} is not http or https")]
    Scheme { url: String },
    #[error("{url:?} has no host")]
    NoHost { url: String },
    #[error("{host} is {} ({ip})", .kind.describe())]
    Blocked {
        host: String,
        ip: IpAddr,
        kind: AddressKind,
    },
    #[error("{host} does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
}

/// The host of a URL: an address to check now, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlHost {
    Ip(IpAddr),
    Name(String),
}

impl UrlPolicy {
    /// `Ok` when the router may connect to `ip`; otherwise the kind that forbids it.
    pub fn allows(&self, ip: IpAddr) -> Result<(), AddressKind> {
        match classify(ip) {
            AddressKind::Public => Ok(()),
            AddressKind::Loopback if self.allow_local => Ok(()),
            AddressKind::Private if self.allow_local || !self.block_private => Ok(()),
            kind => Err(kind),
        }
    }

    /// The checks that need no DNS: scheme, host, and the address when the host is one.
    pub fn check_syntax(&self, url: &str) -> Result<UrlHost, UnsafeUrl> {
        let parsed = url::Url::parse(url).map_err(|e| UnsafeUrl::Unparsable {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UnsafeUrl::Scheme {
                url: url.to_string(),
            });
        }
        let host = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => UrlHost::Ip(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => UrlHost::Ip(IpAddr::V6(v6)),
            Some(url::Host::Domain(name)) if !name.is_empty() => {
                UrlHost::Name(name.trim_end_matches('.').to_string())
            }
            _ => {
                return Err(UnsafeUrl::NoHost {
                    url: url.to_string(),
                });
            }
        };
        if let UrlHost::Ip(ip) = host {
            self.allows(ip).map_err(|kind| UnsafeUrl::Blocked {
                host: ip.to_string(),
                ip,
                kind,
            })?;
        }
        Ok(host)
    }

    /// The whole check: syntax, then every address the name resolves to. One blocked
    /// address refuses the URL, since the connector might pick that one.
    pub async fn check_url(&self, url: &str, lookup: &dyn Lookup) -> Result<(), UnsafeUrl> {
        let UrlHost::Name(name) = self.check_syntax(url)? else {
            return Ok(());
        };
        let addrs = lookup
            .lookup(&name)
            .await
            .map_err(|e| UnsafeUrl::Unresolvable {
                host: name.clone(),
                reason: e.to_string(),
            })?;
        if addrs.is_empty() {
            return Err(UnsafeUrl::Unresolvable {
                host: name,
                reason: "no addresses".into(),
            });
        }
        for ip in addrs {
            self.allows(ip).map_err(|kind| UnsafeUrl::Blocked {
                host: name.clone(),
                ip,
                kind,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "url_safety_tests.rs"]
mod tests;
