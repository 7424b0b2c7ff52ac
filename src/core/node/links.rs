//! The node's peer-link endpoint: bound at start when `links.enabled`, served by the
//! worker beside its TCP listener, and dialled from by the router through a bridge in
//! the node's data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::start::NodeError;
use crate::core::config::Config;
use crate::core::links::{LinkConfig, LinkEndpoint};
use crate::core::protocol::Identity;
use crate::core::router::RouterService;
use crate::core::worker::Worker;

/// How long the router waits for a link to a peer before trying another.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the endpoint if the config asks for one and gives the router its bridge.
pub(super) async fn open(
    config: &Config,
    identity: &Identity,
    router: &Arc<RouterService>,
    data_dir: &Path,
) -> Result<Option<LinkEndpoint>, NodeError> {
    if !config.links.enabled {
        return Ok(None);
    }
    let link_config = LinkConfig {
        bind: SocketAddr::from(([0, 0, 0, 0], config.links.port)),
        relays: config.links.relays.clone(),
        relay_roots: relay_roots(&config.links.relay_certs)?,
    };
    let link = LinkEndpoint::bind(identity, &link_config).await?;
    tracing::info!(
        key = %link.key(),
        sockets = ?link.bound_sockets(),
        relays = ?config.links.relays,
        "peer links open"
    );
    attach(router, &link, data_dir)?;
    Ok(Some(link))
}

#[cfg(unix)]
fn attach(router: &RouterService, link: &LinkEndpoint, data_dir: &Path) -> Result<(), NodeError> {
    let bridge =
        crate::core::links::Bridge::new(link.clone(), &data_dir.join("links"), DIAL_TIMEOUT)?;
    router.attach_links(Arc::new(bridge));
    Ok(())
}

#[cfg(not(unix))]
fn attach(
    _router: &RouterService,
    _link: &LinkEndpoint,
    _data_dir: &Path,
) -> Result<(), NodeError> {
    let _ = DIAL_TIMEOUT;
    tracing::warn!(
        "this router cannot dial peer links on this system; the worker still serves them"
    );
    Ok(())
}

/// The certificates in the PEM files named, each file one or more.
fn relay_roots(files: &[PathBuf]) -> Result<Vec<CertificateDer<'static>>, NodeError> {
    let mut roots = Vec::new();
    for file in files {
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| NodeError::RelayCert {
                file: file.clone(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(NodeError::RelayCert {
                file: file.clone(),
                reason: "no certificate in it".into(),
            });
        }
        roots.extend(certs);
    }
    Ok(roots)
}

/// The worker on TCP and, with an endpoint, on its links too; `stop` ends both.
pub(super) async fn serve_worker(
    worker: Arc<Worker>,
    listener: TcpListener,
    link: Option<LinkEndpoint>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let links = link.map(|link| tokio::spawn(worker.clone().serve_links(link, stop.clone())));
    let result = worker.serve(listener, stop).await;
    if let Some(links) = links {
        let _ = links.await;
    }
    result
}
