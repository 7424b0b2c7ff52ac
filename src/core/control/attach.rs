//! What `lobstah tui` does first: attach to the node already running on this data
//! directory (through its control API), or start one in this process.

use std::sync::Arc;

use super::client::ControlClient;
use crate::core::config::Config;
use crate::core::node::{ClientError, Node, NodeClient, NodeDeps, NodeError, NodeHandle};
use crate::core::paths::Paths;

/// A node to talk to: someone else's process, or ours.
#[derive(Clone)]
pub enum Attached {
    /// A daemon (launchd, systemd, another `lobstah --headless`) runs it.
    Remote(ControlClient),
    /// Started here; stop it with `NodeHandle::close` when done.
    Local(NodeHandle),
}

impl Attached {
    pub fn client(&self) -> Arc<dyn NodeClient> {
        match self {
            Attached::Remote(c) => Arc::new(c.clone()),
            Attached::Local(h) => Arc::new(h.clone()),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Attached::Local(_))
    }
}

/// Attaches to the node running on `paths` if one answers, otherwise starts one with
/// `config`. A stale `node.json` (a node that died without cleaning up) is ignored.
pub async fn attach_or_start(
    config: Config,
    paths: Paths,
    deps: NodeDeps,
) -> Result<Attached, NodeError> {
    if let Some(remote) = answering(&paths).await {
        return Ok(Attached::Remote(remote));
    }
    match Node::start_with(config, paths.clone(), deps).await {
        Ok(handle) => Ok(Attached::Local(handle)),
        // Another process won a race to start: use it.
        Err(e @ NodeError::AlreadyRunning { .. }) => match answering(&paths).await {
            Some(remote) => Ok(Attached::Remote(remote)),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

async fn answering(paths: &Paths) -> Option<ControlClient> {
    let client = ControlClient::discover(paths.data_dir()).ok()?;
    match client.snapshot().await {
        Ok(_) => Some(client),
        Err(ClientError::Unreachable(_)) => None,
        // It answered (a refusal is an answer): the node is there.
        Err(_) => Some(client),
    }
}
