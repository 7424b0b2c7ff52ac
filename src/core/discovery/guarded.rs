//! The connection-time half of URL safety: a DNS resolver for reqwest that resolves a
//! peer's name, drops every address the policy forbids, and hands the connector only what
//! is left. Because the connector dials exactly the addresses returned here, a name that
//! passed the check at sync time and rebinds to 127.0.0.1 or 169.254.169.254 afterwards
//! finds nothing to connect to.
//!
//! Addresses written as IP literals never reach a resolver; `UrlPolicy::check_syntax`
//! covers those before a request is sent.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::url_safety::UrlPolicy;

/// Name resolution, injectable so tests can make a name answer what they need.
pub trait Lookup: Send + Sync + 'static {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A fixed table of names, for tests: unknown names fail to resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticLookup {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticLookup {
    pub fn with(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.names.insert(name.to_ascii_lowercase(), addrs.to_vec());
        self
    }
}

impl Lookup for StaticLookup {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let found = self.names.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown name"))
        })
    }
}

/// reqwest's resolver for discovered peers.
pub struct GuardedResolver {
    policy: UrlPolicy,
    lookup: Arc<dyn Lookup>,
}

impl GuardedResolver {
    pub fn new(policy: UrlPolicy, lookup: Arc<dyn Lookup>) -> Self {
        GuardedResolver { policy, lookup }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let lookup = self.lookup.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved = lookup.lookup(&host).await?;
            let mut refused = Vec::new();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|ip| match policy.allows(*ip) {
                    Ok(()) => true,
                    Err(kind) => {
                        refused.push(format!("{ip} ({})", kind.describe()));
                        false
                    }
                })
                // Port 0: reqwest puts the URL's port (or the scheme's default) in.
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if allowed.is_empty() {
                let reason = if refused.is_empty() {
                    format!("{host} resolves to no address")
                } else {
                    format!(
                        "{host} resolves only to blocked addresses: {}",
                        refused.join(", ")
                    )
                };
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, reason).into());
            }
            if !refused.is_empty() {
                tracing::warn!(%host, refused = %refused.join(", "), "dropped blocked addresses of a discovered peer");
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client for peers the operator did not vouch for: resolution through the
/// guard, no proxy (a proxy would make the connection somewhere other than the checked
/// address), and no redirects (a worker has no reason to send one, and following it is
/// how a public URL reaches a private one).
pub fn guarded_client(
    policy: UrlPolicy,
    lookup: Arc<dyn Lookup>,
    connect_timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(crate::core::net::CLIENT_POOL_IDLE)
        .tcp_nodelay(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver::new(policy, lookup)))
        .build()
}
