//! A self-hosted relay (`lobstah relay start`): the iroh relay server, which carries
//! links between nodes that cannot reach each other directly and tells each node the
//! public address its packets come from (QUIC address discovery), which hole punching
//! needs. The relay only ever sees end-to-end encrypted QUIC, so its HTTP side may be
//! plain; its address-discovery side is TLS and presents a self-signed certificate kept
//! in the relay's directory, which nodes trust by file (`links.relay_certs`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iroh_relay::server::{
    Access, AccessControl, ClientRequest, QuicConfig, RelayConfig, Server, ServerConfig,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::endpoint::endpoint_id;
use crate::core::protocol::PublicKey;

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot read or write the relay certificate in {dir}: {reason}")]
    Certificate { dir: PathBuf, reason: String },
    #[error("cannot start the relay: {0}")]
    Spawn(String),
}

/// What a relay serves and to whom.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// TCP address of the relay's plain-HTTP side (what nodes' relay URLs point at).
    pub http_bind: SocketAddr,
    /// UDP address of QUIC address discovery; None: no discovery, so no hole punching
    /// through it (links stay relayed).
    pub quic_bind: Option<SocketAddr>,
    /// Keys admitted; None: any node.
    pub admit_only: Option<Vec<PublicKey>>,
}

/// A self-signed certificate for the names nodes reach the relay by, made once and kept.
#[derive(Debug)]
pub struct RelayCertificate {
    pub cert_path: PathBuf,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl RelayCertificate {
    /// Loads `<dir>/<name>-cert.pem` and its key, or makes them for `name` (a host name
    /// or IP address, as in the relay URL). The key file is this user's only.
    pub fn load_or_create(dir: &Path, name: &str) -> Result<Self, RelayError> {
        let fail = |reason: String| RelayError::Certificate {
            dir: dir.to_path_buf(),
            reason,
        };
        let safe_name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let cert_path = dir.join(format!("{safe_name}-cert.pem"));
        let key_path = dir.join(format!("{safe_name}-key.pem"));
        if !cert_path.exists() || !key_path.exists() {
            let made = rcgen::generate_simple_self_signed(vec![name.to_string()])
                .map_err(|e| fail(e.to_string()))?;
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            write_private(&key_path, made.signing_key.serialize_pem().as_bytes())
                .map_err(|e| fail(e.to_string()))?;
            std::fs::write(&cert_path, made.cert.pem()).map_err(|e| fail(e.to_string()))?;
        }
        let cert = CertificateDer::from_pem_file(&cert_path)
            .map_err(|e| fail(format!("{}: {e}", cert_path.display())))?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| fail(format!("{}: {e}", key_path.display())))?;
        Ok(RelayCertificate {
            cert_path,
            cert,
            key,
        })
    }

    /// The certificate's SHA-256, for operators comparing what nodes were given.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.cert.as_ref()))
    }

    fn server_config(&self) -> Result<rustls::ServerConfig, RelayError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            })
            .map_err(|e| RelayError::Spawn(format!("TLS set-up: {e}")))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Admits only the listed keys; a relay for a group of friends, not for the world.
#[derive(Debug)]
struct AdmitListed(HashSet<iroh::EndpointId>);

impl AccessControl for AdmitListed {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        if self.0.contains(&request.endpoint_id()) {
            Access::Allow
        } else {
            tracing::info!(endpoint = %request.endpoint_id(), "relay refused a key not listed");
            Access::Deny {
                reason: Some("this relay admits only listed keys".into()),
            }
        }
    }
}

/// A running relay; `shutdown` stops it.
pub struct RunningRelay {
    server: Server,
}

impl RunningRelay {
    pub async fn spawn(
        settings: &RelaySettings,
        certificate: &RelayCertificate,
    ) -> Result<Self, RelayError> {
        let mut relay = RelayConfig::new(settings.http_bind);
        if let Some(keys) = &settings.admit_only {
            let ids = keys.iter().filter_map(endpoint_id).collect();
            relay.access = Arc::new(AdmitListed(ids));
        }
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        if let Some(bind) = settings.quic_bind {
            let mut quic = QuicConfig::new(bind);
            quic.server_config = Some(certificate.server_config()?);
            config.quic = Some(quic);
        }
        let server = Server::spawn(config)
            .await
            .map_err(|e| RelayError::Spawn(e.to_string()))?;
        Ok(RunningRelay { server })
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.server.http_addr()
    }

    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.server.quic_addr()
    }

    pub async fn shutdown(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!(error = %e, "the relay did not stop cleanly");
        }
    }
}
