//! The peer-link flags every command that starts a node takes (`--headless`, `tui`,
//! `worker start`, `router start`): they beat the environment and config.toml.

use clap::Args;

use crate::core::config::Overrides;

#[derive(Debug, Clone, Default, Args)]
pub struct LinkFlags {
    /// Open the encrypted peer-link endpoint (iroh, UDP), keyed by this node's identity.
    #[arg(long)]
    pub links: bool,
    /// UDP port of the peer-link endpoint (default: any free port).
    #[arg(long, value_name = "PORT")]
    pub links_port: Option<String>,
    /// A relay for peer links (repeatable); implies --links. Nothing else is contacted.
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,
    /// A self-hosted relay's certificate file, trusted for its address discovery
    /// (repeatable; `lobstah relay start` prints where it is).
    #[arg(long = "relay-cert", value_name = "FILE")]
    pub relay_certs: Vec<String>,
}

impl LinkFlags {
    pub fn apply(&self, o: &mut Overrides) {
        if self.links {
            o.set("links.enabled", "--links", "true");
        }
        if let Some(port) = &self.links_port {
            o.set("links.port", "--links-port", port);
        }
        if !self.relays.is_empty() {
            o.set("links.enabled", "--relay", "true");
            o.set("links.relays", "--relay", self.relays.join(","));
        }
        if !self.relay_certs.is_empty() {
            o.set(
                "links.relay_certs",
                "--relay-cert",
                self.relay_certs.join(","),
            );
        }
    }
}
