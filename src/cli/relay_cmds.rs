//! `lobstah relay start`: a self-hosted relay for peer links, in the foreground until
//! SIGINT or SIGTERM. It needs no identity and no database; its only state is the
//! certificate its address discovery presents, kept in `<home>/relay/`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::serve_cmds::shutdown_on_signals;
use crate::core::links::{RelayCertificate, RelaySettings, RunningRelay};
use crate::core::paths::Paths;
use crate::core::protocol::PublicKey;

/// The port a relay listens on unless told: TCP for relaying, UDP for address discovery.
const DEFAULT_RELAY_PORT: u16 = 3340;

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on (TCP and UDP). Useful to others only beyond loopback.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on: TCP for relaying, the same number on UDP for address discovery.
    #[arg(long, default_value_t = DEFAULT_RELAY_PORT)]
    pub port: u16,
    /// The name or IP address nodes reach this relay by (in their relay URL), which its
    /// certificate is made for (default: --host).
    #[arg(long, value_name = "HOST")]
    pub public_name: Option<String>,
    /// Admit only this key (repeatable): a relay for a group of friends.
    #[arg(long = "admit", value_name = "PUBKEY")]
    pub admit: Vec<String>,
    /// Relay only: no address discovery, so links through this relay never go direct.
    #[arg(long)]
    pub no_discovery: bool,
}

pub(super) async fn relay_start(paths: &Paths, args: RelayArgs) -> anyhow::Result<ExitCode> {
    let admit_only = if args.admit.is_empty() {
        None
    } else {
        let keys = args
            .admit
            .iter()
            .map(|k| k.parse::<PublicKey>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("--admit takes lob1 keys")?;
        Some(keys)
    };
    let name = args
        .public_name
        .clone()
        .unwrap_or_else(|| args.host.to_string());
    if args.port == 0 && !args.no_discovery {
        anyhow::bail!(
            "--port 0 cannot be used with address discovery: nodes find it on UDP at the relay URL's port"
        );
    }
    let certificate = RelayCertificate::load_or_create(&paths.data_dir().join("relay"), &name)?;
    let bind = SocketAddr::new(args.host, args.port);
    let settings = RelaySettings {
        http_bind: bind,
        quic_bind: (!args.no_discovery).then_some(bind),
        admit_only,
    };
    if !args.host.is_loopback() {
        tracing::warn!(%bind, "the relay listens beyond loopback: any node that can reach it may relay through it unless --admit limits it");
    }
    let relay = RunningRelay::spawn(&settings, &certificate)
        .await
        .with_context(|| format!("cannot start the relay on {bind}"))?;
    let http = relay
        .http_addr()
        .context("the relay started without its HTTP side")?;
    let url_host = match name.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => name.clone(),
    };
    // Scripts and tests wait for the first line to learn the address (port 0).
    let mut out = std::io::stdout().lock();
    let discovery = match relay.quic_addr() {
        Some(quic) => format!(
            "address discovery on udp {quic}; nodes trust it with --relay-cert {} (sha256 {})",
            certificate.cert_path.display(),
            certificate.fingerprint()
        ),
        None => "no address discovery: links through it stay relayed".to_string(),
    };
    writeln!(
        out,
        "relay listening on http://{http} (relay URL http://{url_host}:{})\n{discovery}",
        http.port()
    )
    .and_then(|()| out.flush())
    .context("cannot write to stdout")?;
    drop(out);
    shutdown_on_signals().cancelled().await;
    relay.shutdown().await;
    tracing::info!("relay stopped");
    Ok(ExitCode::SUCCESS)
}
